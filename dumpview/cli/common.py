"""What every command shares: exit codes, the address and location parameters, ``--context``,
the one-line failure, opening a dump for a command, ``--range`` parsing, the ``--json``
document, the examples every ``--help`` ends with, and the lazy progress bar.

Failure modes: ``fail`` never returns: it prints one line to stderr and raises
``CommandFailed`` (a ``SystemExit``) carrying the exit code and the exception being handled, if
any, so a harness can tell a clean error path from a crash. ``Terminated`` is what SIGINT,
SIGTERM and SIGHUP become (``main`` installs ``raise_terminated``), ending with exit code
128 + signal.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from dumpview.model.location import Location, parse_location, parse_location_range
from dumpview.model.text import parse_address

if TYPE_CHECKING:
    from dumpview.model.dump import Dump
    from dumpview.model.source import Progress

EXIT_NO = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130


class CommandFailed(SystemExit):
    """A command's one-line failure: ``code`` is the exit code, ``handled`` the exception that
    was being handled when the command failed (None when it failed on its own)."""

    def __init__(self, code: int, handled: BaseException | None) -> None:
        super().__init__(code)
        self.handled = handled


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


class LocationType(click.ParamType):
    """Where to look: ``VA``, ``CTX:VA`` (a VA of context CTX) or ``p:PA`` (``model.location``)."""

    name = "location"

    def convert(self, value, param, ctx):
        if isinstance(value, Location):
            return value
        try:
            return parse_location(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


LOCATION = LocationType()

F = TypeVar("F", bound=Callable)


def context_option(what: str) -> Callable[[F], F]:
    """``--context N``: the address space (TTB slot) ``what`` is about."""
    return click.option(
        "--context",
        "context",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help=f"{what} context N's address space (default: the dumped one; "
        "`dumpview info` lists them). A CTX: prefix on an address does the same.",
    )


def resolve_context(dump: Dump, command: str, *asked: int | None) -> int:
    """The context a command works in: the one ``--context`` and any ``CTX:`` prefix name
    (they must agree), else the dumped one. One line + exit 2 for a context the dump does not
    carry or for two different ones."""
    from dumpview.model.contexts import check_context
    from dumpview.model.errors import ContextError

    named = {c for c in asked if c is not None}
    if len(named) > 1:
        fail(f"{command}: contexts {' and '.join(str(c) for c in sorted(named))} both given")
    try:
        return check_context(dump, named.pop() if named else None)
    except ContextError as exc:
        fail(f"{command}: {dump.path}: {exc}")


@dataclass(frozen=True)
class Example:
    """A command line for ``--help`` (paths relative to the repository, where a test runs it)
    and the exit code it ends with there."""

    line: str
    exit_code: int = 0


def with_examples(*examples: Example | str) -> Callable[[click.Command], click.Command]:
    """End the command's ``--help`` with these examples (kept as ``command.examples``, which
    tests/test_cli_examples.py runs against the samples)."""

    def attach(command: click.Command) -> click.Command:
        items = tuple(e if isinstance(e, Example) else Example(e) for e in examples)
        lines = "\n".join(f"  {e.line}" for e in items)
        command.epilog = f"Examples:\n\n\b\n{lines}"
        command.examples = items  # type: ignore[attr-defined]
        return command

    return attach


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr (in the error colour on a terminal) and exit with ``code``
    (``CommandFailed``). While handling a ``DumpChangedError`` its own line is printed (it
    names the file and the offset)."""
    from dumpview.cli.style import palette
    from dumpview.model.guard import DumpChangedError

    handled = sys.exc_info()[1]
    if isinstance(handled, DumpChangedError):
        message = str(handled)
    paint = palette(err=True)
    click.echo(paint.paint("error", f"dumpview: {message}"), err=True, color=paint.enabled)
    raise CommandFailed(code, handled)


