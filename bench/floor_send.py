"""The floor: the least a Python script can do to send one message with the same guarantees as jobmail.

STARTTLS with the certificate and host name checked (the system's CAs plus the given CA file, as
jobmail does with SMTP_CA_FILE), login, and the exact bytes of a message already built.
No template, no checks, no keyring, no log. The password comes as one line on standard input.

    python bench/floor_send.py HOST PORT USERNAME CA_FILE MESSAGE.eml SENDER RECIPIENT... < password
"""

import smtplib
import socket
import ssl
import sys

host, port, username, ca_file, eml, sender, *recipients = sys.argv[1:]
password = sys.stdin.readline().rstrip("\r\n")
with open(eml, "rb") as f:
    data = f.read()
context = ssl.create_default_context()
context.load_verify_locations(cafile=ca_file)
# local_hostname: greet with the plain host name, as jobmail does, instead of socket.getfqdn()
with smtplib.SMTP(host, int(port), timeout=30, local_hostname=socket.gethostname()) as smtp:
    smtp.starttls(context=context)
    smtp.login(username, password)
    smtp.sendmail(sender, recipients, data)
