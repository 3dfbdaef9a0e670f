"""The CdnPurge addon: when a mock changes, drop the CDN's copies of what it answered.

Mocks with `cache: {cdn_ttl: ...}` go out with a `Surrogate-Key` / `Cache-Tag` naming the mock
(see cdn.py). When a reload adds, edits or removes mocks, this purges those tags:
- Varnish (`cdn.varnish`): `BAN /` with `X-Purge-Tag: <regex>` to every listed edge (the VCL in
  deploy/cdn/varnish bans objects whose Surrogate-Key holds the tag);
- Cloudflare (`cdn.cloudflare_zone`, token from CLOUDFLARE_API_TOKEN): the purge-by-tag API.
Purges run in the background; a failing CDN is logged and counted, never in a request's way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re

from prometheus_client import Counter
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .core.cachepolicy import mock_tag
from .core.library import ReloadReport
from .metrics import Metrics
from .mocks import MockServer
from .settings import Settings

logger = logging.getLogger(__name__)

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
TIMEOUT = 5.0


class CdnPurge:
    def __init__(self, settings: Settings, metrics: Metrics, mocks: MockServer) -> None:
        self.settings = settings
        self.purges = Counter(
            "mockbox_cdn_purges_total",
            "Purge requests sent to CDNs after mock changes, by CDN and outcome.",
            ["cdn", "outcome"],
            registry=metrics.registry,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        mocks.reload_listeners.append(self.mocks_changed)
        self.api = CLOUDFLARE_API  # tests point this at a local server

    def mocks_changed(self, report: ReloadReport) -> None:
        # Added, edited (old and new version) and removed mocks: their answers may be stale.
        config = self.settings.config.get("cdn")
        if not config["varnish"] and not config["cloudflare_zone"]:
            return  # no CDN: spare the event loop the tags of a 20,000-mock reload (0.1 s)
        tags = sorted({mock_tag(m.id) for m in report.affected})
        if not tags:
            return
        task = asyncio.get_running_loop().create_task(self.purge(tags))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def purge(self, tags: list[str]) -> None:
        config = self.settings.config.get("cdn")
        jobs = [self._ban(url, tag) for url in config["varnish"] for tag in tags]
        zone = config["cloudflare_zone"]
        token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
        if zone and token:
            jobs.append(self._cloudflare(zone, token, tags))
        elif zone:
            logger.warning("mockbox: cdn.cloudflare_zone is set but CLOUDFLARE_API_TOKEN is not")
        await asyncio.gather(*jobs)

    async def _ban(self, url: str, tag: str) -> None:
        request = HTTPRequest(
            url.rstrip("/") + "/",
            method="BAN",
            headers={"X-Purge-Tag": re.escape(tag)},  # the VCL matches it as a regex
            allow_nonstandard_methods=True,
            request_timeout=TIMEOUT,
        )
        await self._send("varnish", request, f"BAN {tag} at {url}")

    async def _cloudflare(self, zone: str, token: str, tags: list[str]) -> None:
        for start in range(0, len(tags), 30):  # the API takes up to 30 tags per call
            request = HTTPRequest(
                f"{self.api}/zones/{zone}/purge_cache",
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                body=json.dumps({"tags": tags[start : start + 30]}),
                request_timeout=TIMEOUT,
            )
            await self._send("cloudflare", request, f"Cloudflare purge of {len(tags)} tag(s)")

    async def _send(self, cdn: str, request: HTTPRequest, what: str) -> None:
        try:
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as e:
            self.purges.labels(cdn, "error").inc()
            logger.warning(f"mockbox: {what} failed: {e}")
            return
        self.purges.labels(cdn, "ok").inc()
        logger.info(f"mockbox: {what}")
