"""Admin API of `responses:` sequences: `GET /api/sequences` (calls counted per mock) and
`POST /api/sequences/reset[?mock=NAME]` (start them over, like `mockbox.sequences.reset`)."""

from __future__ import annotations

from .admin import AdminServer, ApiHandler, Route
from .mocks import MockServer


def sequence_routes(admin: AdminServer, mocks: MockServer) -> list[Route]:
    kwargs = {"admin": admin, "mocks": mocks}
    return [
        (r"/api/sequences", SequencesHandler, kwargs),
        (r"/api/sequences/reset", SequencesResetHandler, kwargs),
    ]


class _SequenceHandler(ApiHandler):
    mocks: MockServer

    def initialize(self, admin: AdminServer, mocks: MockServer) -> None:  # type: ignore[override]
        super().initialize(admin)
        self.mocks = mocks


class SequencesHandler(_SequenceHandler):
    def get(self) -> None:
        self.write_json({"calls": self.mocks.sequences.calls()})


class SequencesResetHandler(_SequenceHandler):
    def post(self) -> None:
        mock = self.get_query_argument("mock", "")
        self.write_json({"reset": self.mocks.sequences.reset(mock)})
