"""MockBox for a stock mitmproxy:

    mitmdump -s addons/mockbox.py --set mockbox_mocks=./mocks
    mitmweb  -s addons/mockbox.py --set mockbox_mocks=./mocks --set mockbox_admin_port=8082

Run it with the mitmproxy of the environment MockBox is installed in (`pip install -e .`).
"""

from mockbox import stack

addons = stack.build()
