"""Signals end dumpview cleanly: SIGINT, SIGTERM and SIGHUP during ``export`` or ``generate``
leave the target untouched, no temporary file, no worker running, one line on stderr and exit
code 128 + signal; forked export workers die with their parent even when it is SIGKILLed; the
same for ``triage --jobs 2`` over a directory of dumps, whether the signal goes to dumpview
alone (``kill``) or to its whole process group (Ctrl+C, a terminal hanging up, ``timeout``);
the inspector restores the terminal (alternate screen and mouse reporting off, modes back)
whatever ends it, checked on a pseudo-terminal.

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
from pathlib import Path

import pytest
from procs import children_of, in_group, wait_for

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


# ---- triage --jobs: forked workers -------------------------------------------------------------

TRIAGE_DUMPS = 40


@pytest.fixture(scope="module")
def dump_dir(tmp_path_factory) -> Path:
    """40 small generated dumps (minimal and faults, ~1 MB each, sparse)."""
    directory = tmp_path_factory.mktemp("triage-signals")
    for n in range(TRIAGE_DUMPS):
        scenario = "faults" if n % 4 == 0 else "minimal"
        generate_file(directory / f"crash-{n:02d}.dump", scenario=scenario, seed=n)
    return directory


def start_triage(dump_dir: Path) -> subprocess.Popen:
    """``triage --json --jobs 2`` in its own process group, its output a pipe nobody reads
    until the signal is sent: ~4 KB a record, 160 KB in all, fills the pipe, so the batch is
    still running whenever the signal arrives (the parent waiting on its workers or blocked
    writing), on any machine."""
    return subprocess.Popen(
        [sys.executable, "-m", "dumpview.cli", "triage", "--json", "--jobs", "2", str(dump_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    ("name", "to"),
    [(name, "process") for name in sorted(STOPS)] + [("SIGINT", "group"), ("SIGHUP", "group")],
)
def test_a_signal_during_triage_reaps_every_worker(dump_dir: Path, name: str, to: str) -> None:
    """``kill PID`` reaches dumpview alone; Ctrl+C and a terminal hanging up reach every process
    of the group at once (the workers die by the signal too, and that is not a line of its
    own). Either way: one line, 128 + signal, whole records before it, no process left."""
    import json

    signum, code = STOPS[name]
    proc = start_triage(dump_dir)
    try:
        wait_for(lambda: len(children_of(proc.pid)) == 2, "the triage workers")
        workers = children_of(proc.pid)
        if to == "group":
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the test fails
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == code, stderr.decode()
    assert stderr.decode().splitlines() == [MESSAGES[signum]]
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    assert len(records) < TRIAGE_DUMPS  # it was stopped mid-run
    assert all(r["record"] == "triage" and r["path"].startswith(str(dump_dir)) for r in records)
    assert not any(alive(pid) for pid in workers)
    assert in_group(proc.pid) == []  # no worker, not even a replacement, outlives it


def test_triage_workers_die_with_a_killed_parent(dump_dir: Path) -> None:
    """SIGKILL cannot be caught: the kernel kills the workers (PR_SET_PDEATHSIG)."""
    proc = start_triage(dump_dir)
    wait_for(lambda: len(children_of(proc.pid)) == 2, "the triage workers")
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: in_group(proc.pid) == [], "the workers to die", 10)


# ---- collect -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_signal_during_collect_leaves_no_copy_and_keeps_the_dump(
    tmp_path: Path, name: str
) -> None:
    """A devcoredump whose ``data`` arrives slowly (a FIFO stands in for sysfs): the signal
    comes while the copy is being written. Nothing is linked into the directory (the dump is
    released only after its copy is), one line, 128 + signal."""
    signum, code = STOPS[name]
    devcd = tmp_path / "sys" / "class" / "devcoredump" / "devcd1"
    devcd.mkdir(parents=True)
    data = devcd / "data"
    os.mkfifo(data)
    out = tmp_path / "crash"
    proc = start("collect", "--sysfs-root", str(tmp_path / "sys"), "-o", str(out))
    writer = os.open(data, os.O_WRONLY)  # returns once collect has opened it to read
    try:
        os.write(writer, (SAMPLES / "minimal.dump").read_bytes()[: 1 << 19])
        wait_for(lambda: writing_into(proc.pid, out), "collect to write its copy")
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        os.close(writer)
    assert proc.returncode == code
    assert stderr.decode().splitlines() == [MESSAGES[signum]]
    assert list(out.iterdir()) == []


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
    # The guard's line: "shrank" when a size check saw it first, "truncated it" when the lease
    # broke first (which one depends on how the two processes were scheduled).
    assert b"shrank" in after or b"truncated it" in after, after[-300:]
