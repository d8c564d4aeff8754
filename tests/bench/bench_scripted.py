"""Benchmarks for the scripted surface, against peers measured in the same run.

Run on demand (not part of the test suite):

    .venv/bin/python tests/bench/bench_scripted.py [--runs 3]

It builds (once) under tests/bench/out/ (ignored by git) the 1,000,000-segment driver dump of
bench_trunk.py and a 1 GiB-of-data dump (``large --mapped-mib 1024``), then prints ours, the
peer and the ratio, each the median of ``--runs`` whole-process runs:

- ``dumpview export --include pages`` (JSONL, every page) of the 1M-segment dump, to a file
  (atomic, fsynced) and to /dev/null, vs ``readelf -lW`` of the same file (target <= 2 x);
- ``dumpview search`` over the 1 GiB of dumped data (a pattern that is not there, so every byte
  is read), in GiB/s of dumped data (target >= 0.5 GiB/s), vs ``grep -c -F -a`` over the file;
- ``dumpview ranges``, ``check`` and ``diff`` (against itself) of the 1M-segment dump, with
  ``readelf -lW`` for scale (no target).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trunk import DUMPVIEW, OUT, build, median_time, row

NEEDLE = "needle-that-is-in-no-page-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = max(1, args.runs)
    OUT.mkdir(exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    one_m = OUT / "1m-driver.dump"
    build(one_m, "--scenario", "large", "--mapped-mib", "16384", "--scatter",
          "--dumped-percent", "2", "--driver-layout")  # fmt: skip
    one_g = OUT / "1g-data.dump"
    build(one_g, "--scenario", "large", "--mapped-mib", "1024")
    for path in (one_m, one_g):  # warm the page cache for everyone alike
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)

    readelf = median_time(["readelf", "-lW", str(one_m)], runs)
    jsonl = OUT / "1m-pages.jsonl"
    to_file = median_time(
        [*DUMPVIEW, "export", str(one_m), "--include", "pages", "-o", str(jsonl)], runs
    )
    pages = json.loads(jsonl.read_text().splitlines()[-1])["counts"]["page"]
    size_mib = jsonl.stat().st_size / 2**20
    jsonl.unlink()
    print(f"1M dump: {pages:,} page records, {size_mib:.0f} MiB of JSONL")
    row("export JSONL pages (1M segs) to a file", to_file, "readelf -lW", readelf, 2.0)
    to_null = median_time([*DUMPVIEW, "export", str(one_m), "--include", "pages"], runs)
    row("export JSONL pages (1M segs) to /dev/null", to_null, "readelf -lW", readelf, 2.0)

    probe = subprocess.run(
        [*DUMPVIEW, "search", str(one_g), "--string", NEEDLE, "--json"],
        capture_output=True,
        text=True,
    )
    searched = json.loads(probe.stdout)["search"]["bytes_searched"]
    ours = median_time_any([*DUMPVIEW, "search", str(one_g), "--string", NEEDLE], runs)
    grep = median_time_any(["grep", "-c", "-F", "-a", NEEDLE, str(one_g)], runs)
    gib = searched / 2**30
    verdict = "  ok" if gib / ours >= 0.5 else "  MISSED"
    print(
        f"{'search 1 GiB of dumped data (whole process)':44s} ours {gib / ours:8.2f} GiB/s  "
        f"{'grep -c -F -a (whole file)':26s} {one_g.stat().st_size / 2**30 / grep:8.2f} GiB/s  "
        f"ratio {grep / ours:6.3f} (target >= 0.5 GiB/s){verdict}"
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from dumpview import open_dump

    with open_dump(one_g) as dump:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = dump.search(NEEDLE.encode())
            times.append(time.perf_counter() - start)
        api = statistics.median(times)
    print(
        f"{'search 1 GiB of dumped data (API, in process)':44s} ours "
        f"{result.bytes_searched / 2**30 / api:8.2f} GiB/s"
    )

    for name, argv in (
        ("ranges (1M segs)", [*DUMPVIEW, "ranges", str(one_m)]),
        ("check (1M segs)", [*DUMPVIEW, "check", str(one_m)]),
        ("diff against itself (1M segs)", [*DUMPVIEW, "diff", str(one_m), str(one_m)]),
    ):
        row(name, median_time_any(argv, runs), "readelf -lW", readelf, None)


def median_time_any(argv: list[str], runs: int) -> float:
    """Like ``median_time`` but any exit code is fine (search without hits exits 1)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
