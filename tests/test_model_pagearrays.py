"""The bulk page columns (``dumpview.model.pagearrays``) against the scalar ``Dump.pages`` and
``Dump.translate``: every field of every page of the samples and of generated large dumps (with
and without tables, scattered PAs, refused pages), at chunk sizes that split segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dumpview.model import open_dump
from dumpview.model.pagearrays import (
    LeafTables,
    PageIndex,
    all_pages,
)
from dumpview.sim.scenarios import generate_file
from tests import factory

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="module")
def dump_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("pagearrays")
    paths = sorted(SAMPLES.glob("*.dump"))
    knobs = {"mapped_mib": 32, "scatter": True, "dumped_percent": 70}
    for name, driver in (("scatter", False), ("scatter-driver", True)):
        path = out / f"{name}.dump"
        generate_file(path, scenario="large", seed=3, knobs=knobs, driver_layout=driver)
        paths.append(path)
    path = out / "contiguous-driver.dump"
    generate_file(
        path,
        scenario="large",
        seed=4,
        knobs={"mapped_mib": 32, "dumped_percent": 60},
        driver_layout=True,
    )
    paths.append(path)
    return paths


@pytest.mark.parametrize("chunk_pages", [7, 1000, 1 << 16])
def test_chunks_match_scalar_pages(dump_paths: list[Path], chunk_pages: int) -> None:
    for path in dump_paths:
        with open_dump(path) as dump:
            records = list(dump.pages())
            got = factory.bulk_page_tuples(dump, chunk_pages)
            assert got == [tuple(r)[:-1] for r in records], path.name  # all but leaf_level
            assert PageIndex(dump).total == len(records) == dump.page_totals[0]


def test_index_counts_pages_in_order(dump_paths: list[Path]) -> None:
    for path in dump_paths:
        with open_dump(path) as dump:
            pages = all_pages(dump)
            assert pages.index.tolist() == list(range(len(pages)))
            assert np.all(pages.va[1:] > pages.va[:-1])
            assert int(np.count_nonzero(pages.dumped)) == dump.page_totals[1]


def test_data_offsets_read_the_same_bytes(dump_paths: list[Path]) -> None:
    for path in dump_paths:
        with open_dump(path) as dump:
            pages = all_pages(dump)
            size = dump.page_size_bytes
            for i in np.flatnonzero(pages.dumped)[:: max(1, len(pages) // 50)].tolist():
                offset = int(pages.file_offset[i])
                assert bytes(dump.buffer[offset : offset + size]) == bytes(
                    dump.read_va(int(pages.va[i]), size)
                )


def test_leaf_table_paths_follow_the_walk(dump_paths: list[Path]) -> None:
    checked = 0
    for path in dump_paths:
        with open_dump(path) as dump:
            tables = LeafTables(dump)
            pages = all_pages(dump)
            positions = tables.of_pages(pages.va)
            if dump.tables_index is None:
                assert not tables.table_pa
                assert np.all(positions == -1)
                continue
            assert np.all(positions >= 0)
            for i in range(0, len(pages), max(1, len(pages) // 40)):
                va = int(pages.va[i])
                steps = dump.translate(va).steps
                path_steps = tables.path(int(positions[i]), va)
                assert [(s.level, s.table_pa, s.index) for s in steps] == [
                    (p.level, p.table_pa, p.index) for p in path_steps
                ]
                checked += 1
    assert checked > 100
