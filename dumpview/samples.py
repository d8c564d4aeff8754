"""Where the bundled sample dumps live, and which one opens by default.

Owns the lookup of ``samples/`` (beside the package in a source checkout). Raises
``FileNotFoundError`` naming the places it looked when no sample can be found.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_SAMPLE = "minimal.dump"


def samples_dir() -> Path:
    """The ``samples/`` folder of the checkout this package runs from."""
    return Path(__file__).resolve().parent.parent / "samples"


def default_sample() -> Path:
    """The sample ``dumpview`` opens when given no file."""
    path = samples_dir() / DEFAULT_SAMPLE
    if not path.is_file():
        raise FileNotFoundError(f"no bundled sample at {path}")
    return path
