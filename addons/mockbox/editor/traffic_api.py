"""/api/traffic: the recent requests and where their answers came from; "Save as mock"."""

from __future__ import annotations

from ..core.mockedit import dump_mock
from ..core.mockstore import NotFound
from ..core.mockwriter import host_file_name
from ..core.traffic import Exchange, TrafficLog
from ..traffic import traffic_log
from .base import BadRequest, EditorHandler, Unavailable

SOURCES = ("mock", "cache", "ai", "upstream", "ratelimit")


class TrafficApi(EditorHandler):
    @property
    def log(self) -> TrafficLog:
        log = traffic_log()
        if log is None:
            raise Unavailable("the traffic log is off (traffic.size is 0)")
        return log

    def exchange(self, id: str) -> Exchange:
        found = self.log.get(int(id))
        if found is None:
            raise NotFound(
                f"request {id} is no longer in the traffic log (it keeps the last {self.log.size})"
            )
        return found


class TrafficHandler(TrafficApi):
    def get(self) -> None:
        source = self.get_query_argument("source", "")
        if source and source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
        try:
            limit = max(1, min(int(self.get_query_argument("limit", "100")), 1000))
            since = int(self.get_query_argument("since", "0"))
        except ValueError:
            raise BadRequest("limit and since must be whole numbers") from None
        log = self.log
        entries = log.recent(limit, since, source, self.get_query_argument("q", ""))
        traffic = [e.summary(log.policy) for e in entries]
        self.write_json({"traffic": traffic, "size": log.size})


class ExchangeHandler(TrafficApi):
    def get(self, id: str) -> None:
        self.write_json(self.exchange(id).to_json(self.log.policy))


class DraftHandler(TrafficApi):
    """The exchange as a mock draft, for the editor to review and save."""

    def get(self, id: str) -> None:
        exchange = self.exchange(id)
        try:
            mock = exchange.draft(self.log.policy)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        host = mock["request"].get("host", "")
        self.write_json({"mock": mock, "yaml": dump_mock(mock), "file": host_file_name(host)})
