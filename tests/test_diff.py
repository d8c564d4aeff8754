"""``dumpview.model.diff``: what changed between two dumps, by VA.

Runs are checked against a slow, obviously right oracle built page by page from ``Dump.pages``
and ``Dump.read_va`` on both dumps. The dumps are the generator's (same seed gives the same
bytes), copies of them with patched bytes / program headers / extension records, and small
hand-made files from ``tests.factory`` where a run boundary has to sit at an exact place."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import struct
from pathlib import Path

import pytest

from dumpview.model import Dump, open_dump
from dumpview.model.diff import (
    ContentRun,
    DiffError,
    DiffResult,
    MappingRun,
    TableChange,
    diff,
)
from dumpview.model.levels import LevelTree
from dumpview.sim.scenarios import generate_file
from formats import elf, entryformat, ext, uat
from formats.geometry import Geometry, GeometryRecord
from tests import factory
from tests.factory import BASE_VA, PAGE

PHDR_FLAGS = (4, "<I")  # (offset inside an Elf64_Phdr, struct format)
PHDR_PADDR = (24, "<Q")
PHDR_FILESZ = (32, "<Q")
PHDR_VADDR = (16, "<Q")
LARGE_KNOBS = {"mapped_mib": 4, "scatter": False, "dumped_percent": 100}
CHANGES = ("pa", "attributes", "dumped")


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generator dumps: minimal twice (seed 0), faults (seed 0), both as driver layout too,
    user contexts, and two ``large`` dumps (256 contiguous pages: several compare chunks)."""
    out = tmp_path_factory.mktemp("diff")
    specs = {
        "minimal": ("minimal", 0, None, False),
        "minimal-again": ("minimal", 0, None, False),
        "minimal-driver": ("minimal", 0, None, True),
        "faults": ("faults", 0, None, False),
        "faults-driver": ("faults", 0, None, True),
        "user-contexts": ("user-contexts", 3, None, False),
        "large": ("large", 5, LARGE_KNOBS, False),
        "large-seed6": ("large", 6, LARGE_KNOBS, False),
    }
    paths = {}
    for name, (scenario, seed, knobs, driver_layout) in specs.items():
        paths[name] = out / f"{name}.dump"
        generate_file(
            paths[name], scenario=scenario, seed=seed, knobs=knobs, driver_layout=driver_layout
        )
    return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_of(path: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(path, target)
    return target


def run_diff(path_a: Path, path_b: Path, **kwargs) -> DiffResult:
    with open_dump(path_a) as a, open_dump(path_b) as b:
        return diff(a, b, **kwargs)


# ---- the oracle ------------------------------------------------------------------------------


def slow_mapping_changes(a: Dump, b: Dump) -> dict[str, dict[int, tuple]]:
    """Per page, from ``Dump.pages``: {category: {va: (record A, record B, changes)}}."""
    pages_a = {p.va: p for p in a.pages()}
    pages_b = {p.va: p for p in b.pages()}
    out: dict[str, dict[int, tuple]] = {"added": {}, "removed": {}, "changed": {}}
    for va in sorted(pages_a.keys() | pages_b.keys()):
        pa, pb = pages_a.get(va), pages_b.get(va)
        if pa is None:
            out["added"][va] = (None, pb, ())
        elif pb is None:
            out["removed"][va] = (pa, None, ())
        else:
            attributes = pa.flags != pb.flags or (
                pa.pte_exact
                and pb.pte_exact
                and (pa.pte & ~uat.OA_MASK_FULL) != (pb.pte & ~uat.OA_MASK_FULL)
            )
            found = {
                "pa": pa.pa != pb.pa,
                "attributes": attributes,
                "dumped": pa.dumped != pb.dumped,
            }
            changes = tuple(name for name in CHANGES if found[name])
            if changes:
                out["changed"][va] = (pa, pb, changes)
    return out


def slow_content_changes(a: Dump, b: Dump) -> dict[int, int]:
    """{va: differing bytes} for every page dumped in both whose bytes differ."""
    pages_b = {p.va: p for p in b.pages()}
    out = {}
    for p in a.pages():
        q = pages_b.get(p.va)
        if p.dumped and q is not None and q.dumped:
            x, y = bytes(a.read_va(p.va, PAGE)), bytes(b.read_va(p.va, PAGE))
            count = sum(i != j for i, j in zip(x, y, strict=True))
            if count:
                out[p.va] = count
    return out


def check_mapping_runs(runs: list[MappingRun], expected: dict[int, tuple]) -> None:
    """``runs`` cover exactly the pages of ``expected``, every page agrees with its run's first
    page (PA + offset, same flags / dumped / changes), and no two neighbouring runs could merge."""
    covered = {}
    for run in runs:
        assert run.pages == (run.va_end - run.va_start) // PAGE > 0
        for k in range(run.pages):
            va = run.va_start + k * PAGE
            assert va not in covered
            covered[va] = run
            rec_a, rec_b, changes = expected[va]
            assert run.changes == changes
            for rec, pa0, flags, dumped in (
                (rec_a, run.pa_a, run.flags_a, run.dumped_a),
                (rec_b, run.pa_b, run.flags_b, run.dumped_b),
            ):
                if rec is None:
                    assert (pa0, flags, dumped) == (None, None, None)
                else:
                    assert (rec.pa, rec.flags, rec.dumped) == (pa0 + k * PAGE, flags, dumped)
    assert set(covered) == set(expected)
    for before, after in itertools.pairwise(runs):
        assert before.va_end <= after.va_start  # VA order
        if before.va_end != after.va_start or before.changes != after.changes:
            continue
        last_a, last_b, _ = expected[before.va_end - PAGE]
        first_a, first_b, _ = expected[after.va_start]
        assert any(
            (x is None) != (y is None)
            or (
                x is not None
                and (
                    y.pa != x.pa + PAGE
                    or y.flags != x.flags
                    or y.dumped != x.dumped
                    or (y.pte ^ x.pte) & ~uat.OA_MASK_FULL
                )
            )
            for x, y in ((last_a, first_a), (last_b, first_b))
        ), f"runs at {before.va_start:#x} and {after.va_start:#x} should have merged"


def check_content_runs(runs: list[ContentRun], expected: dict[int, int]) -> None:
    covered: dict[int, int] = {}
    for run in runs:
        assert run.pages == (run.va_end - run.va_start) // PAGE > 0
        vas = [run.va_start + k * PAGE for k in range(run.pages)]
        assert run.bytes_changed == sum(expected[va] for va in vas)
        covered.update((va, expected[va]) for va in vas)
    assert covered == expected
    for before, after in itertools.pairwise(runs):
        assert before.va_end < after.va_start  # VA-contiguous pages are one run


def check_against_oracle(path_a: Path, path_b: Path) -> DiffResult:
    with open_dump(path_a) as a, open_dump(path_b) as b:
        result = diff(a, b)
        expected = slow_mapping_changes(a, b)
        for name in ("added", "removed", "changed"):
            check_mapping_runs(getattr(result, name), expected[name])
        check_content_runs(result.contents, slow_content_changes(a, b))
        pages_b = {p.va: p for p in b.pages()}
        both = sum(1 for p in a.pages() if p.dumped and p.va in pages_b and pages_b[p.va].dumped)
        assert result.pages_compared == both
    return result


def slow_rebuilt_tables(dump: Dump) -> set[tuple[int, int]]:
    """(level, VA start) of every table below the top a page of ``dump`` falls in."""
    out = set()
    for lg in dump.geometry.levels[1:]:
        span = lg.entry_span_bytes << lg.index_bits
        out.update((lg.level, p.va & ~(span - 1)) for p in dump.pages())
    return out


def tree_tables(dump: Dump) -> set[tuple[int, int]]:
    """(level, VA start) of every table below the root ``LevelTree`` shows for a driver dump."""
    tree = LevelTree(dump)
    out = set()
    stack = list(tree.roots)
    while stack:
        table = stack.pop()
        for _index, child in tree.children(table):
            out.add((child.level, child.va_start))
            stack.append(child)
    return out


# ---- identical -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["minimal", "minimal-driver", "faults", "user-contexts", "large"])
def test_a_dump_is_identical_to_itself(dumps: dict[str, Path], name: str) -> None:
    with open_dump(dumps[name]) as a, open_dump(dumps[name]) as b:
        for result in (diff(a, a), diff(a, b)):
            assert result.identical
            assert result.added == result.removed == result.changed == []
            assert result.contents == result.tables_added == result.tables_removed == []
            assert result.pages_compared == a.page_totals[1]
            assert result.tables_rebuilt == (a.tables_index is None)
            summary = result.summary()
            assert summary.pop("pages_compared") == a.page_totals[1]
            assert set(summary.values()) == {0}


def test_regenerated_copy_of_the_same_seed_is_identical(dumps: dict[str, Path]) -> None:
    assert sha256(dumps["minimal"]) == sha256(dumps["minimal-again"])
    result = run_diff(dumps["minimal"], dumps["minimal-again"])
    assert result.identical
    assert result.to_dict()["identical"] is True
    assert not any(result.to_dict()[key] for key in ("added", "removed", "changed", "contents"))


def test_compare_contents_off_reads_no_page_data(dumps: dict[str, Path]) -> None:
    result = run_diff(dumps["large"], dumps["large-seed6"], compare_contents=False)
    assert result.contents == []
    assert result.pages_compared == 0
    assert run_diff(dumps["large"], dumps["large-seed6"]).contents  # the data does differ


# ---- mappings --------------------------------------------------------------------------------


def test_minimal_vs_faults_are_the_planted_differences(dumps: dict[str, Path]) -> None:
    forward = check_against_oracle(dumps["minimal"], dumps["faults"])
    assert forward.added and not forward.removed  # faults only adds mappings to minimal
    backward = check_against_oracle(dumps["faults"], dumps["minimal"])
    assert [r.va_start for r in backward.removed] == [r.va_start for r in forward.added]
    for run in forward.added:
        assert run.pa_a is None and run.pa_b is not None and run.changes == ()
    # The faults' cached+uncached alias: one PA added at two VAs, with different memattrs.
    added_pas = [r.pa_b + k * PAGE for r in forward.added for k in range(r.pages)]
    (alias_pa,) = {pa for pa in added_pas if added_pas.count(pa) > 1}
    aliases = [r for r in forward.added if 0 <= alias_pa - r.pa_b < r.pages * PAGE]
    assert {r.to_dict()["memattr_b"] for r in aliases} == {"cached", "uncached"}


def test_driver_dumps_against_the_oracle(dumps: dict[str, Path]) -> None:
    result = check_against_oracle(dumps["minimal-driver"], dumps["faults-driver"])
    assert result.added and result.tables_rebuilt


def test_scattered_contents_against_the_oracle(dumps: dict[str, Path]) -> None:
    result = check_against_oracle(dumps["large"], dumps["large-seed6"])
    assert result.contents and result.summary()["bytes_changed"] > 0


def phdr_rows(path: Path) -> list[tuple[int, int, int, int, int, int]]:
    """(phdr index, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags) of every PT_LOAD."""
    with open_dump(path) as dump:
        return [
            (
                i,
                int(row["p_vaddr"]),
                int(row["p_paddr"]),
                int(row["p_filesz"]),
                int(row["p_memsz"]),
                int(row["p_flags"]),
            )
            for i, row in enumerate(dump.phdrs)
            if int(row["p_type"]) == elf.PT_LOAD
        ]


def patch_phdr(path: Path, index: int, field: tuple[int, str], value: int) -> None:
    """Overwrite one field of program header ``index`` (file order) in place."""
    offset, fmt = field
    with open_dump(path) as dump:
        at = int(dump.header.e_phoff) + index * elf.PHDR_SIZE + offset
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, at, value)
    path.write_bytes(raw)


