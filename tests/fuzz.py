"""Mutation fuzzing of dump files through every entry point (``tests/hostile.py``'s harness).

``python tests/fuzz.py --count 100000 [--seed S] [--jobs 2] [--out DIR] [--timeout T]``

Owns the mutator and the driver. Seeds are small dumps that carry every structure the model
reads: the hostile corpus's extension base (tables, memory map, holes, scenario, AGX note, a
crash log of every payload kind), the same with a second (user) address space, its
driver-layout base, and the driver-layout sample (``samples/minimal-driver.dump``). Each case
is one seed with 1-4 mutations, drawn from a ``random.Random`` seeded with (seed, case number),
so a case is reproducible on its own:

- field overwrites (u8/u16/u32/u64) of named fields: ELF header, program headers, section
  headers, note headers, CLHE entry headers, the extension's header, directory, geometry and
  record arrays, page-table entries (pointing at other tables, themselves, missing PAs); with
  interesting values (0, 1, 0xffff, 0xffffffff, 2**63, the file size, ...) or small deltas;
- random byte flips and u8..u64 overwrites, weighted toward the header, program headers,
  notes, the extension and the tables (page data gets a small share);
- truncations (at and around structure boundaries, or anywhere), chunk duplication and
  deletion inside the structured regions.

Every case is written to a temporary file (``/dev/shm`` when it exists) and run through
``hostile.exercise(fast=True)``; an UNHANDLED or HANG result (or a changed file) saves the
case to ``--out`` as ``fuzz-SEED-CASE.dump`` and prints one line. Exit code 1 if any case was
bad. Worker processes (``--jobs``) each take every N-th case; results do not depend on N.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from queue import Empty as EmptyQueue

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``python tests/fuzz.py`` from anywhere
    sys.path.insert(0, str(ROOT))

from formats import clhe, elf, ext  # noqa: E402
from tests import hostile  # noqa: E402
from tests.hostile import Layout  # noqa: E402

PAGE = 0x4000
FAST_ENTRIES = ("info", "vtop", "read", "export", "check", "tui")  # info --json: same calls
FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


# ---- seeds and their fields ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A named field of a seed: ``name`` for the reproducer line, where and how wide."""

    name: str
    offset: int
    size: int


@dataclass
class Seed:
    """A seed dump, its named fields and weighted regions (start, end, weight)."""

    name: str
    data: bytes
    fields: list[FieldRef]
    regions: list[tuple[str, int, int, float]]
    boundaries: list[int]
    table_pas: list[int]
    table_offsets: list[int]


def _fields(layout: Layout, raw: bytes) -> list[FieldRef]:
    out: list[FieldRef] = []
    for name, off, size in (
        ("e_type", 16, 2),
        ("e_machine", 18, 2),
        ("e_phoff", 32, 8),
        ("e_shoff", 40, 8),
        ("e_phentsize", 54, 2),
        ("e_phnum", 56, 2),
        ("e_shentsize", 58, 2),
        ("e_shnum", 60, 2),
        ("e_shstrndx", 62, 2),
        ("ei_class", 4, 1),
        ("ei_data", 5, 1),
    ):
        out.append(FieldRef(name, off, size))
    phdr_fields = (
        ("p_type", 0, 4),
        ("p_flags", 4, 4),
        ("p_offset", 8, 8),
        ("p_vaddr", 16, 8),
        ("p_paddr", 24, 8),
        ("p_filesz", 32, 8),
        ("p_memsz", 40, 8),
    )
    for ph in layout.phdrs[:64]:
        for name, off, size in phdr_fields:
            out.append(FieldRef(f"phdr{ph['index']}.{name}", ph["at"] + off, size))
    for sec in layout.sections:
        for name, off, size in (
            ("sh_type", 4, 4),
            ("sh_offset", 24, 8),
            ("sh_size", 32, 8),
            ("sh_info", 44, 4),
        ):
            out.append(FieldRef(f"shdr{sec['index']}.{name}", sec["at"] + off, size))
    for i, note in enumerate(layout.notes):
        for name, off, size in (("n_namesz", 0, 4), ("n_descsz", 4, 4), ("n_type", 8, 4)):
            out.append(FieldRef(f"note{i}.{name}", note["at"] + off, size))
        if note["name"] == "RTKIT":
            out += _clhe_fields(raw, note["desc_at"], note["descsz"], i)
    if layout.ext_offset is not None:
        base = layout.ext_offset
        out += [
            FieldRef("ext.version", base + 8, 2),
            FieldRef("ext.directory_count", base + 12, 4),
        ]
        for i, d in enumerate(layout.directory):
            for name, off, size in (
                ("kind", 0, 4),
                ("count", 4, 4),
                ("offset", 8, 8),
                ("size", 16, 8),
            ):
                out.append(FieldRef(f"ext.dir{i}.{name}", d["at"] + off, size))
            out += _record_fields(d, base + d["offset"])
    return out


