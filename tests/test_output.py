"""The one writer (``dumpview.output``): what each kind of target gets, on real files in
``tmp_path`` (our own character devices, FIFOs, sockets and links; never a system path).

A regular file or a new path is replaced atomically through an exclusive temporary file and
keeps its mode; a link is written through and stays a link; a device, FIFO or socket is
written into, never renamed over; the dump being read is never a target; errors name the
target. ``generate``, ``export`` and the bookmarks sidecar all write through it.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dumpview.model import open_dump
from dumpview.output import OutputError, current_umask, open_output, plan_output, write_text
from dumpview.sim.scenarios import generate_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NULL_DEVICE = os.makedev(1, 3)  # what /dev/null is: writes vanish
FULL_DEVICE = os.makedev(1, 7)  # what /dev/full is: writes fail with ENOSPC


def char_device(path: Path, device: int = NULL_DEVICE) -> Path:
    os.mknod(path, stat.S_IFCHR | 0o666, device)
    return path


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def run_cli(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
    )


# ---- regular files and new paths: atomic -------------------------------------------------------


def test_a_new_file_gets_the_umask_default_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    write_text(target, "hello\n")
    assert target.read_text() == "hello\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()
    assert names(tmp_path) == ["new.txt"]


def test_an_existing_file_keeps_its_mode_and_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "old.txt"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    inode = target.stat().st_ino
    with open_output(target) as out:
        out.write("new\n")
        assert target.read_text() == "old\n"  # nothing is visible before the block ends
        assert names(tmp_path) == ["old.txt"]  # the temporary file is anonymous (O_TMPFILE)
        assert stat.S_IMODE(os.fstat(out.fileno()).st_mode) == 0o640
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # renamed over, not rewritten in place
    assert names(tmp_path) == ["old.txt"]


def test_a_failure_in_the_block_leaves_the_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("precious\n")
    with pytest.raises(RuntimeError), open_output(target) as out:
        out.write("half")
        raise RuntimeError("stop")
    assert target.read_text() == "precious\n"
    assert names(tmp_path) == ["keep.txt"]


def test_errors_name_the_target_not_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(OutputError) as info:
        write_text(tmp_path / "missing-dir" / "out.txt", "x")
    assert info.value.filename == str(tmp_path / "missing-dir" / "out.txt")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError) as info:
        write_text(target, "x")
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value)
    assert names(tmp_path) == []


def test_a_directory_or_a_block_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_text(tmp_path, "x")
    block = tmp_path / "disk"
    os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 250))
    with pytest.raises(OutputError, match="block device"):
        write_text(block, "x")
    assert stat.S_ISBLK(block.lstat().st_mode)


# ---- links -------------------------------------------------------------------------------------


def test_a_symlink_is_written_through_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    os.chmod(real, 0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600  # the file's own mode, not the link's
    assert names(tmp_path) == ["link.txt", "real.txt"]


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "made.txt")
    write_text(link, "made\n")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "made\n"


def test_a_link_can_be_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    link = tmp_path / "sidecar"
    link.symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        write_text(link, "x", follow_symlinks=False)
    assert victim.read_text() == "victim\n" and link.is_symlink()


def test_generate_never_follows_a_planted_link_to_its_temporary_file(tmp_path: Path) -> None:
    """The old writer used OUT.tmp-PID: a link planted there overwrote (and, on failure,
    emptied) any file. Now the temporary name is unpredictable and created exclusively."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    out = tmp_path / "out.dump"
    for pid in (os.getpid(), os.getpid() + 1):
        (tmp_path / f"out.dump.tmp-{pid}").symlink_to(victim)
    generate_file(out, scenario="minimal")
    assert victim.read_bytes() == b"do not touch"
    with open_dump(out) as dump:
        assert dump.segment_count > 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == [
        "out.dump",
        "victim",
    ]


# ---- devices, FIFOs, sockets: streamed into ----------------------------------------------------


def test_a_character_device_is_written_into_never_replaced(tmp_path: Path) -> None:
    device = char_device(tmp_path / "null")
    generate_file(device, scenario="minimal")
    with open_dump(SAMPLES / "minimal.dump") as dump:
        dump.export(str(device))
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert device.lstat().st_rdev == NULL_DEVICE
    assert names(tmp_path) == ["null"]  # no temporary file beside it either


