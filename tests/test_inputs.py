"""Inputs people actually have: compressed dumps (zstd, xz, gzip, bzip2, compressed by the
system's own tools where installed), standard input, FIFOs, devices and unsized files. Each is
checked against the uncompressed dump: the same ``info --json`` (but for ``source``), the same
export and the same page bytes; broken streams are one line naming the offset; the spool never
outlives the process; a FIFO without a writer never hangs anything the user cannot cancel."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from procs import wait_for

import dumpview
from dumpview.model import DumpFormatError
from dumpview.model.decompress import zstd
from dumpview.model.source import SPARSE_BLOCK, InputError, OpenCancelled, open_input

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = ROOT / "samples" / "minimal.dump"
PAGE_VA = 0xFFFF_FFA0_0000_0000  # dumped in minimal.dump
TOOLS = {
    "zstd": ["zstd", "-q", "-c"],
    "xz": ["xz", "-c"],
    "gzip": ["gzip", "-c"],
    "bzip2": ["bzip2", "-c"],
}
LIBS = {
    "zstd": zstd.compress,
    "xz": lzma.compress,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
}


def compress(kind: str, data: bytes) -> bytes:
    """``data`` compressed by the system's tool when installed (an independent writer), else
    by the library."""
    tool = TOOLS[kind]
    if shutil.which(tool[0]):
        return subprocess.run(tool, input=data, capture_output=True, check=True).stdout
    return LIBS[kind](data)


@pytest.fixture(autouse=True)
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Spools of this test go to its own directory (in process and in subprocesses)."""
    directory = tmp_path / "spool"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


def run(*args: str, stdin=subprocess.DEVNULL, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=stdin,
        timeout=timeout,
    )
    if isinstance(stdin, int) and stdin >= 0:
        os.close(stdin)  # a pipe's read end handed to the child
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dumpview.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def without_source(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "source"}


def export_records(text: str) -> list[dict]:
    """An export's records with what may differ between inputs removed: the header's path and
    the info record's source."""
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        if record.get("record") == "header":
            record["dump"].pop("path")
        if record.get("record") == "info":
            record.pop("source")
    return records


@pytest.fixture(scope="module")
def plain() -> dict:
    """What the uncompressed dump gives: info --json, the export, a page's bytes."""
    data = MINIMAL.read_bytes()
    info = json.loads(run("info", "--json", str(MINIMAL)).stdout)
    export = run("export", str(MINIMAL), "--include", "info,pages,tables").stdout.decode()
    page = run("read", "--raw", str(MINIMAL), hex(PAGE_VA), "16384").stdout
    assert info["source"] == {
        "kind": "file",
        "input": "file",
        "size_bytes": len(data),
        "compressed_size_bytes": None,
        "spooled": False,
    }
    assert len(page) == 16384 and page.strip(b"\0")
    return {"data": data, "info": info, "export": export_records(export), "page": page}


