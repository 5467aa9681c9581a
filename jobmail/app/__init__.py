"""The use cases, from plain request objects (no argparse): send now, schedule and run the outbox, set up."""
