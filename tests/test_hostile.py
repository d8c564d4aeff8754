"""Hostile dumps through every entry point: a clear one-line error or a warning with partial
results, never a hang, a traceback or a changed file (``tests/hostile.py`` has the harness and
the corpus, ``tests/fuzz.py`` the mutator).

Each case is built on the fly in ``tmp_path`` and run through the CLI commands (``info``,
``info --json``, ``vtop``, ``read``, ``export``, ``check``, in process through
``dumpview.cli.main``) and the inspector's loader; ``hostile.judge`` says what is wrong.
Errors must name the offset the case knows (computed from the file's own layout). A bug that
lives in a module this suite does not own is listed in the case's ``known_bug``: the test
reports it as xfail while it stands and fails once it is fixed (so the marker is removed).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dumpview.model import open_dump
from tests import fuzz, hostile
from tests.hostile import ERROR, HANG, OK, UNHANDLED, WARNING

CASES = hostile.corpus(include_slow=False)
SLOW_CASES = [case for case in hostile.corpus() if case.slow]


def run_case(case: hostile.Case, tmp_path: Path) -> hostile.Outcome:
    path = tmp_path / f"{case.name}.dump"
    path.write_bytes(case.build())
    outcome = hostile.exercise(path, timeouts=case.timeouts, entries=case.entries)
    problems = hostile.judge(case, outcome)
    assert not problems, "\n".join(problems)
    assert set(outcome.results) == set(case.entries)
    for entry, why in case.known_bug.items():
        result = outcome.results[entry]
        if result.outcome in hostile.BAD_OUTCOMES:
            pytest.xfail(f"known bug, {entry} {result.outcome}: {why}")
        pytest.fail(f"{case.name}: {entry} is {result.outcome} now: remove it from known_bug")
    return outcome


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_case(case: hostile.Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda case: case.name)
def test_big_hostile_case(case: hostile.Case, tmp_path: Path) -> None:
    """The ~56 MB million-segment file: every entry point answers, the whole run in 15 s."""
    started = time.perf_counter()
    outcome = run_case(case, tmp_path)
    assert time.perf_counter() - started < 15, {
        r.entry: r.seconds for r in outcome.results.values()
    }


# ---- what the corpus pins beyond "no crash" ----------------------------------------------------


def test_bases_are_clean(tmp_path: Path) -> None:
    """The unbroken bases answer ok everywhere: the corpus breaks exactly what it says."""
    bases = {
        "driver": hostile.driver_base,
        "ext": hostile.ext_base,
        "ext-two-spaces": hostile.ext_two_spaces_base,
    }
    for name, build in bases.items():
        path = tmp_path / f"{name}.dump"
        path.write_bytes(build())
        outcome = hostile.exercise(path)
        assert {r.entry: r.outcome for r in outcome.results.values()} == dict.fromkeys(
            hostile.ENTRY_POINTS, OK
        ), outcome.describe()


def test_truncations_cover_every_structure() -> None:
    names = {case.name for case in CASES}
    for label in ("driver", "ext"):
        for part in ("ehdr-middle", "phdr1", "notes-middle", "load1-data"):
            assert f"truncate-{label}-{part}" in names
    for part in ("shdrs", "ext-directory", "ext-record-kind3", "section2-content"):
        assert f"truncate-ext-{part}" in names
    assert "ext-section-cut-record-kind5" in names


def test_a_broken_crash_log_keeps_the_entries_before_the_break(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "clhe-length-zero")
    path = tmp_path / "log.dump"
    path.write_bytes(case.build())
    outcome = hostile.exercise(path, entries=("info-json", "export"))
    info = json.loads(outcome.results["info-json"].stdout)
    assert any("length 0x0" in w and "RTKIT note at 0x" in w for w in info["warnings"])
    with open_dump(path) as dump:
        log = dump.crashlog
        assert [e.kind for e in log.entries] == ["Cver", "Cstr"]  # the third has length 0
        assert log.entries[1].fields.message == "GPU firmware panic: hostile test"
        assert not log.closed


def test_a_shared_table_is_walked_once_and_warned_about(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "table-shared")
    path = tmp_path / "shared.dump"
    path.write_bytes(case.build())
    with open_dump(path) as dump:
        pas = [node.pa for node in dump.tables_index.nodes]
        assert len(pas) == len(set(pas))
        (warning,) = [w for w in dump.all_warnings() if "referenced again" in w]
        assert "[100]" in warning


def test_warnings_are_grouped_and_capped(tmp_path: Path) -> None:
    """One warning per shared table (not per entry), and at most WARNINGS_SHOWN listed."""
    from dumpview.model.dump import WARNINGS_SHOWN

    def info_warnings(name: str) -> list[str]:
        path = tmp_path / f"{name}.dump"
        path.write_bytes(next(c for c in CASES if c.name == name).build())
        return hostile.exercise(path, entries=("info",)).results["info"].stderr.splitlines()

    fanout = info_warnings("table-shared-fanout")
    assert len(fanout) == 2, fanout  # the L3 table and the L2 table, once each
    assert "[1] and 2,046 more entries" in fanout[0]
    missing = info_warnings("table-many-missing")
    assert len(missing) == WARNINGS_SHOWN + 1
    assert missing[-1].endswith(f"{2048 - WARNINGS_SHOWN:,} more warnings like these (not listed)")


# ---- amplification: bounded time and memory, measured in a subprocess --------------------------


# The peak RSS of the command itself: its own VmHWM, written at exit (``wait4``'s ru_maxrss
# would count the forking test process's memory too: Linux carries it across exec).
_MEASURED = (
    "import atexit, os, sys\n"
    "def report():\n"
    "    with open('/proc/self/status') as fp:\n"
    "        hwm = next(line for line in fp if line.startswith('VmHWM:'))\n"
    "    with open(os.environ['DUMPVIEW_TEST_HWM'], 'w') as out:\n"
    "        out.write(hwm.split()[1])\n"
    "atexit.register(report)\n"
    "from dumpview.cli import main\n"
    "main(sys.argv[1:])\n"
)


def run_measured(
    argv: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[int, float, int, str]:
    """``dumpview ARGV`` in a subprocess (``env`` added to the environment): (exit code, wall
    seconds, peak RSS in MiB, stderr)."""
    hwm = tmp_path / "hwm"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {}), "DUMPVIEW_TEST_HWM": str(hwm)},
        timeout=120,
    )
    seconds = time.perf_counter() - started
    return proc.returncode, seconds, int(hwm.read_text()) // 1024, proc.stderr.decode()


@pytest.mark.parametrize("name", sorted(hostile.AMPLIFICATION_BOUNDS))
def test_amplification_is_bounded(tmp_path: Path, name: str) -> None:
    """What a file claims (a million Ccdp pairs, a million notes, 512 1 GiB blocks, 20.9M pages
    of one PT_LOAD) does not drive the work: each command the case made expensive stays within
    its bound."""
    case = next(c for c in hostile.corpus(include_slow=False) if c.name == name)
    path = tmp_path / f"{name}.dump"
    path.write_bytes(case.build())
    other = tmp_path / "other.dump"
    if name in hostile.AMPLIFICATION_OTHER:
        other.write_bytes(hostile.AMPLIFICATION_OTHER[name]())
    out = tmp_path / "out.jsonl"
    places = {"DUMP": str(path), "OTHER": str(other), "OUT": str(out)}
    for command, max_seconds, max_mib in hostile.AMPLIFICATION_BOUNDS[name]:
        argv = [places.get(a, a) for a in command]
        code, seconds, mib, stderr = run_measured(argv, tmp_path)
        assert code in (0, 1), (command, code, stderr)
        assert "Traceback" not in stderr
        assert seconds < max_seconds, (command, seconds)
        assert mib < max_mib, (command, mib)


def test_export_pages_memory_is_flat(tmp_path: Path) -> None:
    """``export --include pages`` of a PT_LOAD claiming pages writes a record per page: that is
    the answer, so time follows it, but it streams: the peak RSS is the same for 250K and 1M
    claimed pages (one process, ``DUMPVIEW_JOBS=1``, so the measured process does all of it;
    into a character device of our own, written as it comes)."""
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    peaks = {}
    for pages in (250_000, 1_000_000):
        path = tmp_path / f"claims-{pages}.dump"
        path.write_bytes(hostile.load_claims_pages(pages))
        argv = ["export", str(path), "--include", "pages", "-o", str(null)]
        code, seconds, mib, stderr = run_measured(argv, tmp_path, {"DUMPVIEW_JOBS": "1"})
        assert code == 0, stderr
        assert f"{pages:,} page;" in stderr
        assert seconds < 5 + pages * hostile.PER_PAGE_SECONDS, seconds
        peaks[pages] = mib
    assert peaks[1_000_000] < 200, peaks
    assert peaks[1_000_000] - peaks[250_000] < 16, peaks


# ---- the harness itself --------------------------------------------------------------------


def test_the_harness_reports_unhandled_hang_and_lies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "good.dump"
    path.write_bytes(hostile.driver_base())
    from dumpview.model import dump as dump_module
    from dumpview.model import text

    def boom(self, *args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(dump_module.Dump, "read_runs", boom)
    outcome = hostile.exercise(path, entries=("read",))
    assert outcome.results["read"].outcome == UNHANDLED
    assert "ValueError: boom" in outcome.results["read"].detail
    outcome = hostile.exercise(path, entries=("read",), fast=True)
    assert outcome.results["read"].outcome == UNHANDLED

    def forever(self, *args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(dump_module.Dump, "read_runs", forever)
    started = time.perf_counter()
    outcome = hostile.exercise(path, entries=("read",), timeout=0.5)
    assert outcome.results["read"].outcome == HANG
    assert time.perf_counter() - started < 5

    real_info_dict = text.info_dict

    def lying_info_dict(dump):
        doc = real_info_dict(dump)
        doc["pages"]["total"] += 1
        return doc

    monkeypatch.setattr(text, "info_dict", lying_info_dict)
    monkeypatch.setattr("dumpview.cli.info.info_dict", lying_info_dict)
    outcome = hostile.exercise(path, entries=("info-json", "export"))
    assert outcome.results["export"].outcome == UNHANDLED
    assert outcome.results["export"].detail.startswith("LIE:")


def test_the_harness_accepts_clean_errors_and_warnings(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    outcome = hostile.exercise(empty)
    assert {r.outcome for r in outcome.results.values()} == {ERROR}
    assert not outcome.changed
    unaligned = next(c for c in CASES if c.name == "load-unaligned")
    path = tmp_path / "unaligned.dump"
    path.write_bytes(unaligned.build())
    outcome = hostile.exercise(path, fast=True)
    assert {r.outcome for r in outcome.results.values()} == {WARNING}


def test_corpus_files_can_be_written_for_other_tools(tmp_path: Path) -> None:
    paths = hostile.write_corpus(tmp_path, include_slow=False)
    assert len(paths) == len(CASES)
    index = (tmp_path / "INDEX.txt").read_text().splitlines()
    assert len(index) == len(CASES)


# ---- the fuzzer ---------------------------------------------------------------------------------


def test_fuzz_cases_are_deterministic() -> None:
    assert fuzz.make_case(3, 17) == fuzz.make_case(3, 17)
    assert fuzz.make_case(3, 17) != fuzz.make_case(3, 18)


def test_fuzz_short_run(tmp_path: Path) -> None:
    """A short fixed-seed fuzz run: no case is UNHANDLED, HANG or changes its file."""
    report = fuzz.run(300, seed_value=20251121, jobs=1, out_dir=str(tmp_path), timeout=20)
    assert report.cases == 300
    assert not report.bad, "\n".join(report.bad)
    # The mutations reach every kind of outcome (they are not all rejected at the header).
    assert report.worst[OK] and report.worst[ERROR] and report.worst[WARNING]


def test_fuzz_reports_a_worker_that_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed mid-case (or crashing in C) is a bad case naming that case number."""
    import os

    real = fuzz.make_case

    def dying(seed_value: int, number: int) -> tuple[str, bytes]:
        if number == 7:
            os._exit(3)
        return real(seed_value, number)

    monkeypatch.setattr(fuzz, "make_case", dying)
    report = fuzz.run(20, seed_value=1, jobs=2, timeout=20)
    assert len(report.bad) == 1
    assert "case=7: worker 1 died (exit code 3)" in report.bad[0]
