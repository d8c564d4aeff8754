"""How numbers read in every text output: one place, so `info`, `vtop`, `read`, `ranges`,
`search`, `check`, `diff` and the triage reports agree.

- counts: thousands separators ("1,648");
- addresses, entry values, p_flags: lowercase ``0x…`` (optionally zero-padded to a width that
  counts the ``0x``, as ``#018x`` does);
- sizes: binary units as Linux's ptdump writes them ("16K", "2M", "1.5G"; ``human_size``), and
  "~2.0G" where only an approximation reads well (``approx_size``: distances), "5.2G" or
  "5.2 GiB" for sizes read at a glance (``rounded_size``: inputs, a minimap's scale);
- byte counts in prose: "1,648 bytes", with the size beside it when it is a whole number of
  tenths of a KiB or more ("16,384 bytes (16K)").

JSON outputs write addresses with ``text.hex_or_none`` and counts as numbers. Nothing here
raises for an int.
"""

from __future__ import annotations

from dumpview.model.text import human_size


def count(n: int) -> str:
    """A count with thousands separators: "1,648"."""
    return f"{n:,}"


def address(value: int | None, width: int = 0) -> str:
    """``0x…`` lowercase, zero-padded to ``width`` characters (the ``0x`` included); "-" for
    None (an address the dump does not know)."""
    if value is None:
        return "-"
    return f"{value:#0{width}x}" if width else f"{value:#x}"


def size(size_bytes: int) -> str:
    """A size in ptdump's binary units: "512B", "16K", "2M", "1.5G" (``text.human_size``)."""
    return human_size(size_bytes)


def byte_count(size_bytes: int) -> str:
    """ "1,648 bytes"; with the size beside it when ``human_size`` writes it in K or more:
    "16,384 bytes (16K)"."""
    text = f"{size_bytes:,} byte{'' if size_bytes == 1 else 's'}"
    short = human_size(size_bytes)
    return text if short.endswith("B") else f"{text} ({short})"


def approx_size(size_bytes: int) -> str:
    """``size`` when it reads short and exact ("16K", "1.5G", "2064K"; anything below 1 KiB),
    else the largest binary unit that is at least 1, one decimal and a tilde: "~2.0G"."""
    exact = human_size(size_bytes)
    if size_bytes < 1024 or len(exact) <= 6:
        return exact
    units = "KMGTPE"
    power = min(len(units), (size_bytes.bit_length() - 1) // 10)
    return f"~{size_bytes / (1 << (10 * power)):.1f}{units[power - 1]}"


def rounded_size(size_bytes: int, iec: bool = False) -> str:
    """A size rounded to one decimal in K/M/G/T, no tilde ("5.2G"; with ``iec`` "5.2 GiB",
    "512 bytes"): for sizes read at a glance (inputs, spools, a minimap's scale), where
    ``approx_size`` marks an approximation of a distance."""
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if size_bytes >= 1 << shift:
            number = f"{size_bytes / (1 << shift):.1f}".removesuffix(".0")
            return f"{number} {unit}iB" if iec else number + unit
    return f"{size_bytes} bytes" if iec else f"{size_bytes}B"
