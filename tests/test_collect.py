"""``dumpview collect`` on a fake sysfs tree the test builds: devcdN directories with a ``data``
file and a ``failing_device`` link (to a device whose ``driver`` link names its driver). The
copies are decompressed by the system's zstd where installed (an independent reader) and
compared byte for byte; a release is the test's ``data`` file seeing the write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dumpview.model.collect import waiting_devcoredumps
from dumpview.model.decompress import zstd
from dumpview.model.numbers import rounded_size

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = ROOT / "samples" / "minimal.dump"  # an AGX dump whose crash log has a panic
SMMU = ROOT / "samples" / "smmu-lpae4k.dump"  # an ELF devcoredump without an AGX note


def _sample_panic() -> str:
    """The panic string of the bundled sample's crash log, read through the model."""
    import dumpview

    with dumpview.open_dump(MINIMAL) as dump:
        from formats import clhe

        message = clhe.panic_message(dump.crashlog)
    assert message and message.startswith("GPU firmware panic")
    return message


PANIC = _sample_panic()


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def decompress(path: Path) -> bytes:
    if shutil.which("zstd"):
        return subprocess.run(
            ["zstd", "-d", "-c", str(path)], capture_output=True, check=True
        ).stdout
    return zstd.decompress(path.read_bytes())


def add_devcd(root: Path, number: int, data: bytes, device: str, driver: str | None) -> Path:
    """ROOT/class/devcoredump/devcdN with ``data`` and ``failing_device`` -> a device under
    ROOT/devices (with a ``driver`` link when ``driver``), as the kernel lays them out."""
    dev = root / "devices" / "platform" / "soc" / device
    dev.mkdir(parents=True, exist_ok=True)
    if driver is not None:
        drv = root / "bus" / "platform" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (dev / "driver").symlink_to(os.path.relpath(drv, dev))
    devcd = root / "class" / "devcoredump" / f"devcd{number}"
    devcd.mkdir(parents=True)
    (devcd / "data").write_bytes(data)
    (devcd / "failing_device").symlink_to(os.path.relpath(dev, devcd))
    return devcd / "data"


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return tmp_path / "sys"