RECORD_FIELDS: dict[int, tuple[int, tuple[tuple[str, int, int], ...]]] = {
    ext.KIND_GEOMETRY: (
        16,
        (
            ("entry_format", 0, 2),
            ("page_shift", 2, 1),
            ("ias", 3, 1),
            ("oas", 4, 1),
            ("level_count", 5, 1),
            ("va_base", 8, 8),
        ),
    ),
    ext.KIND_SPACES: (
        48,
        (
            ("context", 0, 4),
            ("ttb_pa", 8, 8),
            ("va_start", 16, 8),
            ("va_size", 24, 8),
            ("managed_va_start", 32, 8),
            ("managed_va_size", 40, 8),
        ),
    ),
    ext.KIND_TABLES: (
        40,
        (("level", 0, 1), ("flags", 1, 1), ("context", 4, 4), ("pa", 8, 8), ("file_offset", 32, 8)),
    ),
    ext.KIND_REGIONS: (
        24,
        (("kind", 0, 1), ("flags", 1, 1), ("name_offset", 4, 4), ("base", 8, 8), ("size", 16, 8)),
    ),
    ext.KIND_HOLES: (
        24,
        (("va", 0, 8), ("size", 8, 8), ("reason", 16, 1), ("detail", 17, 1), ("region", 20, 4)),
    ),
    ext.KIND_SCENARIO: (0, (("seed", 0, 8), ("name_len", 8, 2))),
}


def _record_fields(entry: dict, start: int) -> list[FieldRef]:
    spec = RECORD_FIELDS.get(entry["kind"])
    if spec is None:
        return []
    size, fields = spec
    count = 1 if size == 0 else min(entry["count"], 16)
    out = []
    for i in range(count):
        for name, off, width in fields:
            out.append(
                FieldRef(f"ext.kind{entry['kind']}[{i}].{name}", start + i * size + off, width)
            )
    return out


def _clhe_fields(raw: bytes, start: int, size: int, note: int) -> list[FieldRef]:
    out = [FieldRef(f"note{note}.clhe.total_size", start + 8, 4)]
    pos = start + clhe.CLHE_HEADER_SIZE
    end = start + size
    while pos + clhe.ENTRY_HEADER_SIZE <= end:
        kind, length = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 12)[0]
        label = kind[::-1].decode("latin-1")  # tags are LE u32s: "rtsC" on disk is Cstr
        out.append(FieldRef(f"note{note}.clhe.{label}@{pos - start:#x}.length", pos + 12, 4))
        out.append(FieldRef(f"note{note}.clhe.{label}@{pos - start:#x}.kind", pos, 4))
        closing = kind in (clhe.CLHE_MAGIC, clhe.CLHE_MAGIC_READING_ORDER)
        if closing or length < clhe.ENTRY_HEADER_SIZE:
            break
        pos += length
    return out


def _regions(layout: Layout) -> list[tuple[str, int, int, float]]:
    """(name, start, end, weight) of the structured parts, and the page data (a small share)."""
    out = [("ehdr", 0, elf.EHDR_SIZE, 3.0)]
    out.append(("phdrs", layout.phoff, layout.phoff + layout.phnum * elf.PHDR_SIZE, 4.0))
    notes = layout.note_segment
    out.append(("notes", notes["offset"], notes["offset"] + notes["filesz"], 4.0))
    for sec in layout.sections:
        if sec["type"] == ext.SHT_DUMPVIEW:
            out.append(("ext", sec["offset"], sec["offset"] + sec["size"], 4.0))
        elif sec["type"] == ext.SHT_DUMPVIEW_TABLES and sec["size"]:
            out.append(("tables", sec["offset"], sec["offset"] + sec["size"], 1.0))
    if layout.shnum:
        out.append(("shdrs", layout.shoff, layout.shoff + layout.shnum * elf.SHDR_SIZE, 2.0))
    loads = [ph for ph in layout.loads if ph["filesz"]]
    if loads:
        start = min(ph["offset"] for ph in loads)
        end = max(ph["offset"] + ph["filesz"] for ph in loads)
        out.append(("data", start, end, 0.5))
    return [r for r in out if r[2] > r[1]]