def check_round_trip(plain: dict, arg: str, feed, kind: str, input_kind: str) -> None:
    """``info --json``, ``export`` and ``read --raw`` of ``arg`` (``feed()`` gives each run its
    stdin and starts any writer) equal the plain dump's."""
    outputs = []
    for argv in (
        ("info", "--json", arg),
        ("export", arg, "--include", "info,pages,tables"),
        ("read", "--raw", arg, hex(PAGE_VA), "16384"),
    ):
        proc = run(*argv, stdin=feed())
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == b""
        outputs.append(proc.stdout)
    info = json.loads(outputs[0])
    assert without_source(info) == without_source(plain["info"])
    source = info["source"]
    assert source["kind"] == kind and source["input"] == input_kind
    assert source["size_bytes"] == len(plain["data"]) and source["spooled"] is True
    assert export_records(outputs[1].decode()) == plain["export"]
    assert outputs[2] == plain["page"]


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2"])
def test_compressed_file_round_trip(plain: dict, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "dump.bin"  # no telling suffix: the magic decides
    packed = compress(kind, plain["data"])
    path.write_bytes(packed)
    check_round_trip(plain, str(path), lambda: subprocess.DEVNULL, kind, "file")
    with dumpview.open_dump(path) as dump:  # the API: same bytes, what it was
        assert hashlib.sha256(dump.buffer).digest() == hashlib.sha256(plain["data"]).digest()
        assert dump.source.compressed_size_bytes == len(packed)
        assert dump.source.describe().startswith(f"{kind}, 945.6 KiB decompressed from ")


def test_info_text_names_the_source(tmp_path: Path) -> None:
    path = tmp_path / "dump.zst"
    path.write_bytes(compress("zstd", MINIMAL.read_bytes()))
    lines = run("info", str(path)).stdout.decode().splitlines()
    assert lines[1].startswith("  source       zstd, 945.6 KiB decompressed from ")
    assert "source" not in run("info", str(MINIMAL)).stdout.decode()  # a plain file: as before


def test_stdin_round_trip_compressed_and_plain(plain: dict, tmp_path: Path) -> None:
    packed = tmp_path / "dump.zst"
    packed.write_bytes(compress("zstd", plain["data"]))
    check_round_trip(plain, "-", lambda: _pipe(packed.read_bytes()), "zstd", "stdin")
    check_round_trip(plain, "-", lambda: _pipe(plain["data"]), "stream", "stdin")


def _pipe(data: bytes) -> int:
    """The read end of a pipe a thread fills with ``data`` (then closes)."""
    read_fd, write_fd = os.pipe()

    def fill() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)

    threading.Thread(target=fill, daemon=True).start()
    return read_fd


def test_fifo_round_trip(plain: dict, tmp_path: Path) -> None:
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)

    def feed() -> int:
        def write() -> None:
            with open(fifo, "wb") as out:  # blocks until dumpview opens it
                out.write(plain["data"])

        threading.Thread(target=write, daemon=True).start()
        return subprocess.DEVNULL

    check_round_trip(plain, str(fifo), feed, "stream", "fifo")


def test_unsized_file_and_character_device_are_streams(tmp_path: Path) -> None:
    """A sysfs ``data`` file reads as size 0 but has content: a regular file of size 0 can't
    show that here, so the stream path is checked with a character device of our own (a copy
    of /dev/zero's numbers: zeros are no ELF header, found at once) and an empty file."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DumpFormatError, match="file is 0 bytes"):
        dumpview.open_dump(empty)
    proc_file = Path("/proc/self/status")  # procfs, like sysfs: size 0, content to read
    assert proc_file.stat().st_size == 0
    with pytest.raises(DumpFormatError, match="not an ELF file: magic is 4e 61 6d 65"):  # "Name"
        dumpview.open_dump(proc_file)
    zero = tmp_path / "zero"
    try:
        os.mknod(zero, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs root")
    started = time.monotonic()
    with pytest.raises(DumpFormatError, match="not an ELF file: magic is 00 00 00 00"):
        open_input(str(zero))
    assert time.monotonic() - started < 5  # refused from its first bytes, not spooled forever


def test_spool_is_sparse_and_anonymous(spool_dir: Path, tmp_path: Path) -> None:
    data = MINIMAL.read_bytes() + bytes(64 * SPARSE_BLOCK)  # trailing zeros: a hole
    path = tmp_path / "dump.gz"
    path.write_bytes(gzip.compress(data))
    fd, source = open_input(str(path))
    try:
        st = os.fstat(fd)
        assert st.st_size == len(data) == source.size_bytes
        assert st.st_blocks * 512 < len(data) - 32 * SPARSE_BLOCK  # zero runs were not written
        assert os.pread(fd, len(data), 0) == data
        assert list(spool_dir.iterdir()) == []  # it never had a name there
        assert f"{spool_dir}/" in os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


# ---- broken streams ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2"])
def test_truncated_stream_is_one_line_naming_the_end(tmp_path: Path, kind: str) -> None:
    packed = compress(kind, MINIMAL.read_bytes())
    cut = len(packed) * 2 // 3
    path = tmp_path / "cut"
    path.write_bytes(packed[:cut])
    proc = run("info", str(path))
    assert proc.returncode == 2
    line = one_line(proc)
    assert f"offset {cut:#x}: {kind} stream is truncated" in line, line


@pytest.mark.parametrize("kind", ["zstd", "xz", "gzip", "bzip2"])
def test_corrupt_stream_is_one_line_naming_where(tmp_path: Path, kind: str) -> None:
    packed = bytearray(compress(kind, MINIMAL.read_bytes()))
    middle = len(packed) // 2
    packed[middle : middle + 8] = bytes(b ^ 0x5A for b in packed[middle : middle + 8])
    path = tmp_path / "corrupt"
    path.write_bytes(bytes(packed))
    proc = run("info", str(path))
    assert proc.returncode == 2
    line = one_line(proc)
    assert f"{kind} data is corrupt in the compressed bytes" in line, line
    start, end = (int(x, 16) for x in line.split("compressed bytes ")[1].split(" ")[0].split(".."))
    assert f"offset {start:#x}:" in line and start <= len(packed) and start < end


def test_compressed_data_that_is_no_dump(tmp_path: Path) -> None:
    path = tmp_path / "text.xz"
    path.write_bytes(lzma.compress(b"hello, not a dump\n" * 1000))
    proc = run("info", str(path))
    assert proc.returncode == 2
    assert "the xz-compressed data is not an ELF file: it starts with 68 65 6c 6c" in one_line(proc)


def test_unsupported_compression_says_so(tmp_path: Path) -> None:
    path = tmp_path / "dump.lz4"
    path.write_bytes(b"\x04\x22\x4d\x18" + bytes(100))
    proc = run("info", str(path))
    assert proc.returncode == 2
    assert "lz4-compressed data: dumpview decompresses zstd, xz, gzip and bzip2" in one_line(proc)


def test_stdin_terminal_and_two_stdins_are_refused() -> None:
    main, sub = os.openpty()
    try:
        proc = run("info", "-", stdin=sub)  # closes sub
    finally:
        os.close(main)
    assert proc.returncode == 2
    assert "standard input is a terminal" in one_line(proc)
    proc = run("diff", "-", "-")
    assert proc.returncode == 2
    assert "only one of A and B can be standard input" in one_line(proc)


# ---- the spool and cancelling ------------------------------------------------------------------


def spool_fds(pid: int, spool_dir: Path) -> list[str]:
    """The targets of ``pid``'s descriptors that are files in ``spool_dir``."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{spool_dir}/"):
            found.append(target)
    return found


