"""``dumpview triage`` (one dump, and a thousand: a directory walked, one corrupt file, --jobs
1 and 2 alike, a worker that dies), ``dumpview crashlog`` and the export's crash-log record,
every JSON output validated against the schema."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import dumpview
from dumpview.model import triage_batch
from dumpview.model.crash import crashlog_sections
from dumpview.model.export import schema
from dumpview.model.triage_batch import Item, SignatureGroups, dump_paths, triage_many

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
VALIDATOR = jsonschema.Draft202012Validator(schema())
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.dump"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples, one again in a subdirectory, a corrupt dump (an ELF header cut short), a
    note and a bookmarks file beside them (skipped: not dumps) and a FIFO (never opened)."""
    root = tmp_path_factory.mktemp("batch")
    for name in SAMPLE_NAMES:
        shutil.copy(SAMPLES / name, root / name)
    (root / "more").mkdir()
    shutil.copy(SAMPLES / "faults.dump", root / "more" / "again.dump")
    (root / "broken.dump").write_bytes((SAMPLES / "minimal.dump").read_bytes()[:200])
    (root / "notes.txt").write_text("not a dump\n")
    (root / "minimal.dump.bookmarks.json").write_text("{}")
    os.mkfifo(root / "pipe")
    return root


def jsonl(text: str) -> list[dict]:
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        VALIDATOR.validate(record)
    return records


# ---- one dump --------------------------------------------------------------------------------


