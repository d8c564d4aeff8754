"""Commands about single addresses: ``read`` (bytes at a VA or PA), ``vtop`` (a VA's walk),
``ptov`` (every VA of a PA) and ``search`` (a pattern in the dumped pages).

Every address is a location (``model.location``): ``VA``, ``CTX:VA`` (a VA of context CTX) or
``p:PA``; ``--context N`` names the context too.
"""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import (
    ADDRESS,
    EXIT_NO,
    LOCATION,
    context_option,
    fail,
    json_document,
    open_for_command,
    parse_context_range_option,
    resolve_context,
    with_examples,
)
from dumpview.cli.render import gap_line, state_text, walk_text
from dumpview.model.location import Location
from dumpview.model.numbers import address, byte_count, count
from dumpview.model.text import hexdump_lines, oas_flag

UNITS = {"b": "u8", "h": "u16", "w": "u32", "g": "u64"}  # gdb's x/FMT sizes


@with_examples(
    "dumpview read samples/minimal.dump 0xffffffa000000000 64",
    "dumpview read --unit g samples/user-contexts.dump p:0x10001040000 32",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("where", metavar="ADDRESS", type=LOCATION)
@click.argument("size_bytes", metavar="SIZE", type=ADDRESS, default=256)
@click.option(
    "--unit",
    type=click.Choice(list(UNITS)),
    default="b",
    show_default=True,
    help="Show bytes (b), 2-byte (h), 4-byte (w) or 8-byte (g) little-endian units, as gdb's "
    "x/FMT.",
)
@click.option("--raw", is_flag=True, help="Write the bytes themselves to stdout.")
@context_option("Read in")
def read(
    dump_path: str, where: Location, size_bytes: int, unit: str, raw: bool, context: int | None
) -> None:
    """Show SIZE bytes (default 256; 0x… or decimal) at ADDRESS.

    A run the dump has no data for (not dumped, not mapped, or a context whose pages the dump
    does not carry) is one marked line with its reason, never zeros; then the exit code is 1.
    --raw writes nothing unless every byte is dumped.
    """
    with open_for_command(dump_path) as dump:
        if where.physical:
            if context is not None:
                fail("read: --context is for VAs; p:PA reads physical memory")
            runs = dump.read_runs_pa(where.address, size_bytes)
        else:
            ctx = resolve_context(dump, "read", where.context, context)
            runs = dump.read_runs(where.address, size_bytes, ctx)
        gaps = [r for r in runs if not r.dumped]
        kind = "PA" if where.physical else "VA"
        if raw:
            if gaps:
                first = gaps[0]
                fail(
                    f"{dump_path}: {kind} {first.address:#x}: "
                    f"{state_text(False, first.reason, first.detail)}",
                    EXIT_NO,
                )
            for r in runs:
                sys.stdout.buffer.write(r.data)
            sys.stdout.buffer.flush()
            return
        from dumpview.cli.style import palette

        paint = palette()
        out = []
        for r in runs:
            if r.dumped:
                out += hexdump_lines(r.address, bytes(r.data), unit=UNITS[unit])
            else:
                out.append(gap_line(r, paint))
        click.echo("\n".join(out), color=paint.enabled)
    if gaps:
        more = f" (and {count(len(gaps) - 1)} more run(s))" if len(gaps) > 1 else ""
        first = gaps[0]
        fail(
            f"{kind} {first.address:#x}: {state_text(False, first.reason, first.detail)}{more}",
            EXIT_NO,
        )


@with_examples(
    "dumpview vtop samples/minimal.dump 0xffffffa000000040",
    "dumpview vtop --json samples/user-contexts.dump 1:0x110000000",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("where", metavar="ADDRESS", type=LOCATION)
@context_option("Walk in")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def vtop(dump_path: str, where: Location, context: int | None, as_json: bool) -> None:
    """Translate ADDRESS: one line per level, then the PA and attributes; exit 1 when
    unmapped.

    p:PA walks every VA that maps PA (in every context, or in --context N's).
    """
    from dumpview.cli.style import palette
    from dumpview.model.translate import translation_dict

    paint = palette()
    with open_for_command(dump_path) as dump:
        if where.physical:
            ctx = None if context is None else resolve_context(dump, "vtop", context)
            mappings = [m for m in dump.ptov(where.address) if ctx is None or m.context == ctx]
            walks = [dump.translate(m.va, m.context) for m in mappings]
            if as_json:
                doc = {"pa": f"{where.address:#x}", "walks": [translation_dict(t) for t in walks]}
                click.echo(json_document(dump, vtop_pa=doc))
            else:
                out = []
                for t in walks:
                    heading = f"PA {where.address:#x} <- context {t.context} VA {t.va:#x}"
                    out += [paint.paint("heading", heading), *walk_text(t, paint)]
                click.echo("\n".join(out), color=paint.enabled)
            if not walks:
                scope = "any context" if ctx is None else f"context {ctx}"
                fail(f"PA {where.address:#x} is not mapped in {scope} of the dump", EXIT_NO)
            return
        ctx = resolve_context(dump, "vtop", where.context, context)
        t = dump.translate(where.address, ctx)
        if as_json:
            click.echo(json_document(dump, vtop=translation_dict(t)))
        else:
            click.echo("\n".join(walk_text(t, paint)), color=paint.enabled)
    if not t.mapped:
        fail(
            f"VA {where.address:#x} is not mapped: walk stopped at L{t.stopped_level}: "
            f"{t.stopped_reason}",
            EXIT_NO,
        )


@with_examples(
    "dumpview ptov samples/faults.dump 0x10001044000",
    "dumpview ptov samples/user-contexts.dump 1:0x110000000",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("where", metavar="ADDRESS", type=LOCATION)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ptov(dump_path: str, where: Location, as_json: bool) -> None:
    """Every VA (in every context) that maps a PA, from the dump's own entries; exit 1 when
    none does.

    ADDRESS is the PA (or p:PA); CTX:VA asks for every alias of that VA's PA.
    """
    from dumpview.cli.style import palette

    paint = palette()
    with open_for_command(dump_path) as dump:
        pa = where.address
        if not where.physical and where.context is not None:
            ctx = resolve_context(dump, "ptov", where.context)
            pa = dump.va_to_pa(where.address, ctx)
            if pa is None:
                walk = dump.translate(where.address, ctx)
                fail(
                    f"VA {where}: not mapped: walk stopped at L{walk.stopped_level}: "
                    f"{walk.stopped_reason}",
                    EXIT_NO,
                )
            click.echo(f"VA {where} -> PA {pa:#x}", err=True)
        mappings = dump.ptov(pa)
        if as_json:
            doc = {"pa": f"{pa:#x}", "mappings": [m.to_dict() for m in mappings]}
            click.echo(json_document(dump, ptov=doc))
        else:
            names = dump.entry_format.view_names
            for m in mappings:
                state = {True: "dumped", False: "not dumped", None: "context not dumped"}[m.dumped]
                exact = "" if m.pte_exact else " (rebuilt from the PT_LOAD)"
                views = ", ".join(f"{n} {v}" for n, v in zip(names, m.views.values(), strict=True))
                says = oas_flag(m.pa, m.pa_raw, dump.geometry.oas)
                click.echo(
                    f"PA {pa:#x}{says} <- VA {m.va:#x}  context {m.context}  entry {m.pte:#x}"
                    f"{exact}  "
                    f"{m.memattr_name}, {views}, {paint.state(state)}",
                    color=paint.enabled,
                )
    if not mappings:
        fail(f"PA {pa:#x} is not mapped by any entry of the dump", EXIT_NO)


@with_examples(
    'dumpview search samples/minimal.dump --string "initdata @"',
    'dumpview search samples/user-contexts.dump --hex "75 73 65 72 31" '
    "--range 0xffffffac00000000+0x1000000",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("pattern")
@click.option(
    "--hex", "kind", flag_value="hex", default=True, help="PATTERN is hex bytes (default)."
)
@click.option("--string", "kind", flag_value="string", help="PATTERN is text (UTF-8).")
@click.option("--u32", "kind", flag_value="u32", help="PATTERN is a little-endian u32.")
@click.option("--u64", "kind", flag_value="u64", help="PATTERN is a little-endian u64.")
@click.option("--range", "va_range", metavar="[CTX:]VA-VA", help="Only search inside START-END.")
@context_option("Search in")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Stop after this many hits.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def search(
    dump_path: str,
    pattern: str,
    kind: str,
    va_range: str | None,
    context: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Find PATTERN in the dumped pages (holes are skipped and counted; a match may cross a
    page boundary when both pages are dumped and VA-contiguous); exit 1 when nothing matches.

    Only the dumped context has data: searching another context finds nothing and counts the
    pages it maps as skipped.
    """
    from dumpview.model.contexts import context_ranges, is_dumped_context
    from dumpview.model.search import SearchResult, parse_pattern

    try:
        needle = parse_pattern(pattern, kind)
        if not needle:
            raise ValueError("the pattern is empty")
    except ValueError as exc:
        fail(f"search: {exc}")
    range_context, start, end = parse_context_range_option("search", va_range)
    with open_for_command(dump_path) as dump:
        ctx = resolve_context(dump, "search", range_context, context)
        note = ""
        if is_dumped_context(dump, ctx):
            result = dump.search(needle, va_start=start, va_end=end, limit=limit)
        else:
            table = context_ranges(dump, start, end, ctx)
            pages = sum(
                -(-int(b - a) // dump.page_size_bytes)
                for a, b in zip(table.va_start, table.va_end, strict=True)
            )
            result = SearchResult([], 0, pages, 0, False)
            note = f"; context {ctx} is not dumped (the dump carries its tables, not its pages)"
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
            extra = {} if context is None and range_context is None else {"context": ctx}
            click.echo(json_document(dump, search=doc, **extra))
        else:
            for hit in result.hits:
                click.echo(f"VA {address(hit.va)}  PA {address(hit.pa)}")
            more = f" (stopped at --limit {count(limit)})" if result.truncated else ""
            click.echo(
                f"{count(len(result.hits))} hit(s){more} in {byte_count(result.bytes_searched)} "
                f"of {count(result.pages_searched)} dumped page(s); "
                f"{count(result.holes_skipped)} page(s) without data skipped{note}",
                err=True,
            )
    if not result.hits:
        sys.exit(EXIT_NO)


COMMANDS = (read, vtop, ptov, search)
