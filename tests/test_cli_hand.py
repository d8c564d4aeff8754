"""A command line that fits the hand: ``read`` across holes and in units, mistyped commands,
every ``--help``'s examples (run for real against the samples), shell completion, colour.

Bytes are checked against the factory's page contents and gdb-multiarch (when installed);
colour is checked on a pipe, with NO_COLOR, with FORCE_COLOR and on a real pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dumpview.cli import cli
from tests import factory
from tests.factory import BASE_VA, PAGE, page_bytes, segment

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        env=environ,
        cwd=cwd,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


# ---- read across holes, in units --------------------------------------------------------------

A_PA, B_PA, C_PA = 0x8_0000_0000, 0x8_0040_0000, 0x8_0080_0000


@pytest.fixture(scope="module")
def holes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data A | device page (no data) | data B | nothing mapped | data C, one page each."""
    rows = [
        segment(BASE_VA, A_PA),
        segment(BASE_VA + PAGE, 0x2_0000_0000, 1, "FW_MMIO_RW", data=False),
        segment(BASE_VA + 2 * PAGE, B_PA),
        segment(BASE_VA + 4 * PAGE, C_PA),
    ]
    return factory.build_dump(tmp_path_factory.mktemp("holes") / "holes.dump", rows)


HEX_ROW = re.compile(r"^([0-9a-f]{16})  ((?:[0-9a-f]{2,16} ?)+?)\s*\|(.*)\|$")


def rows_of(lines: list[str]) -> tuple[int, bytes]:
    """(first address, bytes) of consecutive hexdump rows in byte units."""
    first, data = None, b""
    for line in lines:
        m = HEX_ROW.match(line)
        assert m, line
        first = int(m.group(1), 16) if first is None else first
        assert int(m.group(1), 16) == first + len(data)
        data += bytes.fromhex(m.group(2).replace(" ", ""))
    return first, data


def test_read_across_holes_prints_what_it_has_and_marks_each_gap(holes: Path) -> None:
    start = BASE_VA + PAGE - 32
    proc = run("read", str(holes), hex(start), hex(3 * PAGE + 64))
    assert proc.returncode == 1
    lines = proc.stdout.decode().splitlines()
    markers = [i for i, line in enumerate(lines) if "**" in line]
    assert len(markers) == 2
    first, second = (lines[i] for i in markers)
    assert first == (
        f"{BASE_VA + PAGE:016x}  ** 16,384 bytes (16K) not dumped: device-memory "
        "(memattr 1 (device)) **"
    )
    assert second.startswith(f"{BASE_VA + 3 * PAGE:016x}  ** 16,384 bytes (16K) not mapped: ")
    assert "the walk stopped at L3" in second
    # Between and around the marks: exactly the bytes of the pages, never zeros for the gaps.
    assert rows_of(lines[: markers[0]]) == (start, page_bytes(A_PA)[-32:])
    assert rows_of(lines[markers[0] + 1 : markers[1]]) == (BASE_VA + 2 * PAGE, page_bytes(B_PA))
    assert rows_of(lines[markers[1] + 1 :]) == (BASE_VA + 4 * PAGE, page_bytes(C_PA)[:32])
    assert proc.stderr.decode().splitlines() == [
        f"dumpview: VA {BASE_VA + PAGE:#x}: not dumped: device-memory (memattr 1 (device)) "
        "(and 1 more run(s))"
    ]
    # --raw writes nothing unless every byte is dumped.
    raw = run("read", "--raw", str(holes), hex(start), hex(3 * PAGE + 64))
    assert raw.returncode == 1 and raw.stdout == b""
    assert run("read", "--raw", str(holes), hex(start), "32").stdout == page_bytes(A_PA)[-32:]


@pytest.mark.parametrize(("unit", "size"), [("h", 2), ("w", 4), ("g", 8)])
def test_read_units_are_little_endian_like_gdb(holes: Path, unit: str, size: int) -> None:
    va = BASE_VA + 2 * PAGE + 8
    raw = page_bytes(B_PA)[8 : 8 + 40]
    proc = run("read", "--unit", unit, str(holes), hex(va), "40")
    assert proc.returncode == 0, proc.stderr
    values = []
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 3  # 16 bytes a row
    for row, line in enumerate(lines):
        address, groups, text = line.split("  ", 2)
        assert int(address, 16) == va + 16 * row
        assert text.lstrip().startswith("|")
        values += [int(g, 16) for g in groups.split()]
        assert all(len(g) == 2 * size for g in groups.split())
    expected = [int.from_bytes(raw[i : i + size], "little") for i in range(0, 40, size)]
    assert values == expected


@pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch not installed")
def test_read_units_match_gdb_x_fmt() -> None:
    path = SAMPLES / "minimal.dump"
    va = 0xFFFF_FFA0_0000_0010
    sizes = {"h": 2, "w": 4, "g": 8}
    argv = ["gdb-multiarch", "-nx", "-batch", "-ex", "set architecture aarch64"]
    argv += ["-ex", f"core-file {path}"]
    for unit in sizes:
        argv += ["-ex", f"x/8{unit}x {va:#x}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    gdb_values = [int(v, 16) for v in re.findall(r"\t0x([0-9a-f]+)", proc.stdout)]
    assert len(gdb_values) == 24, proc.stdout + proc.stderr
    for n, (unit, size) in enumerate(sizes.items()):
        out = run("read", "--unit", unit, str(path), hex(va), str(8 * size)).stdout.decode()
        ours = [int(g, 16) for line in out.splitlines() for g in line.split("  ")[1].split()]
        assert ours == gdb_values[8 * n : 8 * n + 8], unit


# ---- mistyped commands -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "meant"),
    [
        (["inf", "x"], "info"),
        (["chek", "DUMP"], "check"),
        (["vtopp"], "vtop"),
        (["exprt"], "export"),
    ],
)
def test_a_mistyped_command_says_which_one_was_meant(argv: list[str], meant: str) -> None:
    proc = run(*argv)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        f"dumpview: no such command {argv[0]!r}; did you mean {meant}?"
    ]


def test_an_existing_file_still_opens_even_when_named_like_a_command(tmp_path: Path) -> None:
    shutil.copyfile(SAMPLES / "minimal.dump", tmp_path / "inf")
    proc = run("inf", cwd=tmp_path)  # no terminal: open prints info instead of the inspector
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[0] == "inf"
    assert "agx-devcoredump" in proc.stdout.decode()
    sample = run(str(SAMPLES / "minimal.dump"))
    assert sample.returncode == 0 and b"PT_LOAD" in sample.stdout
    # Not a file and not a mistyped command word: it is taken for a dump, and fails as one
    # (even a name as close to a command as info.dump: it has a dot, it is a file name).
    for name in (str(tmp_path / "nothing-here.dump"), "info.dump"):
        missing = run(name, cwd=tmp_path)
        assert missing.returncode == 2
        assert missing.stderr.decode().splitlines()[-1] == (
            f"dumpview: {name}: No such file or directory"
        )


# ---- --help examples, run for real ------------------------------------------------------------


def all_commands() -> list[tuple[str, object]]:
    return [("", cli), *sorted(cli.commands.items())]


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda x: x or "dumpview")
def test_every_help_ends_with_examples_that_run(name: str, command, tmp_path: Path) -> None:
    examples = command.examples
    assert 1 <= len(examples) <= 2
    proc = run(*([name] if name else []), "--help")
    assert proc.returncode == 0
    text = proc.stdout.decode().rstrip().splitlines()
    assert [line.strip() for line in text[-len(examples) :]] == [e.line for e in examples]
    assert text[-len(examples) - 2].strip() == "Examples:"
    # Run each from a scratch directory whose samples/ is the checkout's (outputs land here),
    # with a fake sysfs tree of our own holding one devcoredump (``collect``: never /sys).
    (tmp_path / "samples").symlink_to(SAMPLES)
    sysfs = tmp_path / "sys"
    devcd = sysfs / "class" / "devcoredump" / "devcd1"
    devcd.mkdir(parents=True)
    (devcd / "data").write_bytes((SAMPLES / "minimal.dump").read_bytes())
    env = {"DUMPVIEW_SYSFS_ROOT": str(sysfs)}
    for example in examples:
        argv = shlex.split(example.line)
        assert argv[0] == "dumpview"
        if name:
            assert name in argv
        argv = [str(sysfs) if arg == "/sys" else arg for arg in argv]
        argv = ["crashes" if arg.startswith("/var/crash") else arg for arg in argv]
        proc = run(*argv[1:], cwd=tmp_path, env=env)
        assert proc.returncode == example.exit_code, (example.line, proc.stderr.decode())
        made = [p for p in tmp_path.iterdir() if p.name not in ("samples", "sys")]
        assert proc.stdout.strip() or made, example.line


