"""dumpview: a terminal inspector for GPU crash dumps (Apple AGX UAT page tables and pages).

``dumpview.open_dump(path)`` opens a dump read-only (see ``dumpview.model``).
"""

__version__ = "0.1.0"  # the one place the version lives (pyproject reads it)


def open_dump(path):
    """Open a dump read-only: ``dumpview.model.open_dump``."""
    from dumpview.model import open_dump as _open

    return _open(path)


__all__ = ["__version__", "open_dump"]
