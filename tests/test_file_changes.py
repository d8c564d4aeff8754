"""A dump that changes while it is open: a one-line ``DumpChangedError`` naming the file and the
offset, from every API call, every command and the inspector; never a SIGBUS.

Each test shrinks its own copy of a sample in ``tmp_path`` after it was opened, with the read
lease (the default when we own the file) and without it (``DUMPVIEW_LEASES=0``: the size checks
alone). Concurrent truncation runs a real ``dumpview export`` in a subprocess, holds it
mid-export (its output is a FIFO we stop reading), truncates the dump and lets it go on: it
must stop with exit code 2 and one line, and never die of SIGBUS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from procs import children_of

from dumpview import cli
from dumpview.model import Dump, open_dump
from dumpview.model.guard import LEASES_ENV, DumpChangedError
from dumpview.sim.scenarios import generate_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CUT = 4096  # what is left of the file: the ELF header and a few program headers


@pytest.fixture(params=["lease", "no-lease"])
def leases(request, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "no-lease":
        monkeypatch.setenv(LEASES_ENV, "0")
    else:
        monkeypatch.delenv(LEASES_ENV, raising=False)
    return request.param


def shrink(path: Path, size: int = CUT) -> None:
    """Truncate ``path`` from this process. With our own lease on it, the kernel first tells
    us (SIGIO: the guard lets go when nothing reads) and the call is interrupted: retry."""
    for _ in range(100):
        try:
            os.truncate(path, size)
            return
        except (InterruptedError, BlockingIOError):
            time.sleep(0.01)
    raise AssertionError(f"could not truncate {path}")


def copy(sample: str, tmp_path: Path) -> Path:
    path = tmp_path / sample
    shutil.copyfile(SAMPLES / sample, path)
    return path


def assert_one_line(exc: BaseException, path: Path) -> None:
    text = str(exc)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert "offset 0x" in text, text


FIRST_VA = 0xFFFF_FFA0_0000_0000  # the samples' first dumped page (minimal, faults)


def _api_calls() -> dict[str, Callable[[Dump], object]]:
    from dumpview.model.crash import crashlog_sections
    from dumpview.model.levels import LevelTree
    from dumpview.model.memmap import memory_map, minimap
    from dumpview.model.pagearrays import all_pages

    return {
        "read_va": lambda d: d.read_va(FIRST_VA, 64),
        "read_va_into": lambda d: d.read_va_into(FIRST_VA, bytearray(64)),
        "read_pa": lambda d: d.read_pa(d.page(FIRST_VA).pa, 64),
        "pages": lambda d: list(d.pages()),
        "page": lambda d: d.page(FIRST_VA),
        "translate": lambda d: d.translate(FIRST_VA),
        "translate_many": lambda d: d.translate_many(np.array([FIRST_VA], np.uint64)),
        "va_to_pa": lambda d: d.va_to_pa(FIRST_VA),
        "export": lambda d: d.export(open(os.devnull, "w")),
        "check": lambda d: d.check(),
        "search": lambda d: d.search("dumpview", "string"),
        "ranges": lambda d: d.ranges(),
        "ptov": lambda d: d.ptov(d.page(FIRST_VA).pa),
        "tables": lambda d: d.tables_index.entries_at(d.extension.spaces[0].ttb_pa),
        "levels": lambda d: LevelTree(d).rows(LevelTree(d).roots[0]),
        "all_warnings": lambda d: d.all_warnings(),
        "crashlog": lambda d: crashlog_sections(d),
        "memory_map": lambda d: memory_map(d),
        "minimap": lambda d: minimap(d, 80),
        "bulk_pages": lambda d: all_pages(d),
    }


API = _api_calls()


@pytest.mark.parametrize("call", sorted(API))
def test_every_api_call_after_a_shrink_is_one_line(tmp_path: Path, leases: str, call: str) -> None:
    path = copy("minimal.dump", tmp_path)
    with open_dump(path) as dump:
        assert dump.guard.leased == (leases == "lease")
        _ = dump.page(FIRST_VA)  # the columns the calls need are read before the cut
        shrink(path)
        with pytest.raises(DumpChangedError) as info:
            API[call](dump)
        assert_one_line(info.value, path)
        assert f"to {CUT:,} bytes" in str(info.value)
        # It stays changed: the next call says so again.
        with pytest.raises(DumpChangedError):
            dump.read_va(FIRST_VA, 16)


def test_diff_of_a_dump_that_shrank(tmp_path: Path, leases: str) -> None:
    import dumpview

    a, b = copy("minimal.dump", tmp_path), tmp_path / "other.dump"
    shutil.copyfile(SAMPLES / "minimal.dump", b)
    with open_dump(a) as dump_a, open_dump(b) as dump_b:
        shrink(b)
        with pytest.raises(DumpChangedError) as info:
            dumpview.diff(dump_a, dump_b)
    assert_one_line(info.value, b)


def test_a_shrink_in_the_middle_of_an_operation_stops_it(tmp_path: Path, leases: str) -> None:
    """The chunk after the cut raises: here the export's page chunks. With the lease the cut
    comes from another thread and waits for the export to let go, as another process would."""
    path = copy("faults.dump", tmp_path)
    cutter: list[threading.Thread] = []
    with open_dump(path) as dump:

        class Cutting:
            written = 0

            def write(self, text: str) -> int:
                if self.written == 0 and not dump.guard.leased:
                    shrink(path)
                elif self.written == 0:
                    cutter.append(threading.Thread(target=shrink, args=(path,)))
                    cutter[0].start()
                    deadline = time.monotonic() + 10
                    while not dump.guard.changing and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert os.path.getsize(path) > CUT  # held back while we read
                self.written += len(text)
                return len(text)

        with pytest.raises(DumpChangedError) as info:
            dump.export(Cutting(), include=["info", "pages"], with_data=True)
        for thread in cutter:
            thread.join(10)
        assert os.path.getsize(path) == CUT
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")


# ---- every command ------------------------------------------------------------------------------

COMMANDS = {
    "info": ["info", "DUMP"],
    "info-json": ["info", "--json", "DUMP"],
    "vtop": ["vtop", "DUMP", hex(FIRST_VA)],
    "read": ["read", "DUMP", hex(FIRST_VA), "64"],
    "export": ["export", "DUMP", "-o", "OUT"],
    "check": ["check", "DUMP"],
    "ranges": ["ranges", "DUMP"],
    "ptov": ["ptov", "DUMP", "0x10000000000"],
    "search": ["search", "DUMP", "--string", "dumpview"],
    "diff": ["diff", "DUMP", "OTHER"],
    "open": ["open", "DUMP"],  # no terminal: prints info
}


@pytest.mark.parametrize("when", ["after-open", "after-warnings"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_after_a_shrink_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leases: str, command: str, when: str
) -> None:
    path = copy("minimal.dump", tmp_path)
    out = tmp_path / "out.jsonl"
    other = tmp_path / "other" / "minimal.dump"
    other.parent.mkdir()
    shutil.copyfile(path, other)
    names = {"DUMP": str(path), "OUT": str(out), "OTHER": str(other)}
    argv = [names.get(a, a) for a in COMMANDS[command]]
    if when == "after-open":
        import dumpview.model

        real_open = dumpview.model.open_dump

        def opening_then_cut(p, **options):
            dump = real_open(p, **options)
            if os.path.getsize(path) > CUT:
                shrink(path)
            return dump

        monkeypatch.setattr(dumpview.model, "open_dump", opening_then_cut)
    else:
        real_warnings = Dump.all_warnings

        def warnings_then_cut(self):
            out = real_warnings(self)
            if os.path.getsize(path) > CUT:
                shrink(path)
            return out

        monkeypatch.setattr(Dump, "all_warnings", warnings_then_cut)
    runner = CliRunner()
    with runner.isolation() as (stdout, stderr, _):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        errors = stderr.getvalue().decode().splitlines()
    errors = [e for e in errors if "not a terminal" not in e]  # open's note, before the error
    assert info.value.code == 2, (errors, stdout.getvalue()[:200])
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"dumpview: {path}: the file shrank"), errors
    assert "offset 0x" in errors[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, "other"]


# ---- concurrent truncation, in a subprocess ----------------------------------------------------


@pytest.fixture(scope="module")
def big_dumps(tmp_path_factory) -> dict[str, Path]:
    """24 MiB of data (one process exports it), and 262,191 pages, 1% dumped (forked workers
    format the pages: 46 MB)."""
    out = tmp_path_factory.mktemp("changes")
    serial, parallel = out / "serial.dump", out / "parallel.dump"
    generate_file(serial, scenario="large", seed=1, knobs={"mapped_mib": 24})
    generate_file(
        parallel, scenario="large", seed=1, knobs={"mapped_mib": 4096, "dumped_percent": 1}
    )
    return {"1": serial, "2": parallel}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_concurrent_truncation_ends_an_export_in_one_line(
    tmp_path: Path, big_dumps: dict[str, Path], leases: str, jobs: str
) -> None:
    """``export --with-data`` into a FIFO we stop reading: the exporter blocks in a write with
    the dump mapped; we truncate it (with the lease: from another thread, which the kernel
    holds back until the exporter lets go) and read on. Exit 2, one line, no SIGBUS; with
    workers (jobs 2) none is left running."""
    big_dump = big_dumps[jobs]
    path = tmp_path / "big.dump"
    shutil.copyfile(big_dump, path)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "DUMPVIEW_JOBS": jobs}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dumpview.cli", "export", str(path), "--with-data", "-o", str(fifo)],
        stderr=subprocess.PIPE,
        env=env,
    )
    received = 0
    with open(fifo, "rb") as reader:
        received += len(reader.read(1 << 20))  # it is exporting: the next write blocks
        time.sleep(0.3)
        cutter = threading.Thread(target=shrink, args=(path, 1 << 20))
        cutter.start()
        time.sleep(0.3)
        while chunk := reader.read(1 << 20):
            received += len(chunk)
        cutter.join(60)
    _, stderr = proc.communicate(timeout=60)
    lines = stderr.decode().splitlines()
    assert proc.returncode == 2, (proc.returncode, lines)
    assert proc.returncode != -signal.SIGBUS
    assert len(lines) == 1 and lines[0].startswith(f"dumpview: {path}: "), lines
    assert "offset 0x" in lines[0] or "another process" in lines[0], lines
    assert os.path.getsize(path) == 1 << 20  # the truncation went ahead once it stopped
    assert received < os.path.getsize(big_dump) * 4 / 3  # it stopped before the end


def test_the_lease_holds_a_truncating_process_back_while_an_operation_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LEASES_ENV, raising=False)
    path = copy("minimal.dump", tmp_path)
    with open_dump(path) as dump:
        assert dump.guard.leased
        with dump.guard.reading():
            cutter = subprocess.Popen(
                [sys.executable, "-c", f"import os; os.truncate({str(path)!r}, 100)"]
            )
            deadline = time.monotonic() + 10
            while not dump.guard.changing and time.monotonic() < deadline:
                time.sleep(0.01)  # SIGIO arrives; the handler marks the dump changed
            time.sleep(0.2)
            assert cutter.poll() is None  # held back: the map is still whole
            assert os.path.getsize(path) == (SAMPLES / "minimal.dump").stat().st_size
            assert bytes(dump.buffer[-16:]) == (SAMPLES / "minimal.dump").read_bytes()[-16:]
            with pytest.raises(DumpChangedError, match="another process"):
                dump.read_va(FIRST_VA, 16)
        cutter.wait(10)  # the operation ended: the lease was given up
        assert os.path.getsize(path) == 100
        with pytest.raises(DumpChangedError, match="shrank"):
            dump.read_va(FIRST_VA, 16)


def test_a_shrink_in_the_inspector_shows_the_one_line_error(tmp_path: Path) -> None:
    import asyncio

    from dumpview.tui.app import DumpviewApp, ErrorScreen, MainScreen

    path = copy("minimal.dump", tmp_path)

    async def run() -> None:
        app = DumpviewApp(path)
        async with app.run_test(size=(140, 44)) as pilot:
            for _ in range(200):
                if isinstance(app.screen, MainScreen):
                    break
                await pilot.pause(0.05)
            screen = app.screen
            assert isinstance(screen, MainScreen)
            shrink(path)
            await pilot.press("g")  # go to a VA: reads the walk and the page
            for _ in range(100):
                if not isinstance(app.screen, MainScreen):
                    break
                await pilot.pause(0.05)
            if not isinstance(app.screen, ErrorScreen):  # the prompt itself may read
                app.screen.query_one("Input").value = hex(FIRST_VA + 0x4000)
                await pilot.press("enter")
            for _ in range(100):
                if isinstance(app.screen, ErrorScreen):
                    break
                await pilot.pause(0.05)
            assert isinstance(app.screen, ErrorScreen)
            assert "shrank" in app.screen.message and "offset 0x" in app.screen.message
            await pilot.press("q")
        assert app.return_code == 2

    asyncio.run(run())


def test_a_truncation_while_workers_format_pages(
    tmp_path: Path, big_dumps: dict[str, Path], leases: str
) -> None:
    """Cut while forked workers read page data: with the lease the workers are stopped before
    the cut may go ahead; without it they die of SIGBUS and the parent says what happened.
    Either way one ``DumpChangedError`` and no worker left."""
    from dumpview.model.export import export

    path = tmp_path / "parallel.dump"
    shutil.copyfile(big_dumps["2"], path)
    threads: list[threading.Thread] = []
    with open_dump(path) as dump:

        def progress(done: int, total: int) -> None:
            if threads:
                return
            threads.append(threading.Thread(target=shrink, args=(path, 1 << 20)))
            if dump.guard.leased:
                threads[0].start()
                deadline = time.monotonic() + 10
                while not dump.guard.changing and time.monotonic() < deadline:
                    time.sleep(0.01)
            else:
                threads[0].run()

        sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            with pytest.raises(DumpChangedError) as info:
                export(dump, sink, include=["pages"], with_data=True, jobs=2, progress=progress)
        finally:
            sink.close()
        assert children_of(os.getpid()) == []
        for thread in threads:
            if thread.is_alive():
                thread.join(10)
    assert str(info.value).startswith(f"{path}: ")
    assert os.path.getsize(path) == 1 << 20
