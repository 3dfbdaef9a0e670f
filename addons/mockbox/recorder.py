"""The Recorder addon: while a session is set, every request goes to the real upstream and what
came back is written, as it happens, as mock files under <mocks>/recorded/<session>/.

`mockbox record --session NAME` sets it; in a stock mitmproxy use `--set mockbox_record=NAME`
or the command `mockbox.record NAME` (`mockbox.record.stop` ends it).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from mitmproxy import command, ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from . import bodycap
from .core.config import ConfigError
from .core.decoding import decode_bounded
from .core.mockfile import MOCK_FILE_SUFFIXES
from .core.recording import Exchange, Redacted, Rules, Session, recordable, redact_exchange
from .core.redaction import redact_url
from .flows import RECORDING, SOURCE, request_view
from .settings import OptionalStr, Settings

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
# Writing a large recording takes a while; waiting this many times as long before the next
# write keeps the writer's share of the proxy's time small.
FLUSH_BACKOFF = 10
# Exchanges with more body than this are redacted in a helper process: walking megabytes of
# JSON is seconds of Python, and a thread of this process would take the interpreter lock
# from the event loop every client shares.
OFFLOAD_BYTES = 256 * 1024


def session_folder(mocks_root: Path, name: str) -> Path:
    return mocks_root / "recorded" / name


class TooLarge(ValueError):
    """An answer whose body is, or decodes to, more than the recorder keeps."""

    def __init__(self, size: str) -> None:
        super().__init__(size)
        self.size = size


def answer_body(response: http.Response, limit: int) -> bytes:
    """The answer's body, decoded (at most `limit` bytes either way: a small gzip can hold a
    huge body); raises TooLarge. Undecodable bodies are kept as they came, as mitmproxy's
    `get_content(strict=False)` would."""
    raw = response.raw_content
    if raw is None:  # streamed by a mitmproxy option (stream_large_bodies): never held
        raise TooLarge("of unknown size")
    if len(raw) > limit:
        raise TooLarge(f"{len(raw)} bytes")
    try:
        body = decode_bounded(raw, response.headers.get("content-encoding", ""), limit)
    except ValueError:
        return raw
    if len(body) > limit:
        raise TooLarge(f"{len(raw)} bytes, more than {limit} decoded")
    return body


def exchange_from_flow(flow: http.HTTPFlow, body: bytes | None = None) -> Exchange | None:
    """The core's view of a finished flow, or None when there is no whole answer to keep.
    `body`: the answer's body as it is to be kept (default: the flow's, decoded)."""
    response = flow.response
    if response is None or flow.websocket is not None:
        return None
    if body is None:
        if response.raw_content is None:
            return None
        body = response.get_content(strict=False) or b""
    view = request_view(flow)
    return Exchange(
        method=view.method,
        scheme=view.scheme,
        host=view.host,
        port=view.port,
        path=view.path,
        query=view.query,
        request_headers=view.headers.fields(),
        request_body=view.body,
        status=response.status_code,
        response_headers=tuple(response.headers.items(multi=True)),
        response_body=body,
    )


class Recorder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session: Session | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._reported: dict[str, int] = {}
        # The session's work (redacting, writing files) runs on this one thread, in order:
        # not on the event loop; large bodies are redacted in a helper process.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="mockbox-recorder")
        self._helper: ProcessPoolExecutor | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_record",
            OptionalStr,
            None,
            "Record a session: forward every request upstream and write what it saw as mocks "
            "under <mocks>/recorded/NAME/.",
        )
        loader.add_option(
            "mockbox_record_generalize",
            bool,
            False,
            "While recording, turn repeated ids, UUIDs and hashes in paths into {id} templates.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & {"mockbox_record", "mockbox_record_generalize", "mockbox_mocks"}:
            return
        name = ctx.options.mockbox_record
        if self.session is not None and (not name or self.session.title != name):
            self._stop()
        if name and self.session is None:
            self._start(name)

    def _start(self, name: str) -> None:
        if "/" in name or name in ("", ".", "..") or name.startswith("."):
            raise exceptions.OptionsError(f"session name {name!r} must be a plain folder name")
        root = Path(str(self.settings.value("mockbox_mocks", "mocks"))).expanduser()
        folder = session_folder(root, name)
        if folder.is_dir() and any(
            p.suffix in MOCK_FILE_SUFFIXES for p in folder.iterdir() if p.is_file()
        ):
            raise exceptions.OptionsError(
                f"session {name!r} already exists in {folder}; choose another name or delete it"
            )
        config = self.settings.config
        try:
            rules = Rules.from_config(
                config.get("record"), config.get("redact"), ctx.options.mockbox_record_generalize
            )
        except ConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        self.session = Session(folder, rules, name)
        self._reported = {}
        logger.info(f"mockbox: recording session {name!r} into {folder}")

    def _stop(self) -> None:
        session, self.session = self.session, None
        if session is not None:  # after every exchange already handed to the worker
            self._worker.submit(session.flush, True).result()
            self._report(session.title, session.counts(), final=True)

    @command.command("mockbox.record")
    def record(self, session: str) -> None:
        """Start recording into <mocks>/recorded/SESSION/ (everything goes upstream meanwhile)."""
        ctx.options.update(mockbox_record=session)

    @command.command("mockbox.record.stop")
    def record_stop(self) -> None:
        """Stop recording and write what is left."""
        ctx.options.update(mockbox_record=None)

    def running(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())

    def request(self, flow: http.HTTPFlow) -> None:
        if self.session is not None:
            flow.metadata[RECORDING] = True

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """An answer is held whole only up to record.max_body_bytes: a larger one (or one of
        unknown length) streams to the client as it arrives (bodycap)."""
        session = self.session
        if session is None or not flow.metadata.get(RECORDING) or SOURCE in flow.metadata:
            return
        if not bodycap.held_whole(flow, session.rules.max_body_bytes):
            bodycap.stream(flow, session.rules.max_body_bytes)

    def response(self, flow: http.HTTPFlow) -> None:
        session = self.session
        if session is None or not flow.metadata.get(RECORDING) or SOURCE in flow.metadata:
            return
        over = bodycap.finish(flow)
        response = flow.response
        if response is None or flow.websocket is not None:
            return
        limit = session.rules.max_body_bytes
        try:
            if over is not None:
                raise TooLarge(f"{over.size} bytes")
            body = answer_body(response, limit)
        except TooLarge as e:
            skipped = exchange_from_flow(flow, b"")
            if skipped is not None:  # on the worker too: the session is not thread-safe
                url = flow.request.pretty_url
                job = self._worker.submit(self._skip, session, skipped, e.size, url)
                job.add_done_callback(_log_failure)
            return
        exchange = exchange_from_flow(flow, body)
        if exchange is not None:  # one worker, first in first out: the calls keep their order
            self._worker.submit(self._add, session, exchange).add_done_callback(_log_failure)

    def _add(self, session: Session, exchange: Exchange) -> str | None:
        """On the worker thread: redact (a large exchange in the helper process), record."""
        redacted: Redacted | None = None
        size = len(exchange.request_body) + len(exchange.response_body)
        if size > OFFLOAD_BYTES and recordable(exchange):
            if self._helper is None:  # spawned: forking a process with threads is unsafe
                spawn = multiprocessing.get_context("spawn")
                self._helper = ProcessPoolExecutor(1, mp_context=spawn)
            try:
                job = self._helper.submit(
                    redact_exchange, exchange, session.rules, session.secrets()
                )
                redacted = job.result()
            except (BrokenProcessPool, OSError) as e:  # killed, or cannot start: redact here
                logger.warning(f"mockbox: the recorder's helper process failed ({e!r})")
                self._helper = None
        return session.add(exchange, redacted)

    def _skip(self, session: Session, exchange: Exchange, size: str, url: str) -> None:
        """On the worker thread: note an answer over the cap, and say so without a secret (a
        query's, or one the session knows in the path)."""
        session.skip(exchange, size)
        shown = session.scrub(redact_url(url, session.rules.policy))
        logger.info(
            f"mockbox: not recording {shown}: its body is {size}, "
            f"over record.max_body_bytes ({session.rules.max_body_bytes})"
        )

    async def _flush_loop(self) -> None:
        pause = FLUSH_SECONDS
        while True:
            await asyncio.sleep(pause)
            session = self.session
            if session is None:
                continue
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._worker, session.flush)
            except OSError as e:  # a full disk must not stop the proxy; try again next tick
                logger.error(f"mockbox: cannot write the recording: {e}")
                continue
            pause = max(FLUSH_SECONDS, FLUSH_BACKOFF * (time.monotonic() - started))
            self._report(session.title, await loop.run_in_executor(self._worker, session.counts))

    def _report(self, title: str, counts: dict[str, int], final: bool = False) -> None:
        """The live count of recorded requests by host, on the terminal when it changes."""
        if counts == self._reported and not final:
            return
        self._reported = counts
        by_host = ", ".join(f"{host} {n}" for host, n in sorted(counts.items()))
        done = "recorded" if final else "recording"
        logger.info(
            f"mockbox: {done} {sum(counts.values())} requests in session {title!r}"
            + (f": {by_host}" if by_host else "")
        )

    def done(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self._stop()
        if self._helper is not None:
            self._helper.shutdown(cancel_futures=True)
            self._helper = None


def _log_failure(future: Future[Any]) -> None:
    error = future.exception()
    if error is not None:  # a bug: say so, and keep recording the rest
        logger.error(f"mockbox: an exchange could not be recorded: {error!r}")
