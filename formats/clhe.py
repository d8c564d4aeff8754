"""The RTKit crash log ("CLHE") carried by the devcoredump's RTKIT note.

This module owns the crash log layout: declarative construct declarations for the 32-byte
header (``ClheHeader``), the 16-byte entry header (``ClheEntryHeader``) and every known payload
kind (``PAYLOADS``, each declaration parses *and* builds, and ``build(parse(x)) == x`` for
well-formed payloads: bytes after the decoded fields are kept in ``trailing``), a defensive
walker (``parse_crashlog``), a builder (``build_crashlog``) and small lookup helpers.

Tags. Every four-character tag is a little-endian u32 whose value spells the name from its
most significant byte (Linux's rtkit-crashlog.c compares it with ``FOURCC('C','L','H','E')`` =
0x434c4845; m1n1 reads it with its ``FourCC``), so on disk the characters are reversed: a log
starts with the bytes ``45 48 4c 43`` ("EHLC"), a ``Cstr`` entry with "rtsC", ``Crg8`` with
"8grC". That is the order written here (``TAG_ORDER_FIRMWARE``). dumpview 0.1.0 and earlier
wrote the reading order ("CLHE" on disk, ``TAG_ORDER_READING``); the walker still reads such
logs, with a warning that says so. Tags are always returned in reading order ("Cstr").

Walk. As Linux does, the walk stops at the header's total size: bytes past it are not part of
the log (warned about, never decoded). Text (panic message, version, task names) is UTF-8, as
m1n1 decodes it, with undecodable bytes replaced (never an error). The closing "CLHE" entry is
a copy of the 32-byte header (its tag, version, total size and flags: Apple's own decoder
compares the two; m1n1 reads it as an entry with 16 bytes of payload, Linux stops at its tag).

Register sets: ``Crg8`` (AArch64: x0..x30, sp, pc, psr, cpacr, fpsr, fpcr, FAR, ESR; Linux
and m1n1) and ``CrgA`` (AArch32: r0..r15, psr, 256 bytes of stack; only in some Linux trees,
e.g. HoolockLinux's rtkit-crashlog.c ``struct apple_rtkit_crashlog_armv7``, 0x160 bytes, and
m1n1's AKF endpoint parser, which calls the psr "spsr").

Failure modes: crash logs come from crashed machines, so ``parse_crashlog`` never raises and
always terminates. Data that does not start with a full CLHE header (in either tag order) is
returned as a "raw" log; broken entries (length below 16, length past the end of the log,
truncated entry header, missing closing entry, payloads that do not decode) end the walk or
leave the entry's ``fields`` at None, and are reported in ``CrashLog.warnings``.
``build_crashlog`` raises ``ValueError`` for bad entry kinds or payloads that do not build.
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
    "CLHE_MAGIC_READING_ORDER",
    "ENTRY_HEADER_SIZE",
    "PAYLOADS",
    "TAG_ORDER_FIRMWARE",
    "TAG_ORDER_READING",
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
    "CrgaPayload",
    "CrtkPayload",
    "CrtkTask",
    "CstrPayload",
    "CtimPayload",
    "CverPayload",
    "aarch32_registers",
    "build_crashlog",
    "ccdp_pairs",
    "panic_message",
    "parse_crashlog",
    "registers",
]

CLOSING_KIND = "CLHE"
CLHE_MAGIC = CLOSING_KIND.encode("latin-1")[::-1]  # b"EHLC": the tag as the firmware writes it
CLHE_MAGIC_READING_ORDER = CLOSING_KIND.encode("latin-1")  # b"CLHE": dumpview 0.1.0 and earlier
TAG_ORDER_FIRMWARE = "firmware"  # a little-endian u32 spelling the name from its top byte
TAG_ORDER_READING = "reading"  # the name's characters in reading order (older dumpview)
CLHE_HEADER_SIZE = 32
ENTRY_HEADER_SIZE = 16
CLOSING_PAYLOAD_SIZE = 16
TAG_ENCODING = "latin-1"  # a tag is four bytes: latin-1 maps them 1:1 both ways
TEXT_ENCODING = "utf-8"  # panic messages, versions, task names (m1n1 decodes UTF-8)
READING_ORDER_WARNING = (
    'crash log tags are in reading order ("CLHE" on disk), as dumpview 0.1.0 and earlier '
    'wrote them; the firmware writes each tag as a little-endian u32 ("EHLC" on disk)'
)
# Bounds on the work one crash log may cost, whatever it claims (a real log is a few KiB with
# dozens of entries): entries walked, and payload bytes decoded with construct (about 3 MB/s
# and 20 bytes of Python objects per byte). Past them the walk stops / payloads stay raw, with
# one warning each.
MAX_ENTRIES = 4096
MAX_DECODED_BYTES = 256 << 10

# --- layout declarations -------------------------------------------------------------------


def _decode_tag(obj: bytes, ctx: object) -> str:
    return obj[::-1].decode(TAG_ENCODING)


def _encode_tag(obj: str, ctx: object) -> bytes:
    return obj.encode(TAG_ENCODING)[::-1]


def _decode_text(obj: bytes, ctx: object) -> str:
    return obj.decode(TEXT_ENCODING, errors="replace")


def _encode_text(obj: str, ctx: object) -> bytes:
    return obj.encode(TEXT_ENCODING)


def _text(subcon: Construct) -> Construct:
    """Text over a bytes construct: UTF-8, undecodable bytes replaced (never an error)."""
    return ExprAdapter(subcon, decoder=_decode_text, encoder=_encode_text)


Kind = ExprAdapter(Bytes(4), decoder=_decode_tag, encoder=_encode_tag)
"""A 4-character tag: a little-endian u32 spelling the name from its most significant byte,
so "Cstr" is the bytes "rtsC" on disk. Parsed and built in reading order ("Cstr")."""

CText = _text(NullTerminated(GreedyBytes))
"""A NUL-terminated UTF-8 string; parsing fails when the NUL is missing."""

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

Crg8Payload = Struct(  # Linux's struct apple_rtkit_crashlog_regs (armv8), 0x350 bytes
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

CrgaPayload = Struct(  # HoolockLinux's struct apple_rtkit_crashlog_armv7, 0x160 bytes
    "unk0" / Int32ul,
    "unk1" / Int32ul,
    "r" / Array(16, Int32ul),  # r0..r15 (r13 sp, r14 lr, r15 pc)
    "psr" / Int32ul,  # CPSR/SPSR: mode in bits 4:0 (m1n1 calls it spsr)
    "unknown" / Int32ul,
    "stack" / Bytes(0x100),
    "unknown2" / Array(4, Int32ul),
    "trailing" / Trailing,
)
CRGA_SIZE = 0x160

CrtkTask = Struct(
    "id" / Int16ul,
    "flags" / Int16ul,
    "unk0" / Array(3, Int32ul),
    "ptr" / Int64ul,
    "unk1" / Array(4, Int32ul),
    "ptr_count" / Rebuild(Int32ul, len_(this.ptrs)),
    "name" / _text(FixedSized(28, NullStripped(GreedyBytes))),  # NUL padded
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
    "CrgA": CrgaPayload,
    "Crtk": CrtkPayload,
    "Ccdp": CcdpPayload,
}

# --- the defensive walker ------------------------------------------------------------------

_HEADER = struct.Struct("<4sIII16x")
_ENTRY_HEADER = struct.Struct("<4s4xII")


@dataclass(frozen=True)
class ClheEntry:
    """One crash log entry: ``fields`` is the decoded Container, None when raw or undecodable.
    ``kind`` is the tag in reading order ("Cstr") whatever order the log stores it in."""

    kind: str
    offset: int
    flags: int
    payload: bytes
    fields: Any | None


@dataclass(frozen=True)
class CrashLog:
    """A walked crash log; ``format`` is "clhe" or "raw" (no CLHE header: only ``raw`` is set).
    ``tag_order`` is ``TAG_ORDER_FIRMWARE`` ("EHLC" on disk) or ``TAG_ORDER_READING``
    ("CLHE" on disk, older dumpview); None for a raw log. ``raw`` is every byte of the note,
    bytes past ``total_size`` included (they are not walked)."""

    format: str
    raw: bytes
    version: int | None
    total_size: int | None
    flags: int | None
    entries: tuple[ClheEntry, ...]
    warnings: tuple[str, ...]
    closed: bool
    tag_order: str | None = None


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


def _tag_order(raw: bytes) -> str | None:
    if raw.startswith(CLHE_MAGIC):
        return TAG_ORDER_FIRMWARE
    if raw.startswith(CLHE_MAGIC_READING_ORDER):
        return TAG_ORDER_READING
    return None


def _walk_limit(raw: bytes, total_size: int, notes: list[str]) -> int:
    """Where the walk ends: the header's total size when it is sane (as Linux stops there),
    else the end of the data; warns about every disagreement."""
    if total_size > len(raw):
        notes.append(
            f"crash log header claims {total_size:#x} bytes but only {len(raw):#x} are present"
        )
        return len(raw)
    if total_size < CLHE_HEADER_SIZE:
        notes.append(
            f"crash log header's total size {total_size:#x} is smaller than the header "
            f"itself ({CLHE_HEADER_SIZE:#x}): ignored, walking all {len(raw):#x} bytes"
        )
        return len(raw)
    if total_size < len(raw):
        notes.append(
            f"{len(raw) - total_size:#x} bytes past the header's total size {total_size:#x} "
            "are not part of the crash log (not decoded)"
        )
    return total_size


def parse_crashlog(data: bytes) -> CrashLog:
    """Walk a crash log without ever raising; problems end up in ``warnings``."""
    raw = bytes(data)
    order = _tag_order(raw)
    if order is None or len(raw) < CLHE_HEADER_SIZE:
        warnings: tuple[str, ...] = ()
        if order is not None:
            warnings = (
                f"crash log header is truncated: {len(raw)} bytes, expected {CLHE_HEADER_SIZE}",
            )
        return CrashLog("raw", raw, None, None, None, (), warnings, False)

    _magic, version, total_size, flags = _HEADER.unpack_from(raw, 0)
    found: list[ClheEntry] = []
    notes: list[str] = [READING_ORDER_WARNING] if order == TAG_ORDER_READING else []
    limit = _walk_limit(raw, total_size, notes)
    step = -1 if order == TAG_ORDER_FIRMWARE else 1

    closed = False
    offset = CLHE_HEADER_SIZE
    decoded_bytes = 0
    undecoded: list[int] = []  # offsets of payloads left raw for the budget
    while True:
        remaining = limit - offset
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
        kind = kind_bytes[::step].decode(TAG_ENCODING)
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
                f"{where}: length {length:#x} runs past the end of the log ({limit:#x} bytes)"
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
    return CrashLog(
        "clhe", raw, version, total_size, flags, tuple(found), tuple(notes), closed, order
    )


# --- the builder ---------------------------------------------------------------------------


def _entry(kind: str, flags: int, payload: bytes, tag_order: str) -> bytes:
    header = ClheEntryHeader.build(
        {"kind": kind, "flags": flags, "length": ENTRY_HEADER_SIZE + len(payload)}
    )
    if tag_order == TAG_ORDER_READING:
        header = header[3::-1] + header[4:]
    return header + payload


def build_crashlog(
    entries: list[tuple[str, bytes | dict[str, Any]]],
    version: int = 1,
    flags: int = 0,
    tag_order: str = TAG_ORDER_FIRMWARE,
) -> bytes:
    """Build a closed crash log: header, entries, then the closing "CLHE" entry.

    Tags are written as the firmware writes them (``TAG_ORDER_FIRMWARE``: "EHLC", "rtsC"),
    and the closing entry is a copy of the header. ``TAG_ORDER_READING`` writes what dumpview
    0.1.0 and earlier wrote (tags in reading order, a closing entry of flags 0, length 0x20
    and 16 zero bytes), for testing readers of old dumps. Dict payloads are built with the
    ``PAYLOADS`` declaration of their kind; bytes are used as they are. Raises ValueError for
    a kind that is not four latin-1 characters or is the closing kind, a dict for a kind
    without a declaration, a payload that does not build, or an unknown ``tag_order``.
    """
    if tag_order not in (TAG_ORDER_FIRMWARE, TAG_ORDER_READING):
        raise ValueError(f"unknown tag order {tag_order!r}")
    body = bytearray()
    for kind, payload in entries:
        try:
            encoded_kind = kind.encode(TAG_ENCODING)
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
        body += _entry(kind, 0, bytes(payload), tag_order)
    total_size = CLHE_HEADER_SIZE + len(body) + ENTRY_HEADER_SIZE + CLOSING_PAYLOAD_SIZE
    header = ClheHeader.build({"version": version, "total_size": total_size, "flags": flags})
    if tag_order == TAG_ORDER_READING:
        header = CLHE_MAGIC_READING_ORDER + header[4:]
        closing = _entry(CLOSING_KIND, 0, bytes(CLOSING_PAYLOAD_SIZE), tag_order)
    else:
        closing = header  # the firmware closes the log with a copy of its header
    return header + bytes(body) + closing


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
    """The decoded ``Crg8`` (AArch64) register set of the first such entry, or None."""
    found = _decoded(log, "Crg8")
    return found[0] if found else None


def aarch32_registers(log: CrashLog) -> Container | None:
    """The decoded ``CrgA`` (AArch32) register set of the first such entry, or None."""
    found = _decoded(log, "CrgA")
    return found[0] if found else None
