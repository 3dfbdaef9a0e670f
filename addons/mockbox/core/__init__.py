"""The pure core of MockBox: no mitmproxy import here, so it is fast to test and reusable
from the command line and the admin API."""