def dumped_loads(path: Path, min_pages: int) -> list[tuple[int, int, int, int, int, int]]:
    """PT_LOADs with at least ``min_pages`` pages, all dumped, on distinct PAs."""
    return [r for r in phdr_rows(path) if r[3] == r[4] >= min_pages * PAGE]


@pytest.mark.parametrize("name", ["minimal", "minimal-driver"])
def test_patched_program_headers_are_changed_runs(
    dumps: dict[str, Path], tmp_path: Path, name: str
) -> None:
    original = dumps[name]
    patched = copy_of(original, tmp_path, "patched.dump")
    moved, reflagged, emptied = dumped_loads(original, 2)[:3]
    patch_phdr(patched, moved[0], PHDR_PADDR, moved[2] + 0x40_0000_0000)
    new_flags = reflagged[5] ^ (1 << (uat.PFLAGS_LOW_POS + 6))  # AP bit 0 (PTE bit 6)
    patch_phdr(patched, reflagged[0], PHDR_FLAGS, new_flags)
    patch_phdr(patched, emptied[0], PHDR_FILESZ, 0)

    result = check_against_oracle(original, patched)
    assert not result.added and not result.removed and not result.contents
    by_va = {run.va_start: run for run in result.changed}
    assert set(by_va) == {moved[1], reflagged[1], emptied[1]}
    run = by_va[moved[1]]
    assert (run.changes, run.pages, run.pa_a, run.pa_b) == (
        ("pa",),
        moved[4] // PAGE,
        moved[2],
        moved[2] + 0x40_0000_0000,
    )
    run = by_va[reflagged[1]]
    assert (run.changes, run.flags_a, run.flags_b) == (("attributes",), reflagged[5], new_flags)
    shown = run.to_dict()
    for side, flags in (("a", reflagged[5]), ("b", new_flags)):
        pte = uat.unpack_p_flags(flags, 0)
        assert shown[f"firmware_{side}"] == uat.firmware_view(pte)
        assert shown[f"gpu_{side}"] == uat.gpu_view(pte)
    run = by_va[emptied[1]]
    assert (run.changes, run.dumped_a, run.dumped_b) == (("dumped",), True, False)
    assert run.pages == emptied[4] // PAGE
    with open_dump(original) as dump:
        assert result.pages_compared == dump.page_totals[1] - emptied[4] // PAGE


