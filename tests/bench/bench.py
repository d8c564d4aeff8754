"""All of dumpview's benchmarks in one command, each against a peer measured in the same run.

Run on demand (not part of the test suite), from the repository root:

    .venv/bin/python tests/bench/bench.py [--runs 3] [--write-results]

It builds its dumps with the generator under tests/bench/out/ (ignored by git; ~1.9 GiB):
``1m-driver.dump`` (1,048,592 PT_LOADs, driver layout, PN_XNUM, scattered PAs, 2 % dumped),
``1m-tables.dump`` (the same mappings carrying the real tables: 1M leaf entries) and
``1g-data.dump`` (1 GiB of dumped data). Page cache warm for everyone alike. Prints, per metric,
ours, the peer, the ratio and the target (medians of ``--runs`` runs; whole processes timed by
wall clock unless the metric says "in process"). ``--write-results`` also rewrites the table
between the markers in tests/bench/RESULTS.md, with the machine description.

Metrics (targets from the issues): ``info`` vs ``readelf -lW`` (<= 0.25 x) and vs pyelftools
(<= 0.02 x); JSONL export of every page vs ``readelf -lW`` (<= 2 x); bulk table decode (>= 0.35
GiB/s; peer: construct's ``UatEntry.parse``); reading every dumped byte through the API vs
``cat FILE >/dev/null`` (>= 0.5 x cat's rate); VA->PA translations per second, batched
(>= 1M/s) and one by one (>= 200k/s; peer: the full walk ``translate()``); TUI first screen
(<= 0.5 s) and CPU per key press (<= 30 ms; Pilot, process time; peer: Textual's DataTable);
``generate`` vs ``head -c`` of as many bytes (<= 2 x); peak RSS on the 1M-segment dump (<= 250
MB); opening the 1 GiB-of-data dump compressed with zstd: time to the first ``info`` line vs
``zstd -d -c`` into a null device of our own (<= 1.5 x), its peak RSS, its export vs the plain
export plus the decompression (<= 1.2 x); ``triage`` of 1,000 generated dumps with ``--jobs 2``
vs a shell loop of ``info`` over them (<= 0.2 x) and its peak RSS at 1,000 vs 100 dumps (flat;
``bench_triage.py``); plus search, check, ranges and diff for reference (``--only checks``:
check and diff on both 1M-segment dumps and on a PT_LOAD claiming 20.9M pages, time and peak
RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import stat
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "out"
RESULTS = HERE / "RESULTS.md"
PY = sys.executable
_SCRIPT = Path(PY).parent / "dumpview"  # the console script a user runs
DUMPVIEW = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "dumpview.cli"]
NEEDLE = "needle-that-is-in-no-page-0123456789"
SCATTERED = ["--scenario", "large", "--mapped-mib", "16384", "--scatter", "--dumped-percent", "2"]
DUMPS = {
    "1m-driver.dump": [*SCATTERED, "--driver-layout"],
    "1m-tables.dump": SCATTERED,
    "1g-data.dump": ["--scenario", "large", "--mapped-mib", "1024"],
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    """One metric: ours and the peer in the same unit; ``better`` says which way is good."""

    metric: str
    ours: float
    unit: str
    peer_name: str = ""
    peer: float | None = None
    target: str = ""
    met: bool | None = None

    def ratio(self) -> float | None:
        if self.peer is None or not self.peer:
            return None
        return self.ours / self.peer


ROWS: list[Row] = []


def num(value: float) -> str:
    """Four significant digits, thousands separated (1,234,567 / 35.51 / 0.0004123)."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def record(row: Row) -> None:
    ROWS.append(row)
    ratio = row.ratio()
    peer = f"{row.peer_name} {num(row.peer)} {row.unit}" if row.peer is not None else ""
    verdict = {None: "", True: "ok", False: "MISSED"}[row.met]
    ratio_s = num(ratio) if ratio is not None else ""
    print(
        f"{row.metric:46s} {num(row.ours):>12s} {row.unit:8s} {peer:40s} {ratio_s:>7s} "
        f"{row.target:16s} {verdict}",
        flush=True,
    )


