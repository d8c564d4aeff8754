"""What every command shares: exit codes, the address parameter, the one-line failure, opening a
dump for a command, ``--range`` parsing, the ``--json`` document and the lazy progress bar.

Failure modes: ``fail`` never returns: it prints one line to stderr and raises
``CommandFailed`` (a ``SystemExit``) carrying the exit code and the exception being handled, if
any, so a harness can tell a clean error path from a crash. ``Terminated`` is what SIGINT,
SIGTERM and SIGHUP become (``main`` installs ``raise_terminated``), ending with exit code
128 + signal.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from dumpview.model.text import parse_address, parse_va_range

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

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


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (``CommandFailed``). While handling a
    ``DumpChangedError`` its own line is printed (it names the file and the offset)."""
    handled = sys.exc_info()[1]
    from dumpview.model.guard import DumpChangedError

    if isinstance(handled, DumpChangedError):
        message = str(handled)
    click.echo(f"dumpview: {message}", err=True)
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


def open_for_command(path: str) -> Dump:
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


def parse_range_option(command: str, text: str | None) -> tuple[int, int]:
    """``--range`` as (start, end); the whole space without it; one line + exit 2 if bad."""
    if text is None:
        return 0, 1 << 64
    try:
        return parse_va_range(text)
    except ValueError as exc:
        fail(f"{command}: --range: {exc}")


def json_document(dump: Dump, **sections: object) -> str:
    """A --json document of the export schema: the dump it describes and the sections."""
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
