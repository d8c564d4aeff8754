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

from dumpview import __version__
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
from dumpview.cli.common import EXIT_BAD_INPUT, EXIT_NO, fail, with_examples


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
    the script to evaluate."""
    try:
        cli.main(
            args=_route(sys.argv[1:] if argv is None else argv),
            prog_name="dumpview",
            complete_var="_DUMPVIEW_COMPLETE",
            standalone_mode=False,
        )
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


__all__ = ["EXIT_BAD_INPUT", "EXIT_NO", "cli", "common", "fail", "main"]
