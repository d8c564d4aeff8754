"""Benchmarks for the trunk and the generator, against peers measured in the same run.

Run on demand (not part of the test suite):

    .venv/bin/python tests/bench/bench_trunk.py [--runs 5] [--keep]

It builds its dumps with the generator under tests/bench/out/ (ignored by git):
- a 1,000,000-segment driver-layout dump (scattered PAs, PN_XNUM; 2 % of pages dumped),
- a 1 GiB-of-data dump (``large --mapped-mib 1024``),
and prints, per metric, ours, the peer, and the ratio (median of several runs, wall clock of
the whole process):

- ``dumpview info`` vs ``readelf -lW`` (target <= 0.25 x) and vs pyelftools iterating every
  segment (target <= 0.02 x); peak RSS of ``dumpview info`` (target <= 250 MB);
- ``dumpview generate --scenario large --mapped-mib 1024`` vs ``head -c`` of as many bytes to
  the same disk (target <= 2 x); generator peak RSS at 256 MiB and 1024 MiB (flat).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable
_SCRIPT = Path(PY).parent / "dumpview"  # the console script a user runs
DUMPVIEW = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "dumpview.cli"]


def run_timed(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.decode()[-400:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, max(after.ru_maxrss, before.ru_maxrss)


def max_rss_kib(argv: list[str]) -> int:
    """Peak RSS of one run, measured with /usr/bin/time when available."""
    if shutil.which("/usr/bin/time"):
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return int(proc.stderr.strip().splitlines()[-1])
    return run_timed(argv)[1]


def median_time(argv: list[str], runs: int, setup=None) -> float:
    times = []
    for _ in range(runs):
        if setup:
            setup()
        times.append(run_timed(argv)[0])
    return statistics.median(times)


def build(path: Path, *args: str) -> None:
    if path.exists():
        return
    print(f"building {path.name}: dumpview generate {' '.join(args)}", flush=True)
    t, _ = run_timed([*DUMPVIEW, "generate", *args, "-o", str(path)])
    print(f"  built in {t:.1f} s, {path.stat().st_size / 2**20:.0f} MiB", flush=True)


def row(
    metric: str, ours: float, peer_name: str, peer: float, target: float | None, unit: str = "s"
) -> None:
    ratio = ours / peer if peer else float("inf")
    verdict = "" if target is None else ("  ok" if ratio <= target else "  MISSED")
    target_s = "" if target is None else f" (target <= {target:g} x)"
    print(
        f"{metric:44s} ours {ours:8.3f} {unit}  {peer_name:26s} {peer:8.3f} {unit}  "
        f"ratio {ratio:6.3f}{target_s}{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )

    one_m = OUT / "1m-driver.dump"
    build(
        one_m,
        "--scenario",
        "large",
        "--mapped-mib",
        "16384",
        "--scatter",
        "--dumped-percent",
        "2",
        "--driver-layout",
    )
    segs = subprocess.run(
        [*DUMPVIEW, "info", "--json", str(one_m)], capture_output=True, text=True, check=True
    ).stdout
    import json

    print(
        f"1M dump: {json.loads(segs)['segments']:,} segments, "
        f"{one_m.stat().st_size / 2**20:.0f} MiB"
    )
    # Warm the page cache for everyone alike.
    subprocess.run(["cat", str(one_m)], stdout=subprocess.DEVNULL, check=True)

    ours = median_time([*DUMPVIEW, "info", str(one_m)], args.runs)
    readelf = median_time(["readelf", "-lW", str(one_m)], args.runs)
    row("info (1M segments) vs readelf -lW", ours, "readelf -lW", readelf, 0.25)
    pyelf_code = (
        "import sys\nfrom elftools.elf.elffile import ELFFile\n"
        "f=open(sys.argv[1],'rb'); e=ELFFile(f)\n"
        "n=sum(1 for s in e.iter_segments() if s['p_type']=='PT_LOAD')\nprint(n)"
    )
    pyelf = median_time([PY, "-c", pyelf_code, str(one_m)], max(1, min(args.runs, 2)))
    row("info (1M segments) vs pyelftools", ours, "pyelftools iter_segments", pyelf, 0.02)
    rss = max_rss_kib([*DUMPVIEW, "info", str(one_m)]) / 1024
    print(
        f"{'info peak RSS (1M segments)':44s} {rss:8.1f} MB (target <= 250 MB)"
        f"{'  ok' if rss <= 250 else '  MISSED'}"
    )

    if not args.skip_generate:
        gen_out = OUT / "gen-1g.dump"
        zero_out = OUT / "zero-1g.bin"

        def clean() -> None:
            for p in (gen_out, zero_out):
                if p.exists():
                    p.unlink()
            os.sync()

        gen_times, head_times = [], []
        for _ in range(max(1, min(args.runs, 3))):
            clean()
            gen_times.append(
                run_timed(
                    [
                        *DUMPVIEW,
                        "generate",
                        "--scenario",
                        "large",
                        "--mapped-mib",
                        "1024",
                        "-o",
                        str(gen_out),
                    ]
                )[0]
            )
            size = gen_out.stat().st_size
            os.sync()
            with zero_out.open("wb") as f:
                head_times.append(run_timed(["head", "-c", str(size), "/dev/zero"], stdout=f)[0])
        clean()
        row(
            "generate large 1024 MiB vs head -c",
            statistics.median(gen_times),
            "head -c (same bytes)",
            statistics.median(head_times),
            2.0,
        )
        for mib in (256, 1024):
            rss = (
                max_rss_kib(
                    [
                        *DUMPVIEW,
                        "generate",
                        "--scenario",
                        "large",
                        "--mapped-mib",
                        str(mib),
                        "-o",
                        str(gen_out),
                    ]
                )
                / 1024
            )
            print(f"{f'generate peak RSS at {mib} MiB':44s} {rss:8.1f} MB")
        clean()


if __name__ == "__main__":
    main()
