"""The MockServer addon: answers requests from the mock files, reloading them as they change."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection
from pathlib import Path

from mitmproxy import command, exceptions, http
from mitmproxy.addonmanager import Loader

from .core.index import Match
from .core.library import MockLibrary, ReloadReport
from .core.model import Delay, Fault
from .core.render import render_answer
from .core.request import RequestView
from .core.safefile import FileLimits
from .core.sequence import SequenceCounters
from .core.templating import TemplateEngine, TemplateError
from .flows import MOCK_ID, RECORDING, answer, answer_json, request_view, reset_connection
from .metrics import Metrics
from .settings import OptionalStr, Settings

logger = logging.getLogger(__name__)

UNMATCHED_CHOICES = ("ai", "404", "upstream")
UNMATCHED = "mockbox.unmatched"  # flow.metadata key: no mock matched and nothing answered yet
MATCH = "mockbox.match"  # flow.metadata key: the flow's Match (or None), looked up once


class MockServer:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.library: MockLibrary | None = None
        self.unmatched = "404"
        self.sequences = SequenceCounters()
        self._watcher: asyncio.Task[None] | None = None
        # Called after a reload changed what is served (not on the first load).
        self.reload_listeners: list[Callable[[ReloadReport], None]] = []

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_mocks",
            OptionalStr,
            None,
            "Folder of mock files (MOCKBOX_MOCKS; default ./mocks).",
        )
        loader.add_option(
            "mockbox_unmatched",
            OptionalStr,
            None,
            "When no mock matches: ai (synthesize an answer), 404 (explain the nearest "
            "mocks) or upstream (forward to the real API). MOCKBOX_UNMATCHED; default ai.",
        )

    def configure(self, updated: set[str]) -> None:
        if updated & {"mockbox_unmatched", "mockbox_config"}:
            unmatched = str(self.settings.value("mockbox_unmatched", "unmatched"))
            if unmatched not in UNMATCHED_CHOICES:
                raise exceptions.OptionsError(
                    f"unmatched must be one of {', '.join(UNMATCHED_CHOICES)}, not {unmatched!r}"
                )
            self.unmatched = unmatched
        if updated & {"mockbox_mocks", "mockbox_config"}:
            root = Path(str(self.settings.value("mockbox_mocks", "mocks"))).expanduser()
            limits = FileLimits.from_config(self.settings.config.get("mock_files"))
            if self.library is None or self.library.root != root.resolve():
                engine = TemplateEngine(self.settings.config.get("templating", "faker_locale"))
                self.library = MockLibrary(root, engine, limits)
                if not root.is_dir():
                    logger.warning(f"mockbox: mocks folder {root} does not exist (yet)")
                self._report(self.library.refresh())
            else:
                self.library.limits = limits  # applies from the next reload

    def running(self) -> None:
        interval = float(self.settings.config.get("reload", "interval"))
        if interval > 0 and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(interval))

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    @command.command("mockbox.reload")
    def reload(self) -> None:
        """Reload changed mock files now."""
        if self.library is not None:
            self._reloaded(self.library.refresh())

    @command.command("mockbox.sequences.reset")
    def reset_sequences(self, mock: str = "") -> int:
        """Start `responses:` sequences over, for every mock or the one with this id or name."""
        return self.sequences.reset(mock)

    async def reload_files(self, changed: Collection[Path] = ()) -> ReloadReport | None:
        """Reload now, `changed` (just written by the editor) in any case. Files are read in a
        thread; the reload listeners (cache and CDN purges) then run on the event loop."""
        library = self.library
        if library is None:
            return None
        report = await asyncio.to_thread(library.refresh, changed)
        self._reloaded(report)
        return report

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            library = self.library
            if library is None:
                continue
            try:
                report = await asyncio.to_thread(library.refresh)
                if library is self.library:
                    self._reloaded(report)
            except Exception:  # a reload or listener bug must never stop reloading
                logger.exception("mockbox: reloading mocks failed")

    def _reloaded(self, report: ReloadReport) -> None:
        self._report(report)
        if report.changed:
            for listener in self.reload_listeners:
                listener(report)

    def _report(self, report: ReloadReport) -> None:
        assert self.library is not None
        for problem in report.problems:
            logger.warning(f"mockbox: {problem}")
        if report.failed:
            self.metrics.reload_errors.inc(len(report.failed))
        if report.changed:
            self.sequences.retain(self.library.index.mocks)
            logger.info(
                f"mockbox: {len(self.library.index)} mocks from {len(self.library.files)} "
                f"files in {self.library.root}"
            )
        self.metrics.mocks_loaded.set(len(self.library.index))

    def match(self, flow: http.HTTPFlow) -> Match | None:
        """The mock that answers `flow`, looked up once per flow: the rate limiter asks first
        (the mock decides the tier), then this addon serves it."""
        if MATCH not in flow.metadata:
            library = self.library
            flow.metadata[MATCH] = library.index.match(request_view(flow)) if library else None
        found: Match | None = flow.metadata[MATCH]
        return found

    @property
    def unmatched_to_ai(self) -> bool:
        """Whether a request no mock matches goes to AI synthesis (so: the `ai` rate-limit tier)."""
        return self.unmatched == "ai"

    async def request(self, flow: http.HTTPFlow) -> None:
        library = self.library
        if flow.response or flow.error or not flow.live or library is None:
            return
        if flow.metadata.get(RECORDING):
            return  # recording: everything goes to the real upstream
        view = request_view(flow)
        match = self.match(flow)
        if match is not None:
            await self._serve(flow, view, match, library.engine)
        elif self.unmatched == "404":
            answer_json(flow, 404, _no_match(library, view), "mock")
        else:
            flow.metadata[UNMATCHED] = True

    async def _serve(
        self, flow: http.HTTPFlow, view: RequestView, match: Match, engine: TemplateEngine
    ) -> None:
        mock = match.mock
        flow.metadata[MOCK_ID] = mock.id
        spec = self.sequences.pick(mock)
        if spec.delay is not None:
            await asyncio.sleep(_delay_seconds(spec.delay))
            if not flow.live:
                return
        fault = spec.fault
        if fault is not None and _fires(fault):
            if fault.kind == "connection_reset":
                reset_connection(flow)
                return
            if fault.kind == "empty_reply":
                flow.kill()
                return
            assert fault.response is not None
            spec = fault.response
        try:
            rendered = await render_answer(spec, engine, view, match.params)
        except TemplateError as e:
            logger.warning(f"mockbox: {mock.file}:{mock.line}: mock {mock.name!r}: {e}")
            answer_json(
                flow,
                500,
                {
                    "error": "MOCK_TEMPLATE_ERROR",
                    "message": f"The template of mock {mock.name!r} failed: {e}",
                    "mock": mock.id,
                    "file": str(mock.file),
                    "line": mock.line,
                },
                "mock",
            )
            return
        if flow.live:  # a render in a worker thread: the client may have gone meanwhile
            answer(flow, rendered, "mock")


def _no_match(library: MockLibrary, view: RequestView) -> dict[str, object]:
    nearest = library.index.nearest(view)
    explained = f"; the nearest {len(nearest)} are listed with why each did not match."
    return {
        "error": "NO_MOCK_MATCHED",
        "message": f"No mock matched {view.method} {view.url}"
        + (explained if nearest else "; no mocks are loaded."),
        "request": {"method": view.method, "url": view.url},
        "nearest": [c.to_json() for c in nearest],
        "mocks_loaded": len(library.index),
    }


def _delay_seconds(delay: Delay) -> float:
    ms = (
        delay.min_ms if delay.min_ms == delay.max_ms else random.uniform(delay.min_ms, delay.max_ms)
    )
    return ms / 1000


def _fires(fault: Fault) -> bool:
    return fault.probability >= 1.0 or random.random() < fault.probability
