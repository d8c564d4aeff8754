"""The AGX info note of the GPU devcoredump (note name "AGX", note type 1).

This module owns the 56-byte descriptor the driver writes into the "AGX" note: one declarative
construct ``Struct`` (``AgxInfo``) that both parses and builds it, the name tables for the GPU
generation / variant / revision (unknown values stay plain integers: the Struct holds numbers,
the ``*_name`` helpers return ``None`` for values they do not know) and the firmware version
formatting.

Failure modes: ``parse_agx_info`` raises ``ValueError`` when the descriptor is not exactly
56 bytes; ``build_agx_info`` raises ``ValueError`` for missing fields, unknown names or values
that do not fit their field. The name helpers and ``firmware_version_string`` never raise for
integer input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from construct import Array, ConstructError, Container, Int32ul, Int64ul, Padding, Struct

__all__ = [
    "AGX_INFO_SIZE",
    "AGX_NOTE_NAME",
    "AGX_NOTE_TYPE",
    "GPU_GEN_NAMES",
    "GPU_REV_NAMES",
    "GPU_VARIANT_NAMES",
    "AgxInfo",
    "build_agx_info",
    "firmware_version_string",
    "gpu_gen_name",
    "gpu_rev_name",
    "gpu_variant_name",
    "parse_agx_info",
]

AGX_NOTE_NAME = "AGX"
AGX_NOTE_TYPE = 1
AGX_INFO_SIZE = 56
FIRMWARE_VERSION_WORDS = 6

AgxInfo = Struct(
    "initdata_address" / Int64ul,  # GPU VA of the firmware's InitData
    "chip_id" / Int32ul,
    "gpu_gen" / Int32ul,  # 13, 14; forks add 15..17
    "gpu_variant" / Int32ul,  # ASCII letter code: 'P', 'G', 'S', 'C', 'D' (forks: 'A')
    "gpu_rev" / Int32ul,  # A0=0x00, A1=0x01, B0=0x10, B1=0x11, C0=0x20, C1=0x21
    "total_active_cores" / Int32ul,
    "firmware_version" / Array(FIRMWARE_VERSION_WORDS, Int32ul),  # zero padded
    Padding(4),
)
assert AgxInfo.sizeof() == AGX_INFO_SIZE, "AgxInfo must describe exactly 56 bytes"

GPU_GEN_NAMES: Mapping[int, str] = {gen: f"G{gen}" for gen in range(13, 18)}
GPU_VARIANT_NAMES: Mapping[int, str] = {ord(letter): letter for letter in "PGSCDA"}
GPU_REV_NAMES: Mapping[int, str] = {
    0x00: "A0",
    0x01: "A1",
    0x10: "B0",
    0x11: "B1",
    0x20: "C0",
    0x21: "C1",
}

_NAMED_FIELDS: Mapping[str, Mapping[int, str]] = {
    "gpu_gen": GPU_GEN_NAMES,
    "gpu_variant": GPU_VARIANT_NAMES,
    "gpu_rev": GPU_REV_NAMES,
}


def gpu_gen_name(value: int) -> str | None:
    """Name of a GPU generation ("G13" .. "G17"), or None when the value is unknown."""
    return GPU_GEN_NAMES.get(value)


def gpu_variant_name(value: int) -> str | None:
    """Letter of a GPU variant ("P", "G", "S", "C", "D", "A"), or None when unknown."""
    return GPU_VARIANT_NAMES.get(value)


def gpu_rev_name(value: int) -> str | None:
    """Name of a GPU revision ("A0" .. "C1"), or None when the value is unknown."""
    return GPU_REV_NAMES.get(value)


def firmware_version_string(words: Iterable[int]) -> str:
    """Dotted firmware version: at least three components, zeros past the third dropped.

    [13, 5, 2, 0, 0, 0] -> "13.5.2"; [13, 5, 2, 1, 0, 0] -> "13.5.2.1".
    """
    parts = list(words)
    while len(parts) > 3 and parts[-1] == 0:
        parts.pop()
    parts.extend([0] * (3 - len(parts)))
    return ".".join(str(part) for part in parts)


def parse_agx_info(data: bytes) -> Container:
    """Parse an AGX note descriptor; ValueError unless it is exactly 56 bytes."""
    if len(data) != AGX_INFO_SIZE:
        raise ValueError(f"AGX note descriptor is {len(data)} bytes, expected {AGX_INFO_SIZE}")
    return AgxInfo.parse(bytes(data))


def _resolve_name(field: str, value: object) -> object:
    """Turn a name ("G14", "C", "B1") into its number; numbers pass through unchanged."""
    if not isinstance(value, str):
        return value
    for number, name in _NAMED_FIELDS[field].items():
        if name == value:
            return number
    raise ValueError(f"unknown {field} name {value!r}")


def build_agx_info(**fields: Any) -> bytes:
    """Build the 56-byte AGX note descriptor.

    Takes the ``AgxInfo`` field names. ``gpu_gen`` / ``gpu_variant`` / ``gpu_rev`` accept a
    number or a known name; ``firmware_version`` may be shorter than six words (zero padded).
    Raises ValueError when a field is missing, a name is unknown or a value does not fit.
    """
    values = dict(fields)
    for field in _NAMED_FIELDS:
        if field in values:
            values[field] = _resolve_name(field, values[field])
    if "firmware_version" in values:
        try:
            version = list(values["firmware_version"])
        except TypeError as exc:
            raise ValueError(f"cannot build AGX info: firmware_version: {exc}") from exc
        if len(version) > FIRMWARE_VERSION_WORDS:
            raise ValueError(
                f"firmware_version has {len(version)} words, at most {FIRMWARE_VERSION_WORDS}"
            )
        values["firmware_version"] = version + [0] * (FIRMWARE_VERSION_WORDS - len(version))
    try:
        return AgxInfo.build(values)
    except KeyError as exc:
        raise ValueError(f"cannot build AGX info: missing field {exc}") from exc
    except (ConstructError, TypeError) as exc:
        raise ValueError(f"cannot build AGX info: {exc}") from exc
