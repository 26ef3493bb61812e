"""Images in requests: base64 as Go's encoding/json decodes ``[]byte``, and their digests.

Ollama's api.ImageData is a ``[]byte``, so encoding/json decodes each image string
with ``base64.StdEncoding`` (padding required; CR and LF ignored) while decoding
the request body: invalid data fails the whole body with a 400 whose message is
the base64 error, "illegal base64 data at input byte N" (N counts bytes of the
string as sent, after JSON unescaping). ``decode_image`` finds the same N.
"""

from __future__ import annotations

import hashlib

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUES = {c: i for i, c in enumerate(_ALPHABET)}
_NEWLINES = (0x0A, 0x0D)
_PAD = ord("=")


class CorruptBase64Error(ValueError):
    """Go's base64.CorruptInputError: the offset of the first bad byte."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def decode_image(text: str) -> bytes:
    """``text`` decoded like Go's base64.StdEncoding.Decode (see the module docstring)."""
    src = text.encode()
    out = bytearray()
    si = 0
    while si < len(src):
        quantum: list[int] = []
        end_error: CorruptBase64Error | None = None
        while len(quantum) < 4:
            if si == len(src):
                if not quantum:
                    return bytes(out)
                raise CorruptBase64Error(si - len(quantum))
            char = src[si]
            si += 1
            if char in _VALUES:
                quantum.append(_VALUES[char])
                continue
            if char in _NEWLINES:
                continue
            if char != _PAD or len(quantum) < 2:
                raise CorruptBase64Error(si - 1)
            si, end_error = _after_padding(src, si, len(quantum))
            break
        out.extend(_bytes_of(quantum))
        if end_error is not None:
            raise end_error
        if len(quantum) < 4:
            break
    return bytes(out)


def _after_padding(src: bytes, si: int, held: int) -> tuple[int, CorruptBase64Error | None]:
    """Checks the padding after ``held`` characters of a quantum; (position, trailing error)."""
    if held == 2:  # a second "=" must follow, newlines aside
        while si < len(src) and src[si] in _NEWLINES:
            si += 1
        if si == len(src):
            raise CorruptBase64Error(len(src))
        if src[si] != _PAD:
            raise CorruptBase64Error(si - 1)
        si += 1
    while si < len(src) and src[si] in _NEWLINES:
        si += 1
    return si, (CorruptBase64Error(si) if si < len(src) else None)


def _bytes_of(quantum: list[int]) -> bytes:
    value = 0
    for i, sextet in enumerate(quantum):
        value |= sextet << (18 - 6 * i)
    return value.to_bytes(3, "big")[: len(quantum) - 1]


def image_bytes(image: str | bytes) -> bytes:
    """An image as sent (base64 text; undecodable text stands for itself) or as raw bytes."""
    if isinstance(image, bytes):
        return image
    try:
        return decode_image(image)
    except CorruptBase64Error:
        return image.encode()


def image_digest(image: str | bytes) -> str:
    """The first 8 hex digits of the SHA-256 of the image's bytes."""
    return hashlib.sha256(image_bytes(image)).hexdigest()[:8]