def run_timed(argv: list[str], stdout=subprocess.DEVNULL, ok=(0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.decode()[-400:]}")
    return elapsed


def median_time(argv: list[str], runs: int, ok=(0,), setup=None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        times.append(run_timed(argv, ok=ok))
    return statistics.median(times)


def peak_rss_mb(argv: list[str], ok=(0,)) -> float:
    """Peak RSS of one run (the largest process of the tree, as /usr/bin/time reports)."""
    if shutil.which("/usr/bin/time"):
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode not in ok:
            raise SystemExit(f"{argv[:4]} failed: {proc.stderr[-400:]}")
        return int(proc.stderr.strip().splitlines()[-1]) / 1024
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run_timed(argv, ok=ok)
    return max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def build(name: str) -> Path:
    path = OUT / name
    if not path.exists():
        print(f"building {name}: dumpview generate {' '.join(DUMPS[name])}", flush=True)
        took = run_timed([*DUMPVIEW, "generate", *DUMPS[name], "-o", str(path)])
        print(f"  built in {took:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB", flush=True)
    return path


def in_process(code: str, *args: str) -> dict:
    """Run ``code`` (which prints one JSON object last) in a fresh interpreter."""
    proc = subprocess.run(
        [PY, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode:
        raise SystemExit(f"in-process benchmark failed: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the metrics ----------------------------------------------------------------------------


def bench_info(one_m: Path, runs: int) -> float:
    ours = median_time([*DUMPVIEW, "info", str(one_m)], runs)
    readelf = median_time(["readelf", "-lW", str(one_m)], runs)
    record(Row("info, 1M segments", ours, "s", "readelf -lW", readelf, "<= 0.25 x",
               ours / readelf <= 0.25))  # fmt: skip
    pyelf_code = (
        "import sys\nfrom elftools.elf.elffile import ELFFile\n"
        "f=open(sys.argv[1],'rb'); e=ELFFile(f)\n"
        "print(sum(1 for s in e.iter_segments() if s['p_type']=='PT_LOAD'))"
    )
    pyelf = median_time([PY, "-c", pyelf_code, str(one_m)], max(1, min(runs, 2)))
    record(Row("info, 1M segments", ours, "s", "pyelftools iter_segments", pyelf, "<= 0.02 x",
               ours / pyelf <= 0.02))  # fmt: skip
    return readelf


def bench_export(one_m: Path, runs: int, readelf: float) -> None:
    jsonl = OUT / "1m-pages.jsonl"
    argv = [*DUMPVIEW, "export", str(one_m), "--include", "pages", "-o", str(jsonl)]
    ours = median_time(argv, runs)
    pages = json.loads(jsonl.read_text().splitlines()[-1])["counts"]["page"]
    size_mib = jsonl.stat().st_size / 2**20
    record(
        Row(f"export JSONL, {pages:,} pages ({size_mib:.0f} MiB)", ours, "s", "readelf -lW",
            readelf, "<= 2 x", ours / readelf <= 2)
    )  # fmt: skip
    serial = median_time(argv, runs, setup=lambda: os.environ.__setitem__("DUMPVIEW_JOBS", "1"))
    os.environ.pop("DUMPVIEW_JOBS", None)
    record(Row("  the same, one process (DUMPVIEW_JOBS=1)", serial, "s", "readelf -lW", readelf))
    jsonl.unlink()


TABLE_DECODE = r"""
import json, sys, time
import numpy as np
from dumpview.model import open_dump
from dumpview.model.entries import bulk_fields
from formats import uat
runs = max(5, int(sys.argv[2]))
with open_dump(sys.argv[1]) as dump:
    index = dump.tables_index
    nodes = index.nodes
    tables = [index.entries_at(node.pa) for node in nodes]
    total = sum(len(t) for t in tables)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fields = bulk_fields(np.concatenate(tables))  # every field of every entry
        times.append(time.perf_counter() - start)
    ours = sorted(times)[len(times) // 2]
    sample = np.concatenate(tables)[:20000].tolist()
    raw = [v.to_bytes(8, "little") for v in sample]
    start = time.perf_counter()
    for b in raw:
        uat.UatEntry.parse(b)
    peer = (time.perf_counter() - start) / len(raw) * total
print(json.dumps({"bytes": total * 8, "tables": len(nodes), "ours": ours, "peer": peer}))
"""

READ_ALL = r"""
import json, sys, time
from dumpview.model import open_dump
mode = sys.argv[2]
with open_dump(sys.argv[1]) as dump:
    start = time.perf_counter()
    buf = bytearray(1 << 20)
    total = 0
    for seg in range(dump.segment_count):
        va, size = int(dump.seg_va[seg]), int(dump.seg_filesz[seg])
        for off in range(0, size, 1 << 20):
            take = min(1 << 20, size - off)
            if mode == "into":  # preadv into the caller's buffer, as read(2) does
                total += dump.read_va_into(va + off, memoryview(buf)[:take])
            else:  # a memoryview of the map, copied out
                piece = dump.read_va(va + off, take)
                buf[:take] = piece
                total += take
    took = time.perf_counter() - start
print(json.dumps({"bytes": total, "seconds": took}))
"""

TRANSLATE = r"""
import json, sys, time
import numpy as np
from dumpview.model import open_dump
with open_dump(sys.argv[1]) as dump:
    vas = dump.seg_va + np.uint64(0x40)
    vas = vas[np.random.default_rng(1).permutation(len(vas))]  # random order: the hard case
    start = time.perf_counter()
    bulk = dump.translate_many(vas)
    batch = time.perf_counter() - start
    assert bulk.mapped.all()
    one = vas[:200000].tolist()
    start = time.perf_counter()
    for va in one:
        dump.va_to_pa(va)
    single = time.perf_counter() - start
    walk = one[:3000]
    start = time.perf_counter()
    for va in walk:
        dump.translate(va)
    full = time.perf_counter() - start
print(json.dumps({"batch": len(vas) / batch, "single": len(one) / single,
                  "walk": len(walk) / full}))
"""


def bench_table_decode(tables: Path, runs: int) -> None:
    result = in_process(TABLE_DECODE, str(tables), str(runs))
    gib = result["bytes"] / 2**30
    ours, peer = gib / result["ours"], gib / result["peer"]
    record(
        Row(f"table decode, {result['tables']} tables, all fields (in process)", ours, "GiB/s",
            "construct UatEntry.parse", peer, ">= 0.35 GiB/s", ours >= 0.35)
    )  # fmt: skip


def bench_read_all(one_g: Path, runs: int) -> None:
    cat = median_time(["cat", str(one_g)], runs)
    cat_rate = one_g.stat().st_size / cat / 2**30
    for mode, label in (("into", "read_va_into"), ("map", "read_va (map), copied")):
        results = [in_process(READ_ALL, str(one_g), mode) for _ in range(runs)]
        rate = statistics.median(r["bytes"] / r["seconds"] for r in results) / 2**30
        record(
            Row(f"read every dumped byte, {label} (in process)", rate, "GiB/s",
                "cat FILE >/dev/null", cat_rate, ">= 0.5 x cat", rate >= 0.5 * cat_rate)
        )  # fmt: skip


def bench_translate(one_m: Path, tables: Path, runs: int) -> None:
    for label, path in (("driver dump", one_m), ("tables walked", tables)):
        results = [in_process(TRANSLATE, str(path)) for _ in range(runs)]
        batch = statistics.median(r["batch"] for r in results)
        single = statistics.median(r["single"] for r in results)
        walk = statistics.median(r["walk"] for r in results)
        record(
            Row(f"translations/s batched, 1M random VAs, {label}", batch, "/s",
                "translate() walk", walk, ">= 1M/s", batch >= 1e6)
        )  # fmt: skip
        record(
            Row(f"translations/s one by one, {label}", single, "/s", "translate() walk", walk,
                ">= 200k/s", single >= 2e5)
        )  # fmt: skip


def bench_tui(runs: int) -> None:
    proc = subprocess.run(
        [PY, str(HERE / "bench_tui.py"), "--runs", str(runs), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode:
        raise SystemExit(f"bench_tui failed: {proc.stderr[-800:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    first = result["first_screen"]
    record(Row("TUI first screen after indexing (1M segs)", first * 1000, "ms", "", None,
               "<= 500 ms", first <= 0.5))  # fmt: skip
    record(Row("TUI indexing (loader thread)", result["index"] * 1000, "ms"))
    record(Row("TUI triage report on the overview, after the first screen", result["report"] * 1000,
               "ms"))  # fmt: skip
    floor = result["key: z (unbound: Textual's own floor)"]
    for key, value in result.items():
        kind, _, name = key.partition(": ")
        if kind not in ("key", "tab", "modal"):
            continue
        limit = 0.030 if kind == "key" else 0.050  # a key 30 ms; a tab switch, a modal 50 ms
        record(
            Row(f"TUI CPU per {name}", value * 1000, "ms", "unbound key", floor * 1000,
                f"<= {limit * 1000:.0f} ms", value <= limit)
        )  # fmt: skip
    record(
        Row("TUI: one leaf table's 2048 rows, RowList", result["RowList 2048 rows"] * 1000, "ms",
            "DataTable", result["DataTable 2048 rows"] * 1000)
    )  # fmt: skip
    record(Row("TUI peak RSS (1M segs, whole session)", result["peak_rss_mb"], "MB", "", None,
               "<= 250 MB", result["peak_rss_mb"] <= 250))  # fmt: skip


def bench_triage(runs: int) -> None:
    """bench_triage.py: 1,000 generated dumps, triage --jobs 2 against an info loop, RSS."""
    proc = subprocess.run(
        [PY, str(HERE / "bench_triage.py"), "--runs", str(runs), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode:
        raise SystemExit(f"bench_triage failed: {proc.stderr[-800:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    n = r["dumps"]
    ours, loop = r["triage_jobs2_s"], r["info_loop_s"]
    record(Row(f"triage {n:,} dumps, --jobs 2", ours, "s", "shell loop of info", loop,
               "<= 0.2 x", ours / loop <= 0.2))  # fmt: skip
    record(Row(f"triage {n:,} dumps, --jobs 1", r["triage_jobs1_s"], "s"))
    flat = r["rss_all_mb"] <= 1.1 * r["rss_100_mb"] + 5
    record(Row(f"triage peak RSS, {n:,} dumps", r["rss_all_mb"], "MB", "100 dumps",
               r["rss_100_mb"], "flat", flat))  # fmt: skip


def bench_generate(runs: int) -> None:
    gen_out = OUT / "gen-1g.dump"
    zero_out = OUT / "zero-1g.bin"

    def clean() -> None:
        for p in (gen_out, zero_out):
            p.unlink(missing_ok=True)
        os.sync()

    gen_times, head_times = [], []
    for _ in range(runs):
        clean()
        gen_times.append(run_timed([*DUMPVIEW, "generate", *DUMPS["1g-data.dump"], "-o",
                                    str(gen_out)]))  # fmt: skip
        size = gen_out.stat().st_size
        os.sync()
        with zero_out.open("wb") as f:
            head_times.append(run_timed(["head", "-c", str(size), "/dev/zero"], stdout=f))
    rss = peak_rss_mb([*DUMPVIEW, "generate", *DUMPS["1g-data.dump"], "-o", str(gen_out)])
    clean()
    ours, head = statistics.median(gen_times), statistics.median(head_times)
    record(Row("generate large 1024 MiB", ours, "s", "head -c (same bytes)", head, "<= 2 x",
               ours / head <= 2))  # fmt: skip
    record(Row("generate peak RSS, 1024 MiB", rss, "MB"))


def bench_rss(one_m: Path) -> None:
    jsonl = str(OUT / "rss.jsonl")
    for label, argv, ok in (
        ("info", ["info", str(one_m)], (0,)),
        ("export pages", ["export", str(one_m), "--include", "pages", "-o", jsonl], (0,)),
        ("export, all kinds", ["export", str(one_m), "-o", jsonl], (0,)),
        ("check", ["check", str(one_m)], (0, 1)),
        ("ranges", ["ranges", str(one_m)], (0,)),
    ):
        rss = peak_rss_mb([*DUMPVIEW, *argv], ok=ok)
        record(Row(f"peak RSS: {label}, 1M segs", rss, "MB", "", None, "<= 250 MB", rss <= 250))
    Path(jsonl).unlink(missing_ok=True)


def bench_queries(one_m: Path, one_g: Path, runs: int, readelf: float) -> None:
    probe = subprocess.run(
        [*DUMPVIEW, "search", str(one_g), "--string", NEEDLE, "--json"],
        capture_output=True,
        text=True,
    )
    searched = json.loads(probe.stdout)["search"]["bytes_searched"] / 2**30
    ours = median_time([*DUMPVIEW, "search", str(one_g), "--string", NEEDLE], runs, ok=(1,))
    grep = median_time(["grep", "-c", "-F", "-a", NEEDLE, str(one_g)], runs, ok=(1,))
    record(
        Row("search 1 GiB of dumped data", searched / ours, "GiB/s", "grep -c -F -a",
            one_g.stat().st_size / 2**30 / grep, ">= 0.5 GiB/s", searched / ours >= 0.5)
    )  # fmt: skip
    record(Row("ranges, 1M segs (1M lines)", median_time([*DUMPVIEW, "ranges", str(one_m)], runs),
               "s", "readelf -lW", readelf))  # fmt: skip


def claimed_pages_dump() -> Path:
    """The hostile corpus's PT_LOAD claiming 20.9M pages without data (16 KB), and the
    driver base to diff it against, written under OUT."""
    from tests import hostile

    path, base = OUT / "claims-20m-pages.dump", OUT / "driver-base.dump"
    path.write_bytes(hostile.load_claims_pages())
    base.write_bytes(hostile.driver_base())
    return path


def bench_checks(one_m: Path, tables: Path, runs: int, readelf: float) -> None:
    """check and diff on the 1M-segment dumps (time against readelf -lW of the driver dump,
    peak RSS), and on a PT_LOAD claiming 20.9M pages (work must follow the file)."""
    claims = claimed_pages_dump()
    base = OUT / "driver-base.dump"
    for name, argv, ok in (
        ("check, 1M segs", ["check", str(one_m)], (0, 1)),
        ("check, 1M segs with tables", ["check", str(tables)], (0, 1)),
        ("diff against itself, 1M segs", ["diff", str(one_m), str(one_m)], (0,)),
        ("diff with tables against driver, 1M segs", ["diff", str(tables), str(one_m)], (0,)),
        ("check, one PT_LOAD claiming 20.9M pages", ["check", str(claims)], (0, 1)),
        ("diff, 20.9M claimed pages against 4 PT_LOADs", ["diff", str(claims), str(base)], (1,)),
    ):
        record(Row(name, median_time([*DUMPVIEW, *argv], runs, ok=ok), "s", "readelf -lW",
                   readelf))  # fmt: skip
    for label, argv, ok in (
        ("check, 1M segs with tables", ["check", str(tables)], (0, 1)),
        ("diff with tables against driver, 1M segs", ["diff", str(tables), str(one_m)], (0,)),
        ("check, 20.9M claimed pages", ["check", str(claims)], (0, 1)),
        ("diff, 20.9M claimed pages", ["diff", str(claims), str(base)], (1,)),
    ):
        rss = peak_rss_mb([*DUMPVIEW, *argv], ok=ok)
        record(Row(f"peak RSS: {label}", rss, "MB", "", None, "<= 250 MB", rss <= 250))


MIXED = r"""
import mmap, shutil, sys
import numpy as np
sys.path.insert(0, ".")
import dumpview
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
with dumpview.open_dump(src) as dump:
    spans = [(int(o), int(n)) for o, n in zip(dump.seg_offset, dump.seg_filesz) if n]
rng = np.random.default_rng(16)
with open(dst, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
    out = np.frombuffer(m, dtype=np.uint8)
    for offset, size in spans:  # every other 16 KiB page: 4 bits of entropy a byte
        pages = out[offset : offset + size].reshape(-1, 16384)
        pages[::2] = rng.integers(0, 16, size=pages[::2].shape, dtype=np.uint8)
    del out, pages
print("{}")
"""


def first_line_time(argv: list[str]) -> float:
    """Seconds until ``argv`` prints its first line (then it is left to finish)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode or not line:
        raise SystemExit(f"{argv[:4]} failed: {err.decode()[-400:]}")
    return elapsed


def null_sink() -> Path:
    """A character device of our own with /dev/null's numbers (never /dev/null itself); a
    plain file when mknod is not allowed (then the peer pays for its writes too)."""
    sink = OUT / "null"
    if not sink.exists():
        try:
            os.mknod(sink, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            sink.touch()
    return sink


def bench_compressed(one_g: Path, runs: int) -> None:
    """Issue 16: a 1 GiB-of-data dump compressed with zstd (by the zstd CLI): time to the
    first ``info`` line against ``zstd -d -c FILE > sink``, peak RSS, and the export against
    the uncompressed export plus the decompression. Also on a copy whose dumped pages carry
    entropy (the generator's pages are 98 % zeros, so zstd -d of them takes ~0.15 s and
    Python's start-up dominates)."""
    if not shutil.which("zstd"):
        print("zstd CLI not installed: compressed-input metrics skipped")
        return
    mixed = OUT / "1g-mixed.dump"
    if not mixed.exists():
        in_process(MIXED, str(one_g), str(mixed))
    sink = null_sink()
    env_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(OUT)  # the spool next to the dumps (disk), as /var/tmp would be
    try:
        for label, dump in (("1 GiB data", one_g), ("1 GiB data, with entropy", mixed)):
            packed = dump.with_name(dump.name + ".zst")
            if not packed.exists():
                subprocess.run(["zstd", "-q", "-T0", "-f", str(dump), "-o", str(packed)],
                               check=True)  # fmt: skip
            ratio = dump.stat().st_size / packed.stat().st_size

            def unzstd(packed: Path = packed) -> float:
                with sink.open("wb") as out:
                    return run_timed(["zstd", "-d", "-c", str(packed)], stdout=out)

            peer = statistics.median(unzstd() for _ in range(runs))
            ours = statistics.median(
                first_line_time([*DUMPVIEW, "info", str(packed)]) for _ in range(runs)
            )
            record(
                Row(f"zstd {label} (x{ratio:,.0f}): first info line", ours, "s",
                    "zstd -d -c > null", peer, "<= 1.5 x", ours / peer <= 1.5)
            )  # fmt: skip
            to_file = OUT / "unzstd.tmp"  # what landing the bytes in a file costs zstd itself
            on_disk = median_time(["zstd", "-d", "-q", "-f", str(packed), "-o", str(to_file)],
                                  runs)  # fmt: skip
            to_file.unlink(missing_ok=True)
            record(Row("  the same", ours, "s", "zstd -d -o FILE", on_disk))
            rss = peak_rss_mb([*DUMPVIEW, "info", str(packed)])
            plain_rss = peak_rss_mb([*DUMPVIEW, "info", str(dump)])
            record(Row(f"zstd {label}: info peak RSS", rss, "MB", "uncompressed info",
                       plain_rss, "flat"))  # fmt: skip
            jsonl = str(OUT / "compressed.jsonl")
            export_packed = median_time([*DUMPVIEW, "export", str(packed), "-o", jsonl], runs)
            export_plain = median_time([*DUMPVIEW, "export", str(dump), "-o", jsonl], runs)
            Path(jsonl).unlink(missing_ok=True)
            record(
                Row(f"zstd {label}: export", export_packed, "s", "export plain + zstd -d",
                    export_plain + peer, "<= 1.2 x", export_packed <= 1.2 * (export_plain + peer))
            )  # fmt: skip
    finally:
        if env_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env_tmp


# ---- output ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()} {cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def markdown(runs: int) -> str:
    lines = [
        BEGIN,
        f"`python tests/bench/bench.py --runs {runs}` on {time.strftime('%Y-%m-%d')}: "
        f"{machine()}. Medians of {runs} runs, page cache warm.",
        "",
        "| metric | ours | peer (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        ratio = row.ratio()
        peer = f"{row.peer_name} {num(row.peer)} {row.unit}" if row.peer is not None else ""
        verdict = {None: "", True: "met", False: "**missed**"}[row.met]
        lines.append(
            f"| {row.metric} | {num(row.ours)} {row.unit} | {peer} | "
            f"{'' if ratio is None else num(ratio)} | {row.target} | {verdict} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_results(runs: int) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    block = markdown(runs)
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    parser.add_argument("--skip-generate", action="store_true", help="skip generate vs head")
    parser.add_argument("--only", choices=["compressed", "checks"], help="run one group of metrics")
    args = parser.parse_args()
    runs = max(1, args.runs)
    OUT.mkdir(exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    if args.only == "compressed":
        one_g = build("1g-data.dump")
        subprocess.run(["cat", str(one_g)], stdout=subprocess.DEVNULL, check=True)
        bench_compressed(one_g, runs)
        return
    if args.only == "checks":
        one_m, tables = build("1m-driver.dump"), build("1m-tables.dump")
        for path in (one_m, tables):
            subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
        readelf = median_time(["readelf", "-lW", str(one_m)], runs)
        bench_checks(one_m, tables, runs, readelf)
        return
    one_m, tables, one_g = (build(name) for name in DUMPS)
    for path in (one_m, tables, one_g):  # warm the page cache for everyone alike
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    print(f"\n{'metric':46s} {'ours':>12s} {'unit':8s} {'peer (same run)':40s} {'ratio':>7s} "
          f"{'target':16s}")  # fmt: skip
    readelf = bench_info(one_m, runs)
    bench_export(one_m, runs, readelf)
    bench_table_decode(tables, runs)
    bench_read_all(one_g, runs)
    bench_translate(one_m, tables, runs)
    bench_tui(runs)
    bench_rss(one_m)
    bench_queries(one_m, one_g, runs, readelf)
    bench_checks(one_m, tables, runs, readelf)
    bench_compressed(one_g, runs)
    bench_triage(runs)
    if not args.skip_generate:
        bench_generate(runs)
    missed = [row.metric for row in ROWS if row.met is False]
    print(f"\n{len(ROWS)} metrics, {len(missed)} targets missed", *missed, sep="\n  ")
    if args.write_results:
        write_results(runs)


if __name__ == "__main__":
    main()
