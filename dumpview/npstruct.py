"""numpy views of construct declarations.

Owns one thing: turning a flat construct ``Struct`` of little-endian integers and padding (the
program header, the extension's record arrays) into a numpy structured dtype with the same field
names, offsets and size, so million-record arrays are decoded in bulk while the layout stays
declared once in formats/. Shared by the model (reading) and the simulator (writing).

``dtype_from_struct`` raises ``TypeError`` for a field it cannot express (strings, nested
structs); tests check every dtype against its declaration.
"""

from __future__ import annotations

import construct
import numpy as np


def _field_format(sub: construct.Construct) -> str | None:
    """numpy format of one integer field, or None for padding."""
    inner = sub.subcon if isinstance(sub, construct.Renamed) else sub
    if isinstance(inner, construct.FormatField):
        fmt = inner.fmtstr
        if fmt[0] != "<":
            raise TypeError(f"field {sub.name!r} is not little-endian ({fmt})")
        code = fmt[1:]
        table = {
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
        if code not in table:
            raise TypeError(f"field {sub.name!r} has unsupported format {fmt}")
        return "<" + table[code]
    if isinstance(inner, construct.Padded) or getattr(sub, "name", None) is None:
        return None
    raise TypeError(f"field {getattr(sub, 'name', sub)!r} is not a fixed-size integer")


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
