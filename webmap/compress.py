"""Compress responses with gzip when the client accepts it, and keep compressed pages ready to send.

``init_app`` adds an ``after_request`` step that gzips text, JSON and JavaScript bodies of at least
``MIN_SIZE`` bytes for clients whose ``Accept-Encoding`` allows gzip (every browser). Identical bodies
(cached API responses, cached pages) are compressed once: the last ``_MEMO_SIZE`` results are kept.
Streamed and file responses (``direct_passthrough``, e.g. ``/static``) are left alone.

Pages that carry a per-request CSP nonce differ in those few bytes only; ``NoncedPage`` compresses the
text between the nonces once (each piece as independent deflate blocks, ended by a full flush, so the
pieces can be joined) and compresses only the nonce per request.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import request

if TYPE_CHECKING:
    from flask import Flask, Response

#: Bodies shorter than this are sent as they are (compression would gain little).
MIN_SIZE = 1024
#: gzip level: 6 is zlib's default balance of size and speed.
LEVEL = 6
_COMPRESSIBLE = ("text/", "application/json", "application/geo+json", "application/javascript", "image/svg+xml")
_MEMO_SIZE = 32
_memo: OrderedDict[bytes, bytes] = OrderedDict()
_memo_lock = threading.Lock()
#: gzip member header: magic, deflate, no flags, no mtime, no extra flags, unknown OS (RFC 1952).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_BLOCK = b"\x03\x00"  # an empty final fixed-Huffman deflate block


def init_app(app: Flask) -> None:
    """Gzip eligible responses of ``app`` for clients that accept gzip."""
    app.after_request(compress_response)


def accepts_gzip() -> bool:
    """Return True when this request's ``Accept-Encoding`` allows gzip."""
    return request.accept_encodings["gzip"] > 0


def compress_response(response: Response) -> Response:
    """Gzip ``response`` in place when the client accepts it and the body is worth compressing."""
    if response.direct_passthrough or response.is_streamed or "Content-Encoding" in response.headers:
        return response
    if not (response.mimetype or "").startswith(_COMPRESSIBLE) or response.status_code in (204, 206, 304):
        return response
    response.vary.add("Accept-Encoding")
    body = response.get_data()
    if len(body) < MIN_SIZE or not accepts_gzip():
        return response
    response.set_data(gzip_bytes(body))
    response.headers["Content-Encoding"] = "gzip"
    return response


def gzip_bytes(body: bytes) -> bytes:
    """Return ``body`` gzipped, reusing the result for a body compressed recently."""
    with _memo_lock:
        found = _memo.get(body)
        if found is not None:
            _memo.move_to_end(body)
            return found
    compressed = _gzip_member([_deflate_piece(body)], body)
    with _memo_lock:
        _memo[body] = compressed
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return compressed


@dataclass(frozen=True)
class NoncedPage:
    """A rendered page whose only per-request part is its CSP nonce, ready to send plain or gzipped.

    Build it with ``from_text`` from a page rendered with ``placeholder`` as its nonce.

    Attributes
    ----------
    pieces
        The page's UTF-8 text between the placeholders.
    deflated
        Each piece as raw deflate blocks ending on a byte boundary (a full flush), so they can be
        joined with other such blocks.
    """

    pieces: tuple[bytes, ...]
    deflated: tuple[bytes, ...]

    @classmethod
    def from_text(cls, text: str, placeholder: str) -> NoncedPage:
        """Split ``text`` at every ``placeholder`` and compress the pieces once."""
        pieces = tuple(piece.encode("utf-8") for piece in text.split(placeholder))
        return cls(pieces=pieces, deflated=tuple(_deflate_piece(piece) for piece in pieces))

    def body(self, nonce: str) -> bytes:
        """Return the page with ``nonce`` in place of every placeholder."""
        return nonce.encode("ascii").join(self.pieces)

    def gzipped(self, nonce: str) -> bytes:
        """Return ``body(nonce)`` as a gzip member, compressing only the nonce now."""
        deflated_nonce = _deflate_piece(nonce.encode("ascii"))
        blocks = [self.deflated[0]]
        for piece in self.deflated[1:]:
            blocks += [deflated_nonce, piece]
        return _gzip_member(blocks, self.body(nonce))


def _deflate_piece(data: bytes) -> bytes:
    """Return ``data`` as raw deflate blocks that refer to nothing before them and end byte-aligned."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def _gzip_member(blocks: list[bytes], plain: bytes) -> bytes:
    trailer = struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF)
    return b"".join([_GZIP_HEADER, *blocks, _FINAL_BLOCK, trailer])
