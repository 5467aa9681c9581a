"""A browser for the tests of `login --browser`: $BROWSER runs it with the sign-in page's address.

It does what a person's browser does: opens the page (the local OAuth server, whose certificate it
trusts through STAND_IN_CA_FILE), which signs the user in at once and redirects to jobmail's loopback
address; following that redirect hands the code back to `login`.
"""

import os
import ssl
import sys
import urllib.request

context = ssl.create_default_context(cafile=os.environ["STAND_IN_CA_FILE"])
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
with opener.open(sys.argv[1], timeout=30) as page:
    page.read()