class Terminated(BaseException):
    """A signal asked us to stop (SIGINT, SIGTERM, SIGHUP): raised in the main thread so that
    every ``with`` block on the way out runs (temporary files removed, workers reaped). A
    ``BaseException``: ``except Exception`` in the code it interrupts cannot swallow it (and,
    unlike ``KeyboardInterrupt``, click does not turn it into an Abort with a blank line)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def message(self) -> str:
        """The one line: "interrupted" for SIGINT (Ctrl+C), "terminated by SIGTERM" else."""
        return "interrupted" if self.signum == signal.SIGINT else f"terminated by {self.name}"


def raise_terminated(signum: int, frame: object) -> None:
    """Signal handler: turn SIGINT/SIGTERM/SIGHUP into ``Terminated``, and remember it for
    the writer (``dumpview.output.stop_signal``: no output is committed after it)."""
    from dumpview import output

    output.stop_signal = signum
    raise Terminated(signum)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def warn(message: str) -> None:
    """One ``dumpview: warning: …`` line on stderr (in the warning colour on a terminal)."""
    from dumpview.cli.style import palette

    paint = palette(err=True)
    text = paint.paint("warning", f"dumpview: warning: {message}")
    click.echo(text, err=True, color=paint.enabled)


def open_for_command(path: str) -> Dump:
    """Open DUMP for a command (a file, a compressed file, ``-``, a FIFO, a device: see
    ``dumpview.model.source``; a progress line on a terminal while a stream is read or
    decompressed) and print every warning about the file (``all_warnings``: what open found,
    the table walk's, the crash logs'); one line + exit 2 when it cannot be read."""
    from dumpview.model import DumpError, open_dump
    from dumpview.model.source import display_name

    name = display_name(path)
    progress = InputProgress()
    try:
        dump = open_dump(path, progress=progress)
    except DumpError as exc:
        fail(f"{name}: {exc}")
    except OSError as exc:
        fail(f"{name}: {exc.strerror or exc}")
    finally:
        progress.close()
    try:
        warnings = dump.all_warnings()
    except DumpError as exc:
        dump.close()
        fail(f"{name}: {exc}")
    for warning in warnings:
        warn(f"{name}: {warning}")
    return dump


class InputProgress:
    """One self-erasing stderr line while an input is read (only on a terminal, only once it
    has taken ``delay_s``, at once when it waits for a writer)."""

    def __init__(self, delay_s: float = 0.3) -> None:
        self.clock = time.monotonic
        self.started = self.clock()
        self.delay_s = delay_s
        self.shown = False
        self.line = ""
        self.tty = sys.stderr.isatty()

    def __call__(self, state: Progress) -> None:
        if not self.tty or (self.clock() - self.started < self.delay_s and not state.waiting):
            return
        fraction = state.fraction
        bar = ""
        if fraction is not None:
            done = int(fraction * 20)
            bar = f"[{'#' * done}{'-' * (20 - done)}] {fraction:4.0%} "
        hint = "Ctrl+C cancels; " if state.waiting else ""
        width = max(20, shutil.get_terminal_size().columns - 1)
        line = f"dumpview: {hint}{bar}{state.text()}"[:width]
        if line == self.line:
            return
        self.line = line
        sys.stderr.write(f"\r\x1b[K{line}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False
            self.line = ""


def parse_context_range_option(command: str, text: str | None) -> tuple[int | None, int, int]:
    """``--range [CTX:]START-END`` as (context or None, start, end); the whole space without
    it; one line + exit 2 if bad."""
    if text is None:
        return None, 0, 1 << 64
    try:
        return parse_location_range(text)
    except ValueError as exc:
        fail(f"{command}: --range: {exc}")


def json_document(dump: Dump, **sections: object) -> str:
    """A --json document of the export schema: the dump it describes and the sections (a
    ``context`` section says which address space a context-scoped answer is about)."""
    from dumpview.model.export import SCHEMA_ID, header

    head = header(dump, (), False)
    return json.dumps({"schema": SCHEMA_ID, "dump": head["dump"], **sections}, indent=2)


class LazyProgress:
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
