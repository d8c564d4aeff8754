"""Where a person points: a VA (in the dumped address space or in a numbered context) or a PA.

Owns the one syntax every command and the inspector's go-to prompt accept for an address:

- ``VA`` (``0x…`` hex, underscores allowed, or decimal): a VA of the dumped address space;
- ``CTX:VA`` (``CTX`` decimal, e.g. ``1:0x110000000``): a VA of context ``CTX`` (the TTB slot;
  the UAT's ASID);
- ``p:PA`` (or ``P:PA``): a physical address;

and its range form for ``--range``: ``START-END`` (also ``START+SIZE``, ``START..END``),
optionally prefixed with ``CTX:``.

``parse_location`` and ``parse_location_range`` raise ``ValueError`` with a one-line reason
naming the text; nothing else here raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from dumpview.model.text import parse_address, parse_va_range

PHYSICAL_PREFIX = "p:"
MAX_CONTEXT = (1 << 32) - 1  # the extension's context field is a u32


@dataclass(frozen=True)
class Location:
    """An address as typed: ``physical`` (a PA) or a VA, with the context it names (None: the
    context was not given, so the dumped address space, or a ``--context`` option)."""

    address: int
    physical: bool = False
    context: int | None = None

    def __str__(self) -> str:
        if self.physical:
            return f"{PHYSICAL_PREFIX}{self.address:#x}"
        if self.context is not None:
            return f"{self.context}:{self.address:#x}"
        return f"{self.address:#x}"

    @property
    def kind(self) -> str:
        """ "PA" or "VA", for messages."""
        return "PA" if self.physical else "VA"


def _split_context(text: str) -> tuple[int | None, str]:
    """(context, rest) of ``CTX:REST``; (None, text) without a prefix."""
    head, sep, rest = text.partition(":")
    if not sep:
        return None, text
    head = head.strip()
    if not head.isdigit():
        raise ValueError(
            f"{text!r}: {head!r} is not a context number (write CTX:VA, e.g. 1:0x110000000, "
            "or p:PA)"
        )
    context = int(head, 10)
    if context > MAX_CONTEXT:
        raise ValueError(f"{text!r}: context {context} is out of range 0..{MAX_CONTEXT}")
    return context, rest


def parse_location(text: str, physical_ok: bool = True, context_ok: bool = True) -> Location:
    """``VA``, ``CTX:VA`` or ``p:PA`` as a ``Location``. ``physical_ok``/``context_ok`` False
    refuse that form with a one-line ``ValueError`` (a command where it has no meaning)."""
    body = text.strip()
    if body[:2].lower() == PHYSICAL_PREFIX:
        if not physical_ok:
            raise ValueError(f"{text!r}: a physical address is not accepted here (give a VA)")
        return Location(parse_address(body[2:]), physical=True)
    context, rest = _split_context(body)
    if context is not None and not context_ok:
        raise ValueError(f"{text!r}: a context prefix is not accepted here")
    return Location(parse_address(rest), context=context)


def parse_location_range(text: str) -> tuple[int | None, int, int]:
    """``[CTX:]START-END`` (END exclusive; ``START+SIZE`` and ``START..END`` too) as
    (context or None, start, end). ``ValueError`` for a PA range, bad syntax or an empty
    range."""
    body = text.strip()
    if body[:2].lower() == PHYSICAL_PREFIX:
        raise ValueError(f"{text!r}: ranges are VA ranges (a PA range is not accepted)")
    context, rest = _split_context(body)
    start, end = parse_va_range(rest)
    return context, start, end