def test_collects_verifies_and_releases(sysfs: Path, tmp_path: Path) -> None:
    agx = MINIMAL.read_bytes()
    text = b"amdgpu devcoredump\n**** AMDGPU Device Coredump ****\nkernel: 6.8\n" * 40
    agx_data = add_devcd(sysfs, 3, agx, "206400000.gpu", "asahi")
    text_data = add_devcd(sysfs, 12, text, "0000:03:00.0", None)
    out = tmp_path / "crash"
    proc = run("collect", "--sysfs-root", str(sysfs), "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2  # in devcd number order: 3 before 12
    copies = sorted(out.iterdir())
    assert len(copies) == 2 and not [p for p in out.iterdir() if p.name.startswith(".")]
    agx_copy = next(p for p in copies if p.name.startswith("206400000.gpu-asahi-"))
    text_copy = next(p for p in copies if p.name.startswith("0000_03_00.0-"))
    assert agx_copy.name.endswith("Z.dump.zst") and text_copy.name.endswith("Z.dump.zst")
    assert agx_copy.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd
    assert decompress(agx_copy) == agx and decompress(text_copy) == text
    assert oct(agx_copy.stat().st_mode & 0o777) == "0o600"
    assert lines[0].startswith(f"{agx_copy}: 945.6 KiB (")
    assert f"zstd), AGX dump, panic: {PANIC}; released" in lines[0]
    assert lines[1].startswith(f"{text_copy}: {rounded_size(len(text), iec=True)} (")
    assert "not an AGX dump (not an ELF core: it starts with 61 6d 64 67); released" in lines[1]
    # released: each data file saw a write (the kernel frees the dump on any write)
    assert agx_data.read_bytes()[:1] == b"1" and agx_data.read_bytes()[1:] == agx[1:]
    assert text_data.read_bytes()[:1] == b"1"
    # the copy opens through the decompressing open, as every command does
    info = run("info", str(agx_copy)).stdout.decode().splitlines()
    assert info[1].startswith("  source       zstd, 945.6 KiB decompressed")


def test_keep_leaves_the_dump_and_names_never_collide(sysfs: Path, tmp_path: Path) -> None:
    data = add_devcd(sysfs, 1, SMMU.read_bytes(), "arm-smmu", "arm-smmu")
    out = tmp_path / "out"
    for _ in range(2):
        proc = run("collect", "--keep", "--sysfs-root", str(sysfs), "-o", str(out))
        assert proc.returncode == 0, proc.stderr.decode()
        line = proc.stdout.decode().strip()
        assert "not an AGX dump (devcoredump, lpae-4k entries, no AGX note)" in line
        assert line.endswith("; kept in the kernel")
    assert data.read_bytes() == SMMU.read_bytes()  # never written
    names = sorted(p.name for p in out.iterdir())
    first = names[1]  # "-2" sorts before "."
    assert first.startswith("arm-smmu-arm-smmu-") and first.endswith("Z.dump.zst")
    assert names[0] == first.replace("Z.dump.zst", "Z-2.dump.zst")  # the same devcd twice
    assert all(decompress(out / n) == SMMU.read_bytes() for n in names)


def test_a_broken_elf_is_kept_in_the_kernel(sysfs: Path, tmp_path: Path) -> None:
    cut = MINIMAL.read_bytes()[:100_000]  # an ELF header whose segments run past the end
    data = add_devcd(sysfs, 2, cut, "206400000.gpu", "asahi")
    proc = run("collect", "--sysfs-root", str(sysfs), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    line = proc.stderr.decode().strip()
    assert len(line.splitlines()) == 1
    assert "the copy did not verify, devcd2 left in the kernel:" in line
    assert "past the end of the file" in line
    assert data.read_bytes() == cut  # not released
    (copy,) = (tmp_path / "out").iterdir()  # the faithful copy stays for whoever looks
    assert decompress(copy) == cut


def test_nothing_waiting_and_the_notice(sysfs: Path, tmp_path: Path) -> None:
    proc = run("collect", "--sysfs-root", str(sysfs), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == (
        f"dumpview: no devcoredump waiting in {sysfs}/class/devcoredump"
    )
    assert not (tmp_path / "out").exists()
    assert waiting_devcoredumps(str(sysfs)) == []
    add_devcd(sysfs, 7, MINIMAL.read_bytes(), "206400000.gpu", "asahi")
    proc = run(env={"DUMPVIEW_SYSFS_ROOT": str(sysfs)})  # no terminal: info on the sample
    assert proc.returncode == 0
    first = proc.stderr.decode().splitlines()[0]
    assert first == (
        f"dumpview: 1 devcoredump waiting in {sysfs}/class/devcoredump: devcd7 "
        f"(206400000.gpu); `dumpview collect` saves them before the kernel drops them "
        f"(opening the bundled sample)"
    )


def test_copy_failure_is_reported_and_not_released(sysfs: Path, tmp_path: Path) -> None:
    data = add_devcd(sysfs, 1, MINIMAL.read_bytes(), "206400000.gpu", "asahi")
    out = tmp_path / "not-a-dir"
    out.write_text("a file where the directory should be")
    proc = run("collect", "--sysfs-root", str(sysfs), "-o", str(out))
    assert proc.returncode == 2
    assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert data.read_bytes() == MINIMAL.read_bytes()


def test_a_copy_never_overwrites_a_file_that_appears_while_it_is_written(
    sysfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final name is free when the copy starts and taken (by another collector, say) before
    it is linked: the other file is left as it is, the copy gets -2. Both the file and the
    directory are fsynced before the dump is released, and the copy is 0600 whatever the
    umask."""
    from dumpview.model import collect as collect_module

    add_devcd(sysfs, 4, SMMU.read_bytes(), "arm-smmu", "arm-smmu")
    (waiting,) = waiting_devcoredumps(str(sysfs))
    out = tmp_path / "out"
    out.mkdir()
    planned = out / waiting.file_name()
    real_readv, real_fsync, real_release = os.readv, os.fsync, collect_module._release
    events: list[str] = []

    def readv_racing(fd: int, buffers: list) -> int:
        if not planned.exists():
            planned.write_bytes(b"the other collector's copy")
        return real_readv(fd, buffers)

    def fsync(fd: int) -> None:
        events.append("fsync " + ("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"))
        real_fsync(fd)

    def release(w) -> None:
        events.append("release")
        real_release(w)

    monkeypatch.setattr(os, "readv", readv_racing)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(collect_module, "_release", release)
    previous = os.umask(0)
    try:
        result = collect_module.collect_one(waiting, str(out))
    finally:
        os.umask(previous)
    assert result.error is None and result.released
    assert planned.read_bytes() == b"the other collector's copy"
    assert result.path == str(out / waiting.file_name().replace(".dump.zst", "-2.dump.zst"))
    assert decompress(Path(result.path)) == SMMU.read_bytes()
    assert oct(os.stat(result.path).st_mode & 0o777) == "0o600"
    assert events == ["fsync file", "fsync dir", "release"]
    assert sorted(p.name for p in out.iterdir()) == sorted([planned.name, Path(result.path).name])


def test_a_stop_signal_during_the_copy_leaves_nothing_and_keeps_the_dump(
    sysfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from dumpview import output
    from dumpview.model import collect as collect_module

    data = add_devcd(sysfs, 5, MINIMAL.read_bytes(), "206400000.gpu", "asahi")
    (waiting,) = waiting_devcoredumps(str(sysfs))
    out = tmp_path / "out"
    out.mkdir()
    real_readv = os.readv

    def readv_then_signal(fd: int, buffers: list) -> int:
        monkeypatch.setattr(output, "stop_signal", signal.SIGTERM)  # as the CLI's handler does
        return real_readv(fd, buffers)

    monkeypatch.setattr(os, "readv", readv_then_signal)
    with pytest.raises(output.Stopped):
        collect_module.collect_one(waiting, str(out))
    assert list(out.iterdir()) == []
    assert data.read_bytes() == MINIMAL.read_bytes()  # not released
