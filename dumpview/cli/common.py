"""What every command shares: exit codes, the address parameter, the one-line failure, opening a
dump for a command, ``--range`` parsing, the ``--json`` document and the lazy progress bar.

Failure modes: ``fail`` never returns: it prints one line to stderr and raises
``CommandFailed`` (a ``SystemExit``) carrying the exit code and the exception being handled, if
any, so a harness can tell a clean error path from a crash.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from dumpview.model.text import parse_address, parse_va_range

if TYPE_CHECKING:
    from dumpview.model.dump import Dump

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
