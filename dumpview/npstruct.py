"""numpy views of construct declarations.

Owns one thing: turning a flat construct ``Struct`` of little-endian integers and padding (the
program header, the extension's record arrays) into a numpy structured dtype with the same field
names, offsets and size, so million-record arrays are decoded in bulk while the layout stays
declared once in formats/. Shared by the model (reading) and the simulator (writing).

``dtype_from_struct`` raises ``TypeError`` for a field it cannot express (strings, nested
structs, ``Padded`` values, unnamed fields other than ``Padding``, wider than one byte and not
little-endian); tests check every dtype against its declaration.
"""

from __future__ import annotations

import construct
import numpy as np

_INTEGER_CODES = {
    "B": "u1",
    "H": "u2",
    "I": "u4",
    "L": "u4",
    "Q": "u8",
    "b": "i1",
    "h": "i2",
    "i": "i4",
    "l": "i4",
    "q": "i8",
}


def _is_padding(sub: construct.Construct) -> bool:
    """Whether ``sub`` is ``construct.Padding`` (named or not) with zero bytes: what numpy
    writes for the gaps between fields, so both builders give the same bytes."""
    inner = sub.subcon if isinstance(sub, construct.Renamed) else sub
    return (
        isinstance(inner, construct.Padded)
        and inner.subcon is construct.Pass
        and inner.pattern == b"\x00"
    )


def _field_format(sub: construct.Construct) -> str | None:
    """numpy format of one integer field, or None for padding.

    Only ``Padding`` is skipped: any other field without a name (construct drops its value
    when parsing and cannot build it) or of another kind (a ``Padded`` value, a nested
    struct, a string) raises ``TypeError``.
    """
    if _is_padding(sub):
        return None
    name = getattr(sub, "name", None)
    if name is None:
        raise TypeError(f"unnamed field {sub!r} is neither padding nor expressible")
    inner = sub.subcon if isinstance(sub, construct.Renamed) else sub
    if isinstance(inner, construct.FormatField):
        fmt = inner.fmtstr
        code = fmt[1:]
        if code not in _INTEGER_CODES:
            raise TypeError(f"field {name!r} has unsupported format {fmt}")
        # One byte has no byte order (construct.Byte is ">B"); wider fields must be "<".
        if fmt[0] != "<" and inner.sizeof() != 1:
            raise TypeError(f"field {name!r} is not little-endian ({fmt})")
        return "<" + _INTEGER_CODES[code]
    raise TypeError(f"field {name!r} is not a fixed-size integer")


def dtype_from_struct(struct: construct.Struct) -> np.dtype:
    """The numpy structured dtype equivalent to a flat construct Struct of integers."""
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    offset = 0
    for sub in struct.subcons:
        fmt = _field_format(sub)
        if fmt is not None:
            names.append(sub.name)
            formats.append(fmt)
            offsets.append(offset)
        offset += sub.sizeof()
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})
