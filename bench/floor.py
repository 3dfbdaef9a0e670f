"""The benchmark floor: MockBox's lean mitmproxy master whose only addon returns a fixed
response. Nothing MockBox does per request can be faster than this.

    python bench/floor.py PORT
"""

from __future__ import annotations

import asyncio
import sys

from mitmproxy import http, options

from mockbox.runner import LeanMaster


class Fixed:
    def request(self, flow: http.HTTPFlow) -> None:
        flow.response = http.Response.make(
            200, b'{"id": 42, "name": "user-42"}', {"Content-Type": "application/json"}
        )


async def main(port: int) -> None:
    opts = options.Options()
    master = LeanMaster(opts, [Fixed()])
    opts.update(listen_port=port, listen_host="127.0.0.1", connection_strategy="lazy")
    opts.update(termlog_verbosity="error")
    await master.run()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
