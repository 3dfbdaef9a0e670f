"""The HTTP client the provider SDKs get: it reads at most `limit` bytes of an answer.

Whatever answers at a provider's URL can send a body of any size (a 54 MB answer once took
159 s and 5.4 GB), or a small compressed one that decodes to gigabytes. The SDKs would read all
of it into memory and parse it on the event loop that every client of the proxy shares. This
transport counts the bytes that arrive and the bytes they decode to, with or without a
Content-Length, and stops at `limit` with `ProviderAnswerRefused`, which both SDKs pass through
unwrapped and without retrying; the Synthesizer answers it with its usual 502.

Imported with the SDKs, only when an LLM provider is configured.
"""

from __future__ import annotations

import urllib.request
import zlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import anthropic
import httpx2
import openai

# Asked for, and the only ones read: zlib decodes them with a bound on its output. (br and zstd
# would need decoders that can stop part way; a provider that sends them anyway is refused.)
_ACCEPTED = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}


class ProviderAnswerRefused(openai.OpenAIError, anthropic.AnthropicError):
    """An answer MockBox stopped reading (too large, or in an encoding it did not ask for).
    Both SDKs raise their own error types as they are, without retrying."""


def capped_client(
    sdk_client: type[httpx2.AsyncClient], base_url: str, limit: int
) -> httpx2.AsyncClient:
    """An instance of the SDK's own default client class (its timeouts and redirect rules) whose
    transport reads at most `limit` bytes of any answer from `base_url`."""
    transport = httpx2.AsyncHTTPTransport(proxy=_environment_proxy(base_url))
    return sdk_client(transport=CappedTransport(transport, limit))


def _environment_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) name for `url`, as the SDK's own client
    would have used: a client given a transport no longer reads them itself."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme or "https")


class CappedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int) -> None:
        self.inner, self.limit = inner, limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = ", ".join(_ACCEPTED)
        response = await self.inner.handle_async_request(request)
        try:
            headers = self._checked(response)
        except ProviderAnswerRefused:
            await response.aclose()
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        return httpx2.Response(
            response.status_code,
            headers=headers,
            stream=_CappedStream(response.stream, _ACCEPTED.get(encoding), self.limit),
            extensions=response.extensions,
        )

    def _checked(self, response: httpx2.Response) -> list[tuple[str, str]]:
        """The headers to hand on (decoded: no Content-Encoding, no Content-Length); refuses
        an announced size over the limit before a byte of the body is read."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise _too_large(self.limit, f"it announced {int(declared)} bytes")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in (*_ACCEPTED, "identity", ""):
            raise ProviderAnswerRefused(
                f"its answer is in the encoding {encoding[:40]!r}, which MockBox did not ask for"
            )
        drop = {"content-encoding", "content-length"}
        return [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CappedStream(httpx2.AsyncByteStream):
    """The body as it arrives, decoded, stopped as soon as either count passes the limit."""

    def __init__(self, raw: httpx2.AsyncByteStream, wbits: int | None, limit: int) -> None:
        self.raw, self.limit = raw, limit
        self.decoder = zlib.decompressobj(wbits) if wbits is not None else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = produced = 0
        async for chunk in self.raw:
            received += len(chunk)
            if received > self.limit:
                raise _too_large(self.limit, f"more than {self.limit} bytes arrived")
            out = self._decode(chunk, self.limit - produced)
            produced += len(out)
            if out:
                yield out

    def _decode(self, chunk: bytes, room: int) -> bytes:
        if self.decoder is None:
            return chunk
        try:
            # At most one byte more than there is room for: enough to know it does not fit.
            # Short of that, zlib has used all of `chunk` and holds nothing back (no flush).
            out = self.decoder.decompress(chunk, room + 1)
        except zlib.error as e:
            raise ProviderAnswerRefused(f"its compressed answer could not be decoded: {e}") from e
        if len(out) > room:
            raise _too_large(self.limit, "it decompressed to more")
        return out

    async def aclose(self) -> None:
        await self.raw.aclose()


def _too_large(limit: int, how: str) -> ProviderAnswerRefused:
    return ProviderAnswerRefused(
        f"its answer is larger than ai.max_answer_bytes ({limit} bytes): {how}; "
        "MockBox stopped reading it"
    )
