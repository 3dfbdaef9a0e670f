"""The Traffic addon: keeps the most recent exchanges for the editor's traffic view."""

from __future__ import annotations

import contextlib
import time

from mitmproxy import ctx, exceptions, http

from .core.config import ConfigError
from .core.decoding import decode_bounded
from .core.redaction import Policy
from .core.traffic import Exchange, Message, TrafficLog
from .flows import MOCK_ID, SOURCE
from .settings import Settings


class Traffic:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log: TrafficLog | None = None
        self.max_body = 65536

    def configure(self, updated: set[str]) -> None:
        if "mockbox_config" not in updated:
            return
        size = int(self.settings.config.get("traffic", "size"))
        self.max_body = int(self.settings.config.get("traffic", "max_body_bytes"))
        try:
            policy = Policy.from_config(self.settings.config.get("redact"))
        except ConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        if size <= 0:
            self.log = None
        elif self.log is None or self.log.size != size:
            self.log = TrafficLog(size, policy)
        else:
            self.log.policy = policy

    def response(self, flow: http.HTTPFlow) -> None:
        if self.log is not None and flow.response is not None:
            self._record(self.log, flow, flow.response, None)

    def error(self, flow: http.HTTPFlow) -> None:
        if self.log is not None and flow.response is None and flow.error is not None:
            self._record(self.log, flow, None, flow.error.msg)

    def _record(
        self,
        log: TrafficLog,
        flow: http.HTTPFlow,
        response: http.Response | None,
        error: str | None,
    ) -> None:
        req = flow.request
        log.add(
            Exchange(
                id=log.next_id(),
                time=req.timestamp_start,
                method=req.method,
                target=(req.scheme, req.host, req.port, req.path),
                status=response.status_code if response else None,
                source=flow.metadata.get(SOURCE, "upstream"),
                mock=flow.metadata.get(MOCK_ID),
                duration_ms=max(0.0, time.time() - req.timestamp_start) * 1000,
                request=self._message(req),
                response=self._message(response) if response else None,
                error=error,
            )
        )

    def _message(self, message: http.Message) -> Message:
        """Kept as they are (decoded only when the page asks): this runs for every flow."""
        fields = message.headers.fields
        body = message.raw_content or b""
        encoding = message.headers.get("content-encoding", "")
        if body and encoding:  # gzip etc.: decoded now, rarely, and no further than kept
            with contextlib.suppress(ValueError):  # undecodable: kept as it came
                body = decode_bounded(body, encoding, self.max_body)
        size = len(body)  # (over max_body: it decodes to more, how much is not worked out)
        return Message(fields, body if size <= self.max_body else body[: self.max_body], size)


def traffic_log() -> TrafficLog | None:
    """The running Traffic addon's log (None when turned off), for the admin API."""
    addon: Traffic | None = ctx.master.addons.get("traffic")
    return addon.log if addon is not None else None