def test_a_link_to_a_character_device_streams_into_the_device(tmp_path: Path) -> None:
    device = char_device(tmp_path / "null")
    link = tmp_path / "out"
    link.symlink_to(device)
    write_text(link, "x" * 100)
    assert link.is_symlink() and stat.S_ISCHR(device.lstat().st_mode)


def test_a_fifo_with_a_reader_gets_the_bytes(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fp:
            received.append(fp.read())

    reader = threading.Thread(target=read)
    reader.start()
    write_text(fifo, "through the fifo\n")
    reader.join(10)
    assert received == [b"through the fifo\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and names(tmp_path) == ["fifo"]


def test_a_fifo_without_a_reader_is_waited_for_cancellably(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(OutputError) as info:
        write_text(fifo, "x", cancelled=lambda: time.monotonic() - started > 0.3)
    assert info.value.filename == str(fifo) and "cancelled" in info.value.strerror
    assert 0.3 < time.monotonic() - started < 5
    with pytest.raises(OutputError, match="no reader"):
        write_text(fifo, "x", fifo_timeout=0.2)


def test_a_fifo_without_a_reader_ends_on_sigterm_from_the_cli(tmp_path: Path) -> None:
    """``export -o FIFO`` with nobody reading: SIGTERM ends it at once, one line, 143."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dumpview.cli",
            "export",
            str(SAMPLES / "minimal.dump"),
            "-o",
            str(fifo),
        ],
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    proc.terminate()
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert stderr.decode().splitlines() == ["dumpview: terminated by SIGTERM"]


def test_a_unix_socket_is_connected_to(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            received.append(b"".join(chunks))

    thread = threading.Thread(target=serve)
    thread.start()
    write_text(path, "over the socket\n")
    thread.join(10)
    server.close()
    assert received == [b"over the socket\n"]
    assert stat.S_ISSOCK(path.lstat().st_mode)


# ---- the dump is never a target ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_the_dump_being_read_is_never_a_target(tmp_path: Path, how: str) -> None:
    dump_path = tmp_path / "crash.dump"
    dump_path.write_bytes((SAMPLES / "minimal.dump").read_bytes())
    before = dump_path.read_bytes()
    target = tmp_path / "target"
    if how == "same":
        target = dump_path
    elif how == "symlink":
        target.symlink_to(dump_path)
    else:
        os.link(dump_path, target)
    with open_dump(dump_path) as dump:
        with pytest.raises(OutputError, match="the dump itself") as info:
            dump.export(str(target))
        assert info.value.filename == str(target)
        with pytest.raises(OutputError):
            plan_output(target, avoid=[dump.fileno()])
    assert dump_path.read_bytes() == before


def test_stdout_that_is_the_dump_is_refused(tmp_path: Path) -> None:
    dump_path = tmp_path / "crash.dump"
    dump_path.write_bytes((SAMPLES / "minimal.dump").read_bytes())
    before = dump_path.read_bytes()
    with open(dump_path, "ab") as stdout:
        proc = run_cli("export", str(dump_path), stdout=stdout)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "dumpview: export: <stdout>: is the dump itself: refusing to write over the dump being read"
    ]
    assert dump_path.read_bytes() == before


# ---- standard output ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("info", "DUMP"),
        ("export", "DUMP"),
        ("read", "--raw", "DUMP", "0xffffffa000000000", "16384"),
        ("check", "DUMP"),
    ],
)
def test_a_full_stdout_is_named(tmp_path: Path, args: tuple[str, ...]) -> None:
    full = char_device(tmp_path / "full", FULL_DEVICE)
    argv = [str(SAMPLES / "minimal.dump") if a == "DUMP" else a for a in args]
    with open(full, "wb") as stdout:
        proc = run_cli(*argv, stdout=stdout)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert lines[-1].endswith("<stdout>: No space left on device"), lines
    assert len([line for line in lines if "warning" not in line]) == 1, lines


def test_export_to_a_device_and_through_a_link_from_the_cli(tmp_path: Path) -> None:
    device = char_device(tmp_path / "null")
    proc = run_cli("export", str(SAMPLES / "minimal.dump"), "-o", str(device))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(device.lstat().st_mode)
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    os.chmod(real, 0o604)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    proc = run_cli("export", str(SAMPLES / "minimal.dump"), "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and real.read_text().startswith('{"record":"header"')
    assert stat.S_IMODE(real.stat().st_mode) == 0o604
    assert names(tmp_path) == ["link.jsonl", "null", "real.jsonl"]
