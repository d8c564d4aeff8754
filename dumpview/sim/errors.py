"""Errors of the simulated kernel, named after the errno values the Linux kernel returns.

This module owns the exception hierarchy of ``dumpview.sim``. Every error is a ``SimError``
carrying the kernel's errno name in ``errno``; its message starts with that name
(``"EINVAL: ttb 0x1234 is not 16 KiB aligned"``), so a log line reads like a kernel one.

``SimBug`` is not an errno the kernel would return: it marks misuse that the real kernel would
turn into memory corruption or a ``BUG()`` (double free, a page owned twice, use of a consumed
``Owned<Page>``). Its message names the physical address involved.
"""

from __future__ import annotations


class SimError(Exception):
    """Base of every simulator error. ``errno`` is the kernel error name (``"EINVAL"``)."""

    errno: str = "EFAULT"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        prefix = f"{self.errno}: "
        message = detail if detail.startswith(prefix) else prefix + detail
        super().__init__(message)


class EINVAL(SimError):
    """Invalid argument: misaligned address or size, address outside a range, bad flags."""

    errno = "EINVAL"


class EIO(SimError):
    """I/O error: physical address not backed by RAM, or a TTB the kernel cannot map."""

    errno = "EIO"


class ENOMEM(SimError):
    """Out of memory: the page allocator has no free block of the requested order."""

    errno = "ENOMEM"


class EEXIST(SimError):
    """Already exists."""

    errno = "EEXIST"


class ENOENT(SimError):
    """No such entry: e.g. a page-table walk found no table at the requested level."""

    errno = "ENOENT"


class EBUSY(SimError):
    """Resource busy: e.g. an object still in use."""

    errno = "EBUSY"


class SimBug(SimError):
    """Detected misuse (double free, double ownership, use after consume). Names the PA."""

    errno = "EFAULT"


__all__ = ["EBUSY", "EEXIST", "EINVAL", "EIO", "ENOENT", "ENOMEM", "SimBug", "SimError"]


class ScenarioError(ValueError):
    """A scenario name or knob that cannot be used (one line, names the knob)."""
