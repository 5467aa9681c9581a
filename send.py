"""Send a polite withdrawal or offer decline through your own SMTP account: `python send.py --help`."""

import sys

from jobmail.cli import main

if __name__ == "__main__":
    sys.exit(main())
