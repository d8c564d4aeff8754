"""README stays true: its key table is the app's key table, its screenshots exist."""

from __future__ import annotations

import re
from pathlib import Path

from dumpview.tui.keys import KEYS, NAVIGATION

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


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
