"""The ``dumpview`` command line (click), one module per family of commands: ``app`` (open, the
TUI), ``info`` (info, schema), ``addresses`` (read, vtop, ptov, search), ``ranges``, ``export``,
``check`` (check, diff), ``triage`` (one dump's report, or many dumps' signatures),
``crashlog``, ``collect`` (devcoredumps from sysfs) and ``generate``; ``common`` holds what
they share (parameters, ``--context``, failing, examples, input progress), ``render`` the text
renderers and ``style`` the colour. A first argument that is no command opens a dump (``-`` is
standard input), unless it is a mistyped command word (``_route``).

Owns argument parsing and rendering to the terminal or JSON (every ``--json`` document and
every export follows the schema ``dumpview-export/1`` that ``dumpview schema`` prints). Every
error a user can cause (bad file, bad address syntax, pattern, range or kind, missing data)
ends as one line on stderr with exit code 2 (exit 1 where a command's answer is "no": not
dumped, not mapped, no hits, anomalies found, dumps differ); never a traceback. Heavy modules are
imported inside the commands that need them so ``info`` starts fast.
"""

from __future__ import annotations

import os
import sys

import click

from dumpview import __version__, output
from dumpview.cli import (
    addresses,
    app,
    check,
    collect,
    common,
    crashlog,
    export,
    generate,
    info,
    ranges,
    triage,
)
from dumpview.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO,
    STOP_SIGNALS,
    Terminated,
    fail,
    raise_terminated,
    with_examples,
)
from dumpview.output import STDOUT_NAME, WRITE_ERRNOS


@with_examples(
    "dumpview samples/faults.dump",
    "dumpview vtop samples/user-contexts.dump 1:0x110000000",
)
@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dumpview")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Inspect GPU crash dumps: page tables, pages, firmware memory, crash logs.

    `dumpview DUMP` opens the inspector on DUMP; `dumpview` alone opens a bundled sample.
    Addresses are VA, CTX:VA (a VA of context CTX) or p:PA, in 0x… hex or decimal. Colour on a
    terminal only; NO_COLOR=1 turns it off, FORCE_COLOR=1 on.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(app.open_, dump_path=None)


for _module in (app, info, addresses, ranges, export, check, triage, crashlog, collect, generate):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def close_command(word: str) -> str | None:
    """The command ``word`` is probably a typo of (difflib's closest at ratio 0.6, or the one
    command it is a prefix of), or None."""
    import difflib

    names = sorted(cli.commands)
    prefixed = [name for name in names if name.startswith(word)]
    if len(word) >= 2 and len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _route(argv: list[str]) -> list[str]:
    """``dumpview DUMP`` means ``dumpview open DUMP``: insert ``open`` when the first argument
    is neither an option nor a command (``-``, standard input, is a DUMP). The rule for a
    first argument that is not a command: an existing path opens; a word of letters (no dot,
    no slash: ``inf``, ``chek``) that is no file and is close to a command name is a mistyped
    command: one line naming the command meant, exit 2; anything else opens (and fails as a
    missing file does)."""
    if argv and (argv[0] == "-" or not argv[0].startswith("-")) and argv[0] not in cli.commands:
        word = argv[0]
        if word.replace("-", "").isalpha() and not os.path.lexists(word):
            meant = close_command(word)
            if meant is not None:
                fail(f"no such command {word!r}; did you mean {meant}?")
        return ["open", *argv]
    return argv


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``argv`` defaults to ``sys.argv[1:]``): click, with usage errors
    and every error that escapes a command turned into one line + exit 2 (1 for "no"). Shell
    completion: ``_DUMPVIEW_COMPLETE=bash_source dumpview`` (zsh_source, fish_source) prints
    the script to evaluate.

    Signals end it the conventional way, with one line and nothing left behind: SIGINT exits
    130, SIGTERM 143, SIGHUP 129, after every temporary file is removed and every worker is
    reaped (they are exceptions raised in the main thread, so each ``with`` block unwinds)."""
    output.stop_signal = None
    previous = _install_signal_handlers()
    try:
        _main(argv)
    finally:
        _restore_signal_handlers(previous)
        output.stop_signal = None


def _install_signal_handlers() -> dict[int, object]:
    """SIGINT/SIGTERM/SIGHUP raise ``Terminated``; the lease-break handler of the model's guard.
    Only on the main thread (elsewhere Python cannot); returns what was there before."""
    import signal
    import threading

    from dumpview.model.guard import install_signal_handler

    if threading.current_thread() is not threading.main_thread():
        return {}
    install_signal_handler()
    return {signum: signal.signal(signum, raise_terminated) for signum in STOP_SIGNALS}


def _restore_signal_handlers(previous: dict[int, object]) -> None:
    import signal

    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(
            args=_route(sys.argv[1:] if argv is None else argv),
            prog_name="dumpview",
            complete_var="_DUMPVIEW_COMPLETE",
            standalone_mode=False,
        )
        _flush_stdout()
        if output.stop_signal is not None:  # raised, but swallowed by what it interrupted
            raise Terminated(output.stop_signal)
    except click.exceptions.Abort:
        fail("interrupted", EXIT_INTERRUPTED)
    except (Terminated, output.Stopped) as exc:
        stopped = Terminated(exc.signum)
        fail(stopped.message, stopped.exit_code)
    except click.UsageError as exc:
        where = f"{exc.ctx.info_name}: " if exc.ctx and exc.ctx.parent else ""
        fail(f"{where}{exc.format_message()}")
    except click.ClickException as exc:
        fail(exc.format_message())
    except BrokenPipeError:
        _discard_stdout()
        sys.stderr.close()
        sys.exit(EXIT_NO)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # the last line of defence: one line, no traceback
        from dumpview.model.errors import AddressError, DumpError, NotDumpedError

        if os.environ.get("DUMPVIEW_DEBUG"):
            raise
        if isinstance(exc, NotDumpedError | AddressError):
            fail(str(exc), EXIT_NO)
        if isinstance(exc, DumpError):
            fail(str(exc))
        if isinstance(exc, OSError):
            name = exc.filename if exc.filename is not None else _stream_name(exc)
            if name == STDOUT_NAME:
                _discard_stdout()
            fail(f"{name}: {exc.strerror or exc}" if name else f"{exc.strerror or exc}")
        fail(f"internal error: {type(exc).__name__}: {exc} (set DUMPVIEW_DEBUG=1 for a traceback)")


def _flush_stdout() -> None:
    """Flush standard output while errors can still be reported (a full disk, a closed pipe):
    at interpreter exit they would be a multi-line "Exception ignored" instead."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, STDOUT_NAME) from None


def _stream_name(exc: OSError) -> str | None:
    """``<stdout>`` for a write error without a file name (what standard output raises)."""
    return STDOUT_NAME if exc.errno in WRITE_ERRNOS else None


def _discard_stdout() -> None:
    """Drop what standard output still buffers, so that exiting does not try (and fail) to
    write it again: its descriptor is pointed at the null device, as Python's documentation
    advises for SIGPIPE."""
    try:
        if sys.stdout.fileno() != 1:
            return  # not the process's standard output (a test harness)
    except (AttributeError, OSError, ValueError):
        return
    fd = 1
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


__all__ = ["EXIT_BAD_INPUT", "EXIT_NO", "cli", "common", "fail", "main"]
