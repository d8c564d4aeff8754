"""``dumpview check`` (anomalies of one dump) and ``dumpview diff`` (what changed between two)."""

from __future__ import annotations

import json
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
from dumpview.model.numbers import address, count, size


@with_examples(
    Example("dumpview check samples/faults.dump", 1),
    "dumpview check --json --kind write-exec samples/smmu-lpae4k.dump",
)
@click.command()
@click.argument("dump_path", metavar="DUMP", type=click.Path(dir_okay=False))
@click.option("--kind", "only", multiple=True, metavar="KIND", help="Only this kind (repeatable).")
@click.option("--ignore", multiple=True, metavar="KIND", help="Skip this kind (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def check(dump_path: str, only: tuple[str, ...], ignore: tuple[str, ...], as_json: bool) -> None:
    """Find anomalies: aliases with different memattr, normal memory on MMIO, device memory on
    RAM, RAM not dumped, bad or empty tables, mappings outside the managed range, output
    addresses beyond the OAS, crash-log pairs that disagree, W+X. Exit 0 clean, 1 found."""
    from dumpview.model.check import KINDS

    for name in (*only, *ignore):
        if name not in KINDS:
            fail(f"check: unknown kind {name!r} (known: {', '.join(KINDS)})")
    wanted = [k for k in (only or KINDS) if k not in ignore]
    with open_for_command(dump_path) as dump:
        result = dump.check(wanted)
        if as_json:
            doc = {
                "clean": result.clean,
                "counts": {k: n for k, n in result.counts().items() if k in wanted},
                "skipped": [{"kind": k, "reason": why} for k, why in result.skipped],
            }
            anomalies = [a.to_dict() for a in result.anomalies]
            click.echo(json_document(dump, check=doc, anomalies=anomalies))
        else:
            from dumpview.cli.style import palette

            paint = palette()
            for a in result.anomalies:
                where = (
                    f"VA {address(a.va)}"
                    if a.va is not None
                    else (f"PA {address(a.pa)}" if a.pa is not None else "-")
                )
                kind = paint.anomaly(a.kind, f"{a.kind:<24}")
                click.echo(f"{kind} {where:<24} {a.message}", color=paint.enabled)
            for kind, why in result.skipped:
                click.echo(f"dumpview: not checked: {kind}: {why}", err=True)
            found = {k: n for k, n in result.counts().items() if n}
            summary = ", ".join(f"{count(n)} {k}" for k, n in found.items()) or "no anomalies"
            click.echo(f"{dump_path}: {summary}", err=True)
    if not result.clean:
        sys.exit(EXIT_NO)


@with_examples(
    Example("dumpview diff samples/minimal.dump samples/faults.dump", 1),
    "dumpview diff --no-contents samples/minimal.dump samples/minimal.dump",
)
@click.command()
@click.argument("a_path", metavar="A", type=click.Path(dir_okay=False))
@click.argument("b_path", metavar="B", type=click.Path(dir_okay=False))
@click.option("--no-contents", is_flag=True, help="Compare mappings only, not page bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def diff(a_path: str, b_path: str, no_contents: bool, as_json: bool) -> None:
    """Compare two dumps by VA: mappings added, removed or changed (PA, attributes, dumped),
    pages whose bytes changed, tables added or removed. Exit 0 identical, 1 different."""
    from dumpview.model.diff import DiffError
    from dumpview.model.diff import diff as diff_dumps
    from dumpview.model.export import SCHEMA_ID, header

    if a_path == b_path == "-":
        fail("diff: only one of A and B can be standard input (-)")
    with open_for_command(a_path) as a, open_for_command(b_path) as b:
        try:
            result = diff_dumps(a, b, compare_contents=not no_contents)
        except DiffError as exc:
            fail(f"diff: {exc}")
        if as_json:
            doc = {
                "schema": SCHEMA_ID,
                "dumps": {"a": header(a, (), False)["dump"], "b": header(b, (), False)["dump"]},
                "diff": result.to_dict(),
            }
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo("\n".join(_diff_lines(result)))
    if not result.identical:
        sys.exit(EXIT_NO)


def _diff_lines(result) -> list[str]:

    lines = []
    for title, runs, sign in (
        ("added", result.added, "+"),
        ("removed", result.removed, "-"),
        ("changed", result.changed, "~"),
    ):
        for r in runs:
            pa = r.pa_b if r.pa_b is not None else r.pa_a
            what = f"  ({', '.join(r.changes)})" if r.changes else ""
            detail = ""
            if r.changes:
                detail = (
                    f"  PA {r.pa_a:#x} -> {r.pa_b:#x}" if "pa" in r.changes else f"  PA {pa:#x}"
                )
                if "attributes" in r.changes:
                    detail += f", p_flags {r.flags_a:#x} -> {r.flags_b:#x}"
                if "dumped" in r.changes:
                    detail += f", dumped {r.dumped_a} -> {r.dumped_b}"
            else:
                detail = f"  PA {pa:#x}"
            lines.append(
                f"{sign} {title:<8} {r.va_start:#018x}-{r.va_end:#018x} "
                f"{size(r.va_end - r.va_start):>7}{detail}{what}"
            )
    for c in result.contents:
        lines.append(
            f"~ contents {c.va_start:#018x}-{c.va_end:#018x} {c.pages:,} page(s), "
            f"{c.bytes_changed:,} byte(s) differ"
        )
    for title, tables, sign in (
        ("table added", result.tables_added, "+"),
        ("table removed", result.tables_removed, "-"),
    ):
        for t in tables:
            where = "rebuilt" if t.pa is None else f"PA {t.pa:#x}"
            lines.append(
                f"{sign} {title} L{t.level} context {t.context} "
                f"{t.va_start:#018x}-{t.va_end:#018x} ({where})"
            )
    summary = result.summary()
    lines.append(
        "identical"
        if result.identical
        else "; ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary.items() if v)
    )
    return lines


COMMANDS = (check, diff)
