"""The generator end to end: scenarios -> walker -> writer -> dump, checked by independent readers
(readelf, pyelftools, gdb-multiarch) and by the model."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import dumpview
from dumpview.sim.scenarios import RANGES, SCENARIOS, generate_file
from formats import clhe, uat

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SCENARIO_NAMES = [s for s in SCENARIOS if s != "large"]


def cli(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args], capture_output=True, check=check
    )


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, Path]:
    """Every small scenario, with and without the extension, plus a small large one."""
    out = tmp_path_factory.mktemp("gen")
    paths = {}
    for name in SCENARIO_NAMES:
        paths[name] = out / f"{name}.dump"
        generate_file(paths[name], scenario=name, seed=5)
        paths[name + "-driver"] = out / f"{name}-driver.dump"
        generate_file(paths[name + "-driver"], scenario=name, seed=5, driver_layout=True)
    paths["large"] = out / "large.dump"
    generate_file(
        paths["large"],
        scenario="large",
        seed=1,
        knobs={"mapped_mib": 8, "scatter": True, "dumped_percent": 50},
    )
    return paths


def loads_pyelftools(path: Path) -> list[tuple]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        return [
            (s["p_vaddr"], s["p_paddr"], s["p_offset"], s["p_filesz"], s["p_memsz"], s["p_flags"])
            for s in elf.iter_segments()
            if s["p_type"] == "PT_LOAD"
        ]


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf not installed")
@pytest.mark.parametrize("name", [*SCENARIO_NAMES, "large"])
def test_readelf_reads_every_scenario_without_warnings(dumps, name):
    for key in (name, name + "-driver") if name != "large" else (name,):
        proc = subprocess.run(["readelf", "-lnW", str(dumps[key])], capture_output=True, text=True)
        assert proc.returncode == 0
        assert proc.stderr == "", proc.stderr
        assert "warning" not in proc.stdout.lower()
        loads = [line for line in proc.stdout.splitlines() if line.strip().startswith("LOAD")]
        assert len(loads) == len(loads_pyelftools(dumps[key]))
        assert "AGX" in proc.stdout and "RTKIT" in proc.stdout


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_extension_keeps_the_driver_layout_pt_loads(dumps, name):
    with_ext = loads_pyelftools(dumps[name])
    driver = loads_pyelftools(dumps[name + "-driver"])
    assert with_ext == driver
    assert len(with_ext) > 5
    with dumpview.open_dump(dumps[name]) as d, dumpview.open_dump(dumps[name + "-driver"]) as dd:
        assert d.extension is not None and dd.extension is None
        assert [n.name for n in d.notes] == [n.name for n in dd.notes] == ["AGX", "RTKIT"]


def test_pyelftools_sees_the_same_bytes_as_the_model(dumps):
    path = dumps["minimal"]
    with path.open("rb") as f, dumpview.open_dump(path) as dump:
        elf = ELFFile(f)
        checked = 0
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                continue
            assert seg.data() == bytes(dump.read_va(seg["p_vaddr"], seg["p_filesz"]))
            checked += 1
        assert checked >= 5


def test_same_arguments_same_bytes_across_processes(tmp_path):
    digests = set()
    for i in range(2):
        out = tmp_path / f"d{i}.dump"
        proc = cli("generate", "--scenario", "faults", "--seed", "11", "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1
    other = tmp_path / "other.dump"
    generate_file(other, scenario="faults", seed=12)
    assert hashlib.sha256(other.read_bytes()).hexdigest() not in digests


def _sample_commands() -> list[tuple[str, list[str]]]:
    text = (SAMPLES / "README.md").read_text()
    rows = re.findall(r"\| `([\w.-]+\.dump)` \| `dumpview (generate[^`]*)`", text)
    return [(name, cmd.split()) for name, cmd in rows]


def test_samples_readme_lists_every_sample():
    listed = {name for name, _ in _sample_commands()}
    assert listed == {p.name for p in SAMPLES.glob("*.dump")}
    assert "minimal.dump" in listed


@pytest.mark.parametrize("name,argv", _sample_commands())
def test_samples_regenerate_byte_for_byte(tmp_path, name, argv):
    out = tmp_path / name
    argv = [a if not a.startswith("samples/") else str(out) for a in argv]
    proc = cli(*argv)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (SAMPLES / name).read_bytes()


def test_info_json_on_a_generated_dump(dumps):
    proc = cli("info", "--json", str(dumps["minimal"]))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["extension"] is True
    with dumpview.open_dump(dumps["minimal"]) as d:
        assert doc["tables"] == len(d.extension.tables) == len(d.tables_index.nodes)
    assert doc["tables"] >= 6  # TTB + firmware and kernel L2/L3 tables
    driver = json.loads(cli("info", "--json", str(dumps["minimal-driver"])).stdout)
    assert driver["extension"] is False and driver["tables"] == 0
    assert driver["pages"] == doc["pages"]


def test_walker_copies_only_cached_or_uncached_ram(dumps):
    """Data exactly when memattr is 0/2 and borrow_phys accepts the PA; reasons otherwise."""
    with dumpview.open_dump(dumps["faults"]) as dump:
        regions = dump.extension.regions
        seen_reasons = set()
        for page in dump.pages():
            memattr = (page.pte >> 2) & 7
            region = next(
                (r for r in regions if r.kind != "ram" and r.base <= page.pa < r.end), None
            )
            in_ram = any(r.kind == "ram" and r.base <= page.pa < r.end for r in regions)
            ram = in_ram and not (region is not None and (region.kind == "mmio" or region.no_map))
            assert page.pte_exact
            assert page.dumped == (memattr in (0, 2) and ram), hex(page.va)
            if not page.dumped:
                seen_reasons.add((page.reason, (page.reason_detail or "").split(":")[0]))
                if memattr not in (0, 2):
                    assert page.reason == "device-memory"
                else:
                    assert page.reason == "borrow-refused"
        # faults plants: no-map mapped cached, MMIO mapped cached, device MMIO.
        assert ("borrow-refused", "no-map") in seen_reasons
        assert ("borrow-refused", "mmio") in seen_reasons
        assert ("device-memory", "mmio") in seen_reasons


def test_faults_scenario_plants_what_it_says(dumps):
    with dumpview.open_dump(dumps["faults"]) as dump:
        bad_va = RANGES["SHARED_RO"][0] + 0x8000_0000
        t = dump.translate(bad_va)
        assert not t.mapped and t.stopped_level == 2
        assert "unexpected table entry" in t.stopped_reason
        # The cached + uncached alias: one PA, two VAs, memattr 0 and 2.
        by_pa: dict[int, set[int]] = {}
        for page in dump.pages():
            by_pa.setdefault(page.pa, set()).add((page.pte >> 2) & 7)
        assert any(attrs >= {0, 2} for attrs in by_pa.values())
        # An empty (leaked) leaf table is carried.
        empty = [
            n
            for n in dump.tables_index.nodes
            if n.level == 3 and not dump.tables_index.entries_at(n.pa).any()
        ]
        assert empty
        # Exactly one Ccdp pair disagrees with the tables.
        log = dump.crashlog
        pairs = clhe.ccdp_pairs(log)
        disagree = [va for va, pa, _ in pairs if dump.translate(va).pa != pa]
        assert len(pairs) >= 3 and len(disagree) == 1


def test_minimal_ccdp_pairs_agree_and_far_is_mapped(dumps):
    with dumpview.open_dump(dumps["minimal"]) as dump:
        log = dump.crashlog
        assert log.format == "clhe" and log.closed
        for va, pa, _ in clhe.ccdp_pairs(log):
            assert dump.translate(va).pa == pa
        regs = clhe.registers(log)
        assert dump.translate(regs.far).mapped
        assert "panic" in clhe.panic_message(log)


def test_user_contexts_carry_owned_ttbs_with_ng_leaves(dumps):
    with dumpview.open_dump(dumps["user-contexts"]) as dump:
        spaces = dump.extension.spaces
        assert spaces[0].context == 0 and not spaces[0].ttb_owned
        users = [s for s in spaces if s.context]
        assert len(users) == 3 and all(s.ttb_owned for s in users)
        index = dump.tables_index
        for space in users:
            leaf_tables = [n for n in index.nodes if n.context == space.context and n.level == 3]
            assert leaf_tables
            for node in leaf_tables:
                entries = index.entries_at(node.pa)
                leaves = entries[(entries & 3) == 3]
                assert len(leaves) and all(int(v) & uat.BIT_NG for v in leaves)
        # The kernel context's leaves are global.
        assert all(not (p.pte & uat.BIT_NG) for p in dump.pages())


def test_large_scatter_makes_one_segment_per_page(dumps):
    with dumpview.open_dump(dumps["large"]) as dump:
        total, dumped = dump.page_totals
        big = [i for i in range(dump.segment_count) if int(dump.seg_memsz[i]) > uat.PAGE_SIZE]
        # Only the small fixed mappings may span more than one page.
        assert len(big) < 20
        assert total >= 8 * 64 and 0 < dumped < total


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--scenario", "nope"], "unknown scenario"),
        (["--scenario", "large", "--mapped-mib", "999999"], "does not fit"),
        (["--scenario", "large", "--dumped-percent", "101"], "dumped-percent"),
        (["--scenario", "minimal", "--mapped-mib", "4"], "no knob"),
    ],
)
def test_bad_generate_arguments_are_one_line_exit_2(tmp_path, argv, needle):
    out = tmp_path / "x.dump"
    proc = cli("generate", *argv, "-o", str(out))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch not installed")
def test_gdb_reads_the_same_bytes_as_dumpview_read_raw(dumps):
    path = dumps["minimal"]
    with dumpview.open_dump(path) as dump:
        vas = [p.va for p in dump.pages() if p.dumped][::7][:4]
    assert vas
    for va in vas:
        raw = cli("read", "--raw", str(path), hex(va + 0x10), "32", check=True).stdout
        proc = subprocess.run(
            [
                "gdb-multiarch",
                "-nx",
                "-batch",
                "-ex",
                "set architecture aarch64",
                "-ex",
                f"core-file {path}",
                "-ex",
                f"x/32xb {va + 0x10:#x}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        values = [int(b, 16) for b in re.findall(r"\t0x([0-9a-f]{2})", proc.stdout)]
        assert bytes(values) == raw, proc.stdout + proc.stderr