def test_exact_entries_differing_outside_the_oa_are_attributes(tmp_path: Path) -> None:
    """p_flags drop SH: only the carried leaf entries show the change."""
    pages = [(BASE_VA + k * PAGE, 0x8_0000_0000 + k * PAGE, "FW_PRIV_RW", True) for k in range(4)]
    path_a, leaves, _ = factory.build_dump_with_tables(tmp_path / "a.dump", pages)
    sh_va = BASE_VA + 2 * PAGE
    path_b, _, _ = factory.build_dump_with_tables(
        tmp_path / "b.dump", pages, leaf_overrides={sh_va: leaves[sh_va] | (3 << 8)}
    )
    result = run_diff(path_a, path_b)
    (run,) = result.changed
    assert (run.va_start, run.pages, run.changes) == (sh_va, 1, ("attributes",))
    assert run.flags_a == run.flags_b
    assert not result.contents and not result.tables_added and not result.tables_removed
    check_against_oracle(path_a, path_b)


def test_runs_break_exactly_where_something_stops_continuing(tmp_path: Path) -> None:
    seg = factory.segment
    pa = 0x8_0000_0000
    rows_a = [seg(BASE_VA, pa, 8), seg(BASE_VA + 0x10_0000, pa + 0x10_0000, 2)]
    rows_b = [
        seg(BASE_VA, pa + 0x100_0000, 2),  # pa changed, continues ...
        seg(BASE_VA + 2 * PAGE, pa + 0x100_0000 + 2 * PAGE, 1),  # ... across PT_LOADs
        seg(BASE_VA + 3 * PAGE, pa + 0x200_0000, 1),  # PA jumps in B: new run
        seg(BASE_VA + 4 * PAGE, pa + 4 * PAGE, 1, "FW_SHARED_RW"),  # attributes
        seg(BASE_VA + 5 * PAGE, pa + 5 * PAGE, 1, "FW_SHARED_RW"),  # attributes (same run)
        seg(BASE_VA + 6 * PAGE, pa + 6 * PAGE, 2, data=False),  # dumped
        seg(BASE_VA + 0x20_0000, pa + 0x20_0000, 3),  # added
    ]
    path_a = factory.build_dump(tmp_path / "a.dump", rows_a)
    path_b = factory.build_dump(tmp_path / "b.dump", rows_b)
    result = check_against_oracle(path_a, path_b)
    assert [(r.va_start, r.pages, r.changes) for r in result.changed] == [
        (BASE_VA, 3, ("pa",)),
        (BASE_VA + 3 * PAGE, 1, ("pa",)),
        (BASE_VA + 4 * PAGE, 2, ("attributes",)),
        (BASE_VA + 6 * PAGE, 2, ("dumped",)),
    ]
    assert [(r.va_start, r.pages) for r in result.removed] == [(BASE_VA + 0x10_0000, 2)]
    assert [(r.va_start, r.pages) for r in result.added] == [(BASE_VA + 0x20_0000, 3)]
    # Pages whose PA changed hold other bytes (the factory stamps the PA in each page).
    assert [(r.va_start, r.pages) for r in result.contents] == [(BASE_VA, 4)]


