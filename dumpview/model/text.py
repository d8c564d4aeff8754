"""Plain-text renderings shared by the CLI and the TUI: the info document, hex dumps, walks.

Owns how a dump's facts read as text (no Textual, no click): the ``info --json`` document whose
keys are a stable interface for scripts, hex rows (VA column, two lowercase hex digits per byte,
ASCII column; also u16/u32/u64 little-endian units), and one line per level of a walk. Nothing
here raises for a value it is given; ``info_dict`` raises ``DumpError`` only through the model.
"""

from __future__ import annotations

import json

from formats import agx

SIZE_UNITS = "KMGT"


def info_dict(dump) -> dict:
    """The ``info --json`` document (keys are a stable interface for scripts). ``warnings``
    holds every warning about the file (``Dump.all_warnings``), ``contexts`` every address
    space (``Dump.contexts``)."""
    total, dumped = dump.page_totals
    gpu = None
    info = dump.agx_info
    if info is not None:
        gpu = {
            "chip_id": f"{info.chip_id:#x}",
            "generation": agx.gpu_gen_name(info.gpu_gen) or info.gpu_gen,
            "variant": agx.gpu_variant_name(info.gpu_variant) or info.gpu_variant,
            "revision": agx.gpu_rev_name(info.gpu_rev) or info.gpu_rev,
            "cores": info.total_active_cores,
            "firmware_version": agx.firmware_version_string(info.firmware_version),
            "initdata_address": f"{info.initdata_address:#x}",
        }
    crashlog = _crashlog_summary(dump)
    extension = dump.extension
    geometry = dump.geometry
    out = {
        "layout": dump.layout,
        "extension": extension is not None,
        "entry_format": dump.entry_format.name,
        "segments": dump.segment_count,
        "tables": dump.table_count,
        "pages": {"total": total, "dumped": dumped, "not_dumped": total - dumped},
        "gpu": gpu,
        "crashlog": crashlog,
        "geometry": {
            "page_size": geometry.page_size_bytes,
            "levels": [f"L{lg.level}" for lg in geometry.levels],
            "level_detail": [
                {
                    "level": lg.level,
                    "va_bits": f"{lg.va_shift + lg.index_bits - 1}:{lg.va_shift}",
                    "entries": lg.entries,
                    "entry_span_bytes": lg.entry_span_bytes,
                    "blocks": lg.level in dump.entry_format.block_levels,
                }
                for lg in geometry.levels
            ],
            "permission_views": list(dump.entry_format.view_names),
            "ias": geometry.ias,
            "oas": geometry.oas,
            "va_base": f"{geometry.va_base & ~geometry.ias_mask:#x}",
        },
        "size_bytes": dump.size_bytes,
        "source": dump.source.as_dict(),
        "warnings": dump.all_warnings(),
        "contexts": [c.to_dict() for c in dump.contexts()],
    }
    if extension is not None and extension.scenario is not None:
        s = extension.scenario
        out["scenario"] = {
            "name": s.name,
            "seed": s.seed,
            "knobs": json.loads(s.knobs_json or "{}"),
        }
    return out


def _crashlog_summary(dump) -> dict | None:
    """The first crash log in brief: format, tag order, entries, panic message, the fault
    (FAR, ESR, PC and whether the dump's walk agrees) and the Ccdp pairs' verdicts."""
    log = dump.crashlog
    if log is None:
        return None
    from dumpview.model.crash import check_ccdp, fault
    from formats import clhe

    out: dict = {
        "size": len(log.raw),
        "format": log.format,
        "tag_order": log.tag_order,
        "entries": len(log.entries),
        "panic": clhe.panic_message(log),
        "fault": None,
        "ccdp": None,
    }
    found = fault(dump, log)
    if found is not None:
        regs = clhe.registers(log)
        out["fault"] = {
            "far": f"{found.far:#x}",
            "esr": f"{found.esr.esr:#x}",
            "ec_name": found.esr.ec_name,
            "pc": f"{regs.pc:#x}",
            "fault_status": found.comparison.fault_status,
            "walk_agrees": found.comparison.agrees,
            "walk_note": found.comparison.note,
        }
    if clhe.ccdp_pairs(log):
        pairs = check_ccdp(dump, log)
        out["ccdp"] = {"pairs": len(pairs), "disagree": sum(not p.agree for p in pairs)}
    return out


HEX_UNITS = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}


def parse_address(text: str) -> int:
    """An address or size as people type it: ``0x…`` hex (underscores allowed) or decimal.
    ``ValueError`` with a one-line reason for anything else or outside 0..2^64-1."""
    text = text.strip()
    try:
        number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise ValueError(f"{text!r} is not an address: use 0x… hex or decimal") from None
    if not 0 <= number < 1 << 64:
        raise ValueError(f"{text!r} is outside 0..2^64-1")
    return number


def parse_va_range(text: str) -> tuple[int, int]:
    """``START-END`` (END exclusive; ``START+SIZE`` and ``START..END`` too) as (start, end).
    ``ValueError`` with a one-line reason for bad syntax, bad addresses or an empty range."""
    body = text.strip()
    for sep in ("..", "-", "+"):
        if sep in body[1:]:
            left, right = body.split(sep, 1)
            break
    else:
        raise ValueError(f"{text!r} is not START-END (e.g. 0xffffffa000000000-0xffffffb000000000)")
    start, end = parse_address(left), parse_address(right)
    if sep == "+":
        end += start
    if not start < end <= 1 << 64:
        raise ValueError(f"{text!r}: the end must be above the start (and at most 2**64)")
    return start, end


