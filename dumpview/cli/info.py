"""``dumpview info`` (what a dump is) and ``dumpview schema`` (the JSON Schema of every output)."""

from __future__ import annotations

import json

import click

from dumpview.cli.common import fail, open_for_command
from dumpview.model.source import display_name
from dumpview.model.text import human_size, info_dict


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def info(dump_path: str, as_json: bool) -> None:
    """Summarise DUMP: layout, segments, pages, GPU, crash log."""
    from dumpview.model import DumpError

    with open_for_command(dump_path) as dump:
        source = dump.source
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
        f"{display_name(dump_path)}",
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
    if source.spooled:
        lines.insert(1, f"  source       {source.describe()}")
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
    if "scenario" in doc:
        s = doc["scenario"]
        lines.append(f"  generated    scenario {s['name']}, seed {s['seed']}")
    click.echo("\n".join(lines))


@click.command()
def schema() -> None:
    """Print the JSON Schema every JSON output of dumpview follows (dumpview-export/1)."""
    from dumpview.model.export import schema_text

    click.echo(schema_text(), nl=False)


COMMANDS = (info, schema)