def test_one_dump_text_report() -> None:
    proc = run("triage", str(SAMPLES / "faults.dump"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(SAMPLES / "faults.dump")
    labels = [line[2:12].strip() for line in lines[1:] if line[2:12].strip()]
    assert labels[:6] == ["signature", "panic", "exception", "FAR", "region", "nearest"]
    assert "\x1b[" not in proc.stdout  # piped: no colour
    with dumpview.open_dump(SAMPLES / "faults.dump") as dump:
        report = dump.triage()
    assert [line[13:] for line in lines[1:]] == [line.text for line in report.lines()]


def test_one_dump_json_is_the_record_on_one_line() -> None:
    for name in SAMPLE_NAMES:
        proc = run("triage", "--json", str(SAMPLES / name))
        assert proc.returncode == 0, proc.stderr
        (record,) = jsonl(proc.stdout)
        assert record["record"] == "triage" and record["path"] == str(SAMPLES / name)


def test_one_unreadable_dump_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"\x7fELF" + b"\0" * 10)
    proc = run("triage", str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and str(bad) in proc.stderr


# ---- many dumps ------------------------------------------------------------------------------


def test_directory_walk_skips_what_is_not_a_dump(batch_dir: Path) -> None:
    items = list(dump_paths([str(batch_dir), str(batch_dir / "notes.txt"), "/nonexistent-x"]))
    names = [os.path.relpath(i.path, batch_dir) for i in items[:-2]]
    assert names == ["broken.dump", *SAMPLE_NAMES, "more/again.dump"]
    assert all(i.error is None for i in items[:-1])  # a file named is read, whatever it is
    assert items[-2].path.endswith("notes.txt")
    assert items[-1].error == "No such file or directory"
    (pipe,) = dump_paths([str(batch_dir / "pipe")])
    assert pipe.error == "not a regular file or a directory"


def test_batch_json_corrupt_file_exit_2_rest_go_on_jobs_alike(batch_dir: Path) -> None:
    one = run("triage", "--json", "--jobs", "1", str(batch_dir))
    two = run("triage", "--json", "--jobs", "2", str(batch_dir))
    assert one.returncode == two.returncode == 2
    assert one.stdout == two.stdout
    records = jsonl(one.stdout)
    assert [r["record"] for r in records] == ["triage-error"] + ["triage"] * 6 + ["triage-groups"]
    error = records[0]
    assert error["path"] == str(batch_dir / "broken.dump") and "\n" not in error["error"]
    assert "offset" in error["error"]
    groups = records[-1]
    assert (groups["dumps"], groups["unreadable"]) == (7, 1)
    by_sig = {g["signature"]: g for g in groups["groups"]}
    faults = next(r for r in records if r["path"].endswith("/faults.dump"))
    assert by_sig[faults["signature"]]["count"] == 2  # faults.dump and more/again.dump
    assert by_sig[faults["signature"]]["example"] == faults["path"]
    counts = [g["count"] for g in groups["groups"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 6
    assert "1 of 7 dumps could not be read" in one.stderr


def test_batch_text_lines_then_groups(batch_dir: Path) -> None:
    proc = run("triage", "--jobs", "2", str(batch_dir / "faults.dump"), str(batch_dir / "more"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{batch_dir / 'faults.dump'}  v1:data-abort:translation-l3:")
    assert lines[1].startswith(f"{batch_dir / 'more' / 'again.dump'}  v1:")
    assert lines[3] == "2 dumps, 1 signature:"
    assert lines[4].split()[:1] == ["2"] and lines[4].endswith(f"e.g. {batch_dir / 'faults.dump'}")


def test_triage_many_in_order_with_a_worker_that_dies(batch_dir: Path, monkeypatch) -> None:
    real = triage_batch.triage_path

    def fragile(path: str):
        if path.endswith("minimal.dump"):
            os.kill(os.getpid(), signal.SIGKILL)  # in the forked worker
        return real(path)

    monkeypatch.setattr(triage_batch, "triage_path", fragile)
    items = [Item(str(batch_dir / n)) for n in SAMPLE_NAMES] + [Item("x", "no such thing")]
    outcomes = list(triage_many(items, jobs=2))
    assert [o.path for o in outcomes] == [i.path for i in items]
    dead = next(o for o in outcomes if o.path.endswith("/minimal.dump"))
    assert dead.error == "the process triaging it was killed by SIGKILL"
    assert outcomes[-1].error == "no such thing"
    assert sum(o.ok for o in outcomes) == len(SAMPLE_NAMES) - 1
    groups = SignatureGroups()
    for o in outcomes:
        groups.add(o)
    assert (groups.dumps, groups.unreadable) == (len(items), 2)


# ---- crashlog --------------------------------------------------------------------------------


def test_crashlog_text_is_the_inspectors_sections() -> None:
    proc = run("crashlog", str(SAMPLES / "faults.dump"))
    assert proc.returncode == 0, proc.stderr
    with dumpview.open_dump(SAMPLES / "faults.dump") as dump:
        sections = crashlog_sections(dump)
    expected = []
    for section in sections:
        expected += ([""] if expected else []) + [section.title]
        expected += [f"  {line}" for line in section.lines]
    assert proc.stdout.splitlines() == expected
    titles = [s.title for s in sections]
    for title in ("Panic", "Registers", "Exception", "Fault address", "Call stack", "Ccdp pairs"):
        assert title in titles
    assert "DISAGREE" in proc.stdout


def test_crashlog_json_and_the_exports_top_level_panic_and_far() -> None:
    proc = run("crashlog", "--json", str(SAMPLES / "faults.dump"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    VALIDATOR.validate(doc)
    (record,) = doc["crashlog"]
    assert record["panic"] == record["entries"][1]["fields"]["message"]
    assert record["panic"].startswith("GPU firmware panic: page fault at 0xffffffaa80000020")
    assert record["far"] == record["esr"]["far"] == "0xffffffaa80000020"
    none = run("crashlog", "--json", str(SAMPLES / "smmu-lpae4k.dump"))
    assert none.returncode == 1 and json.loads(none.stdout)["crashlog"] == []
    text = run("crashlog", str(SAMPLES / "smmu-lpae4k.dump"))
    assert text.returncode == 1 and "no crash log" in text.stdout


def test_a_crash_log_without_registers(tmp_path: Path) -> None:
    """factory's dump: a crash log with a panic (Cstr) and no registers (Crg8)."""
    import io

    import factory

    path = factory.build_dump(tmp_path / "cstr-only.dump")
    with dumpview.open_dump(path) as dump:
        report = dump.triage()
        out = io.StringIO()
        dump.export(out, include="crashlog")
    assert report.signature == f"v1:no-registers:-:-:-:{report.signature[-8:]}"
    assert report.panic == "test panic" and report.exception is None and report.region is None
    texts = [line.text for line in report.lines()]
    assert "the crash log records no AArch64 registers (Crg8): no FAR, no ESR" in texts
    (record,) = [r for r in jsonl(out.getvalue()) if r["record"] == "crashlog"]
    assert (record["panic"], record["far"], record["esr"]) == ("test panic", None, None)
    proc = run("triage", "--json", str(path))
    assert proc.returncode == 0 and jsonl(proc.stdout)[0]["signature"] == report.signature


# ---- the README shows real output ------------------------------------------------------------

README = (ROOT / "README.md").read_text()


def test_readme_triage_output_is_what_triage_prints() -> None:
    import re

    shown = re.search(r"```\n\$ dumpview (triage samples/faults\.dump)\n(.*?)```", README, re.S)
    proc = run(*shown.group(1).split(), cwd=ROOT)
    assert proc.returncode == 0
    assert proc.stdout == shown.group(2)


def test_readme_record_is_the_real_one() -> None:
    import re

    shown = re.search(r"<code>dumpview (triage --json samples/minimal\.dump)</code>.*?```json\n"
                      r"(.*?)```", README, re.S)  # fmt: skip
    proc = run(*shown.group(1).split(), cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1
    assert json.loads(proc.stdout) == json.loads(shown.group(2))


def test_readme_xargs_line_gives_a_record_per_dump(tmp_path: Path) -> None:
    """The README's xargs line, with this interpreter for `dumpview` and the samples."""
    line = next(x for x in README.splitlines() if "xargs -0 -P" in x)
    assert "dumpview triage --json" in line and "-n 1" in line
    proc = subprocess.run(
        f"find {SAMPLES} -name '*.dump' -print0 | xargs -0 -P 2 -n 1 "
        f"{sys.executable} -m dumpview.cli triage --json",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    records = jsonl(proc.stdout)
    assert sorted(Path(r["path"]).name for r in records) == SAMPLE_NAMES
    assert {r["record"] for r in records} == {"triage"}


# ---- hostile dumps, a terminal ---------------------------------------------------------------


def test_triage_over_the_hostile_corpus(tmp_path: Path) -> None:
    """Every (not slow) hostile case in one batch: a record or a one-line error each, never an
    internal error, no file changed, in bounded time."""
    import hashlib
    import time

    from tests import hostile

    paths = hostile.write_corpus(tmp_path, include_slow=False)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    started = time.perf_counter()
    proc = run("triage", "--json", "--jobs", "2", *map(str, paths))  # files named: all read
    assert time.perf_counter() - started < 120
    assert proc.returncode == 2, proc.stderr
    records = jsonl(proc.stdout)
    assert records[-1]["record"] == "triage-groups" and records[-1]["dumps"] == len(paths)
    assert [r["path"] for r in records[:-1]] == [str(p) for p in paths]
    for record in records[:-1]:
        if record["record"] == "triage-error":
            assert "internal error" not in record["error"] and "\n" not in record["error"]
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths} == before
    # The directory walk takes the files that start like a dump (a cut ELF ident does not).
    walked = [item.path for item in dump_paths([str(tmp_path)])]
    assert walked == sorted(str(p) for p in paths if p.read_bytes()[:4] == b"\x7fELF")
    assert 0 < len(paths) - len(walked) < 10


def test_progress_on_a_terminal_when_the_output_is_not(batch_dir: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "dumpview.cli",
                "triage",
                "--jobs",
                "1",
                str(batch_dir / "more"),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        err = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0
    assert b"triage: 1 dumps" in err and b"\x1b[K" in err
    assert b"triage:" not in proc.stdout


def test_compressed_dumps_in_a_directory(tmp_path: Path) -> None:
    """A gzip copy of a sample triages as the sample does (same signature); an lz4 file is a
    dump that cannot be read, saying why; a zip beside them is not a dump."""
    import gzip

    (tmp_path / "faults.dump.gz").write_bytes(gzip.compress((SAMPLES / "faults.dump").read_bytes()))
    (tmp_path / "old.dump.lz4").write_bytes(b"\x04\x22\x4d\x18" + b"\0" * 64)
    (tmp_path / "dumps.zip").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    proc = run("triage", "--json", "--jobs", "2", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    gz, lz4, groups = jsonl(proc.stdout)
    original = json.loads(run("triage", "--json", str(SAMPLES / "faults.dump")).stdout)
    assert gz["path"].endswith("faults.dump.gz") and gz["signature"] == original["signature"]
    assert {k: v for k, v in gz.items() if k != "path"} == {
        k: v for k, v in original.items() if k != "path"
    }
    assert lz4["record"] == "triage-error" and "lz4" in lz4["error"]
    assert (groups["dumps"], groups["unreadable"]) == (2, 1)
    one = run("triage", str(tmp_path / "faults.dump.gz"))
    assert one.returncode == 0 and original["signature"] in one.stdout
