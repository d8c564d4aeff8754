"""``dumpview open``: the inspector (the TUI) on a dump, or ``info`` when there is no terminal."""

from __future__ import annotations

import sys

import click

from dumpview.cli.common import Terminated, fail, with_examples
from dumpview.cli.info import info


@with_examples("dumpview open samples/faults.dump")
@click.command("open")
@click.argument("dump_path", metavar="[DUMP]", required=False, type=click.Path(dir_okay=False))
def open_(dump_path: str | None) -> None:
    """Open the inspector on DUMP (default: the bundled sample). Without a terminal on stdout
    it prints `info` instead."""
    if dump_path is None:
        from dumpview.cli.collect import waiting_notice
        from dumpview.samples import default_sample

        notice = waiting_notice()
        if notice is not None:
            click.echo(notice, err=True)

        dump_path = str(default_sample())
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        click.echo("dumpview: not a terminal: printing info instead of opening the app", err=True)
        ctx = click.get_current_context()
        ctx.invoke(info, dump_path=dump_path, as_json=False)
        return
    from dumpview.tui.app import DumpviewApp

    app = DumpviewApp(dump_path)
    app.run()
    if app.signal_exit is not None:
        stopped = Terminated(app.signal_exit)
        fail(stopped.message, stopped.exit_code)
    if app.return_code:
        sys.exit(app.return_code)


COMMANDS = (open_,)
