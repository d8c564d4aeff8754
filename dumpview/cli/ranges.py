"""``dumpview ranges``: coalesced mappings, ptdump style."""

from __future__ import annotations

import json
import sys

import click

from dumpview.cli.common import json_document, open_for_command, parse_range_option


@click.command("ranges")
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--range", "va_range", metavar="VA-VA", help="Only ranges inside START-END.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ranges_(dump_path: str, va_range: str | None, as_json: bool) -> None:
    """Coalesced mappings, like Linux's ptdump: VA start-end, size, PA, permissions, memattr,
    dumped. Pages merge only when VA, PA, attributes and the dumped state all continue."""
    from dumpview.model.export import range_chunks, range_records

    start, end = parse_range_option("ranges", va_range)
    with open_for_command(dump_path) as dump:
        table = dump.ranges(start, end)
        if as_json:
            records = [json.loads(line) for lines in range_records(dump, table) for line in lines]
            click.echo(json_document(dump, ranges=records))
            return
        out = sys.stdout
        for chunk in range_chunks(dump, table):
            texts = []
            for g in chunk.groups:
                state = (
                    "dumped"
                    if g["dumped"]
                    else f"not dumped: {g['reason']}"
                    + (f" ({g['reason_detail']})" if g["reason_detail"] else "")
                )
                views = " ".join(g[key] for key in dump.entry_format.view_keys)
                texts.append(f"{views}  {g['memattr_name']:<9} {g['kind']:<10} {state}")
            out.write(
                "".join(
                    f"{a:#018x}-{b:#018x} {size:>7}  PA {pa:<#14x}  {texts[g]}{_says(raw)}\n"
                    for a, b, size, pa, raw, g in zip(
                        chunk.va_start,
                        chunk.va_end,
                        chunk.size,
                        chunk.pa_start,
                        chunk.pa_start_raw,
                        chunk.group,
                        strict=True,
                    )
                )
            )
        out.flush()


def _says(raw_json: str) -> str:
    """The entry's own PA where it differs from the one shown (``pa_start_raw`` JSON)."""
    return "" if raw_json == "null" else f"  (entry says {raw_json.strip(chr(34))}: above the OAS)"


COMMANDS = (ranges_,)
