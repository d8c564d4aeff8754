"""dumpview: a terminal inspector for GPU crash dumps (Apple AGX UAT page tables and pages).

``dumpview.open_dump(path)`` opens a dump read-only (see ``dumpview.model``); the dump then
answers ``ranges()``, ``search()``, ``check()``, ``ptov()`` and ``export()``, and
``dumpview.diff(a, b)`` compares two dumps.
"""

__version__ = "0.1.0"  # the one place the version lives (pyproject reads it)


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


__all__ = ["__version__", "diff", "open_dump"]
