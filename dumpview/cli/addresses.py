"""Commands about single addresses: ``read`` (bytes at a VA), ``vtop`` (a VA's walk), ``ptov``
(every VA of a PA) and ``search`` (a pattern in the dumped pages)."""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import (
    ADDRESS,
    EXIT_NO,
    fail,
    json_document,
    open_for_command,
    parse_range_option,
)
from dumpview.model.text import data_state, hexdump_lines, human_size, oas_flag, pa_text, walk_lines


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("va", type=ADDRESS)
@click.argument("size", type=ADDRESS, default=256)
@click.option("--raw", is_flag=True, help="Write the bytes themselves to stdout.")
def read(dump_path: str, va: int, size: int, raw: bool) -> None:
    """Show SIZE bytes (default 256) at VA; exit 1 when they are not dumped."""
    from dumpview.model import AddressError, NotDumpedError

    with open_for_command(dump_path) as dump:
        try:
            data = bytes(dump.read_va(va, size))
        except NotDumpedError as exc:
            fail(f"{dump_path}: {exc}", EXIT_NO)
        except AddressError as exc:
            fail(f"{dump_path}: {exc}", EXIT_NO)
    if raw:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        click.echo("\n".join(hexdump_lines(va, data)))


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("va", type=ADDRESS)
def vtop(dump_path: str, va: int) -> None:
    """Translate VA: one line per level, then the PA and attributes; exit 1 when unmapped."""
    with open_for_command(dump_path) as dump:
        t = dump.translate(va)
        lines = walk_lines(t)
        if t.mapped:
            leaf = t.leaf
            page = t.page
            block = (
                f"L{leaf.level} block of {human_size(leaf.block_size_bytes)}, "
                if leaf.block_size_bytes
                else ""
            )
            state = (
                data_state(page.dumped, page.reason, page.reason_detail)
                if page is not None
                else "not in any PT_LOAD"
            )
            lines.append(
                f"VA {va:#x} -> {pa_text(t.pa, t.pa_raw, dump.geometry.oas)}  "
                f"{leaf.memattr_name}, {leaf.permissions}, "
                f"{block}{state}"
                + ("  (levels rebuilt from the VA: driver dump)" if t.rebuilt else "")
            )
    click.echo("\n".join(lines))
    if not t.mapped:
        fail(
            f"VA {va:#x} is not mapped: walk stopped at L{t.stopped_level}: {t.stopped_reason}",
            EXIT_NO,
        )


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("pa", type=ADDRESS)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ptov(dump_path: str, pa: int, as_json: bool) -> None:
    """Every VA that maps PA (aliases), from the dump's own entries; exit 1 when none does."""
    with open_for_command(dump_path) as dump:
        mappings = dump.ptov(pa)
        if as_json:
            doc = {"pa": f"{pa:#x}", "mappings": [m.to_dict() for m in mappings]}
            click.echo(json_document(dump, ptov=doc))
        else:
            for m in mappings:
                state = {True: "dumped", False: "not dumped", None: "context not dumped"}[m.dumped]
                exact = "" if m.pte_exact else " (rebuilt from the PT_LOAD)"
                names = dump.entry_format.view_names
                views = ", ".join(f"{n} {v}" for n, v in zip(names, m.views.values(), strict=True))
                says = oas_flag(m.pa, m.pa_raw, dump.geometry.oas)
                click.echo(
                    f"PA {pa:#x}{says} <- VA {m.va:#x}  context {m.context}  entry {m.pte:#x}"
                    f"{exact}  {m.memattr_name}, {views}, {state}"
                )
    if not mappings:
        fail(f"PA {pa:#x} is not mapped by any entry of the dump", EXIT_NO)


@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("pattern")
@click.option(
    "--hex", "kind", flag_value="hex", default=True, help="PATTERN is hex bytes (default)."
)
@click.option("--string", "kind", flag_value="string", help="PATTERN is text (UTF-8).")
@click.option("--u32", "kind", flag_value="u32", help="PATTERN is a little-endian u32.")
@click.option("--u64", "kind", flag_value="u64", help="PATTERN is a little-endian u64.")
@click.option("--range", "va_range", metavar="VA-VA", help="Only search inside START-END.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Stop after this many hits.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def search(
    dump_path: str, pattern: str, kind: str, va_range: str | None, limit: int, as_json: bool
) -> None:
    """Find PATTERN in the dumped pages (holes are skipped and counted; a match may cross a
    page boundary when both pages are dumped and VA-contiguous); exit 1 when nothing matches."""
    from dumpview.model.search import parse_pattern

    try:
        needle = parse_pattern(pattern, kind)
        if not needle:
            raise ValueError("the pattern is empty")
    except ValueError as exc:
        fail(f"search: {exc}")
    start, end = parse_range_option("search", va_range)
    with open_for_command(dump_path) as dump:
        result = dump.search(needle, va_start=start, va_end=end, limit=limit)
        if as_json:
            doc = {
                "pattern_hex": needle.hex(),
                "va_start": f"{start:#x}",
                "va_end": f"{end:#x}",
                "hits": [{"va": f"{h.va:#x}", "pa": f"{h.pa:#x}"} for h in result.hits],
                "pages_searched": result.pages_searched,
                "holes_skipped": result.holes_skipped,
                "bytes_searched": result.bytes_searched,
                "truncated": result.truncated,
            }
            click.echo(json_document(dump, search=doc))
        else:
            for hit in result.hits:
                click.echo(f"VA {hit.va:#x}  PA {hit.pa:#x}")
            more = f" (stopped at --limit {limit})" if result.truncated else ""
            click.echo(
                f"{len(result.hits):,} hit(s){more} in {result.bytes_searched:,} bytes of "
                f"{result.pages_searched:,} dumped page(s); {result.holes_skipped:,} page(s) "
                "without data skipped",
                err=True,
            )
    if not result.hits:
        sys.exit(EXIT_NO)


COMMANDS = (read, vtop, ptov, search)
