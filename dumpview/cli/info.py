"""``dumpview info`` (what a dump is) and ``dumpview schema`` (the JSON Schema of every output)."""

from __future__ import annotations

import json

import click

from dumpview.cli.common import fail, open_for_command, with_examples
from dumpview.cli.render import context_lines
from dumpview.model.numbers import byte_count, count, size
from dumpview.model.source import display_name
from dumpview.model.text import info_dict


@with_examples(
    "dumpview info samples/user-contexts.dump",
    "dumpview info --json samples/minimal.dump",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def info(dump_path: str, as_json: bool) -> None:
    """Summarise DUMP: layout, segments, pages, contexts, GPU, crash log."""
    from dumpview.cli.style import palette
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
    paint = palette()
    p = doc["pages"]
    g = doc["geometry"]
    rows = [
        ("layout", f"{doc['layout']}{' + dumpview extension' if doc['extension'] else ''}"),
        (
            "entries",
            f"{doc['entry_format']}, {size(g['page_size'])} pages, {'/'.join(g['levels'])}, "
            f"IAS {g['ias']}, OAS {g['oas']}, from {g['va_base']}",
        ),
        ("segments", f"{count(doc['segments'])} PT_LOAD"),
        (
            "tables",
            f"{count(doc['tables'])} page-table pages carried"
            if doc["extension"]
            else "not carried (levels are rebuilt from VAs)",
        ),
        (
            "pages",
            f"{count(p['total'])} mapped, {count(p['dumped'])} dumped, "
            + paint.state(f"{count(p['not_dumped'])} not dumped")
            if p["not_dumped"]
            else f"{count(p['total'])} mapped, {count(p['dumped'])} dumped, 0 not dumped",
        ),
    ]
    if source.spooled:
        rows.insert(0, ("source", source.describe()))
    blocks = [d for d in g["level_detail"] if d["blocks"]]
    if blocks:
        sizes = ", ".join(f"L{d['level']} {size(d['entry_span_bytes'])}" for d in blocks)
        rows.insert(3 if source.spooled else 2, ("blocks", sizes))
    for i, line in enumerate(context_lines(doc["contexts"])):
        rows.append(("contexts" if i == 0 else "", line))
    gpu = doc["gpu"]
    if gpu:
        rows.append(
            (
                "gpu",
                f"chip {gpu['chip_id']} {gpu['generation']}{gpu['variant']} "
                f"{gpu['revision']}, {gpu['cores']} cores, firmware "
                f"{gpu['firmware_version']}, initdata {gpu['initdata_address']}",
            )
        )
    elif doc["entry_format"] == "uat":
        rows.append(("gpu", "no AGX note"))
    log = doc["crashlog"]
    rows.append(("crash log", f"{log['format']}, {byte_count(log['size'])}" if log else "none"))
    rows += crashlog_rows(log) if log else []
    if "scenario" in doc:
        s = doc["scenario"]
        rows.append(("generated", f"scenario {s['name']}, seed {s['seed']}"))
    lines = [paint.paint("heading", display_name(dump_path))]
    lines += [f"  {paint.paint('label', f'{label:<12}')} {text}" for label, text in rows]
    click.echo("\n".join(lines), color=paint.enabled)


def crashlog_rows(log: dict) -> list[tuple[str, str]]:
    """The crash log summary of ``info_dict`` as (label, text) rows: panic, fault, Ccdp."""
    rows = []
    if log["tag_order"] == "reading":
        rows.append(("", "tags in reading order (written by dumpview 0.1.0 or earlier)"))
    if log["panic"] is not None:
        rows.append(("panic", log["panic"]))
    f = log["fault"]
    if f is not None:
        verdict = {True: "the tables agree", False: "the tables DISAGREE", None: "not comparable"}
        rows.append(("fault", f"FAR {f['far']}, PC {f['pc']}, ESR {f['esr']} ({f['ec_name']})"))
        if f["fault_status"]:
            rows.append(("", f"{f['fault_status']}: {verdict[f['walk_agrees']]}: {f['walk_note']}"))
    c = log["ccdp"]
    if c is not None:
        rows.append(
            ("ccdp", f"{count(c['pairs'])} pairs, {count(c['disagree'])} disagree with the tables")
        )
    return rows


@with_examples("dumpview schema")
@click.command()
def schema() -> None:
    """Print the JSON Schema every JSON output of dumpview follows (dumpview-export/1)."""
    from dumpview.model.export import schema_text

    click.echo(schema_text(), nl=False)


COMMANDS = (info, schema)
