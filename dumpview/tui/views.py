"""What the other tabs show: the memory map's minimap and region rows, the crash log's sections
and the GPU info lines, built from the model's objects as display rows."""

from __future__ import annotations

from rich.text import Text

from dumpview.model import Dump
from dumpview.model.check import SEVERE_KINDS
from dumpview.model.kinds import KIND_CODES
from dumpview.model.memmap import DEFAULT_GLYPHS as MINIMAP_GLYPHS
from dumpview.tui.widgets import LinesSource, Row

MINIMAP_STYLES = {
    "empty": "grey37",
    "gpu": "green",
    "unprivileged": "green",
    "firmware": "yellow",
    "privileged": "yellow",
    "device": "magenta",
    "not-dumped": "red",
}


def anomaly_class(kind: str) -> str:
    """A row list's component class for an anomaly kind, by the command line's rule
    (``check.SEVERE_KINDS`` red, the others yellow)."""
    return "kind--invalid" if kind in SEVERE_KINDS else "rowlist--warn"


def append_bar(text: Text, mm) -> None:
    for code in mm.codes.tolist():
        name = KIND_CODES[code]
        text.append(MINIMAP_GLYPHS[name], style=MINIMAP_STYLES[name])


def region_class(row) -> str:
    if row.kind == "mmio":
        return "kind--device"
    if row.no_map:
        return "kind--not-dumped"
    if row.kind == "reserved":
        return "kind--firmware"
    return "kind--gpu"


def sections_source(sections) -> LinesSource:
    rows: list[Row] = []
    for section in sections:
        rows.append([(section.title, "rowlist--title")])
        for line in section.lines:
            style = "kind--invalid" if "DISAGREE" in line else None
            rows.append([(f"  {line}", style)])
        rows.append([("", None)])
    return LinesSource(rows, max((len(p) for r in rows for p, _ in r), default=80) + 2)


def info_lines(info: dict, dump: Dump) -> list[str]:
    lines = ["GPU (AGX note)"]
    gpu = info.get("gpu")
    if gpu is None:
        lines.append("  the dump has no AGX note")
    else:
        lines += [f"  {key:<18} {value}" for key, value in gpu.items()]
        raw = dump.agx_info
        for key, value in raw.items():
            if key.startswith("_") or key in gpu:
                continue
            lines.append(f"  {key:<18} {value if not isinstance(value, int) else f'{value:#x}'}")
    pages = info["pages"]
    geometry = info["geometry"]
    lines += [
        "",
        "dump",
        f"  file               {dump.path}",
        *([f"  source             {dump.source.describe()}"] if dump.source.spooled else []),
        f"  size               {info['size_bytes']:,} bytes",
        f"  layout             {info['layout']}"
        + (" + dumpview extension" if info["extension"] else ""),
        f"  entry format       {info['entry_format']}",
        f"  geometry           {geometry['page_size'] // 1024} KiB pages, "
        f"{'/'.join(geometry['levels'])}, IAS {geometry['ias']}, OAS {geometry['oas']}, "
        f"from {geometry['va_base']}",
        f"  segments           {info['segments']:,} PT_LOAD",
        f"  tables             {info['tables']:,} carried",
        f"  pages              {pages['total']:,} mapped, {pages['dumped']:,} dumped, "
        f"{pages['not_dumped']:,} not dumped",
    ]
    if "scenario" in info:
        s = info["scenario"]
        knobs = ", ".join(f"{k}={v}" for k, v in s["knobs"].items())
        lines.append(
            f"  generated          scenario {s['name']}, seed {s['seed']}"
            + (f" ({knobs})" if knobs else "")
        )
    for warning in info["warnings"]:
        lines.append(f"  warning            {warning}")
    return lines