def _seed(name: str, data: bytes) -> Seed:
    layout = Layout.read(data)
    table_pas, table_offsets = [], []
    if layout.ext_offset is not None:
        with contextlib.suppress(StopIteration):
            tables = layout.record(ext.KIND_TABLES)
            start = layout.ext_offset + tables["offset"]
            for i in range(tables["count"]):
                pa, offset = struct.unpack_from("<Q24xQ", data, start + i * 40 + 8)
                table_pas.append(pa)
                table_offsets.append(offset)
    return Seed(
        name,
        data,
        _fields(layout, data),
        _regions(layout),
        [offset for _name, offset in layout.boundaries()],
        table_pas,
        table_offsets,
    )


@cache
def seeds() -> tuple[Seed, ...]:
    """The seed dumps (built once per process)."""
    return (
        _seed("ext", hostile.ext_base()),
        _seed("ext-two-spaces", hostile.ext_two_spaces_base()),
        _seed("driver", hostile.driver_base()),
        _seed("sample-driver", hostile.sample("minimal-driver.dump")),
    )


# ---- mutations ---------------------------------------------------------------------------------


def interesting(rng: random.Random, size: int, current: int, file_size: int) -> int:
    """A value worth trying in a field of ``size`` bytes that holds ``current``."""
    top = (1 << (8 * size)) - 1
    choices = [
        0,
        1,
        2,
        3,
        0x7F,
        0x80,
        0xFF,
        0xFFFF,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        1 << 32,
        1 << 63,
        top,
        top - 1,
        file_size,
        file_size - 1,
        file_size + 1,
        PAGE,
        elf.PHDR_SIZE,
        elf.EHDR_SIZE,
        current + 1,
        current - 1,
        current + PAGE,
        current - PAGE,
        current * 2,
        current // 2,
        current ^ (1 << rng.randrange(8 * size)),
        rng.getrandbits(8 * size),
    ]
    return rng.choice(choices) & top


def _put(raw: bytearray, offset: int, size: int, value: int) -> bool:
    if offset >= 0 and offset + size <= len(raw):
        struct.pack_into(FORMATS[size], raw, offset, value)
        return True
    return False


def _region(rng: random.Random, seed: Seed) -> tuple[str, int, int]:
    name, start, end, _w = rng.choices(seed.regions, weights=[r[3] for r in seed.regions])[0]
    return name, start, end


