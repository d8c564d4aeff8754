"""The ``dumpview`` command line (click): the TUI entry (open), info, read, vtop, ptov, ranges,
search, check, diff, export, schema and generate.

Owns argument parsing and rendering to the terminal or JSON (every ``--json`` document and
every export follows the schema ``dumpview-export/1`` that ``dumpview schema`` prints). Every
error a user can cause (bad file, bad address syntax, pattern, range or kind, missing data)
ends as one line on stderr with exit code 2 (exit 1 where a command's answer is "no": not
dumped, not mapped, no hits, anomalies found, dumps differ); never a traceback. Heavy modules are
imported inside the commands that need them so ``info`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import click

from dumpview import __version__
from dumpview.model.text import (
    data_state,
    hexdump_lines,
    human_size,
    info_dict,
    parse_address,
    parse_va_range,
    walk_lines,
)

EXIT_NO = 1
EXIT_BAD_INPUT = 2


class Address(click.ParamType):
    """An address or size: ``0x…`` hex (underscores allowed) or decimal, not negative."""

    name = "address"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_address(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


ADDRESS = Address()


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    click.echo(f"dumpview: {message}", err=True)
    sys.exit(code)


def _open(path: str):
    """Open DUMP for a command and print every warning about the file (``all_warnings``: what
    open found, the table walk's, the crash logs'); one line + exit 2 when it cannot be read."""
    from dumpview.model import DumpError, open_dump

    try:
        dump = open_dump(path)
    except DumpError as exc:
        fail(f"{path}: {exc}")
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    try:
        warnings = dump.all_warnings()
    except DumpError as exc:
        dump.close()
        fail(f"{path}: {exc}")
    for warning in warnings:
        click.echo(f"dumpview: warning: {path}: {warning}", err=True)
    return dump


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dumpview")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Inspect GPU crash dumps: page tables, pages, firmware memory, crash logs.

    `dumpview DUMP` opens the inspector on DUMP; `dumpview` alone opens a bundled sample.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(open_, dump_path=None)


# ---- open (the TUI) -----------------------------------------------------------------------------


@cli.command("open")
@click.argument("dump_path", metavar="[DUMP]", required=False, type=click.Path(dir_okay=False))
def open_(dump_path: str | None) -> None:
    """Open the inspector on DUMP (default: the bundled sample). Without a terminal on stdout
    it prints `info` instead."""
    if dump_path is None:
        from dumpview.samples import default_sample

        dump_path = str(default_sample())
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        click.echo("dumpview: not a terminal: printing info instead of opening the app", err=True)
        ctx = click.get_current_context()
        ctx.invoke(info, dump_path=dump_path, as_json=False)
        return
    from dumpview.tui.app import DumpviewApp

    app = DumpviewApp(dump_path)
    app.run()
    if app.return_code:
        sys.exit(app.return_code)


# ---- info ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def info(dump_path: str, as_json: bool) -> None:
    """Summarise DUMP: layout, segments, pages, GPU, crash log."""
    from dumpview.model import DumpError

    with _open(dump_path) as dump:
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
    if "scenario" in doc:
        s = doc["scenario"]
        lines.append(f"  generated    scenario {s['name']}, seed {s['seed']}")
    click.echo("\n".join(lines))


# ---- read ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("va", type=ADDRESS)
@click.argument("size", type=ADDRESS, default=256)
@click.option("--raw", is_flag=True, help="Write the bytes themselves to stdout.")
def read(dump_path: str, va: int, size: int, raw: bool) -> None:
    """Show SIZE bytes (default 256) at VA; exit 1 when they are not dumped."""
    from dumpview.model import AddressError, NotDumpedError

    with _open(dump_path) as dump:
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


# ---- vtop ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("va", type=ADDRESS)
def vtop(dump_path: str, va: int) -> None:
    """Translate VA: one line per level, then the PA and attributes; exit 1 when unmapped."""
    with _open(dump_path) as dump:
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
                f"VA {va:#x} -> PA {t.pa:#x}  {leaf.memattr_name}, {leaf.permissions}, "
                f"{block}{state}"
                + ("  (levels rebuilt from the VA: driver dump)" if t.rebuilt else "")
            )
    click.echo("\n".join(lines))
    if not t.mapped:
        fail(
            f"VA {va:#x} is not mapped: walk stopped at L{t.stopped_level}: {t.stopped_reason}",
            EXIT_NO,
        )


def _va_range(command: str, text: str | None) -> tuple[int, int]:
    """``--range`` as (start, end); the whole space without it; one line + exit 2 if bad."""
    if text is None:
        return 0, 1 << 64
    try:
        return parse_va_range(text)
    except ValueError as exc:
        fail(f"{command}: --range: {exc}")


def _json_document(dump, **sections) -> str:
    """A --json document of the export schema: the dump it describes and the sections."""
    from dumpview.model.export import SCHEMA_ID, header

    head = header(dump, (), False)
    return json.dumps({"schema": SCHEMA_ID, "dump": head["dump"], **sections}, indent=2)


# ---- export and schema --------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write (atomically: a temporary file renamed over it); - is stdout.",
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
def export(dump_path: str, output: str, fmt: str, include: str, with_data: bool) -> None:
    """Export DUMP as JSON (schema dumpview-export/1, printed by `dumpview schema`)."""
    from dumpview.model.export import export as export_stream
    from dumpview.model.export import export_file, parse_kinds

    try:
        kinds = parse_kinds(include)
    except ValueError as exc:
        fail(f"export: --include: {exc}")
    with _open(dump_path) as dump:
        progress = (
            _LazyProgress("exporting pages", min_total=1 << 16) if sys.stderr.isatty() else None
        )
        options = {"fmt": fmt, "include": kinds, "with_data": with_data, "progress": progress}
        try:
            if output == "-":
                stats = export_stream(dump, sys.stdout, **options)
                sys.stdout.flush()
            else:
                stats = export_file(dump, output, **options)
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


@cli.command()
def schema() -> None:
    """Print the JSON Schema every JSON output of dumpview follows (dumpview-export/1)."""
    from dumpview.model.export import schema_text

    click.echo(schema_text(), nl=False)


# ---- ranges -------------------------------------------------------------------------------------


@cli.command("ranges")
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--range", "va_range", metavar="VA-VA", help="Only ranges inside START-END.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ranges_(dump_path: str, va_range: str | None, as_json: bool) -> None:
    """Coalesced mappings, like Linux's ptdump: VA start-end, size, PA, permissions, memattr,
    dumped. Pages merge only when VA, PA, attributes and the dumped state all continue."""
    from dumpview.model.export import range_chunks, range_records

    start, end = _va_range("ranges", va_range)
    with _open(dump_path) as dump:
        table = dump.ranges(start, end)
        if as_json:
            records = [json.loads(line) for lines in range_records(dump, table) for line in lines]
            click.echo(_json_document(dump, ranges=records))
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
                    f"{a:#018x}-{b:#018x} {size:>7}  PA {pa:<#14x}  {texts[g]}\n"
                    for a, b, size, pa, g in zip(
                        chunk.va_start,
                        chunk.va_end,
                        chunk.size,
                        chunk.pa_start,
                        chunk.group,
                        strict=True,
                    )
                )
            )
        out.flush()


# ---- ptov ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.argument("pa", type=ADDRESS)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def ptov(dump_path: str, pa: int, as_json: bool) -> None:
    """Every VA that maps PA (aliases), from the dump's own entries; exit 1 when none does."""
    with _open(dump_path) as dump:
        mappings = dump.ptov(pa)
        if as_json:
            doc = {"pa": f"{pa:#x}", "mappings": [m.to_dict() for m in mappings]}
            click.echo(_json_document(dump, ptov=doc))
        else:
            for m in mappings:
                state = {True: "dumped", False: "not dumped", None: "context not dumped"}[m.dumped]
                exact = "" if m.pte_exact else " (rebuilt from the PT_LOAD)"
                names = dump.entry_format.view_names
                views = ", ".join(f"{n} {v}" for n, v in zip(names, m.views.values(), strict=True))
                click.echo(
                    f"PA {pa:#x} <- VA {m.va:#x}  context {m.context}  entry {m.pte:#x}{exact}  "
                    f"{m.memattr_name}, {views}, {state}"
                )
    if not mappings:
        fail(f"PA {pa:#x} is not mapped by any entry of the dump", EXIT_NO)