@pytest.mark.parametrize("ending", ["normal", "sigterm"])
def test_spool_gone_after_exit_and_sigterm(tmp_path: Path, spool_dir: Path, ending: str) -> None:
    data = MINIMAL.read_bytes()
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    proc = start("info", str(fifo))
    with open(fifo, "wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        wait_for(lambda: spool_fds(proc.pid, spool_dir), "the spool to be open")
        assert all(t.endswith("(deleted)") for t in spool_fds(proc.pid, spool_dir))
        if ending == "sigterm":
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            assert proc.returncode != 0
        else:
            out.write(data[len(data) // 2 :])
    proc.wait(timeout=20)
    if ending == "normal":
        assert proc.returncode == 0, proc.stderr.read()
    assert list(spool_dir.iterdir()) == []
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_fifo_without_writer_is_cancelled_by_signals(tmp_path: Path, sig: int) -> None:
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    proc = start("info", str(fifo))
    time.sleep(1.0)
    assert proc.poll() is None  # waiting for a writer, as cat would
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err
    # The conventional ends (issue 15): one line, exit 128 + the signal.
    assert proc.returncode == 128 + sig
    expected = "interrupted" if sig == signal.SIGINT else "terminated by SIGTERM"
    assert err.decode().strip().splitlines() == [f"dumpview: {expected}"]


def test_fifo_without_writer_cancelled_by_the_api(tmp_path: Path) -> None:
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    asked = []
    states = []

    def cancel() -> bool:
        asked.append(time.monotonic())
        return len(asked) > 3

    with pytest.raises(OpenCancelled, match="cancelled while reading"):
        dumpview.open_dump(fifo, progress=states.append, cancel=cancel)
    assert states and states[0].waiting and "waiting for data on" in states[0].text()


TUI_QUIT = r"""
import asyncio, sys, time
from dumpview.tui.app import DumpviewApp, LoadingScreen

async def main():
    app = DumpviewApp(sys.argv[1])
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            screen = app.screen
            if isinstance(screen, LoadingScreen):
                label = str(screen.query_one("#loading-label").render())
                if "waiting for data" in label:
                    break
        else:
            raise SystemExit("the loader never said it was waiting")
        await pilot.press("q")
    return app

started = time.monotonic()
asyncio.run(main())
print(f"quit after waiting, {time.monotonic() - started:.1f}s")
"""


def test_tui_quits_while_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-c", TUI_QUIT, str(fifo)],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().startswith("quit after waiting")


def test_no_room_to_spool_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full file system: simulated by a spool directory we cannot write in, then by
    RLIMIT_FSIZE in a child (EFBIG, like ENOSPC, names the directory and the advice)."""
    path = tmp_path / "dump.zst"
    path.write_bytes(zstd.compress(MINIMAL.read_bytes()))
    code = (
        "import resource, sys, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))\n"
        "from dumpview.cli import main\n"
        "main(['info', sys.argv[1]])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=60)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "no room to spool" in line and "set TMPDIR" in line, line
    with pytest.raises(InputError):
        monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
        monkeypatch.setattr("dumpview.model.source.SPOOL_DIRS", ())
        open_input(str(path))


def test_inspector_loader_decompresses_with_progress(tmp_path: Path) -> None:
    from dumpview.model.levels import open_for_browsing

    path = tmp_path / "dump.bz2"
    path.write_bytes(compress("bzip2", MINIMAL.read_bytes()))
    stages: list[tuple[float, str]] = []
    dump, tree = open_for_browsing(path, lambda step, text: stages.append((step, text)))
    try:
        assert dump.source.kind == "bzip2" and tree.roots
        reading = [(step, text) for step, text in stages if text.startswith("decompressing")]
        assert reading and reading[-1][0] == 1.0  # the whole compressed file was read
        assert f"decompressing {path} (bzip2): " in reading[-1][1]
        assert [step for step, _ in stages][-2:] == [2, 3]
    finally:
        dump.close()


@pytest.mark.parametrize(
    "argv",
    [
        ("vtop", "{}", hex(PAGE_VA + 0x40)),
        ("ptov", "{}", "0x10000000000"),
        ("ranges", "{}"),
        ("search", "{}", "--string", "dumpview"),
        ("check", "{}", "--json"),
        ("diff", "{}", str(MINIMAL)),
    ],
    ids=lambda argv: argv[0],
)
def test_every_command_reads_a_compressed_dump(tmp_path: Path, argv: tuple[str, ...]) -> None:
    """The commands the round trips do not cover answer the same on the gzip copy (in
    process: click's runner)."""
    from click.testing import CliRunner

    from dumpview.cli import cli

    packed = tmp_path / "dump.gz"
    packed.write_bytes(gzip.compress(MINIMAL.read_bytes()))
    runner = CliRunner()
    plain = runner.invoke(cli, [a.format(MINIMAL) for a in argv])
    ours = runner.invoke(cli, [a.format(packed) for a in argv])
    assert ours.exit_code == plain.exit_code, ours.output
    assert ours.output.replace(str(packed), "DUMP") == plain.output.replace(str(MINIMAL), "DUMP")
    assert plain.output.strip()


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    """stderr on a terminal: a FIFO without a writer says it waits and how to cancel; the line
    is erased when the dump arrives, and nothing else is written."""
    fifo = tmp_path / "late.fifo"
    os.mkfifo(fifo)
    main, sub = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dumpview.cli", "info", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=sub,
        stdin=subprocess.DEVNULL,
    )
    os.close(sub)
    seen = b""
    deadline = time.monotonic() + 20
    while b"Ctrl+C cancels" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(main, 4096)
    with open(fifo, "wb") as out:
        out.write(MINIMAL.read_bytes())
    stdout, _ = proc.communicate(timeout=20)
    while True:
        try:
            more = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not more:
            break
        seen += more
    os.close(main)
    assert proc.returncode == 0
    text = seen.decode()
    assert "dumpview: Ctrl+C cancels; waiting for data on /" in text
    assert text.count("waiting for data") == 1  # drawn once: it did not change
    assert text.endswith("\r\x1b[K")  # erased
    assert stdout.decode().startswith(f"{fifo}\n  source       stream from a FIFO, 945.6 KiB")
