"""Triage benchmark: 1,000 generated dumps through `dumpview triage --jobs 2`, against a shell
loop of `dumpview info` over the same files, and peak RSS at 100 and at 1,000 dumps.

Run on demand (not part of the test suite; bench.py runs it in the same run as the others):

    .venv/bin/python tests/bench/bench_triage.py [--runs 3] [--count 1000] [--json]

It generates the dumps once into tests/bench/out/triage/ (git-ignored): mixed scenarios and
seeds (minimal, asahi-kernel, user-contexts, faults, large 2 MiB, the same in the driver's
layout, LPAE smmu and faults at 4K and 16K granules), the first 100 under ``a/``, the rest under
``b/``. Targets (issue 17): triage of all of them with ``--jobs 2`` <= 0.2 x the ``info`` loop
(wall clock, page cache warm for both), and peak RSS (the largest process of the tree, as
/usr/bin/time reports it) flat in the number of dumps: at 1,000 within 10 % (+5 MB) of 100.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "out" / "triage"
PY = sys.executable
_SCRIPT = Path(PY).parent / "dumpview"
DUMPVIEW = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "dumpview.cli"]
FIRST = 100  # under a/: the small corpus of the RSS comparison

SPECS: tuple[tuple[str, dict], ...] = (
    ("minimal", {}),
    ("asahi-kernel", {}),
    ("user-contexts", {}),
    ("faults", {}),
    ("large", {"knobs": {"mapped_mib": 2}}),
    ("minimal", {"driver_layout": True}),
    ("faults", {"driver_layout": True}),
    ("asahi-kernel", {"driver_layout": True}),
    ("smmu", {"entry_format": "lpae-4k"}),
    ("faults", {"entry_format": "lpae-4k"}),
    ("smmu", {"entry_format": "lpae-16k"}),
    ("faults", {"entry_format": "lpae-16k"}),
)

sys.path.insert(0, str(ROOT))


def corpus(count: int) -> list[Path]:
    """The ``count`` dumps (generated when missing), a/ first then b/, in walk order."""
    from dumpview.sim.scenarios import generate_file

    paths = []
    made = 0
    started = time.perf_counter()
    for i in range(count):
        scenario, options = SPECS[i % len(SPECS)]
        tag = "-driver" if options.get("driver_layout") else ""
        tag += f"-{options['entry_format']}" if "entry_format" in options else ""
        path = OUT / ("a" if i < FIRST else "b") / f"{i:05d}-{scenario}{tag}.dump"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            generate_file(path, scenario=scenario, seed=i, **options)
            made += 1
        paths.append(path)
    if made:
        took = time.perf_counter() - started
        print(f"generated {made} dumps in {took:.1f} s into {OUT}", file=sys.stderr, flush=True)
    return paths


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.decode()[-400:]}")
    return elapsed


def peak_rss_mb(argv: list[str]) -> float:
    """Peak RSS of the largest process of the run's tree (GNU time's %M)."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr[-400:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def bench(runs: int, count: int) -> dict:
    paths = corpus(count)
    for path in paths:  # page cache warm for everyone alike
        path.read_bytes()
    root = str(OUT)
    triage = [*DUMPVIEW, "triage", "--json", "--jobs", "2"]
    ours = statistics.median(timed([*triage, root]) for _ in range(runs))
    ours_one_job = timed([*DUMPVIEW, "triage", "--json", "--jobs", "1", root])
    # The peer: what a user runs today, one process per dump (once: it takes minutes).
    listed = " ".join(f"'{p}'" for p in paths)
    loop = f'for f in {listed}; do {" ".join(DUMPVIEW)} info "$f" >/dev/null; done'
    info_loop = timed(["bash", "-c", loop])
    rss_small = peak_rss_mb([*triage, str(OUT / "a")])
    rss_all = peak_rss_mb([*triage, root])
    return {
        "dumps": len(paths),
        "corpus_bytes": sum(p.stat().st_size for p in paths),
        "triage_jobs2_s": ours,
        "triage_jobs1_s": ours_one_job,
        "info_loop_s": info_loop,
        "rss_100_mb": rss_small,
        "rss_all_mb": rss_all,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000, help="dumps (at least 101)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = bench(max(1, args.runs), max(FIRST + 1, args.count))
    if args.json:
        print(json.dumps(result))
        return
    n = result["dumps"]
    ours, one, loop = result["triage_jobs2_s"], result["triage_jobs1_s"], result["info_loop_s"]
    small, big = result["rss_100_mb"], result["rss_all_mb"]
    print(f"{n} dumps, {result['corpus_bytes'] / 2**20:,.0f} MiB")
    print(f"triage --jobs 2   {ours:8.2f} s  ({n / ours:,.0f} dumps/s)")
    print(f"triage --jobs 1   {one:8.2f} s")
    print(f"info loop         {loop:8.2f} s  ratio {ours / loop:.4f} (target <= 0.2)")
    print(f"peak RSS          {small:.1f} MB at {FIRST} dumps, {big:.1f} MB at {n}")


if __name__ == "__main__":
    main()
