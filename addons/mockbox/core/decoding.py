"""Decoding a Content-Encoding with a bound on the output.

A body of a few kilobytes can decompress to gigabytes; mitmproxy's `get_content()` decodes it
all. Where MockBox keeps a decoded body (the recorder), it decodes with this instead: each
decoder is asked for at most one byte more than the limit, enough to know the body is too big.
"""

from __future__ import annotations

import sys
import zlib

import brotli

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # what mitmproxy itself uses before 3.14
    from backports import zstd

_ZLIB_AUTO = 32 + zlib.MAX_WBITS  # a gzip or a zlib header, whichever it is


def decode_bounded(raw: bytes, encoding: str, limit: int) -> bytes:
    """`raw` decoded from `encoding` (a Content-Encoding value), at most `limit` + 1 bytes of
    it: longer than `limit` means the body decodes to more. Raises ValueError for an encoding
    it cannot decode."""
    name = encoding.strip().lower()
    if name in ("", "identity", "none"):
        return raw[: limit + 1]
    if name in ("gzip", "x-gzip", "deflate"):
        return _zlib(raw, limit, name == "deflate")
    if name == "br":
        return _brotli(raw, limit)
    if name == "zstd":
        return _zstd(raw, limit)
    raise ValueError(f"unsupported content encoding {encoding[:40]!r}")


def _zlib(raw: bytes, limit: int, deflate: bool) -> bytes:
    try:
        return zlib.decompressobj(_ZLIB_AUTO).decompress(raw, limit + 1)
    except zlib.error as e:
        if deflate:  # some servers send raw deflate, without the zlib header
            try:
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit + 1)
            except zlib.error:
                pass
        raise ValueError(f"cannot decode the body: {e}") from e


def _brotli(raw: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    try:
        out: bytes = decoder.process(raw, output_buffer_limit=limit + 1)
    except brotli.error as e:
        raise ValueError(f"cannot decode the body: {e}") from e
    if len(out) <= limit and not decoder.is_finished():
        raise ValueError("cannot decode the body: brotli data cut short")
    return out[: limit + 1]  # the buffer may pass its limit by a block


def _zstd(raw: bytes, limit: int) -> bytes:
    try:
        out: bytes = zstd.ZstdDecompressor().decompress(raw, max_length=limit + 1)
    except zstd.ZstdError as e:
        raise ValueError(f"cannot decode the body: {e}") from e
    return out