# ---- search -------------------------------------------------------------------------------------


@cli.command()
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
    start, end = _va_range("search", va_range)
    with _open(dump_path) as dump:
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
            click.echo(_json_document(dump, search=doc))
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


# ---- check --------------------------------------------------------------------------------------


@cli.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--kind", "only", multiple=True, metavar="KIND", help="Only this kind (repeatable).")
@click.option("--ignore", multiple=True, metavar="KIND", help="Skip this kind (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def check(dump_path: str, only: tuple[str, ...], ignore: tuple[str, ...], as_json: bool) -> None:
    """Find anomalies: aliases with different memattr, normal memory on MMIO, device memory on
    RAM, RAM not dumped, bad or empty tables, mappings outside the managed range, output
    addresses beyond the OAS, crash-log pairs that disagree, W+X. Exit 0 clean, 1 found."""
    from dumpview.model.check import KINDS

    for name in (*only, *ignore):
        if name not in KINDS:
            fail(f"check: unknown kind {name!r} (known: {', '.join(KINDS)})")
    wanted = [k for k in (only or KINDS) if k not in ignore]
    with _open(dump_path) as dump:
        result = dump.check(wanted)
        if as_json:
            doc = {
                "clean": result.clean,
                "counts": {k: n for k, n in result.counts().items() if k in wanted},
                "skipped": [{"kind": k, "reason": why} for k, why in result.skipped],
            }
            anomalies = [a.to_dict() for a in result.anomalies]
            click.echo(_json_document(dump, check=doc, anomalies=anomalies))
        else:
            for a in result.anomalies:
                where = (
                    f"VA {a.va:#x}"
                    if a.va is not None
                    else (f"PA {a.pa:#x}" if a.pa is not None else "-")
                )
                click.echo(f"{a.kind:<24} {where:<24} {a.message}")
            for kind, why in result.skipped:
                click.echo(f"dumpview: not checked: {kind}: {why}", err=True)
            found = {k: n for k, n in result.counts().items() if n}
            summary = ", ".join(f"{n} {k}" for k, n in found.items()) or "no anomalies"
            click.echo(f"{dump_path}: {summary}", err=True)
    if not result.clean:
        sys.exit(EXIT_NO)


# ---- diff ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("a_path", metavar="A", type=click.Path(dir_okay=False))
@click.argument("b_path", metavar="B", type=click.Path(dir_okay=False))
@click.option("--no-contents", is_flag=True, help="Compare mappings only, not page bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def diff(a_path: str, b_path: str, no_contents: bool, as_json: bool) -> None:
    """Compare two dumps by VA: mappings added, removed or changed (PA, attributes, dumped),
    pages whose bytes changed, tables added or removed. Exit 0 identical, 1 different."""
    from dumpview.model.diff import DiffError
    from dumpview.model.diff import diff as diff_dumps
    from dumpview.model.export import SCHEMA_ID, header

    with _open(a_path) as a, _open(b_path) as b:
        try:
            result = diff_dumps(a, b, compare_contents=not no_contents)
        except DiffError as exc:
            fail(f"diff: {exc}")
        if as_json:
            doc = {
                "schema": SCHEMA_ID,
                "dumps": {"a": header(a, (), False)["dump"], "b": header(b, (), False)["dump"]},
                "diff": result.to_dict(),
            }
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo("\n".join(_diff_lines(result)))
    if not result.identical:
        sys.exit(EXIT_NO)


def _diff_lines(result) -> list[str]:

    lines = []
    for title, runs, sign in (
        ("added", result.added, "+"),
        ("removed", result.removed, "-"),
        ("changed", result.changed, "~"),
    ):
        for r in runs:
            pa = r.pa_b if r.pa_b is not None else r.pa_a
            what = f"  ({', '.join(r.changes)})" if r.changes else ""
            detail = ""
            if r.changes:
                detail = (
                    f"  PA {r.pa_a:#x} -> {r.pa_b:#x}" if "pa" in r.changes else f"  PA {pa:#x}"
                )
                if "attributes" in r.changes:
                    detail += f", p_flags {r.flags_a:#x} -> {r.flags_b:#x}"
                if "dumped" in r.changes:
                    detail += f", dumped {r.dumped_a} -> {r.dumped_b}"
            else:
                detail = f"  PA {pa:#x}"
            lines.append(
                f"{sign} {title:<8} {r.va_start:#018x}-{r.va_end:#018x} "
                f"{human_size(r.va_end - r.va_start):>7}{detail}{what}"
            )
    for c in result.contents:
        lines.append(
            f"~ contents {c.va_start:#018x}-{c.va_end:#018x} {c.pages:,} page(s), "
            f"{c.bytes_changed:,} byte(s) differ"
        )
    for title, tables, sign in (
        ("table added", result.tables_added, "+"),
        ("table removed", result.tables_removed, "-"),
    ):
        for t in tables:
            where = "rebuilt" if t.pa is None else f"PA {t.pa:#x}"
            lines.append(
                f"{sign} {title} L{t.level} context {t.context} "
                f"{t.va_start:#018x}-{t.va_end:#018x} ({where})"
            )
    summary = result.summary()
    lines.append(
        "identical"
        if result.identical
        else "; ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary.items() if v)
    )
    return lines


class _LazyProgress:
    """A stderr progress bar that appears only once a job turns out to be long (>= 64 MiB)."""

    def __init__(self, label: str, min_total: int = 64 << 20) -> None:
        """``min_total``: the smallest job (in the caller's units) worth a bar."""
        self.label = label
        self.min_total = min_total
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and total >= self.min_total:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


# ---- generate -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--scenario",
    default="minimal",
    show_default=True,
    help="minimal, asahi-kernel, user-contexts, faults or large (UAT); smmu or faults (LPAE).",
)
@click.option(
    "--entry-format",
    type=click.Choice(["uat", "lpae-4k", "lpae-16k", "lpae-64k"]),
    default=None,
    help="Page-table entry format: the Apple UAT, or ARM LPAE stage 1 (an ARM SMMU's "
    "io-pgtable) with a 4K, 16K or 64K granule. Default: uat; lpae-4k for --scenario smmu.",
)
@click.option("--seed", type=ADDRESS, default=0, show_default=True, help="Random seed.")
@click.option("--mapped-mib", type=int, default=None, help="large: MiB of GEM buffers mapped.")
@click.option(
    "--scatter", is_flag=True, default=None, help="large: scatter PAs (one PT_LOAD per page)."
)
@click.option(
    "--dumped-percent",
    type=int,
    default=None,
    help="large: percent of pages with data (the rest borrow_phys refuses).",
)
@click.option("--contexts", type=int, default=None, help="user-contexts: how many user VMs.")
@click.option(
    "--huge-blocks",
    is_flag=True,
    default=None,
    help="smmu: also map blocks above 512 MiB (the 4K granule's 1 GiB block: 262,144 pages).",
)
@click.option(
    "--driver-layout",
    is_flag=True,
    help="Write exactly what the driver writes: no dumpview extension.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The dump file to write (atomically).",
)
def generate(
    scenario: str,
    entry_format: str | None,
    seed: int,
    mapped_mib: int | None,
    scatter: bool | None,
    dumped_percent: int | None,
    contexts: int | None,
    huge_blocks: bool | None,
    driver_layout: bool,
    output: str,
) -> None:
    """Simulate the driver and its firmware up to a crash, and write the dump."""
    from dumpview.sim.errors import SimError
    from dumpview.sim.scenarios import ALL_SCENARIO_NAMES, ScenarioError, generate_file

    if scenario not in ALL_SCENARIO_NAMES:
        fail(f"generate: unknown scenario {scenario!r} (known: {', '.join(ALL_SCENARIO_NAMES)})")
    if entry_format is None:
        entry_format = "lpae-4k" if scenario == "smmu" else "uat"
    knobs = {
        k: v
        for k, v in (
            ("mapped_mib", mapped_mib),
            ("scatter", scatter),
            ("dumped_percent", dumped_percent),
            ("contexts", contexts),
            ("huge_blocks", huge_blocks),
        )
        if v is not None
    }
    progress = _LazyProgress("writing pages") if sys.stderr.isatty() else None
    try:
        summary = generate_file(
            output,
            scenario=scenario,
            seed=seed,
            knobs=knobs,
            driver_layout=driver_layout,
            progress=progress,
            entry_format=entry_format,
        )
    except ScenarioError as exc:
        fail(f"generate: {exc}")
    except SimError as exc:
        fail(f"generate: simulation failed: {exc}")
    except OSError as exc:
        fail(f"generate: {output}: {exc.strerror or exc}")
    finally:
        if progress is not None:
            progress.close()
    click.echo(
        f"{output}: {summary['scenario']} seed {summary['seed']}: "
        f"{summary['segments']:,} PT_LOAD, {summary['tables']:,} tables, "
        f"{summary['leaves']:,} pages ({summary['dumped_pages']:,} dumped), "
        f"{summary['size_bytes']:,} bytes",
        err=True,
    )


def _route(argv: list[str]) -> list[str]:
    """``dumpview DUMP`` means ``dumpview open DUMP``: insert ``open`` when the first argument
    is neither an option nor a command."""
    if argv and not argv[0].startswith("-") and argv[0] not in cli.commands:
        return ["open", *argv]
    return argv


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``argv`` defaults to ``sys.argv[1:]``): click, with usage errors
    and every error that escapes a command turned into one line + exit 2 (1 for "no")."""
    try:
        cli.main(args=_route(sys.argv[1:] if argv is None else argv), standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", EXIT_BAD_INPUT)
    except click.UsageError as exc:
        where = f"{exc.ctx.info_name}: " if exc.ctx and exc.ctx.parent else ""
        fail(f"{where}{exc.format_message()}")
    except click.ClickException as exc:
        fail(exc.format_message())
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(EXIT_NO)
    except KeyboardInterrupt:
        fail("interrupted")
    except Exception as exc:  # the last line of defence: one line, no traceback
        from dumpview.model.errors import AddressError, DumpError, NotDumpedError

        if os.environ.get("DUMPVIEW_DEBUG"):
            raise
        if isinstance(exc, NotDumpedError | AddressError):
            fail(str(exc), EXIT_NO)
        if isinstance(exc, DumpError):
            fail(str(exc))
        if isinstance(exc, OSError):
            fail(f"{exc.filename or ''}: {exc.strerror or exc}")
        fail(f"internal error: {type(exc).__name__}: {exc} (set DUMPVIEW_DEBUG=1 for a traceback)")


if __name__ == "__main__":
    main()
