"""Send a polite withdrawal or offer decline through your own SMTP account: `python send.py --help`."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 (this line must speak to an older Python)
    sys.exit(
        f"error: jobmail needs Python 3.11 or newer, and this is {sys.version.split()[0]}: "
        "install a newer Python (python.org, or your package manager) and make the .venv with it"
    )

if __name__ == "__main__":
    from jobmail import interrupts  # after the version check, which must run on any Python

    interrupts.install()  # first: Ctrl-C stops it even during start-up, and even where it came in ignored
    try:
        from jobmail.cli import exiting, main

        exiting.install()  # the first atexit handler, so the last to run: the exit without the teardown
        code = main()
    except KeyboardInterrupt as exc:  # stopped while starting, before a command could say anything
        print("\ninterrupted: nothing was sent", file=sys.stderr)
        sys.exit(interrupts.exit_code(exc))
    exiting.end(code)
