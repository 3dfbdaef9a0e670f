"""Property tests for the read caps (issue 13): whatever size, chunking and compression an
answer comes in, the provider transport never hands on more than its limit, bounded decoding
never produces more than one byte past its limit and agrees with a full decode, and the
streaming capture keeps exactly the bodies that fit."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import AsyncIterator

import brotli
import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbox.ai.transport import CappedTransport, ProviderAnswerRefused
from mockbox.bodycap import Capture
from mockbox.core.decoding import decode_bounded

bodies = st.binary(max_size=3000) | st.integers(0, 20_000).map(lambda n: b"a" * n)
limits = st.integers(0, 5000)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _gzip(data: bytes) -> bytes:
    return zlib.compress(data, wbits=31)


class _Answer(httpx2.AsyncBaseTransport):
    """Answers every request with `chunks`, announcing a length or not."""

    def __init__(self, chunks: list[bytes], headers: list[tuple[str, str]]) -> None:
        self.chunks, self.headers = chunks, headers

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        chunks = self.chunks

        class Stream(httpx2.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for c in chunks:
                    yield c

        return httpx2.Response(200, headers=self.headers, stream=Stream())


async def _read(transport: httpx2.AsyncBaseTransport) -> bytes:
    async with httpx2.AsyncClient(transport=transport) as client:
        return (await client.get("http://provider.test/")).content


@given(bodies, limits, st.lists(st.integers(0, 30_000), max_size=8), st.booleans(), st.booleans())
def test_the_provider_transport_reads_no_more_than_its_limit(
    body: bytes, limit: int, cuts: list[int], gzip: bool, announce: bool
) -> None:
    wire = _gzip(body) if gzip else body
    headers = [("Content-Type", "application/json")]
    if gzip:
        headers.append(("Content-Encoding", "gzip"))
    if announce:
        headers.append(("Content-Length", str(len(wire))))
    transport = CappedTransport(_Answer(_chunks(wire, cuts), headers), limit)
    try:
        got = asyncio.run(_read(transport))
    except ProviderAnswerRefused as e:
        assert len(body) > limit or len(wire) > limit, (len(body), len(wire), limit)
        assert "max_answer_bytes" in str(e)
        return
    assert got == body  # a body within the limit, both ways, arrives whole and decoded
    assert len(body) <= limit and len(wire) <= limit


def test_the_provider_transport_refuses_encodings_it_did_not_ask_for() -> None:
    wire = brotli.compress(b"{}")
    answer = _Answer([wire], [("Content-Encoding", "br")])
    with pytest.raises(ProviderAnswerRefused, match="did not ask for"):
        asyncio.run(_read(CappedTransport(answer, 1000)))


@given(bodies, limits, st.sampled_from(["identity", "gzip", "deflate", "br", "zstd"]))
def test_bounded_decoding_stops_one_byte_past_its_limit(
    body: bytes, limit: int, encoding: str
) -> None:
    from backports import zstd

    raw = {
        "identity": lambda b: b,
        "gzip": _gzip,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "zstd": zstd.compress,
    }[encoding](body)
    out = decode_bounded(raw, encoding, limit)
    assert out == body[: limit + 1]  # the body, or enough of it to know it is too long


@given(bodies, limits, st.lists(st.integers(0, 30_000), max_size=8), st.booleans())
def test_the_capture_passes_everything_and_keeps_what_fits(
    body: bytes, limit: int, cuts: list[int], keep: bool
) -> None:
    capture = Capture(limit, keep)
    sent = b"".join(capture(c) for c in _chunks(body, cuts))
    assert sent == body and capture.size == len(body)
    assert capture.whole == (body if keep and len(body) <= limit else None)
