"""The ``dumpview`` command line (click): info, read, vtop, generate, and the TUI entry.

Owns argument parsing and rendering to the terminal or JSON. Every error a user can cause (bad
file, bad address syntax, missing data) ends as one line on stderr with exit code 2 (exit 1
where a command's answer is "no": not dumped, not mapped); never a traceback. Heavy modules are
imported inside the commands that need them so ``info`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys

import click

from dumpview import __version__
from dumpview.model.text import hexdump_lines, info_dict, parse_address, walk_lines

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


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print one line to stderr and exit with ``code``."""
    click.echo(f"dumpview: {message}", err=True)
    sys.exit(code)


def _open(path: str):
    from dumpview.model import DumpError, open_dump

    try:
        dump = open_dump(path)
    except DumpError as exc:
        fail(f"{path}: {exc}")
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    for warning in dump.warnings:
        click.echo(f"dumpview: warning: {path}: {warning}", err=True)
    return dump


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


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
    gpu = doc["gpu"]
    if gpu:
        lines.append(
            f"  gpu          chip {gpu['chip_id']} {gpu['generation']}{gpu['variant']} "
            f"{gpu['revision']}, {gpu['cores']} cores, firmware "
            f"{gpu['firmware_version']}, initdata {gpu['initdata_address']}"
        )
    else:
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
            state = (
                "dumped"
                if page is not None and page.dumped
                else (
                    f"not dumped: {page.reason}"
                    + (f" ({page.reason_detail})" if page and page.reason_detail else "")
                    if page is not None
                    else "not in any PT_LOAD"
                )
            )
            lines.append(
                f"VA {va:#x} -> PA {t.pa:#x}  {leaf.memattr_name}, firmware "
                f"{leaf.firmware}, GPU {leaf.gpu}, {state}"
                + ("  (levels rebuilt from the VA: driver dump)" if t.rebuilt else "")
            )
    click.echo("\n".join(lines))
    if not t.mapped:
        fail(
            f"VA {va:#x} is not mapped: walk stopped at L{t.stopped_level}: {t.stopped_reason}",
            EXIT_NO,
        )


class _LazyProgress:
    """A stderr progress bar that appears only once a job turns out to be long (>= 64 MiB)."""

    def __init__(self, label: str, min_total: int = 64 << 20) -> None:
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
    help="minimal, asahi-kernel, user-contexts, faults or large.",
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
    seed: int,
    mapped_mib: int | None,
    scatter: bool | None,
    dumped_percent: int | None,
    contexts: int | None,
    driver_layout: bool,
    output: str,
) -> None:
    """Simulate the driver and its firmware up to a crash, and write the dump."""
    from dumpview.sim.errors import SimError
    from dumpview.sim.scenarios import SCENARIOS, ScenarioError, generate_file

    if scenario not in SCENARIOS:
        fail(f"generate: unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    knobs = {
        k: v
        for k, v in (
            ("mapped_mib", mapped_mib),
            ("scatter", scatter),
            ("dumped_percent", dumped_percent),
            ("contexts", contexts),
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


def main() -> None:
    """Console entry point: click, with usage errors turned into one line + exit 2."""
    try:
        cli.main(args=_route(sys.argv[1:]), standalone_mode=False)
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
