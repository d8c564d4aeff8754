"""Live processes read from /proc, for the tests that check no worker outlives its parent."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

_PPID, _PGRP = 1, 2  # fields of /proc/PID/stat after the command's ")"


def _live_where(field: int, value: int) -> list[int]:
    """Live (not zombie) processes whose stat ``field`` (after the state) is ``value``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fp:
                fields = fp.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            out.append(int(entry))
    return out


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    return _live_where(_PPID, pid)


def in_group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``: a worker orphaned by its parent is
    reparented, but stays in the group."""
    return _live_where(_PGRP, pgid)


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``ready`` until it is true; a failed assertion naming ``what`` after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