# ---- contents --------------------------------------------------------------------------------


def file_offset_of(path: Path, va: int) -> int:
    """Where the data of ``va`` lies in the file, through its PT_LOAD."""
    with open_dump(path) as dump:
        seg = dump.segment_at(va)
        assert seg is not None and va - int(dump.seg_va[seg]) < int(dump.seg_filesz[seg])
        return int(dump.seg_offset[seg]) + va - int(dump.seg_va[seg])


def flip_bytes(path: Path, offset: int, count: int) -> None:
    raw = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        raw[i] ^= 0xFF
    path.write_bytes(raw)


def test_patched_bytes_are_one_content_run(dumps: dict[str, Path], tmp_path: Path) -> None:
    original = dumps["minimal"]
    patched = copy_of(original, tmp_path, "bytes.dump")
    _, va, _, _, _, _ = dumped_loads(original, 2)[0]
    boundary = file_offset_of(patched, va + PAGE)
    flip_bytes(patched, boundary - 7, 12)  # 7 bytes at the end of one page, 5 in the next
    result = check_against_oracle(original, patched)
    assert not result.added and not result.removed and not result.changed
    assert result.contents == [ContentRun(va, va + 2 * PAGE, 2, 12)]
    assert result.summary()["bytes_changed"] == 12
    assert not result.identical


