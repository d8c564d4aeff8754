"""``Dump.read_va_into`` (preadv) copies exactly what ``read_va`` (the map) returns, and fails
the same way before copying anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from dumpview.model import AddressError, NotDumpedError, open_dump
from tests import factory
from tests.factory import BASE_VA, PAGE

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize("name", ["minimal.dump", "minimal-driver.dump", "faults.dump"])
def test_every_dumped_run_reads_the_same(name: str) -> None:
    with open_dump(SAMPLES / name) as dump:
        runs = 0
        for seg in range(dump.segment_count):
            va, size = int(dump.seg_va[seg]), int(dump.seg_filesz[seg])
            if not size:
                continue
            out = bytearray(size)
            assert dump.read_va_into(va, out) == size
            assert out == bytes(dump.read_va(va, size))
            tail = bytearray(100)  # unaligned, inside a page
            dump.read_va_into(va + size - 100, tail)
            assert tail == bytes(dump.read_va(va + size - 100, 100))
            runs += 1
        assert runs > 3


def test_across_segments_and_errors(tmp_path: Path) -> None:
    # Three VA-contiguous one-page segments at scattered PAs; the last has no data.
    rows = [
        factory.segment(BASE_VA, 0x8_0000_0000, 1, "FW_PRIV_RW", True),
        factory.segment(BASE_VA + PAGE, 0x8_1000_0000, 1, "FW_PRIV_RW", True),
        factory.segment(BASE_VA + 2 * PAGE, 0x8_2000_0000, 1, "FW_PRIV_RW", False),
    ]
    path = factory.build_dump(tmp_path / "three.dump", rows)
    with open_dump(path) as dump:
        out = bytearray(PAGE + 32)
        assert dump.read_va_into(BASE_VA + PAGE - 32, memoryview(out)) == PAGE + 32
        expected = (
            factory.read_data(0x8_0000_0000, PAGE)[-32:]
            + factory.read_data(0x8_1000_0000, PAGE)[:PAGE]
        )
        assert out == expected
        assert out == bytes(dump.read_va(BASE_VA + PAGE - 32, PAGE + 32))
        untouched = bytearray(b"\xaa" * (2 * PAGE))
        with pytest.raises(NotDumpedError) as info:
            dump.read_va_into(BASE_VA + PAGE, untouched)
        assert info.value.va == BASE_VA + 2 * PAGE
        assert untouched == b"\xaa" * (2 * PAGE)  # nothing copied before the error
        with pytest.raises(AddressError):
            dump.read_va_into(BASE_VA - 16, bytearray(32))
        assert dump.read_va_into(BASE_VA, bytearray(0)) == 0
