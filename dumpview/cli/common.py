"""What every command shares: exit codes, the address parameter, the one-line failure, opening a
dump for a command, ``--range`` parsing, the ``--json`` document and the lazy progress bar.

Failure modes: ``fail`` never returns: it prints one line to stderr and raises
``CommandFailed`` (a ``SystemExit``) carrying the exit code and the exception being handled, if
any, so a harness can tell a clean error path from a crash.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import TYPE_CHECKING, NoReturn

import click

from dumpview.model.text import parse_address, parse_va_range

if TYPE_CHECKING:
    from dumpview.model.dump import Dump
    from dumpview.model.source import Progress

EXIT_NO = 1
EXIT_BAD_INPUT = 2


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
    """Print one line to stderr and exit with ``code`` (``CommandFailed``)."""
    click.echo(f"dumpview: {message}", err=True)
    raise CommandFailed(code, sys.exc_info()[1])


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
        click.echo(f"dumpview: warning: {name}: {warning}", err=True)
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