def test_patches_across_compare_chunks(dumps: dict[str, Path], tmp_path: Path) -> None:
    """``large`` holds 256 file-contiguous pages: patches in several 1 MiB compare chunks,
    one page alone, three neighbouring pages, the last byte of a chunk."""
    original = dumps["large"]
    patched = copy_of(original, tmp_path, "large.dump")
    _, va, _, _, memsz, _ = max(dumped_loads(original, 1), key=lambda r: r[4])
    assert memsz >= 128 * PAGE
    flip_bytes(patched, file_offset_of(patched, va + 3 * PAGE) + 100, 1)
    for k in (63, 64, 65):  # pages 63..65 straddle the first chunk boundary
        flip_bytes(patched, file_offset_of(patched, va + k * PAGE) + PAGE - 1, 1)
    flip_bytes(patched, file_offset_of(patched, va + 100 * PAGE), PAGE)
    result = check_against_oracle(original, patched)
    assert [(r.va_start, r.pages, r.bytes_changed) for r in result.contents] == [
        (va + 3 * PAGE, 1, 1),
        (va + 63 * PAGE, 3, 3),
        (va + 100 * PAGE, 1, PAGE),
    ]


# ---- tables ----------------------------------------------------------------------------------


def test_carried_tables_added_and_removed(dumps: dict[str, Path]) -> None:
    result = run_diff(dumps["minimal"], dumps["faults"])
    assert not result.tables_rebuilt
    with open_dump(dumps["minimal"]) as a, open_dump(dumps["faults"]) as b:
        nodes_a = {(n.context, n.level, n.va_start): n for n in a.tables_index.nodes}
        nodes_b = {(n.context, n.level, n.va_start): n for n in b.tables_index.nodes}
    expected = {nodes_b[k].pa: k for k in nodes_b.keys() - nodes_a.keys()}
    assert expected  # the faults scenario leaks a table
    assert {t.pa: (t.context, t.level, t.va_start) for t in result.tables_added} == expected
    assert all(not t.rebuilt and t.va_end > t.va_start for t in result.tables_added)
    assert result.tables_removed == []
    backward = run_diff(dumps["faults"], dumps["minimal"])
    assert backward.tables_removed == result.tables_added


