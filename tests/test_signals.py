"""Signals end dumpview cleanly: SIGINT, SIGTERM and SIGHUP during ``export`` or ``generate``
leave the target untouched, no temporary file, no worker running, one line on stderr and exit
code 128 + signal; forked export workers die with their parent even when it is SIGKILLed; the
inspector restores the terminal (alternate screen and mouse reporting off, modes back) whatever
ends it, checked on a pseudo-terminal.

Every file lives in ``tmp_path``; each test runs the real command in a subprocess.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dumpview.sim.scenarios import generate_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
STOPS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}
STOPS["SIGHUP"] = (signal.SIGHUP, 129)
MESSAGES = {
    signal.SIGINT: "dumpview: interrupted",
    signal.SIGTERM: "dumpview: terminated by SIGTERM",
    signal.SIGHUP: "dumpview: terminated by SIGHUP",
}


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fp:
                    fields = fp.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fp:
            return fp.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def writing_into(pid: int, directory: Path) -> bool:
    """Whether ``pid`` has a file open in ``directory`` that has no name yet (O_TMPFILE) or a
    hidden temporary one: it is writing the output."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link.startswith(f"{directory}/") and "deleted" in link for link in links) or any(
        link.startswith(f"{directory}/.") for link in links
    )


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def many_pages(tmp_path_factory) -> Path:
    """262,191 pages (1% dumped): export forks workers for the page records."""
    path = tmp_path_factory.mktemp("signals") / "many-pages.dump"
    generate_file(path, scenario="large", seed=2, knobs={"mapped_mib": 4096, "dumped_percent": 1})
    return path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dumpview.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "DUMPVIEW_JOBS": "2"},
    )


@pytest.mark.parametrize("name", sorted(STOPS))
def test_a_signal_during_export_leaves_nothing_behind(
    tmp_path: Path, many_pages: Path, name: str
) -> None:
    signum, code = STOPS[name]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "export.jsonl"
    target.write_text("the old export\n")
    proc = start("export", str(many_pages), "--with-data", "-o", str(target))
    wait_for(lambda: len(children_of(proc.pid)) == 2, "the export workers")
    workers = children_of(proc.pid)
    assert writing_into(proc.pid, out_dir)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert stderr.decode().splitlines() == [MESSAGES[signum]]
    assert target.read_text() == "the old export\n"
    assert [p.name for p in out_dir.iterdir()] == ["export.jsonl"]
    assert not any(alive(pid) for pid in workers)


@pytest.mark.parametrize("name", sorted(STOPS))
def test_a_signal_during_generate_leaves_nothing_behind(tmp_path: Path, name: str) -> None:
    signum, code = STOPS[name]
    target = tmp_path / "new.dump"
    target.write_bytes(b"the old dump")
    proc = start("generate", "--scenario", "large", "--mapped-mib", "512", "-o", str(target))
    wait_for(lambda: writing_into(proc.pid, tmp_path), "generate to write")
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert stderr.decode().splitlines() == [MESSAGES[signum]]
    assert target.read_bytes() == b"the old dump"
    assert [p.name for p in tmp_path.iterdir()] == ["new.dump"]


def test_workers_die_with_a_killed_parent(tmp_path: Path, many_pages: Path) -> None:
    """SIGKILL cannot be caught: the kernel kills the workers (PR_SET_PDEATHSIG), and the
    anonymous temporary file goes with the parent's descriptors."""
    target = tmp_path / "export.jsonl"
    proc = start("export", str(many_pages), "--with-data", "-o", str(target))
    wait_for(lambda: len(children_of(proc.pid)) == 2, "the export workers")
    workers = children_of(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to die", 10)
    assert list(tmp_path.iterdir()) == []


# ---- the inspector on a pseudo-terminal --------------------------------------------------------

ALT_SCREEN_OFF = b"\x1b[?1049l"
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")


class Terminal:
    """``dumpview open DUMP`` on a pseudo-terminal of 120x40: what it writes, how it ends."""

    def __init__(self, dump: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.environ["TERM"] = "xterm-256color"
            os.execv(sys.executable, [sys.executable, "-m", "dumpview.cli", "open", str(dump)])
        import fcntl

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.output = b""
        self.modes_before = termios.tcgetattr(self.fd)

    def read(self, seconds: float) -> bool:
        """Read what it writes for ``seconds``; False once it closed the terminal."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return False
                if not data:
                    return False
                self.output += data
        return True

    def wait_drawn(self) -> None:
        deadline = time.monotonic() + 30
        while b"PT_LOAD" not in self.output:
            assert time.monotonic() < deadline, self.output[-300:]
            self.read(0.1)

    def finish(self, keep_open: bool = False) -> int:
        while self.read(0.2):
            pass
        _, status = os.waitpid(self.pid, 0)
        if not keep_open:
            os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_the_inspector_restores_the_terminal_when_signalled(name: str) -> None:
    signum, code = STOPS[name]
    term = Terminal(SAMPLES / "minimal.dump")
    term.wait_drawn()
    assert b"\x1b[?1049h" in term.output and b"\x1b[?1000h" in term.output  # it took over
    drawn = len(term.output)
    modes_running = termios.tcgetattr(term.fd)
    assert not modes_running[3] & termios.ECHO  # raw mode while it runs
    os.kill(term.pid, signum)
    assert term.finish(keep_open=True) == code
    modes_after = termios.tcgetattr(term.fd)  # the terminal's modes as it left them
    os.close(term.fd)
    after = term.output[drawn:]
    assert ALT_SCREEN_OFF in after
    assert all(sequence in after for sequence in MOUSE_OFF)
    plain = re.sub(rb"\x1b\[[0-9;]*m", b"", after)  # the line is coloured on a terminal
    assert plain.rstrip().endswith(MESSAGES[signum].encode()), after[-200:]
    assert modes_after[3] & termios.ECHO and modes_after[3] & termios.ICANON  # cooked again


def test_the_inspector_restores_the_terminal_after_an_error_in_a_worker(tmp_path: Path) -> None:
    """A dump that shrinks while the inspector runs: the one-line error on the error screen,
    and quitting restores the terminal (exit 2, the line again on stderr)."""
    import shutil

    path = tmp_path / "minimal.dump"
    shutil.copyfile(SAMPLES / "minimal.dump", path)
    term = Terminal(path)
    term.wait_drawn()
    for _ in range(100):
        try:
            os.truncate(path, 4096)
            break
        except (InterruptedError, BlockingIOError):
            time.sleep(0.01)
    os.write(term.fd, b"g")  # go to a VA: its walk and its page are read
    term.read(0.5)
    os.write(term.fd, b"0xffffffa000004000\r")
    deadline = time.monotonic() + 10
    while b"cannot open" not in term.output and time.monotonic() < deadline:
        term.read(0.1)
    assert b"cannot open" in term.output, term.output[-300:]
    drawn = len(term.output)
    os.write(term.fd, b"q")
    assert term.finish() == 2
    after = term.output[drawn:]
    assert ALT_SCREEN_OFF in after and all(sequence in after for sequence in MOUSE_OFF)
    assert b"shrank" in after
