"""``dumpview export``: the whole dump as JSON or JSON Lines (schema dumpview-export/1)."""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import (
    LazyProgress,
    context_option,
    fail,
    open_for_command,
    resolve_context,
    with_examples,
)


@with_examples(
    "dumpview export samples/minimal.dump -o minimal.jsonl",
    "dumpview export samples/user-contexts.dump --context 1 --include ranges,pages",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write (atomically: a temporary file renamed over it; a device or FIFO is "
    "written into, a link through); - is stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "json"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (a header, one record per line, an end line) or one JSON document.",
)
@click.option(
    "--include",
    default="all",
    show_default=True,
    metavar="KINDS",
    help="Comma-separated: info, memory-map, ranges, tables, pages, anomalies, crashlog, all.",
)
@click.option("--with-data", is_flag=True, help="Add each dumped page's bytes (base64).")
@context_option("Ranges, pages and tables of")
def export(
    dump_path: str, output: str, fmt: str, include: str, with_data: bool, context: int | None
) -> None:
    """Export DUMP as JSON (schema dumpview-export/1, printed by `dumpview schema`).

    --context N exports context N's ranges, pages and tables (another context than the
    dumped one from its tables: its pages say "context-not-dumped"); the header names it.
    """
    from dumpview.model.export import export_file, parse_kinds

    try:
        kinds = parse_kinds(include)
    except ValueError as exc:
        fail(f"export: --include: {exc}")
    with open_for_command(dump_path) as dump:
        if context is not None:
            context = resolve_context(dump, "export", context)
        progress = (
            LazyProgress("exporting pages", min_total=1 << 16) if sys.stderr.isatty() else None
        )
        options = {
            "fmt": fmt,
            "include": kinds,
            "with_data": with_data,
            "progress": progress,
            "context": context,
        }
        try:
            stats = export_file(dump, output, **options)  # "-": standard output
        except ValueError as exc:
            fail(f"export: {exc}")
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            fail(f"export: {exc.filename or output}: {exc.strerror or exc}")
        finally:
            if progress is not None:
                progress.close()
    if output != "-":
        counts = ", ".join(f"{n:,} {name}" for name, n in stats.counts.items())
        click.echo(f"{output}: {counts}; {stats.size_bytes:,} bytes", err=True)


COMMANDS = (export,)