# ---- completion --------------------------------------------------------------------------------


def test_shell_completion_script_and_answers() -> None:
    proc = run(env={"_DUMPVIEW_COMPLETE": "bash_source"})
    assert proc.returncode == 0
    script = proc.stdout.decode()
    assert "_dumpview_completion()" in script
    assert "complete -o nosort -F _dumpview_completion dumpview" in script
    answer = run(env={"_DUMPVIEW_COMPLETE": "bash_complete", "COMP_WORDS": "dumpview vt",
                      "COMP_CWORD": "1"})  # fmt: skip
    assert answer.stdout.decode().split() == ["plain,vtop"]
    options = run(env={"_DUMPVIEW_COMPLETE": "bash_complete", "COMP_WORDS": "dumpview read --u",
                       "COMP_CWORD": "2"})  # fmt: skip
    assert options.stdout.decode().split() == ["plain,--unit"]
    zsh = run(env={"_DUMPVIEW_COMPLETE": "zsh_source"})
    assert "#compdef dumpview" in zsh.stdout.decode()


# ---- colour ------------------------------------------------------------------------------------

COLOURED = [
    ["check", str(SAMPLES / "faults.dump")],
    ["vtop", str(SAMPLES / "user-contexts.dump"), "1:0x110000000"],
    ["ranges", str(SAMPLES / "faults.dump")],
    ["info", str(SAMPLES / "user-contexts.dump")],
    ["read", str(SAMPLES / "faults.dump"), "0xffffff8030000000", "32"],
]


@pytest.mark.parametrize("argv", COLOURED, ids=lambda a: a[0])
def test_colour_only_on_a_terminal_or_when_forced(argv: list[str]) -> None:
    piped = run(*argv)
    assert b"\x1b[" not in piped.stdout + piped.stderr
    forced = run(*argv, env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert forced.returncode == piped.returncode
    assert b"\x1b[" in forced.stdout
    # Colour adds escape codes and nothing else.
    assert ESCAPE.sub("", forced.stdout.decode()) == piped.stdout.decode()
    assert ESCAPE.sub("", forced.stderr.decode()) == piped.stderr.decode()
    off = run(*argv, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert off.stdout == piped.stdout and b"\x1b[" not in off.stderr


def test_colour_marks_what_it_should() -> None:
    env = {"FORCE_COLOR": "1", "TERM": "xterm"}
    check = run("check", str(SAMPLES / "faults.dump"), env=env).stdout.decode()
    red = "\x1b[1;31m"
    assert re.search(rf"^{re.escape(red)}write-exec\s*\x1b\[0m", check, re.M) or re.search(
        rf"^{re.escape(red)}memattr-alias", check, re.M
    )
    read = run("read", str(SAMPLES / "faults.dump"), "0xffffff8030000000", "32", env=env)
    assert read.stdout.decode().startswith(f"ffffff8030000000  {red}** 32 bytes not dumped")
    assert read.stderr.decode().startswith(red + "dumpview: ")  # errors in red too


def test_colour_on_a_real_terminal() -> None:
    """Through a pseudo-terminal, as a person sees it: colour without being forced."""
    main, secondary = pty.openpty()
    try:
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        environ["TERM"] = "xterm-256color"
        proc = subprocess.run(
            [sys.executable, "-m", "dumpview.cli", "ranges", str(SAMPLES / "faults.dump")],
            stdout=secondary,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=environ,
            timeout=60,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if secondary >= 0:
            os.close(secondary)
        os.close(main)
    assert proc.returncode == 0, proc.stderr
    out = b"".join(chunks).decode()
    assert "\x1b[" in out and "not dumped" in ESCAPE.sub("", out)
