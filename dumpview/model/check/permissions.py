"""Permissions for the write-exec check: which views of an entry grant both W and X, and the
few entry bits every view depends on packed into a small code (so each distinct combination is
decided once, not once per page)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from formats import entryformat

# Permission views a leaf is checked in for write-exec, per entry format id: (name, view).
PERMISSION_VIEWS: dict[int, tuple[tuple[str, Callable[[int], str]], ...]] = {
    fmt.id: fmt.check_views for fmt in entryformat.ENTRY_FORMATS.values()
}

_U64 = np.uint64


def grants_write_and_execute(perm: str) -> bool:
    """Whether a permission string ("RW", "RX", "RWX", "--", ...) grants both W and X."""
    return "W" in perm and "X" in perm


def write_exec_views(
    pte: int, views: tuple[tuple[str, Callable[[int], str]], ...] | None = None
) -> tuple[str, ...]:
    """``"name PERM"`` for every view of ``views`` (default: UAT's ``PERMISSION_VIEWS``) in
    which the leaf ``pte`` is writable and executable; empty when none is."""
    out = []
    for name, view in PERMISSION_VIEWS[entryformat.UAT.id] if views is None else views:
        perm = view(pte)
        if grants_write_and_execute(perm):
            out.append(f"{name} {perm}")
    return tuple(out)


# The entry bits every permission view of both formats depends on, as (entry bit, width, code
# bit): bit 55 (UAT GPU access), AP 7:6 (LPAE AP[2:1]), UXN 54, PXN 53.
_PERM_BITS = ((55, 1, 4), (6, 2, 2), (54, 1, 1), (53, 1, 0))


def perm_codes(pte: np.ndarray) -> np.ndarray:
    """(bit 55, AP, UXN, PXN) of each entry packed into 5 bits: everything the permission
    views depend on."""
    code = np.zeros(len(pte), dtype=np.uint8)
    for shift, width, pos in _PERM_BITS:
        value = (pte >> _U64(shift)) & _U64((1 << width) - 1)
        code |= (value << _U64(pos)).astype(np.uint8)
    return code


def pte_of_perm_code(code: int) -> int:
    """An entry with the permission bits of a ``perm_codes`` code (all else zero)."""
    bits = 0
    for shift, width, pos in _PERM_BITS:
        bits |= ((code >> pos) & ((1 << width) - 1)) << shift
    return bits
