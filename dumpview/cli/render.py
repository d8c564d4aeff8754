"""Text renderers the commands share: how a page's data state reads, a walk with its last line,
a run ``read`` could not show, a context's line, the triage report and a batch's rows and
signature groups, and titled sections (the crash log as the inspector shows it).

Each takes model results (``Translation``, ``ReadRun``, ``info``'s context dicts) and a
``style.Palette`` and returns lines; numbers go through ``model.numbers`` so every output
writes them alike. Colour is only added by the palette (none when piped). Nothing here raises
for a result the model returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dumpview.model.numbers import byte_count, count, size
from dumpview.model.text import data_state, pa_text, walk_lines

if TYPE_CHECKING:
    from dumpview.cli.style import Palette
    from dumpview.model.crash import Section
    from dumpview.model.read import ReadRun
    from dumpview.model.translate import Translation
    from dumpview.model.triage import Triage
    from dumpview.model.triage_batch import Outcome, SignatureGroups


def state_text(dumped: bool, reason: str | None, detail: str | None) -> str:
    """How a text output says whether a page has data: "dumped", "not dumped: REASON
    (DETAIL)", "not mapped: …" or "context not dumped (…)"."""
    from dumpview.model.contexts import CONTEXT_NOT_DUMPED
    from dumpview.model.read import NOT_MAPPED
    from dumpview.model.translate import NO_PT_LOAD

    if reason == CONTEXT_NOT_DUMPED:
        return "context not dumped" + (f" ({detail})" if detail else "")
    if reason == NOT_MAPPED:
        return "not mapped" + (f": {detail}" if detail else "")
    if reason == NO_PT_LOAD:
        return "not in any PT_LOAD"
    return data_state(dumped, reason, detail)


def leaf_line(t: Translation) -> str:
    """The last line of a mapped walk: PA, attributes, block, whether the page has data."""
    from dumpview.model.translate import walk_state

    leaf = t.leaf
    block = (
        f"L{leaf.level} block of {size(leaf.block_size_bytes)}, " if leaf.block_size_bytes else ""
    )
    state = state_text(*walk_state(t))
    return (
        f"VA {t.va:#x} -> {pa_text(t.pa, t.pa_raw, leaf.oas)}  "
        f"{leaf.memattr_name}, {leaf.permissions}, {block}{state}"
        + ("  (levels rebuilt from the VA: driver dump)" if t.rebuilt else "")
    )


def walk_text(t: Translation, paint: Palette) -> list[str]:
    """One line per level of the walk (``text.walk_lines``), then ``leaf_line`` when mapped."""
    lines = [paint.paint("label", line[:3]) + line[3:] for line in walk_lines(t)]
    if t.mapped:
        head, sep, rest = leaf_line(t).partition("  ")
        lines.append(paint.paint("heading", head) + sep + rest)
    return lines


def gap_line(run: ReadRun, paint: Palette) -> str:
    """A run ``read`` has no bytes for, as one marked line in the hex dump's address column."""
    what = state_text(False, run.reason, run.detail)
    return f"{run.address:016x}  " + paint.paint(
        "marker", f"** {byte_count(run.size_bytes)} {what} **"
    )


def context_lines(contexts: list[dict]) -> list[str]:
    """One line per context of the ``info --json`` document: number, whether its pages are in
    the dump, TTB (owned by the driver or borrowed from the firmware), ASID, pages, tables."""
    out = []
    for c in contexts:
        ttb = "TTB not recorded"
        if c["ttb_pa"] is not None:
            owner = {True: "owned", False: "borrowed", None: ""}[c["ttb_owned"]]
            ttb = f"TTB {c['ttb_pa']} {owner}".rstrip()
        state = "dumped" if c["dumped"] else "tables only"
        pages = f"{count(c['pages_mapped'])} pages"
        if c["dumped"]:
            pages += f", {count(c['pages_dumped'])} dumped"
        tables = f", {count(c['tables'])} tables" if c["tables"] else ""
        out.append(
            f"{c['context']:<3} {state:<11}  {ttb:<29} ASID {c['asid']:<3} "
            f"VA {c['va_start']:<18}  {pages}{tables}"
        )
    return out


_TONE_ROLES = {
    "severe": "anomaly:severe",
    "ok": "ok",
    "warning": "warning",
    "not-dumped": "not-dumped",
}


def _toned(paint: Palette, tone: str | None, text: str) -> str:
    if tone is None:
        return text
    if tone.startswith("anomaly:"):
        return paint.anomaly(tone.split(":", 1)[1], text)
    return paint.paint(_TONE_ROLES.get(tone, ""), text)


def triage_text(report: Triage, paint: Palette) -> list[str]:
    """The triage report: the dump's path, then each ``TriageLine`` under its section's label
    (the label on a section's first line only), coloured by its tone."""
    from dumpview.model.triage_text import SECTION_LABELS

    width = max(len(label) for label in SECTION_LABELS.values())
    out = [paint.paint("heading", report.path)]
    previous = None
    for line in report.lines():
        label = SECTION_LABELS[line.section] if line.section != previous else ""
        previous = line.section
        text = line.text
        if line.section == "signature":
            text = paint.paint("heading", text)
        out.append(
            f"  {paint.paint('label', f'{label:<{width}}')} {_toned(paint, line.tone, text)}"
        )
    return out


def triage_row(outcome: Outcome, paint: Palette) -> str:
    """One dump of a batch: "PATH  SIGNATURE  summary", or "PATH  error: …"."""
    if outcome.record is None:
        return f"{outcome.path}  " + paint.paint("error", f"error: {outcome.error}")
    record = outcome.record
    return f"{outcome.path}  {paint.paint('heading', record['signature'])}  {record['summary']}"


def group_lines(groups: SignatureGroups, paint: Palette) -> list[str]:
    """The signatures of a batch, most frequent first: count, signature, an example path."""
    rows = groups.groups()
    unreadable = f", {count(groups.unreadable)} unreadable" if groups.unreadable else ""
    head = (
        f"{count(groups.dumps)} dump{'' if groups.dumps == 1 else 's'}{unreadable}, "
        f"{count(len(rows))} signature{'' if len(rows) == 1 else 's'}{':' if rows else ''}"
    )
    width = max((len(signature) for signature, _n, _e in rows), default=0)
    return [paint.paint("heading", head)] + [
        f"  {count(n):>7}  {signature:<{width}}  e.g. {example}" for signature, n, example in rows
    ]


def sections_text(sections: list[Section], paint: Palette) -> list[str]:
    """Titled plain-text sections (``model.crash.crashlog_sections``, what the inspector's
    crash-log tab shows): a heading each, lines indented, DISAGREE lines in the severe colour."""
    out: list[str] = []
    for section in sections:
        if out:
            out.append("")
        out.append(paint.paint("heading", section.title))
        for line in section.lines:
            text = paint.paint("anomaly:severe", line) if "DISAGREE" in line else line
            out.append(f"  {text}")
    return out
