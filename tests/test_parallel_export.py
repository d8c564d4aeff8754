"""Page records formatted by forked workers are byte for byte what one process writes.

Covers both formats, ``--with-data``, every output kind the copy handles (a file through
``export_file``, a pipe, a stream without a descriptor), a worker failing (one-line DumpError,
no partial target) and the choice of job count.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from dumpview.model import DumpError, open_dump
from dumpview.model import export as export_module
from dumpview.model.export import export, export_file
from dumpview.model.parallel import JOBS_ENV, parallel_jobs, slices

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def serial(dump, fmt: str, with_data: bool) -> str:
    out = io.StringIO()
    export(dump, out, fmt=fmt, with_data=with_data, jobs=1)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("name", ["faults.dump", "minimal-driver.dump", "user-contexts.dump"])
def test_workers_write_the_same_bytes(tmp_path: Path, name: str, fmt: str) -> None:
    with open_dump(SAMPLES / name) as dump:
        for with_data in (False, True):
            expected = serial(dump, fmt, with_data)
            assert '"record":"page"' in expected or '"pages":[' in expected
            for jobs in (2, 3, 7):
                stream = io.StringIO()  # no descriptor: the block copy
                stats = export(dump, stream, fmt=fmt, with_data=with_data, jobs=jobs)
                assert stream.getvalue() == expected, (jobs, with_data)
                assert stats.size_bytes == len(expected)
                target = tmp_path / f"{jobs}.{fmt}"  # a file: sendfile
                export_file(dump, target, fmt=fmt, with_data=with_data, jobs=jobs)
                assert target.read_text() == expected, (jobs, with_data)
            assert not list(tmp_path.glob(".*.tmp"))


def test_workers_write_to_a_pipe() -> None:
    with open_dump(SAMPLES / "faults.dump") as dump:
        expected = serial(dump, "jsonl", False)
        read_fd, write_fd = os.pipe()
        received: list[bytes] = []

        def drain() -> None:
            with os.fdopen(read_fd, "rb") as reader:
                received.append(reader.read())

        reader = threading.Thread(target=drain)
        reader.start()
        with os.fdopen(write_fd, "w", encoding="utf-8") as out:
            export(dump, out, jobs=2)
        reader.join(timeout=30)
        assert received[0].decode() == expected


def test_a_failing_worker_is_one_line_and_leaves_no_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = export_module._PageWriter.lines

    def lines(self, pages):
        if int(pages.index[0]) > 0:  # the second worker's slice
            raise ValueError("formatting broke\nacross two lines")
        return original(self, pages)

    monkeypatch.setattr(export_module._PageWriter, "lines", lines)
    target = tmp_path / "out.jsonl"
    target.write_text("the old export\n")
    with open_dump(SAMPLES / "faults.dump") as dump, pytest.raises(DumpError) as info:
        export_file(dump, target, jobs=2)
    message = str(info.value)
    assert "\n" not in message
    assert "export worker 1" in message and "formatting broke across two lines" in message
    assert target.read_text() == "the old export\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_job_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert parallel_jobs(10, 1000) == 1  # too few items
    cores = len(os.sched_getaffinity(0))
    assert parallel_jobs(10**6, 1000) == min(cores, 4)
    monkeypatch.setenv(JOBS_ENV, "1")
    assert parallel_jobs(10**6, 1000) == 1
    monkeypatch.setenv(JOBS_ENV, "junk")
    assert parallel_jobs(10**6, 1000) == min(cores, 4)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        monkeypatch.delenv(JOBS_ENV)
        assert parallel_jobs(10**6, 1000) == 1  # never fork a threaded process
    finally:
        stop.set()
        worker.join()
    assert slices(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert slices(2, 4) == [(0, 1), (1, 2)]
    assert slices(0, 2) == []
