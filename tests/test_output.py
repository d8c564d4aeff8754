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


# ---- no clobber, durable, an explicit mode (what ``collect`` writes through) -------------------

TEMPORARY = ["anonymous", "named"]  # O_TMPFILE, or mkstemp's where the file system has none


def _temporaries(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "named":
        monkeypatch.delattr(os, "O_TMPFILE")


@pytest.mark.parametrize("how", TEMPORARY)
def test_no_clobber_never_overwrites_a_name_taken_after_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Files appear at the name, at NAME-2 and (a dangling link) at NAME-3 while the content is
    being written: each is left exactly as it is, and the content goes to NAME-4."""
    _temporaries(monkeypatch, how)
    target = tmp_path / "gpu-20250101T000000Z.dump.zst"
    victim = tmp_path / "victim"
    with open_output(target, binary=True, no_clobber=True, suffix=".dump.zst") as out:
        out.write(b"the new copy")
        assert out.name == str(target)  # what was asked for, until the commit says otherwise
        if how == "named":
            assert len(names(tmp_path)) == 1 and names(tmp_path)[0].startswith(f".{target.name}.")
        target.write_bytes(b"raced in")
        (tmp_path / "gpu-20250101T000000Z-2.dump.zst").write_bytes(b"also raced in")
        (tmp_path / "gpu-20250101T000000Z-3.dump.zst").symlink_to(victim)
    final = tmp_path / "gpu-20250101T000000Z-4.dump.zst"
    assert out.name == str(final)
    assert final.read_bytes() == b"the new copy"
    assert target.read_bytes() == b"raced in"
    assert (tmp_path / "gpu-20250101T000000Z-2.dump.zst").read_bytes() == b"also raced in"
    assert not victim.exists()  # the link was a taken name, never followed
    assert names(tmp_path) == sorted(
        ["gpu-20250101T000000Z.dump.zst"]
        + [f"gpu-20250101T000000Z-{n}.dump.zst" for n in (2, 3, 4)]
    )


def test_no_clobber_takes_the_name_itself_when_free_and_numbers_by_extension(
    tmp_path: Path,
) -> None:
    first = tmp_path / "report.txt"
    with open_output(first, no_clobber=True) as out:
        out.write("one\n")
    assert out.name == str(first) and first.read_text() == "one\n"
    with open_output(first, no_clobber=True) as out:  # no suffix given: before ".txt"
        out.write("two\n")
    assert out.name == str(tmp_path / "report-2.txt") and first.read_text() == "one\n"
    assert (tmp_path / "report-2.txt").read_text() == "two\n"


def test_no_clobber_with_every_name_taken_fails_naming_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dumpview.output as output

    monkeypatch.setattr(output, "NO_CLOBBER_NAMES", 3)
    target = tmp_path / "a.bin"
    for name in ("a.bin", "a-2.bin", "a-3.bin"):
        (tmp_path / name).write_bytes(b"taken")
    with pytest.raises(OutputError) as info, open_output(target, binary=True, no_clobber=True) as f:
        f.write(b"nowhere to go")
    assert info.value.errno == errno.EEXIST and info.value.filename == str(target)
    assert names(tmp_path) == ["a-2.bin", "a-3.bin", "a.bin"]
    assert all((tmp_path / n).read_bytes() == b"taken" for n in names(tmp_path))


@pytest.mark.parametrize("how", TEMPORARY)
def test_a_stop_signal_prevents_a_no_clobber_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    import signal

    import dumpview.output as output

    _temporaries(monkeypatch, how)
    target = tmp_path / "copy.dump.zst"
    with pytest.raises(output.Stopped), open_output(target, binary=True, no_clobber=True) as out:
        out.write(b"half a copy")
        monkeypatch.setattr(output, "stop_signal", signal.SIGTERM)
    assert names(tmp_path) == []


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_new_mode_is_exact_and_an_existing_file_keeps_its_own(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        secret = tmp_path / "secret.dump"
        with open_output(secret, binary=True, no_clobber=True, new_mode=0o600) as out:
            out.write(b"GPU memory")
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        fresh = tmp_path / "fresh.dump"
        write_text(fresh, "x", new_mode=0o640)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # exact: the umask is not applied
        plain = tmp_path / "plain.txt"
        write_text(plain, "x")
        assert stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
        os.chmod(plain, 0o644)
        write_text(plain, "y", new_mode=0o600)  # replaced: the target's mode is kept
        assert stat.S_IMODE(plain.stat().st_mode) == 0o644 and plain.read_text() == "y"
    finally:
        os.umask(previous)


@pytest.mark.parametrize("no_clobber", [False, True])
def test_durable_fsyncs_the_file_before_its_name_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_clobber: bool
) -> None:
    target = tmp_path / "out.bin"
    real_fsync = os.fsync
    calls: list[tuple[str, bool]] = []  # (what was fsynced, whether the target existed then)

    def counting(fd: int) -> None:
        kind = "directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    with open_output(target, binary=True, durable=True, no_clobber=no_clobber) as out:
        out.write(b"must survive a power cut")
    assert calls == [("file", False), ("directory", True)]
    assert target.read_bytes() == b"must survive a power cut"
    calls.clear()
    with open_output(tmp_path / "cheap.bin", binary=True, no_clobber=no_clobber) as out:
        out.write(b"cheap to redo")
    assert calls == []  # not durable: no fsync at all


def test_scratch_files_have_no_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dumpview.output import scratch_file

    for how in TEMPORARY:
        _temporaries(monkeypatch, how)
        with scratch_file(str(tmp_path)) as fp:
            fp.write(b"scratch")
            fp.seek(0)
            assert fp.read() == b"scratch"
            assert names(tmp_path) == []
