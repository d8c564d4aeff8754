"""dumpview: a terminal inspector for GPU crash dumps (Apple AGX UAT and ARM LPAE page tables).

``dumpview.open_dump(path)`` opens a dump read-only (see ``dumpview.model``). The queries are
small typed functions over an open ``Dump``, as drgn's helpers are over a program, and the
``Dump`` methods of the same names forward to them:

- ``translate(dump, va, context=None) -> Translation``: the walk, level by level;
- ``ranges(dump, va_start, va_end, context=None) -> RangeTable``: coalesced mappings;
- ``contexts(dump) -> list[ContextInfo]``: the address spaces (TTB, owned, ASID, pages);
- ``read_runs(dump, va, size, context=None)``, ``read_runs_pa(dump, pa, size)``
  ``-> list[ReadRun]``: bytes and marked gaps, never zeros;
- ``search(dump, pattern_bytes, va_start, va_end, limit) -> SearchResult``;
- ``check(dump, kinds=None) -> CheckResult``: anomalies;
- ``ptov(dump, pa) -> list[Mapping]``: every VA of a PA;
- ``fault(dump) -> Fault | None``: the crash log's FAR, ESR and the FAR's walk;
- ``triage(dump) -> Triage``: what most likely happened, each fact with its address, and the
  bug's signature;
- ``parse_location(text) -> Location``: ``VA``, ``CTX:VA`` or ``p:PA`` as every command reads it;

and ``dumpview.diff(a, b)`` compares two dumps. Importing ``dumpview`` stays cheap: each
helper's module is imported on first use.
"""

from importlib import import_module

__version__ = "0.1.0"  # the one place the version lives (pyproject reads it)

# name -> (module, attribute): the helpers, imported on first use (PEP 562).
HELPERS: dict[str, tuple[str, str]] = {
    "translate": ("dumpview.model.translate", "translate"),
    "ranges": ("dumpview.model.contexts", "context_ranges"),
    "contexts": ("dumpview.model.contexts", "contexts"),
    "read_runs": ("dumpview.model.read", "read_runs"),
    "read_runs_pa": ("dumpview.model.read", "read_runs_pa"),
    "search": ("dumpview.model.search", "search"),
    "check": ("dumpview.model.check", "check"),
    "ptov": ("dumpview.model.ptov", "ptov"),
    "fault": ("dumpview.model.crash", "fault"),
    "triage": ("dumpview.model.triage", "triage"),
    "parse_location": ("dumpview.model.location", "parse_location"),
}


def __getattr__(name: str):
    """The helpers of ``HELPERS``, imported when first asked for."""
    target = HELPERS.get(name)
    if target is None:
        raise AttributeError(f"module 'dumpview' has no attribute {name!r}")
    value = getattr(import_module(target[0]), target[1])
    globals()[name] = value
    return value


def open_dump(path, progress=None, cancel=None):
    """Open a dump read-only (a file, a compressed file, ``-``, a FIFO, a device):
    ``dumpview.model.open_dump``."""
    from dumpview.model import open_dump as _open

    return _open(path, progress, cancel)


def diff(a, b, compare_contents: bool = True):
    """What changed from dump ``a`` to dump ``b`` (open dumps or paths), by VA:
    ``dumpview.model.diff.diff``. Raises ``DiffError`` when they cannot be compared."""
    from dumpview.model import Dump
    from dumpview.model import open_dump as _open
    from dumpview.model.diff import diff as _diff

    opened = [None if isinstance(x, Dump) else _open(x) for x in (a, b)]
    try:
        return _diff(opened[0] or a, opened[1] or b, compare_contents=compare_contents)
    finally:
        for dump in opened:
            if dump is not None:
                dump.close()


def __dir__() -> list[str]:
    return sorted([*globals(), *HELPERS])


__all__ = ["__version__", "diff", "open_dump", *HELPERS]
