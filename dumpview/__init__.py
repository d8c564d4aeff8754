"""dumpview: a terminal inspector for GPU crash dumps (Apple AGX UAT page tables and pages).

``dumpview.open_dump(path)`` opens a dump read-only (see ``dumpview.model``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dumpview")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"


def open_dump(path):
    """Open a dump read-only: ``dumpview.model.open_dump``."""
    from dumpview.model import open_dump as _open

    return _open(path)


__all__ = ["__version__", "open_dump"]
