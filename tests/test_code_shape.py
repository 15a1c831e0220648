"""tools/code_shape.py finds long files and functions; the modules split for it stay within the limits."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from code_shape import offenders  # noqa: E402

SPLIT = [
    "curate/stages/dedup.py",
    "curate/search/rows.py",
    "curate/search/verdicts.py",
    "curate/train/loop.py",
    "curate/train/resume.py",
    "curate/train/runtime.py",
    "curate/storage.py",
]


def test_finds_a_long_file_and_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{k} = {k}" for k in range(70))
    text = f"def long():\n{body}\n\n\ndef short():\n    return 1\n" + "# filler\n" * 240
    (tmp_path / "long.py").write_text(text)
    (tmp_path / "ok.py").write_text("def fine():\n    return 2\n")
    found = offenders([tmp_path], 300, 60, root=tmp_path)
    assert [(o.path, o.name, o.lines) for o in found] == [("long.py", "", 315), ("long.py", "long", 71)]
    assert len(text.splitlines()) == 315


def test_split_modules_are_within_the_limits() -> None:
    found = offenders([REPO / "curate"], 300, 60)
    assert [str(o) for o in found if o.path in SPLIT] == []