def hex_or_none(value: int | None) -> str | None:
    """``"0x…"`` (lowercase), or None: how JSON outputs write addresses and entry values."""
    return None if value is None else f"{value:#x}"


def pa_text(pa: int, pa_raw: int | None, oas: int) -> str:
    """ "PA 0x…", flagged where the entry says more: "PA 0x… (entry says 0x…: bits above the
    42-bit OAS)" when the entry's own address (``pa_raw``) differs from the one the walker uses,
    "PA 0x… (bits above the 44-bit OAS)" when they agree but still exceed it (LPAE). How every
    view writes a leaf's PA."""
    return f"PA {pa:#x}{oas_flag(pa, pa_raw, oas)}"


def oas_flag(pa: int, pa_raw: int | None, oas: int) -> str:
    """The suffix ``pa_text`` puts after a PA: "" or " (entry says 0x…: bits above the
    42-bit OAS)" / " (bits above the 44-bit OAS)"."""
    if pa_raw is not None and pa_raw != pa:
        return f" (entry says {pa_raw:#x}: bits above the {oas}-bit OAS)"
    if pa >> oas:
        return f" (bits above the {oas}-bit OAS)"
    return ""


def beyond_oas(pa: int, pa_raw: int | None, oas: int) -> bool:
    """Whether ``pa_text`` flags this PA (the entry's output address exceeds the OAS)."""
    return (pa_raw is not None and pa_raw != pa) or bool(pa >> oas)


def data_state(dumped: bool, reason: str | None, detail: str | None) -> str:
    """ "dumped", or "not dumped: REASON (DETAIL)": how every view says whether a page has data."""
    if dumped:
        return "dumped"
    return f"not dumped: {reason}" + (f" ({detail})" if detail else "")


def hex_row(chunk: bytes | memoryview, unit: str = "u8", width: int = 16) -> tuple[str, str]:
    """(hex column, ASCII column) of one row: units little-endian, lowercase, space separated;
    a short last row is padded so columns line up. ``KeyError`` for an unknown unit."""
    size = HEX_UNITS[unit]
    data = bytes(chunk)
    groups = [
        data[i : i + size][::-1].hex() if i + size <= len(data) else data[i:][::-1].hex()
        for i in range(0, len(data), size)
    ]
    full = (width // size) * (2 * size + 1) - 1
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
    return " ".join(groups).ljust(full), text.ljust(width)


def hexdump_lines(va: int, data: bytes, width: int = 16, unit: str = "u8") -> list[str]:
    """VA column, bytes as two lowercase hex digits separated by spaces (or u16/u32/u64 units),
    ASCII column."""
    out = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexes, text = hex_row(chunk, unit, width)
        out.append(f"{va + off:016x}  {hexes}  |{text[: len(chunk)]}|")
    return out


def describe_entry(decoded, note: str = "") -> str:
    """One-line summary of a decoded entry (``note`` for rebuilt steps without a value)."""
    if decoded is None:
        return note or "not recorded"
    beyond = oas_flag(decoded.output_address, decoded.output_address_raw, decoded.oas)
    if decoded.type_name == "table":
        return f"table -> {decoded.output_address:#x}{beyond}"
    if not decoded.maps:
        return decoded.type_name
    ng = "nG:not recorded" if decoded.ng is None else f"nG:{int(decoded.ng)}"
    af = "AF:not recorded" if decoded.af is None else f"AF:{int(decoded.af)}"
    kind = decoded.type_name
    if decoded.block_size_bytes:
        kind = f"block {human_size(decoded.block_size_bytes)}"
    views = " ".join(
        f"{name}:{view}" for name, view in zip(decoded.view_short, decoded.views, strict=True)
    )
    return f"{kind} -> {decoded.output_address:#x}{beyond} {decoded.memattr_name} {views} {af} {ng}"


def walk_lines(translation) -> list[str]:
    out = []
    for step in translation.steps:
        table = f"{step.table_pa:#014x}" if step.table_pa is not None else "(rebuilt)     "
        value = f"{step.entry:#018x}" if step.entry is not None else "-" * 18
        out.append(
            f"L{step.level}  table {table}  [{step.index:4d}]  {value}  "
            f"{describe_entry(step.decoded, step.note)}"
        )
    return out


def human_size(size_bytes: int) -> str:
    """A size the way ptdump writes it, in binary units: "512B", "16K", "2M", "1.5G", "2064K".

    The largest unit (K, M, G, T) that shows the size exactly with at most one decimal wins.
    """
    text = f"{size_bytes}B"
    for power, unit in enumerate(SIZE_UNITS, start=1):
        scale = 1 << (10 * power)
        tenths, inexact = divmod(size_bytes * 10, scale)
        if size_bytes < scale or inexact:
            break
        whole, tenth = divmod(tenths, 10)
        text = f"{whole}.{tenth}{unit}" if tenth else f"{whole}{unit}"
    return text
