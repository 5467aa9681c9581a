"""Send a polite withdrawal or offer decline through your own SMTP account: `python send.py --help`."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 (this line must speak to an older Python)
    sys.exit(
        f"error: jobmail needs Python 3.11 or newer, and this is {sys.version.split()[0]}: "
        "install a newer Python (python.org, or your package manager) and make the .venv with it"
    )

from jobmail.cli import main  # noqa: E402 (after the version check, which must run on any Python)

if __name__ == "__main__":
    sys.exit(main())
