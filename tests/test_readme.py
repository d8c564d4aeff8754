"""README stays true: its key table is the app's key table, its screenshots exist, its
command-line examples and its Python example run and print what it shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from dumpview.tui.keys import KEYS, NAVIGATION

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_key_table_is_the_apps() -> None:
    rows = re.findall(r"^\| `(.+?)` \| (.+?) \|$", README, flags=re.M)
    assert rows == [(key.shown, key.help) for key in KEYS]
    for keys, what in NAVIGATION:
        assert f"| {keys} | {what} |" in README


def test_readme_screenshots_exist() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.svg)\)", README)
    assert len(images) >= 2
    for image in images:
        path = Path(__file__).resolve().parent.parent / image
        assert path.is_file(), image
        assert path.read_text().lstrip().startswith("<svg")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "dumpview.cli", *argv],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")},
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def test_readme_command_line_examples_run_on_the_samples(tmp_path: Path) -> None:
    """Every sample-based line of the command-line section's first block runs as shown (the
    huge `large` generations excepted), from a scratch directory whose samples/ is ours."""
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    block = re.search(r"```sh\n(.*?)```", _section("Command line"), re.S).group(1)
    ran = 0
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv[:1] != ["dumpview"] or "large" in argv:
            continue
        argv = argv[1:]
        if ">" in argv:
            argv = argv[: argv.index(">")]
        proc = _run(argv, tmp_path)
        assert proc.returncode == 0, (line, proc.stderr.decode())
        assert proc.stdout or list(tmp_path.glob("*.dump")), line
        ran += 1
    assert ran >= 9


def test_readme_read_output_is_what_read_prints(tmp_path: Path) -> None:
    shown = re.search(r"```\n\$ dumpview (read .*?)\n(.*?)```", README, re.S)
    proc = _run(shlex.split(shown.group(1)), ROOT)
    assert proc.returncode == 1
    assert proc.stdout.decode() == shown.group(2)


def test_readme_python_example_runs(tmp_path: Path) -> None:
    code = re.search(r"```python\n(import dumpview\n\nwith dumpview.*?)```", README, re.S).group(1)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=120, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(0x100_0100_8040) and lines[1] == str(0x100_0104_0000)
    assert lines[2:5] == [
        "0 0x10001100000 False 53 True",
        "1 0x10001a38000 True 4 False",
        "2 0x10001054000 True 7 False",
    ]
    assert lines[5] == "0xffffffa000000000 98304 dumped"


def test_readme_names_the_helpers_dumpview_exposes() -> None:
    import dumpview

    for name in dumpview.HELPERS:
        assert f"`{name}`" in README or f"dumpview.{name}(" in README, name
        assert callable(getattr(dumpview, name))