def test_user_contexts_tables_carry_their_context(dumps: dict[str, Path]) -> None:
    result = run_diff(dumps["minimal"], dumps["user-contexts"])
    contexts = {t.context for t in result.tables_added}
    assert {1, 2} <= contexts  # the user VMs' trees exist only in B
    assert {t.level for t in result.tables_added if t.context == 1} == {1, 2, 3}


def test_driver_layout_vs_extension_compares_rebuilt_tables(dumps: dict[str, Path]) -> None:
    for first, second in (
        ("minimal", "minimal-driver"),
        ("minimal-driver", "minimal"),
        ("faults-driver", "faults"),
    ):
        result = run_diff(dumps[first], dumps[second])
        assert result.identical, (first, second)
        assert result.tables_rebuilt
    result = run_diff(dumps["minimal-driver"], dumps["faults"])
    assert result.tables_rebuilt
    with open_dump(dumps["minimal-driver"]) as a, open_dump(dumps["faults"]) as b:
        expected = slow_rebuilt_tables(b) - slow_rebuilt_tables(a)
        top = b.geometry.levels[0].level
        carried = {(n.level, n.va_start) for n in b.tables_index.nodes if n.level != top}
        carried_only = carried - slow_rebuilt_tables(b)
    added = {(t.level, t.va_start) for t in result.tables_added}
    assert added == expected
    assert not result.tables_removed
    # The faults' leaked (empty) table is real, but no page lies in it: not in the rebuilt view.
    assert carried_only
    assert not carried_only & added
    assert all(t.rebuilt and t.pa is None for t in result.tables_added)


def test_rebuilt_tables_follow_the_pages(dumps: dict[str, Path], tmp_path: Path) -> None:
    """Move the highest PT_LOAD of a driver dump 64 GiB up: new L2 and L3 tables in B, and its
    old L3 table removed when nothing else lies in it."""
    original = dumps["minimal-driver"]
    moved = copy_of(original, tmp_path, "moved.dump")
    top = max(phdr_rows(original), key=lambda r: r[1])
    patch_phdr(moved, top[0], PHDR_VADDR, top[1] + (64 << 30))
    result = check_against_oracle(original, moved)
    assert result.tables_rebuilt
    with open_dump(original) as a, open_dump(moved) as b:
        tables_a, tables_b = slow_rebuilt_tables(a), slow_rebuilt_tables(b)
        assert tables_a == tree_tables(a) and tables_b == tree_tables(b)  # the TUI agrees
    added = {(t.level, t.va_start) for t in result.tables_added}
    removed = {(t.level, t.va_start) for t in result.tables_removed}
    assert added == tables_b - tables_a and removed == tables_a - tables_b
    assert {level for level, _ in added} == {2, 3}
    assert all(t.rebuilt and t.pa is None and t.context == 0 for t in result.tables_added)
    assert [run.va_start for run in result.added] == [top[1] + (64 << 30)]
    assert [run.va_start for run in result.removed] == [top[1]]


# ---- refusals --------------------------------------------------------------------------------


def patch_geometry(path: Path, **fields: int) -> None:
    """Rewrite fields of the extension's geometry record in place (found by its bytes)."""
    with open_dump(path) as dump:
        record = dump.extension.geometry_record
        old = GeometryRecord.build(record)
        new = GeometryRecord.build({**record, **fields})
    raw = path.read_bytes()
    assert raw.count(old) == 1
    path.write_bytes(raw.replace(old, new))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"ias": 40}, ("IAS", "39 bits", "40 bits")),
        ({"va_base": 0}, ("VA base", "0xffffff8000000000", "0x0 ")),
        (
            {"page_shift": 12, "entry_format": ext.ENTRY_FORMAT_LPAE_4K},
            ("page size", "16384 bytes", "4096 bytes"),
        ),
    ],
)
def test_different_geometry_is_refused(
    dumps: dict[str, Path], tmp_path: Path, fields: dict[str, int], words: tuple[str, ...]
) -> None:
    other = copy_of(dumps["minimal"], tmp_path, "geometry.dump")
    patch_geometry(other, **fields)
    with pytest.raises(DiffError) as info:
        run_diff(dumps["minimal"], other)
    message = str(info.value)
    assert "\n" not in message
    for word in (*words, str(other), str(dumps["minimal"])):
        assert word in message + " "
    assert isinstance(info.value, ValueError)


