"""The floor: the least a Python script can do to send one message with the same guarantees as jobmail.

STARTTLS with the certificate and host name checked (the system's CAs plus the given CA file, as
jobmail does with SMTP_CA_FILE), login, and the exact bytes of a message already built.
No template, no checks, no keyring, no log. The password comes as one line on standard input.

    python bench/floor_send.py [--import M1,M2 [--overlap]] HOST PORT USER CA MESSAGE.eml SENDER RCPT... < password

With `--import jinja2,keyring,...` it first imports those modules and uses none of them: the floor plus
the bare cost of loading the libraries a send cannot do without, a lower bound for any such send that
loads them before it connects. With `--overlap` as well, a thread loads the CAs, connects and does
STARTTLS while the main thread imports: the bound for a send that hides its imports behind the network.
"""

import smtplib
import socket
import ssl
import sys

args = sys.argv[1:]
modules, overlap = [], False
while args[:1] in (["--import"], ["--overlap"]):  # either order; the plain floor imports nothing more
    if args[0] == "--overlap":
        overlap, args = True, args[1:]
    else:
        modules, args = [name for name in args[1].split(",") if name], args[2:]
host, port, username, ca_file, eml, sender, *recipients = args
password = sys.stdin.readline().rstrip("\r\n")
with open(eml, "rb") as f:
    data = f.read()
opened = []


def connect() -> None:
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    # local_hostname: greet with the plain host name, as jobmail does, instead of socket.getfqdn()
    smtp = smtplib.SMTP(host, int(port), timeout=30, local_hostname=socket.gethostname())
    smtp.starttls(context=context)
    opened.append(smtp)


if overlap:
    import threading

    worker = threading.Thread(target=connect)
    worker.start()
if modules:
    import importlib

    for name in modules:
        importlib.import_module(name)
if overlap:
    worker.join()
else:
    connect()
if not opened:
    sys.exit("floor_send.py: could not connect (see the error above)")
with opened[0] as smtp:
    smtp.login(username, password)
    smtp.sendmail(sender, recipients, data)
