"""``dumpview ranges``: coalesced mappings, ptdump style, of the dumped context or another."""

from __future__ import annotations

import json
import sys

import click

from dumpview.cli.common import (
    context_option,
    json_document,
    open_for_command,
    parse_context_range_option,
    resolve_context,
    with_examples,
)


@with_examples(
    "dumpview ranges samples/minimal.dump",
    "dumpview ranges --context 1 samples/user-contexts.dump",
)
@click.command("ranges")
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--range", "va_range", metavar="[CTX:]VA-VA", help="Only ranges inside START-END.")
@context_option("Ranges of")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ranges_(dump_path: str, va_range: str | None, context: int | None, as_json: bool) -> None:
    """Coalesced mappings, like Linux's ptdump: VA start-end, size, PA, permissions, memattr,
    dumped. Pages merge only when VA, PA, attributes and the dumped state all continue.

    A context other than the dumped one is read from its tables: its ranges carry their exact
    entries, and none has data (context not dumped).
    """
    from dumpview.cli.style import palette
    from dumpview.model.contexts import CONTEXT_NOT_DUMPED
    from dumpview.model.records import range_chunks, range_records

    range_context, start, end = parse_context_range_option("ranges", va_range)
    with open_for_command(dump_path) as dump:
        ctx = resolve_context(dump, "ranges", range_context, context)
        table = dump.ranges(start, end, ctx)
        if as_json:
            records = [json.loads(line) for lines in range_records(dump, table) for line in lines]
            extra = {} if context is None and range_context is None else {"context": ctx}
            click.echo(json_document(dump, ranges=records, **extra))
            return
        paint = palette()
        out = sys.stdout
        for chunk in range_chunks(dump, table):
            texts = []
            for g in chunk.groups:
                if g["dumped"]:
                    state = "dumped"
                elif g["reason"] == CONTEXT_NOT_DUMPED:
                    state = "context not dumped"
                else:
                    detail = f" ({g['reason_detail']})" if g["reason_detail"] else ""
                    state = f"not dumped: {g['reason']}{detail}"
                views = " ".join(g[key] for key in dump.entry_format.view_keys)
                kind = paint.kind(g["kind"], f"{g['kind']:<10}")
                texts.append(f"{views}  {g['memattr_name']:<9} {kind} {paint.state(state)}")
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