def test_geometry_from_a_hand_made_extension_is_refused(tmp_path: Path) -> None:
    """No tables, IAS 42 (G15+) in the extension vs the driver default (39)."""
    wide = factory.build_dump(
        tmp_path / "wide.dump", extension=factory.uat_extension(geometry=uat.uat_geometry(ias=42))
    )
    plain = factory.build_dump(tmp_path / "plain.dump")
    with pytest.raises(DiffError, match="42 bits"):
        run_diff(plain, wide)
    narrow = factory.build_dump(
        tmp_path / "narrow.dump",
        extension=factory.uat_extension(geometry=Geometry(14, 39, 40, uat.UAT_VA_BASE_UPPER)),
    )
    assert run_diff(plain, narrow).identical  # the OAS may differ: PAs compare as numbers


def test_different_entry_format_is_refused(
    dumps: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same page size and geometry, another entry format on B (faked: an LPAE dump's
    geometry differs anyway)."""
    with open_dump(dumps["minimal"]) as a, open_dump(dumps["minimal-again"]) as b:
        monkeypatch.setattr(
            Dump,
            "entry_format",
            property(lambda d: entryformat.LPAE_16K if d is b else entryformat.UAT),
        )
        with pytest.raises(DiffError, match=r"entry format is uat .* but lpae-16k"):
            diff(a, b)


# ---- presentation ----------------------------------------------------------------------------


def test_to_dict_is_json_with_lowercase_hex(dumps: dict[str, Path], tmp_path: Path) -> None:
    original = dumps["minimal"]
    patched = copy_of(original, tmp_path, "json.dump")
    first = dumped_loads(original, 2)[0]
    patch_phdr(patched, first[0], PHDR_PADDR, first[2] + 0xAB_0000_0000)
    result = run_diff(patched, dumps["faults"])
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {
        "identical",
        "summary",
        "added",
        "removed",
        "changed",
        "contents",
        "tables_added",
        "tables_removed",
        "tables_rebuilt",
    }
    assert data["tables_rebuilt"] is result.tables_rebuilt
    assert data["summary"] == result.summary()
    summary = result.summary()
    for name in ("added", "removed", "changed", "contents"):
        runs = getattr(result, name)
        assert summary[f"{name}_runs"] == len(runs)
        assert summary[f"{name}_pages"] == sum(r.pages for r in runs)
    (changed,) = data["changed"]
    assert changed["changes"] == ["pa"]
    assert changed["pa_a"] == f"{first[2] + 0xAB_0000_0000:#x}" and "ab" in changed["pa_a"]
    assert changed["flags_a"] == changed["flags_b"] == f"{first[5]:#x}"
    assert changed["size"] == f"{first[4] // 1024}K"
    for key in ("memattr", "firmware", "gpu"):
        assert changed[f"{key}_a"] == changed[f"{key}_b"] is not None
    added = data["added"][0]
    assert added["pa_a"] is None and added["flags_a"] is None and added["memattr_a"] is None
    assert added["va_start"] == added["va_start"].lower() and added["va_start"].startswith("0x")
    table = data["tables_added"][0]
    assert table["rebuilt"] is False and table["pa"].startswith("0x")
    assert TableChange(0, 3, 0x4000, 0x8000, None, True).to_dict()["pa"] is None


def test_inputs_are_not_written(dumps: dict[str, Path]) -> None:
    before = {name: sha256(path) for name, path in dumps.items()}
    run_diff(dumps["minimal"], dumps["faults"])
    run_diff(dumps["faults-driver"], dumps["user-contexts"])
    run_diff(dumps["large"], dumps["large-seed6"])
    assert {name: sha256(path) for name, path in dumps.items()} == before
