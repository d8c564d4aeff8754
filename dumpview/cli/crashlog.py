"""``dumpview crashlog``: the crash log as the inspector's crash-log tab shows it.

The text is ``model.crash.crashlog_sections`` (panic, registers, ESR decoded, the FAR's walk
and whether it shows the fault, call stack, mailbox, tasks, Ccdp pairs checked against the
tables), rendered by ``render.sections_text``; ``--json`` is a document of the export schema
with the export's ``crashlog`` records. Exit 1 when the dump has no crash log.
"""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import (
    EXIT_NO,
    Example,
    fail,
    json_document,
    open_for_command,
    with_examples,
)


@with_examples(
    "dumpview crashlog samples/faults.dump",
    Example("dumpview crashlog --json samples/smmu-lpae4k.dump", 1),
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def crashlog(dump_path: str, as_json: bool) -> None:
    """Print the crash log: panic, registers, the ESR decoded, the FAR and its walk (and
    whether it shows the fault the ESR names), call stack, mailbox, tasks, Ccdp pairs checked
    against the tables. Exit 1 when the dump has none."""
    from dumpview.model import DumpError
    from dumpview.model.crash import crashlog_sections
    from dumpview.model.records import crashlog_records

    with open_for_command(dump_path) as dump:
        try:
            if as_json:
                text = json_document(dump, crashlog=crashlog_records(dump))
            else:
                from dumpview.cli.render import sections_text
                from dumpview.cli.style import palette

                paint = palette()
                text = "\n".join(sections_text(crashlog_sections(dump), paint))
            has_log = bool(dump.crashlogs)
        except DumpError as exc:
            fail(f"{dump_path}: {exc}")
    click.echo(text, color=None if as_json else paint.enabled)
    if not has_log:
        sys.exit(EXIT_NO)


COMMANDS = (crashlog,)
