"""Colour for the command line's text outputs, through rich: on a terminal only.

Owns the roles a text output colours (headings, errors and warnings, "not dumped", the leaf
kinds the inspector colours the same way, anomaly kinds) and deciding whether to colour at all.
rich decides from the stream and the environment: a stream that is not a terminal (a pipe, a
file) gets no colour, nor does ``TERM=dumb``; ``NO_COLOR`` (any non-empty value) turns colour
off everywhere, ``FORCE_COLOR`` (non-empty) turns it on without a terminal (``NO_COLOR``
wins). Styles are rendered to escape codes once per role (rich picks 16, 256 or true colour
from ``TERM``/``COLORTERM``), so colouring a million-row table costs a string concatenation
per coloured field.

Nothing here raises; an unknown role paints nothing.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

ROLES: dict[str, str] = {
    "heading": "bold",
    "label": "cyan",
    "dim": "dim",
    "error": "bold red",
    "warning": "yellow",
    "ok": "green",
    "not-dumped": "red",
    "marker": "bold red",  # a run `read` could not show
    # leaf kinds, as the inspector's minimap colours them
    "kind:gpu": "green",
    "kind:unprivileged": "green",
    "kind:firmware": "yellow",
    "kind:privileged": "yellow",
    "kind:device": "magenta",
    "kind:not-dumped": "red",
    "kind:invalid": "bold red",
    # anomaly kinds: what breaks translation or the data's meaning, and what is a smell
    "anomaly": "yellow",
    "anomaly:severe": "bold red",
}


def _may_colour(stream: TextIO) -> bool:
    """False when rich would surely say no colour: ``NO_COLOR`` set, or a stream that is not
    a terminal without ``FORCE_COLOR`` (rich's own rules for both)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    if os.environ.get("FORCE_COLOR") is not None:
        return os.environ["FORCE_COLOR"] != ""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Palette:
    """Paints text for one stream: ``paint(role, text)`` wraps it in the role's escape codes,
    or returns it unchanged when the stream gets no colour (``enabled`` False)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        stream = sys.stdout if stream is None else stream
        self._codes: dict[str, tuple[str, str]] = {}
        self.enabled = False
        self.color_system: str | None = None
        if not _may_colour(stream):
            return  # the usual pipe: decided without importing rich (~35 ms)
        from rich.console import Console

        console = Console(file=stream)
        self.color_system = console.color_system  # "standard", "256", "truecolor" or None
        self.enabled = bool(console.is_terminal and not console.no_color and self.color_system)
        if self.enabled:
            from rich.color import ColorSystem
            from rich.style import Style

            systems = {
                "standard": ColorSystem.STANDARD,
                "256": ColorSystem.EIGHT_BIT,
                "truecolor": ColorSystem.TRUECOLOR,
                "windows": ColorSystem.WINDOWS,
            }
            system = systems.get(self.color_system, ColorSystem.STANDARD)
            for role, spec in ROLES.items():
                rendered = Style.parse(spec).render("\0", color_system=system)
                before, _, after = rendered.partition("\0")
                self._codes[role] = (before, after)

    def paint(self, role: str, text: str) -> str:
        codes = self._codes.get(role)
        if codes is None or not text:
            return text
        return f"{codes[0]}{text}{codes[1]}"

    def kind(self, kind: str, text: str | None = None) -> str:
        """``text`` (default: the kind itself) in a leaf kind's colour."""
        return self.paint(f"kind:{kind}", kind if text is None else text)

    def anomaly(self, kind: str, text: str | None = None) -> str:
        """``text`` (default: the kind) in an anomaly kind's colour: the severe kinds of
        ``model.check.SEVERITY`` in the severe one."""
        from dumpview.model.check import SEVERE_KINDS

        role = "anomaly:severe" if kind in SEVERE_KINDS else "anomaly"
        return self.paint(role, kind if text is None else text)

    def state(self, text: str) -> str:
        """A data state ("dumped", "not dumped: …", "context not dumped"): the undumped ones
        in the "not dumped" colour."""
        return text if text == "dumped" else self.paint("not-dumped", text)


def palette(err: bool = False) -> Palette:
    """The palette for stdout (or stderr with ``err``), as the streams are now (a test runner
    may have replaced them)."""
    return Palette(sys.stderr if err else sys.stdout)
