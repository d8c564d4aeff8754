"""The fast translation paths (scalar PA only, numpy batches) agree with the detailed walk.

Every sample (with tables, driver layout, several contexts, planted faults) is checked at every
page VA, at page-interior offsets, at unmapped VAs next to mapped ones and at VAs outside the
walked space; the planted cycle and missing-table dumps from the factory too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpview.model import open_dump, translate
from dumpview.model.vtop import NOT_STOPPED, Translator

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NAMES = ["minimal.dump", "minimal-driver.dump", "user-contexts.dump", "faults.dump"]


def probe_vas(dump) -> np.ndarray:
    """Page VAs, interiors, the pages either side of each segment and far-away VAs."""
    page = dump.page_size_bytes
    starts = dump.seg_va
    ends = dump.seg_va + dump.seg_memsz
    vas = [
        starts,
        starts + np.uint64(0x1238),
        ends - np.uint64(8),
        ends,
        ends + np.uint64(page),
        starts - np.uint64(page),
        np.array([0, 0x1000, 0xFFFF_FF80_0000_0000, 0xFFFF_FFFF_FFFF_FFF8], np.uint64),
        np.array([r.va for r in dump.pages()], np.uint64),
    ]
    return np.unique(np.concatenate(vas))


def check_agrees(dump, vas: np.ndarray, context: int | None = None) -> int:
    bulk = dump.translate_many(vas, context)
    mapped = 0
    for i, va in enumerate(vas.tolist()):
        walk = translate(dump, va, context)
        scalar = dump.va_to_pa(va, context)
        assert scalar == walk.pa, hex(va)
        assert bool(bulk.mapped[i]) == walk.mapped, hex(va)
        if walk.mapped:
            mapped += 1
            assert int(bulk.pa[i]) == walk.pa, hex(va)
            assert int(bulk.stopped_level[i]) == NOT_STOPPED
            dumped = walk.page is not None and walk.page.dumped
            assert bool(bulk.dumped[i]) == dumped, hex(va)
        else:
            assert int(bulk.pa[i]) == 0
            assert not bulk.dumped[i]
            assert int(bulk.stopped_level[i]) == walk.stopped_level, (hex(va), walk)
    return mapped


@pytest.mark.parametrize("name", NAMES)
def test_fast_paths_agree_with_the_walk(name: str) -> None:
    with open_dump(SAMPLES / name) as dump:
        vas = probe_vas(dump)
        mapped = check_agrees(dump, vas)
        assert mapped >= dump.page_totals[0]  # every page, plus interiors
        assert mapped < len(vas)  # and some misses
        # A large unsorted batch (searched in sorted order, scattered back) gives the same.
        many = np.tile(vas, 4096 // len(vas) + 2)
        many = many[np.random.default_rng(5).permutation(len(many))]
        assert len(many) > 4096 and not np.all(many[1:] >= many[:-1])
        bulk, each = dump.translate_many(many), dump.translate_many(vas)
        where = np.searchsorted(vas, many)
        for column in ("pa", "mapped", "dumped", "stopped_level"):
            assert np.array_equal(getattr(bulk, column), getattr(each, column)[where]), column


def test_other_contexts_agree() -> None:
    with open_dump(SAMPLES / "user-contexts.dump") as dump:
        contexts = [s.context for s in dump.extension.spaces]
        assert len(contexts) > 1
        for context in contexts[1:]:
            space = next(s for s in dump.extension.spaces if s.context == context)
            vas = np.arange(8, dtype=np.uint64) * np.uint64(dump.page_size_bytes)
            vas = np.concatenate([vas + np.uint64(space.va_start), probe_vas(dump)])
            check_agrees(dump, vas, context)
        missing = Translator(dump).translate_many(probe_vas(dump), context=0xDEAD)
        assert not missing.mapped.any()
        assert Translator(dump).va_to_pa(int(dump.seg_va[0]), context=0xDEAD) is None


def hostile_tables_dump(tmp_path: Path) -> tuple[Path, list[int]]:
    """Tables with a self-referencing TTB entry, an L2 entry back to the TTB (a revisit), an
    entry to a table the dump does not carry and a block-typed L2 entry."""
    from formats import uat
    from tests import factory
    from tests.factory import BASE_VA, PAGE

    geometry = uat.uat_geometry()
    l1, l2, _ = geometry.levels
    ttb = 0x7_0000_0000
    pages = [
        (BASE_VA + i * PAGE, 0x8_0000_0000 + i * PAGE, "FW_PRIV_RW", i % 2 == 0) for i in range(6)
    ]
    leaves = {va: factory.leaf_pte(pa, prot) for va, pa, prot, _ in pages}
    infos, contents = factory.build_tables(leaves, ttb, ttb + PAGE)
    tables = {pa: bytearray(raw) for pa, raw in contents.items()}
    l2_pa = int.from_bytes(tables[ttb][l1.index_of(BASE_VA) * 8 :][:8], "little") & ~3
    probes = []

    def put(table_pa: int, index: int, value: int) -> None:
        tables[table_pa][index * 8 : index * 8 + 8] = value.to_bytes(8, "little")

    cycle_va = BASE_VA + 2 * l1.entry_span_bytes
    put(ttb, l1.index_of(cycle_va), ttb | uat.PTE_TABLE)  # TTB -> TTB
    back_va = BASE_VA + 5 * l2.entry_span_bytes
    put(l2_pa, l2.index_of(back_va), ttb | uat.PTE_TABLE)  # L2 -> TTB (already visited)
    gone_va = BASE_VA + 6 * l2.entry_span_bytes
    put(l2_pa, l2.index_of(gone_va), 0x9_0000_0000 | uat.PTE_TABLE)  # not carried
    block_va = BASE_VA + 7 * l2.entry_span_bytes
    put(l2_pa, l2.index_of(block_va), 0x9_0000_0000 | 1)  # type 1 at L2
    probes += [cycle_va, cycle_va + 0x4000, back_va, gone_va, block_va]
    space_start = geometry.va_base & ~geometry.ias_mask
    extension = factory.uat_extension(
        spaces=[factory.SpaceInfo(0, ttb, space_start, 1 << geometry.ias, BASE_VA, 1 << 36)],
        tables=infos,
    )
    rows = [factory.segment(va, pa, 1, prot, data) for va, pa, prot, data in pages]
    path = tmp_path / "hostile-tables.dump"
    factory.build_dump(path, rows, extension=extension, read_table=lambda pa: bytes(tables[pa]))
    return path, probes


def test_cycles_and_missing_tables_stop_like_the_walk(tmp_path: Path) -> None:
    path, probes = hostile_tables_dump(tmp_path)
    with open_dump(path) as dump:
        reasons = {translate(dump, va).stopped_reason for va in probes}
        assert any("cycle" in r for r in reasons), reasons
        assert any("not in the dump" in r for r in reasons), reasons
        assert any("type 1" in r for r in reasons), reasons
        vas = np.concatenate([probe_vas(dump), np.array(probes, np.uint64)])
        assert check_agrees(dump, vas) >= 6


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=40), st.sampled_from(NAMES))
def test_random_vas_agree(raw: list[int], name: str) -> None:
    with open_dump(SAMPLES / name) as dump:
        base = int(dump.seg_va[0])
        # Half anywhere, half near the mapped range (where the walks get deep).
        vas = [v if i % 2 else base + (v % (1 << 30)) for i, v in enumerate(raw)]
        check_agrees(dump, np.array(vas, np.uint64))
