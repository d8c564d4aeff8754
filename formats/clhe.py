"""The RTKit crash log ("CLHE") carried by the devcoredump's RTKIT note.

This module owns the crash log layout: declarative construct declarations for the 32-byte
header (``ClheHeader``), the 16-byte entry header (``ClheEntryHeader``) and every known payload
kind (``PAYLOADS``, each declaration parses *and* builds, and ``build(parse(x)) == x`` for
well-formed payloads: bytes after the decoded fields are kept in ``trailing``), a defensive
walker (``parse_crashlog``), a builder (``build_crashlog``) and small lookup helpers.

Failure modes: crash logs come from crashed machines, so ``parse_crashlog`` never raises and
always terminates. Data that does not start with a full "CLHE" header is returned as a "raw"
log; broken entries (length below 16, length past the end of the data, truncated entry
header, missing closing entry, payloads that do not decode) end the walk or leave the entry's
``fields`` at None, and are reported in ``CrashLog.warnings``. ``build_crashlog`` raises
``ValueError`` for bad entry kinds or payloads that do not build.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from construct import (
    Array,
    Bytes,
    Const,
    Construct,
    Container,
    Default,
    ExprAdapter,
    FixedSized,
    GreedyBytes,
    GreedyRange,
    Int16ul,
    Int32ul,
    Int64ul,
    NullStripped,
    NullTerminated,
    Padding,
    Rebuild,
    Struct,
    len_,
    this,
)

__all__ = [
    "CLHE_HEADER_SIZE",
    "CLHE_MAGIC",
    "ENTRY_HEADER_SIZE",
    "PAYLOADS",
    "CascPayload",
    "CcdpPair",
    "CcdpPayload",
    "CcstPayload",
    "ClheEntry",
    "ClheEntryHeader",
    "ClheHeader",
    "CmbxPayload",
    "CmbxRecord",
    "CrashLog",
    "Crg8Payload",
    "CrtkPayload",
    "CrtkTask",
    "CstrPayload",
    "CtimPayload",
    "CverPayload",
    "build_crashlog",
    "ccdp_pairs",
    "panic_message",
    "parse_crashlog",
    "registers",
]

CLHE_MAGIC = b"CLHE"
CLOSING_KIND = "CLHE"
CLHE_HEADER_SIZE = 32
ENTRY_HEADER_SIZE = 16
CLOSING_PAYLOAD_SIZE = 16
TEXT_ENCODING = "latin-1"  # never fails to decode and maps bytes 1:1 back
# Bounds on the work one crash log may cost, whatever it claims (a real log is a few KiB with
# dozens of entries): entries walked, and payload bytes decoded with construct (about 3 MB/s
# and 20 bytes of Python objects per byte). Past them the walk stops / payloads stay raw, with
# one warning each.
MAX_ENTRIES = 4096
MAX_DECODED_BYTES = 256 << 10

# --- layout declarations -------------------------------------------------------------------


def _decode_text(obj: bytes, ctx: object) -> str:
    return obj.decode(TEXT_ENCODING)


def _encode_text(obj: str, ctx: object) -> bytes:
    return obj.encode(TEXT_ENCODING)


def _latin1(subcon: Construct) -> Construct:
    """Text over a bytes construct, as latin-1 (construct's own strings refuse latin-1)."""
    return ExprAdapter(subcon, decoder=_decode_text, encoder=_encode_text)


Kind = _latin1(Bytes(4))
"""A 4-character type tag (always exactly four characters)."""

CText = _latin1(NullTerminated(GreedyBytes))
"""A NUL-terminated string; parsing fails when the NUL is missing."""

Trailing = Default(GreedyBytes, b"")
"""Bytes after a payload's decoded fields (normally none); kept so builds are byte exact."""

ClheHeader = Struct(
    "magic" / Const(CLHE_MAGIC),
    "version" / Int32ul,
    "total_size" / Int32ul,
    "flags" / Int32ul,
    Padding(16),
)
assert ClheHeader.sizeof() == CLHE_HEADER_SIZE

ClheEntryHeader = Struct(
    "kind" / Kind,
    Padding(4),
    "flags" / Int32ul,
    "length" / Int32ul,  # counts this 16-byte header
)
assert ClheEntryHeader.sizeof() == ENTRY_HEADER_SIZE

CverPayload = Struct(
    "uuid" / Bytes(16),
    "version" / CText,
    "trailing" / Trailing,
)

CstrPayload = Struct(
    "id" / Int32ul,
    "message" / CText,  # the panic message
    "trailing" / Trailing,
)

CtimPayload = Struct(
    "time" / Int64ul,
    "trailing" / Trailing,
)

CmbxRecord = Struct(
    "endpoint" / Int64ul,
    "message" / Int64ul,
    "timestamp" / Int32ul,
    Padding(4),
)
assert CmbxRecord.sizeof() == 24

CmbxPayload = Struct(
    "header" / Array(4, Int32ul),
    "type" / Int32ul,
    "unknown" / Int32ul,
    "index" / Int32ul,
    "records" / GreedyRange(CmbxRecord),
    "trailing" / Trailing,
)

CcstPayload = Struct(
    "task" / Int32ul,
    "unknown" / Int32ul,
    "return_addresses" / GreedyRange(Int64ul),
    "trailing" / Trailing,
)

CascPayload = Struct(
    "l2c_err_sts" / Int64ul,
    "l2c_err_adr" / Int64ul,
    "l2c_err_inf" / Int64ul,
    "lsu_err_sts" / Int64ul,
    "fed_err_sts" / Int64ul,
    "mmu_err_sts" / Int64ul,
    "trailing" / Trailing,
)

Crg8Payload = Struct(
    "unk0" / Int32ul,
    "unk1" / Int32ul,
    "x" / Array(31, Int64ul),
    "sp" / Int64ul,
    "pc" / Int64ul,
    "psr" / Int64ul,
    "cpacr" / Int64ul,
    "fpsr" / Int64ul,
    "fpcr" / Int64ul,
    "unknown" / Array(64, Int64ul),
    "far" / Int64ul,
    "unknown2" / Int64ul,
    "esr" / Int64ul,
    "unknown3" / Int64ul,
    "trailing" / Trailing,
)

CrtkTask = Struct(
    "id" / Int16ul,
    "flags" / Int16ul,
    "unk0" / Array(3, Int32ul),
    "ptr" / Int64ul,
    "unk1" / Array(4, Int32ul),
    "ptr_count" / Rebuild(Int32ul, len_(this.ptrs)),
    "name" / _latin1(FixedSized(28, NullStripped(GreedyBytes))),  # NUL padded
    "ptrs" / Array(this.ptr_count, Int64ul),
)

CrtkPayload = Struct(
    "tasks" / GreedyRange(CrtkTask),
    "trailing" / Trailing,
)

CcdpPair = Struct(
    "va" / Int64ul,
    "pa" / Int64ul,
    "unknown" / Int32ul,
)
assert CcdpPair.sizeof() == 20

CcdpPayload = Struct(
    "pairs" / GreedyRange(CcdpPair),
    "trailing" / Trailing,
)

PAYLOADS: dict[str, Construct] = {
    "Cver": CverPayload,
    "Cstr": CstrPayload,
    "Ctim": CtimPayload,
    "Cmbx": CmbxPayload,
    "Ccst": CcstPayload,
    "CasC": CascPayload,
    "Crg8": Crg8Payload,
    "Crtk": CrtkPayload,
    "Ccdp": CcdpPayload,
}

# --- the defensive walker ------------------------------------------------------------------

_HEADER = struct.Struct("<4sIII16x")
_ENTRY_HEADER = struct.Struct("<4s4xII")


@dataclass(frozen=True)
class ClheEntry:
    """One crash log entry: ``fields`` is the decoded Container, None when raw or undecodable."""

    kind: str
    offset: int
    flags: int
    payload: bytes
    fields: Any | None


@dataclass(frozen=True)
class CrashLog:
    """A walked crash log; ``format`` is "clhe" or "raw" (no CLHE header: only ``raw`` is set)."""

    format: str
    raw: bytes
    version: int | None
    total_size: int | None
    flags: int | None
    entries: tuple[ClheEntry, ...]
    warnings: tuple[str, ...]
    closed: bool


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _decode_payload(kind: str, payload: bytes) -> tuple[Any | None, str | None]:
    """Decode a known payload; returns (fields, None) or (None, reason)."""
    declaration = PAYLOADS.get(kind)
    if declaration is None:
        return None, None
    try:
        return declaration.parse(payload), None
    except Exception as exc:  # hostile input: any decoder failure is a warning, never a raise
        return None, f"{type(exc).__name__}: {_first_line(exc)}"


def parse_crashlog(data: bytes) -> CrashLog:
    """Walk a crash log without ever raising; problems end up in ``warnings``."""
    raw = bytes(data)
    if not raw.startswith(CLHE_MAGIC) or len(raw) < CLHE_HEADER_SIZE:
        warnings: tuple[str, ...] = ()
        if raw.startswith(CLHE_MAGIC):
            warnings = (
                f"crash log header is truncated: {len(raw)} bytes, expected {CLHE_HEADER_SIZE}",
            )
        return CrashLog("raw", raw, None, None, None, (), warnings, False)

    _magic, version, total_size, flags = _HEADER.unpack_from(raw, 0)
    found: list[ClheEntry] = []
    notes: list[str] = []
    if total_size > len(raw):
        notes.append(
            f"crash log header claims {total_size:#x} bytes but only {len(raw):#x} are present"
        )

    closed = False
    offset = CLHE_HEADER_SIZE
    decoded_bytes = 0
    undecoded: list[int] = []  # offsets of payloads left raw for the budget
    while True:
        remaining = len(raw) - offset
        if remaining == 0:
            notes.append("crash log has no closing CLHE entry")
            break
        if remaining < ENTRY_HEADER_SIZE:
            notes.append(
                f"crash log entry header at offset {offset:#x} is truncated: "
                f"{remaining:#x} bytes left, expected {ENTRY_HEADER_SIZE:#x}"
            )
            notes.append("crash log has no closing CLHE entry")
            break
        kind_bytes, entry_flags, length = _ENTRY_HEADER.unpack_from(raw, offset)
        kind = kind_bytes.decode(TEXT_ENCODING)
        if kind == CLOSING_KIND:
            closed = True
            break
        if len(found) >= MAX_ENTRIES:
            notes.append(
                f"crash log has more than {MAX_ENTRIES:,} entries: the rest, from offset "
                f"{offset:#x}, are not read"
            )
            break
        where = f"crash log entry {kind!r} at offset {offset:#x}"
        if length < ENTRY_HEADER_SIZE:
            notes.append(
                f"{where}: length {length:#x} is shorter than the "
                f"{ENTRY_HEADER_SIZE}-byte entry header"
            )
            break
        if length > remaining:
            notes.append(
                f"{where}: length {length:#x} runs past the end of the log ({len(raw):#x} bytes)"
            )
            break
        payload = raw[offset + ENTRY_HEADER_SIZE : offset + length]
        if kind in PAYLOADS and decoded_bytes + len(payload) > MAX_DECODED_BYTES:
            fields, problem = None, None
            undecoded.append(offset)
        else:
            fields, problem = _decode_payload(kind, payload)
            decoded_bytes += len(payload) if kind in PAYLOADS else 0
        if problem is not None:
            notes.append(f"{where}: payload does not decode ({problem}); kept raw")
        found.append(ClheEntry(kind, offset, entry_flags, payload, fields))
        offset += length  # length >= 16, so the walk always moves forward

    if undecoded:
        more = f" and {len(undecoded) - 1:,} more" if len(undecoded) > 1 else ""
        notes.append(
            f"crash log entry at offset {undecoded[0]:#x}{more} kept raw: dumpview decodes at "
            f"most {MAX_DECODED_BYTES:,} bytes of payloads per crash log"
        )
    return CrashLog("clhe", raw, version, total_size, flags, tuple(found), tuple(notes), closed)


# --- the builder ---------------------------------------------------------------------------


def _entry(kind: str, flags: int, payload: bytes) -> bytes:
    header = ClheEntryHeader.build(
        {"kind": kind, "flags": flags, "length": ENTRY_HEADER_SIZE + len(payload)}
    )
    return header + payload


def build_crashlog(
    entries: list[tuple[str, bytes | dict[str, Any]]], version: int = 1, flags: int = 0
) -> bytes:
    """Build a closed crash log: header, entries, then the closing "CLHE" entry.

    Dict payloads are built with the ``PAYLOADS`` declaration of their kind; bytes are used
    as they are. Raises ValueError for a kind that is not four latin-1 characters or is the
    closing kind, a dict for a kind without a declaration, or a payload that does not build.
    """
    body = bytearray()
    for kind, payload in entries:
        try:
            encoded_kind = kind.encode(TEXT_ENCODING)
        except UnicodeEncodeError as exc:
            raise ValueError(f"crash log entry kind {kind!r} is not latin-1") from exc
        if len(encoded_kind) != 4:
            raise ValueError(f"crash log entry kind {kind!r} must be 4 characters")
        if kind == CLOSING_KIND:  # a reader stops there: every later entry would be lost
            raise ValueError(f"{CLOSING_KIND!r} closes the log; it cannot be an entry")
        if isinstance(payload, dict):
            declaration = PAYLOADS.get(kind)
            if declaration is None:
                raise ValueError(f"no payload declaration for crash log entry kind {kind!r}")
            try:
                payload = declaration.build(payload)
            except Exception as exc:
                raise ValueError(f"cannot build {kind!r} payload: {_first_line(exc)}") from exc
        body += _entry(kind, 0, bytes(payload))
    body += _entry(CLOSING_KIND, 0, bytes(CLOSING_PAYLOAD_SIZE))
    total_size = CLHE_HEADER_SIZE + len(body)
    header = ClheHeader.build({"version": version, "total_size": total_size, "flags": flags})
    return header + bytes(body)


# --- helpers -------------------------------------------------------------------------------


def _decoded(log: CrashLog, kind: str) -> list[Any]:
    return [
        entry.fields for entry in log.entries if entry.kind == kind and entry.fields is not None
    ]


def ccdp_pairs(log: CrashLog) -> list[tuple[int, int, int]]:
    """All (va, pa, unknown) pairs of the log's decoded ``Ccdp`` entries, in order."""
    return [
        (pair.va, pair.pa, pair.unknown)
        for fields in _decoded(log, "Ccdp")
        for pair in fields.pairs
    ]


def panic_message(log: CrashLog) -> str | None:
    """The message of the first decoded ``Cstr`` entry, or None."""
    found = _decoded(log, "Cstr")
    return found[0].message if found else None


def registers(log: CrashLog) -> Container | None:
    """The decoded ``Crg8`` register set of the first such entry, or None."""
    found = _decoded(log, "Crg8")
    return found[0] if found else None
