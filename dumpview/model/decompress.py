"""The compressions dumpview reads, told by their magic bytes, and decompressing them in
bounded pieces: zstd (the standard library's ``compression.zstd`` from Python 3.14, its
backport before), xz, gzip and bzip2 (the standard library), no decoder of our own.

Owns the magic bytes (zstd frames, including a leading skippable frame; xz; gzip; bzip2; and,
to say what is not supported, lz4, 7z and zip) and one decompression loop for all four: the
compressed bytes are fed ``READ_SIZE`` at a time and at most ``OUT_SIZE`` bytes come out per
call (memory stays flat however well the data compresses); concatenated streams (gzip members,
zstd frames, xz streams) are read one after the other.

Failure modes: ``DumpFormatError`` naming the compressed bytes where the data is corrupt (or
where a stream that ends is followed by something that is no stream), or the compressed offset
where a truncated stream ends; ``refuse_unsupported`` raises it at offset 0 for lz4, 7z, zip.
"""

from __future__ import annotations

import bz2
import lzma
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

from dumpview.model.errors import DumpFormatError

if sys.version_info >= (3, 14):  # pragma: no cover - the standard library's own zstd
    from compression import zstd
else:
    from backports import zstd

ELF_MAGIC = b"\x7fELF"
READ_SIZE = 64 << 10  # compressed bytes fed per call: where a corruption is, to this size
OUT_SIZE = 1 << 20  # decompressed bytes asked for per call (memory stays flat)


class ByteSource(Protocol):
    """What the loop reads from: ``read(n)`` gives 1..n bytes, b"" at the end."""

    read_bytes: int

    def read(self, size: int) -> bytes: ...


class Compression(NamedTuple):
    """One compression: its name, how its first bytes look, a new decompressor."""

    name: str
    magic: Callable[[bytes], bool]
    decompressor: Callable[[], Any]  # a new stdlib-style decompressor (max_length, eof, ...)


def _zstd_magic(head: bytes) -> bool:
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return True
    # a skippable frame first (seekable zstd, pzstd): magic 0x184D2A50..0x184D2A5F
    return len(head) >= 4 and int.from_bytes(head[:4], "little") & ~0xF == 0x184D2A50


COMPRESSIONS: dict[str, Compression] = {
    c.name: c
    for c in (
        Compression("zstd", _zstd_magic, zstd.ZstdDecompressor),
        Compression("xz", lambda h: h[:6] == b"\xfd7zXZ\x00", lzma.LZMADecompressor),
        Compression("gzip", lambda h: h[:2] == b"\x1f\x8b", lambda: GzipDecompressor()),
        Compression(
            "bzip2", lambda h: h[:3] == b"BZh" and h[3:4] in b"123456789", bz2.BZ2Decompressor
        ),
    )
}
MAGIC_BYTES = 6  # enough to tell every compression above, and ELF


def compression_of(head: bytes) -> str | None:
    """The compression ``head`` (the first bytes) starts with, or None."""
    for compression in COMPRESSIONS.values():
        if compression.magic(head):
            return compression.name
    return None


def _unsupported_hint(head: bytes) -> str | None:
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return None


def refuse_unsupported(head: bytes) -> None:
    hint = _unsupported_hint(head)
    if hint is not None:
        raise DumpFormatError(
            0,
            f"{hint}-compressed data: dumpview decompresses zstd, xz, gzip and bzip2; "
            f"decompress it first",
        )


def decompressed(reader: ByteSource, compression: Compression, head: bytes) -> Iterator[bytes]:
    """The decompressed pieces (``OUT_SIZE`` at most) of ``head`` + the reader's bytes, fed
    ``READ_SIZE`` at a time; concatenated streams (gzip members, zstd frames, xz streams)
    one after the other: bytes after a complete stream must start another one. Raises
    DumpFormatError naming the compressed bytes where the data is corrupt, or the offset
    where a truncated stream ends."""
    decompressor = compression.decompressor()
    pending = head  # read, not yet given to the decompressor
    offset = 0  # compressed offset of ``pending``'s first byte
    last = (0, len(head))  # the compressed bytes given last: where an error is
    in_stream = False  # the current decompressor was given bytes and has not ended
    out_bytes = 0
    while True:
        data = b""
        if decompressor.needs_input:
            if not pending:
                pending = reader.read(READ_SIZE)
                if not pending:
                    break
            data, pending = pending, b""
            last = (offset, offset + len(data))
            offset += len(data)
            in_stream = True
        try:
            out = decompressor.decompress(data, max_length=OUT_SIZE)
        except (zstd.ZstdError, lzma.LZMAError, zlib.error, OSError, EOFError) as exc:
            raise DumpFormatError(
                last[0],
                f"{compression.name} data is corrupt in the compressed bytes "
                f"{last[0]:#x}..{last[1]:#x} ({exc}); {out_bytes:#x} bytes were "
                f"decompressed before it",
            ) from None
        if out:
            out_bytes += len(out)
            yield out
        if decompressor.eof:
            pending = decompressor.unused_data + pending
            offset -= len(decompressor.unused_data)
            decompressor = compression.decompressor()
            in_stream = False
    if in_stream:
        raise DumpFormatError(
            reader.read_bytes,
            f"{compression.name} stream is truncated: the input ends here in the middle of "
            f"a stream, after {out_bytes:#x} decompressed bytes",
        )


class GzipDecompressor:
    """zlib's gzip decoder with the interface of the others (``needs_input``, keyword
    ``max_length``): zlib hands back the input it did not use as ``unconsumed_tail``."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)
        self.needs_input = not self._zlib.unconsumed_tail and len(out) < max_length
        return out

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data


def check_elf(kind: str, first: bytes) -> None:
    if first != ELF_MAGIC:
        shown = first.hex(" ") if first else "nothing"
        raise DumpFormatError(
            0,
            f"the {kind}-compressed data is not an ELF file: it starts with {shown}, "
            f"expected 7f 45 4c 46",
        )
