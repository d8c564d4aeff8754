"""``dumpview collect``: save every devcoredump waiting in sysfs before the kernel drops it
(``dumpview.model.collect`` does the work), and the one-line notice ``dumpview`` prints when
dumps are waiting."""

from __future__ import annotations

import os

import click

from dumpview.cli.common import EXIT_BAD_INPUT, EXIT_NO, fail, with_examples


@with_examples(
    "dumpview collect --keep -o crashes",
    "dumpview collect -o /var/crash/gpu --sysfs-root /sys",
)
@click.command()
@click.option(
    "-o",
    "--output",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the copies (created if missing).",
)
@click.option("--keep", is_flag=True, help="Leave each devcoredump in the kernel after copying.")
@click.option(
    "--sysfs-root",
    metavar="ROOT",
    help="The sysfs tree to look in [default: $DUMPVIEW_SYSFS_ROOT or /sys].",
)
def collect(out_dir: str, keep: bool, sysfs_root: str | None) -> None:
    """Copy every devcoredump waiting in ROOT/class/devcoredump into DIR (zstd, written
    atomically, named after the failing device, its driver and the time), check each copy
    reads back and opens, then release it in the kernel (unless --keep). One line per dump.
    Exit 0 all collected, 1 none waiting, 2 any failure."""
    from dumpview.model.collect import CLASS_DIR, collect_one, waiting_devcoredumps
    from dumpview.model.collect import sysfs_root as root_of

    root = root_of(sysfs_root)
    try:
        waiting = waiting_devcoredumps(root)
    except OSError as exc:
        fail(f"collect: {os.path.join(root, CLASS_DIR)}: {exc.strerror or exc}")
    if not waiting:
        click.echo(f"dumpview: no devcoredump waiting in {os.path.join(root, CLASS_DIR)}", err=True)
        raise SystemExit(EXIT_NO)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        fail(f"collect: {out_dir}: {exc.strerror or exc}")
    failures = 0
    for one in waiting:
        result = collect_one(one, out_dir, keep)
        if result.error is not None:
            failures += 1
            click.echo(f"dumpview: {result.line()}", err=True)
        else:
            click.echo(result.line())
    if failures:
        raise SystemExit(EXIT_BAD_INPUT)


def waiting_notice() -> str | None:
    """One line when devcoredumps are waiting ($DUMPVIEW_SYSFS_ROOT or /sys), else None."""
    from dumpview.model.collect import CLASS_DIR, sysfs_root, waiting_devcoredumps

    try:
        waiting = waiting_devcoredumps()
    except OSError:
        return None
    if not waiting:
        return None
    names = ", ".join(w.name + (f" ({w.device})" if w.device else "") for w in waiting)
    where = os.path.join(sysfs_root(), CLASS_DIR)
    count = f"{len(waiting)} devcoredump{'s' if len(waiting) > 1 else ''}"
    return (
        f"dumpview: {count} waiting in {where}: {names}; `dumpview collect` saves them before "
        f"the kernel drops them (opening the bundled sample)"
    )


COMMANDS = (collect,)
