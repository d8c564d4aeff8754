"""``dumpview info`` (what a dump is) and ``dumpview schema`` (the JSON Schema of every output)."""

from __future__ import annotations

import json

import click

from dumpview.cli.common import fail, open_for_command
from dumpview.model.text import human_size, info_dict


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def info(dump_path: str, as_json: bool) -> None:
    """Summarise DUMP: layout, segments, pages, GPU, crash log."""
    from dumpview.model import DumpError

    with open_for_command(dump_path) as dump:
        try:
            doc = info_dict(dump)
        except DumpError as exc:
            fail(f"{dump_path}: {exc}")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    p = doc["pages"]
    g = doc["geometry"]
    lines = [
        f"{dump_path}",
        f"  layout       {doc['layout']}{' + dumpview extension' if doc['extension'] else ''}",
        f"  entries      {doc['entry_format']}, {g['page_size'] // 1024} KiB pages, "
        f"{'/'.join(g['levels'])}, IAS {g['ias']}, OAS {g['oas']}, from {g['va_base']}",
        f"  segments     {doc['segments']:,} PT_LOAD",
        f"  tables       {doc['tables']:,} page-table pages carried"
        if doc["extension"]
        else "  tables       not carried (levels are rebuilt from VAs)",
        f"  pages        {p['total']:,} mapped, {p['dumped']:,} dumped, "
        f"{p['not_dumped']:,} not dumped",
    ]
    blocks = [d for d in g["level_detail"] if d["blocks"]]
    if blocks:
        sizes = ", ".join(f"L{d['level']} {human_size(d['entry_span_bytes'])}" for d in blocks)
        lines.insert(3, f"  blocks       {sizes}")
    gpu = doc["gpu"]
    if gpu:
        lines.append(
            f"  gpu          chip {gpu['chip_id']} {gpu['generation']}{gpu['variant']} "
            f"{gpu['revision']}, {gpu['cores']} cores, firmware "
            f"{gpu['firmware_version']}, initdata {gpu['initdata_address']}"
        )
    elif doc["entry_format"] == "uat":
        lines.append("  gpu          no AGX note")
    log = doc["crashlog"]
    lines.append(
        f"  crash log    {log['format']}, {log['size']:,} bytes" if log else "  crash log    none"
    )
    lines += crashlog_lines(log) if log else []
    if "scenario" in doc:
        s = doc["scenario"]
        lines.append(f"  generated    scenario {s['name']}, seed {s['seed']}")
    click.echo("\n".join(lines))


def crashlog_lines(log: dict) -> list[str]:
    """The crash log summary of ``info_dict`` as text lines: panic, fault, Ccdp verdicts."""
    lines = []
    if log["tag_order"] == "reading":
        lines.append("               tags in reading order (written by dumpview 0.1.0 or earlier)")
    if log["panic"] is not None:
        lines.append(f"  panic        {log['panic']}")
    f = log["fault"]
    if f is not None:
        verdict = {True: "the tables agree", False: "the tables DISAGREE", None: "not comparable"}
        lines.append(
            f"  fault        FAR {f['far']}, PC {f['pc']}, ESR {f['esr']} ({f['ec_name']})"
        )
        if f["fault_status"]:
            lines.append(
                f"               {f['fault_status']}: {verdict[f['walk_agrees']]}: {f['walk_note']}"
            )
    c = log["ccdp"]
    if c is not None:
        lines.append(f"  ccdp         {c['pairs']} pairs, {c['disagree']} disagree with the tables")
    return lines


@click.command()
def schema() -> None:
    """Print the JSON Schema every JSON output of dumpview follows (dumpview-export/1)."""
    from dumpview.model.export import schema_text

    click.echo(schema_text(), nl=False)


COMMANDS = (info, schema)
