"""``dumpview triage``: what most likely happened in one dump, or the signatures of many.

One dump (a single file argument): the report of ``model.triage`` as text (``render.triage_text``)
or, with ``--json``, its record (schema ``triage``) on one line. Several files or a directory:
one line per dump in input order, then the signatures grouped (``model.triage_batch``); with
``--json``, JSONL: a ``triage`` or ``triage-error`` record per dump and a ``triage-groups``
record last. Exit 0 when every dump was read, 2 when one was not (its line says why; the rest
go on). Progress goes to stderr when it is a terminal and the output is not.

SIGINT, SIGTERM and SIGHUP end a batch as they end every command (one line, exit 130, 143 or
129): the worker processes are killed and reaped on the way out (``model.triage_batch``), the
progress line is erased first, and the lines already printed are whole records.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import click

from dumpview.cli.common import EXIT_BAD_INPUT, open_for_command, warn, with_examples
from dumpview.model.numbers import count
from dumpview.model.parallel import usable_jobs

PROGRESS_SECONDS = 0.2


def default_jobs() -> int:
    """Usable cores (``DUMPVIEW_JOBS`` caps them, as for export), at most 8."""
    return usable_jobs(8)


@with_examples(
    "dumpview triage samples/faults.dump",
    "dumpview triage --json --jobs 2 samples",
)
@click.command()
@click.argument("paths", metavar="DUMP|DIR...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Triage N dumps at once (several dumps only; default: the usable cores, at most 8).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON: the record, or JSONL for many.")
def triage(paths: tuple[str, ...], jobs: int | None, as_json: bool) -> None:
    """Say what most likely happened: the panic, the exception, the FAR's walk and where it
    sits, Ccdp pairs that disagree, anomalies (most severe first), pages not dumped, contexts,
    and a signature that dumps of the same bug share. Several dumps or a directory (its files
    that start like an ELF or a compressed file): one line each, then the signatures grouped
    with counts, most frequent first. Exit 2 when a dump could not be read."""
    if len(paths) == 1 and not os.path.isdir(paths[0]):
        _one(paths[0], as_json)
        return
    _many(paths, jobs or default_jobs(), as_json)


def _one(path: str, as_json: bool) -> None:
    from dumpview.cli.common import fail
    from dumpview.model import DumpError

    with open_for_command(path) as dump:
        try:
            report = dump.triage()
        except DumpError as exc:
            fail(f"{path}: {exc}")
        if as_json:
            click.echo(json.dumps(report.to_dict()))
            return
        from dumpview.cli.render import triage_text
        from dumpview.cli.style import palette

        paint = palette()
        click.echo("\n".join(triage_text(report, paint)), color=paint.enabled)


class _Progress:
    """ "triage: N dumps (M unreadable), R/s" on stderr, redrawn at most every 0.2 s, when
    stderr is a terminal and stdout is not (else the lines themselves show progress)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty() and not sys.stdout.isatty()
        self.start = self.last = time.monotonic()

    def update(self, dumps: int, unreadable: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        rate = dumps / max(now - self.start, 1e-9)
        bad = f" ({count(unreadable)} unreadable)" if unreadable else ""
        text = f"triage: {count(dumps)} dumps{bad}, {rate:,.0f}/s"
        sys.stderr.write(f"\r{text}\x1b[K" + ("\n" if final else ""))
        sys.stderr.flush()

    def erase(self) -> None:
        """Clear the progress line (before another line takes its place on stderr)."""
        if self.enabled:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()


def _many(paths: tuple[str, ...], jobs: int, as_json: bool) -> None:
    from dumpview.cli.render import group_lines, triage_row
    from dumpview.cli.style import palette
    from dumpview.model.triage import triage as _  # noqa: F401 (imported before the fork)
    from dumpview.model.triage_batch import SignatureGroups, dump_paths, triage_many

    paint = palette()
    groups = SignatureGroups()
    progress = _Progress()
    try:
        # closed on every way out: its workers are killed and reaped before the one line
        with contextlib.closing(triage_many(dump_paths(paths), jobs)) as outcomes:
            for outcome in outcomes:
                groups.add(outcome)
                if as_json:
                    click.echo(json.dumps(outcome.to_dict()))
                else:
                    click.echo(triage_row(outcome, paint), color=paint.enabled)
                progress.update(groups.dumps, groups.unreadable)
    except BaseException:
        progress.erase()
        raise
    progress.update(groups.dumps, groups.unreadable, final=True)
    if as_json:
        click.echo(json.dumps(groups.to_dict()))
    else:
        click.echo("\n" + "\n".join(group_lines(groups, paint)), color=paint.enabled)
    if groups.unreadable:
        warn(f"triage: {count(groups.unreadable)} of {count(groups.dumps)} dumps could not be read")
        sys.exit(EXIT_BAD_INPUT)


COMMANDS = (triage,)