def m_field(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    f = rng.choice(seed.fields)
    if f.offset + f.size > len(raw):
        return f"{f.name}: gone"
    current = int.from_bytes(raw[f.offset : f.offset + f.size], "little")
    value = interesting(rng, f.size, current, len(raw))
    if f.name.endswith(("ttb_pa", ".pa")) and seed.table_pas and rng.random() < 0.5:
        value = rng.choice(seed.table_pas)  # another carried table: shared TTBs, duplicates
    _put(raw, f.offset, f.size, value)
    return f"{f.name}={value:#x}"


def m_flip(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    name, start, end = _region(rng, seed)
    at = rng.randrange(start, min(end, len(raw))) if min(end, len(raw)) > start else 0
    if at >= len(raw):
        return "flip: past the end"
    bit = rng.randrange(8)
    raw[at] ^= 1 << bit
    return f"flip {name}@{at:#x}.{bit}"


def m_word(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    name, start, end = _region(rng, seed)
    size = rng.choice((1, 2, 4, 8))
    end = min(end, len(raw)) - size
    if end <= start:
        return "word: no room"
    at = rng.randrange(start, end + 1)
    if rng.random() < 0.7:
        at -= (at - start) % size  # aligned like the fields are
    current = int.from_bytes(raw[at : at + size], "little")
    value = interesting(rng, size, current, len(raw))
    _put(raw, at, size, value)
    return f"u{8 * size} {name}@{at:#x}={value:#x}"


def m_table_entry(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    """A page-table entry pointing at another carried table, itself, a missing PA, or junk."""
    if not seed.table_pas:
        return m_field(rng, raw, seed)
    t = rng.randrange(len(seed.table_pas))
    index = rng.choice((0, 1, 2, 7, 8, rng.randrange(2048)))
    at = seed.table_offsets[t] + index * 8
    target = rng.choice(
        (
            rng.choice(seed.table_pas) | 3,
            seed.table_pas[t] | 3,
            0x6_0000_0000 | 3,
            rng.choice(seed.table_pas) | rng.randrange(4),
            rng.getrandbits(64),
            0,
        )
    )
    if not _put(raw, at, 8, target):
        return "table entry: past the end"
    return f"table{t}[{index}]={target:#x}"


def m_truncate(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    if rng.random() < 0.6 and seed.boundaries:
        cut = rng.choice(seed.boundaries) + rng.choice((0, 0, 1, -1, 4, 8, 12, 16, 24))
    else:
        cut = rng.randrange(len(raw) + 1)
    cut = max(0, min(cut, len(raw)))
    del raw[cut:]
    return f"truncate@{cut:#x}"


def m_chunk(rng: random.Random, raw: bytearray, seed: Seed) -> str:
    """Duplicate or delete a chunk inside a structured region (later bytes shift)."""
    name, start, end = _region(rng, seed)
    end = min(end, len(raw))
    if end - start < 2:
        return "chunk: no room"
    size = rng.choice((1, 4, 8, 12, 16, 24, 40, 48, 56, 64))
    at = rng.randrange(start, end)
    piece = bytes(raw[at : at + size])
    if rng.random() < 0.5:
        dest = rng.randrange(start, end)
        raw[dest:dest] = piece
        return f"duplicate {name}@{at:#x}+{len(piece)} to {dest:#x}"
    del raw[at : at + size]
    return f"delete {name}@{at:#x}+{size}"


MUTATIONS: tuple[tuple[Callable[[random.Random, bytearray, Seed], str], float], ...] = (
    (m_field, 5.0),
    (m_word, 3.0),
    (m_flip, 2.0),
    (m_table_entry, 1.5),
    (m_truncate, 1.0),
    (m_chunk, 1.0),
)


def make_case(seed_value: int, number: int) -> tuple[str, bytes]:
    """Case ``number`` of run ``seed_value``: (one-line description, file bytes)."""
    rng = random.Random(f"{seed_value}:{number}")
    all_seeds = seeds()
    seed = rng.choices(all_seeds, weights=(3, 2, 3, 2))[0]
    raw = bytearray(seed.data)
    ops = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        mutate = rng.choices([m for m, _w in MUTATIONS], weights=[w for _m, w in MUTATIONS])[0]
        ops.append(mutate(rng, raw, seed))
    return f"seed={seed_value} case={number} base={seed.name}: {'; '.join(ops)}", bytes(raw)


# ---- running -------------------------------------------------------------------------------------


@dataclass
class Report:
    """Counts over a run: by entry point outcome, by case (its worst outcome), the bad cases."""

    cases: int = 0
    entries: Counter = field(default_factory=Counter)
    worst: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: Report) -> None:
        self.cases += other.cases
        self.entries.update(other.entries)
        self.worst.update(other.worst)
        self.bad.extend(other.bad)


RANK = {"ok": 0, "warning": 1, "error": 2, "UNHANDLED": 3, "HANG": 4}


def run_cases(
    seed_value: int,
    numbers: range,
    out_dir: str | None,
    timeout: float,
    echo: Callable[[str], None] | None = None,
    on_case: Callable[[int], None] | None = None,
    scratch: str | None = None,
) -> Report:
    """Run cases ``numbers`` of run ``seed_value`` in this process (main thread: SIGALRM);
    ``on_case(number)`` is called before each case. Case files go to a temporary directory
    (inside ``scratch`` when given; default ``/dev/shm``)."""
    report = Report()
    workdir = tempfile.mkdtemp(prefix="fuzz-", dir=scratch or _scratch_root())
    path = os.path.join(workdir, "case.dump")
    try:
        for number in numbers:
            if on_case is not None:
                on_case(number)
            description, data = make_case(seed_value, number)
            with open(path, "wb") as fp:
                fp.write(data)
            outcome = hostile.exercise(path, fast=True, timeout=timeout, entries=FAST_ENTRIES)
            report.cases += 1
            worst = "ok"
            for r in outcome.results.values():
                report.entries[r.outcome] += 1
                if RANK[r.outcome] > RANK[worst]:
                    worst = r.outcome
            report.worst[worst] += 1
            if outcome.bad or outcome.changed:
                bad = [f"{r.entry}={r.outcome} ({r.detail})" for r in outcome.bad]
                if outcome.changed:
                    bad.append("FILE CHANGED")
                line = f"{description} -> {', '.join(bad)}"
                if out_dir is not None:
                    saved = os.path.join(out_dir, f"fuzz-{seed_value}-{number}.dump")
                    shutil.copyfile(path, saved)
                    line += f" [saved {saved}]"
                report.bad.append(line)
                if echo is not None:
                    echo(line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _scratch_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def _worker(
    seed_value: int,
    numbers: range,
    out_dir: str | None,
    timeout: float,
    queue,
    current,
    slot: int,
    scratch: str,
) -> None:
    """One worker process: its share of the cases in chunks, reporting after each chunk; the
    case it is running is in ``current[slot]`` (so a crash can name it)."""

    def on_case(number: int) -> None:
        current[slot] = number

    step = 200
    for first in range(0, len(numbers), step):
        part = numbers[first : first + step]
        report = run_cases(seed_value, part, out_dir, timeout, on_case=on_case, scratch=scratch)
        queue.put(("report", report))
    queue.put(("done", slot))


def run(
    count: int,
    seed_value: int = 0,
    jobs: int = 1,
    out_dir: str | None = None,
    timeout: float = hostile.DEFAULT_TIMEOUT,
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Cases ``0 .. count-1`` of run ``seed_value`` on ``jobs`` processes (1: this one)."""
    started = time.perf_counter()
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    seeds()  # built before forking, shared by the workers
    if jobs <= 1:
        report = run_cases(seed_value, range(count), out_dir, timeout, echo)
        report.seconds = time.perf_counter() - started
        return report
    # The workers' case files live under one directory this process removes, even when a
    # worker dies without cleaning up.
    scratch = tempfile.mkdtemp(prefix="fuzz-run-", dir=_scratch_root())
    try:
        report = _run_workers(count, seed_value, jobs, out_dir, timeout, echo, scratch, started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _run_workers(
    count: int,
    seed_value: int,
    jobs: int,
    out_dir: str | None,
    timeout: float,
    echo: Callable[[str], None] | None,
    scratch: str,
    started: float,
) -> Report:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    current = ctx.Array("q", [-1] * jobs)
    workers = [
        ctx.Process(
            target=_worker,
            args=(seed_value, range(w, count, jobs), out_dir, timeout, queue, current, w, scratch),
        )
        for w in range(jobs)
    ]
    for w in workers:
        w.start()
    report = Report()
    running = set(range(jobs))
    last = time.perf_counter()
    while running:
        try:
            kind, part = queue.get(timeout=1)
        except EmptyQueue:
            for w in sorted(running):
                if workers[w].exitcode is not None:  # died without saying it was done
                    running.discard(w)
                    number = current[w]
                    line = (
                        f"seed={seed_value} case={number}: worker {w} died (exit code "
                        f"{workers[w].exitcode}) running it; its later cases did not run "
                        f"(reproduce: tests/fuzz.py --seed {seed_value} --case {number})"
                    )
                    report.bad.append(line)
                    if echo is not None:
                        echo(line)
            continue
        if kind == "done":
            running.discard(part)
            continue
        report.merge(part)
        if echo is not None:
            for line in part.bad:
                echo(line)
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                rate = report.cases / (last - started)
                echo(f"... {report.cases:,}/{count:,} cases, {rate:.0f}/s, {dict(report.worst)}")
    for w in workers:
        w.join()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="cases to run")
    parser.add_argument("--seed", type=int, default=0, help="run seed (cases are reproducible)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--out", default=None, help="directory for reproducers of bad cases")
    parser.add_argument("--timeout", type=float, default=hostile.DEFAULT_TIMEOUT)
    parser.add_argument("--case", type=int, default=None, help="run one case and describe it")
    args = parser.parse_args(argv)

    def echo(line: str) -> None:
        print(line, flush=True)

    if args.case is not None:
        description, data = make_case(args.seed, args.case)
        print(description)
        with tempfile.NamedTemporaryFile(suffix=".dump", delete=False) as fp:
            fp.write(data)
        outcome = hostile.exercise(fp.name, fast=True, timeout=args.timeout, entries=FAST_ENTRIES)
        for r in outcome.results.values():
            print(f"  {r.entry:8} {r.outcome:9} {r.seconds:6.3f}s {r.detail}")
        os.unlink(fp.name)
        return 1 if outcome.bad else 0
    report = run(args.count, args.seed, args.jobs, args.out, args.timeout, echo)
    rate = report.cases / report.seconds if report.seconds else 0.0
    print(
        f"{report.cases:,} cases in {report.seconds:.1f} s ({rate:.0f}/s, "
        f"{1000 / rate if rate else 0:.1f} ms per case on {args.jobs} job(s))"
    )
    print(f"cases by worst outcome: {dict(report.worst)}")
    print(f"entry-point outcomes: {dict(report.entries)}")
    print(f"bad cases: {len(report.bad)}")
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
