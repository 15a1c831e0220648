"""`curate evaluate` refuses half an answer: missing/unreadable images and malformed pair lists (CLI).

Real images: ORL subjects linked into an LFW-style tree, and the real CFP images under a small CFP-style
Protocol folder written for the test (its pair lists are the real ones).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app


def _orl_tree(data_dir: Path, root: Path) -> Path:
    """ORL s31..s36 linked as <s>/<s>_<i:04d>.jpg, and a 2-fold pairs.txt (6 genuine + 6 impostor a fold)."""
    names = [f"s{i}" for i in range(31, 37)]
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(1, 11):
            (root / name / f"{name}_{i:04d}.jpg").symlink_to(data_dir / "orl_faces" / name / f"{i}.pgm")
    lines = ["2\t6"]
    for fold in range(2):
        lines += [f"{name}\t{1 + fold}\t{3 + fold}" for name in names]
        lines += [f"{names[k]}\t{5 + fold}\t{names[(k + 1) % 6]}\t{7 + fold}" for k in range(6)]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root / "pairs.txt"


def _evaluate(workdir: Path, pairs: Path, images: Path, *extra: str, protocol: str = "lfw"):
    args = ["-w", str(workdir), "evaluate", "--model", "handcrafted", "--pairs", str(pairs)]
    args += ["--images", str(images), "--protocol", protocol, "--no-align", *extra]
    return CliRunner().invoke(app, args)


def _error_line(result) -> str:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_missing_and_unreadable_images_refused_unless_allowed(tmp_path: Path, data_dir: Path) -> None:
    pairs = _orl_tree(data_dir, tmp_path / "orl")
    work = tmp_path / "work"
    whole = _evaluate(work, pairs, pairs.parent, "--json")
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["missing"]["pairs"] == 0
    (pairs.parent / "s31" / "s31_0001.jpg").unlink()  # genuine pair s31 1 3 (fold 1)
    (pairs.parent / "s33" / "s33_0007.jpg").unlink()  # impostor pair s32 5 s33 7 (fold 1)
    line = _error_line(_evaluate(work, pairs, pairs.parent))
    assert "2 of 24 pairs name missing images (2 images, first: " in line and "s31_0001.jpg" in line
    assert "--allow-missing" in line
    unreadable = pairs.parent / "s34" / "s34_0004.jpg"  # genuine pair s34 2 4 (fold 2)
    unreadable.unlink()
    unreadable.write_bytes(b"not an image at all")
    (pairs.parent / "s31" / "s31_0001.jpg").symlink_to(data_dir / "orl_faces" / "s31" / "1.pgm")
    (pairs.parent / "s33" / "s33_0007.jpg").symlink_to(data_dir / "orl_faces" / "s33" / "7.pgm")
    line = _error_line(_evaluate(work, pairs, pairs.parent))
    assert "1 of 24 pairs name unreadable images (1 images, first: " in line and "s34_0004.jpg" in line
    allowed = _evaluate(work, pairs, pairs.parent, "--allow-missing", "--json")
    assert allowed.exit_code == 0, allowed.output
    report = json.loads(allowed.stdout)
    assert report["missing"] == {
        "images": 1,
        "pairs": 1,
        "genuine_pairs": 1,
        "first": [str(unreadable)],
    }
    assert "1 pairs (1 genuine) name 1 missing or unreadable images, scored as failures" in allowed.stderr
    shown = [line for line in allowed.stderr.splitlines() if line.startswith("report files: ")]
    assert len(shown) == 1
    files = [Path(p) for p in shown[0].removeprefix("report files: ").split(", ")]
    assert [p.name for p in files] == ["report.json", "roc.png"] and all(p.is_file() for p in files)
    assert json.loads(files[0].read_text())["missing"]["pairs"] == 1
    table = _evaluate(work, pairs, pairs.parent, "--allow-missing")
    assert table.exit_code == 0, table.output
    assert table.output.index("pairs with missing images") < table.output.index("accuracy")


def test_malformed_pairs_txt_is_one_line_naming_the_line(tmp_path: Path, data_dir: Path) -> None:
    pairs = _orl_tree(data_dir, tmp_path / "orl")
    lines = pairs.read_text().splitlines()
    lines.insert(2, "")  # a blank line does not shift the reported line numbers
    lines[4] = "s33\tthree\t3"
    pairs.write_text("\n".join(lines) + "\n")
    line = _error_line(_evaluate(tmp_path / "work", pairs, pairs.parent))
    assert f"{pairs}: line 5: image number 'three' is not a whole number" in line
    lines[4] = "s33\t1\ts34\t2"
    pairs.write_text("\n".join(lines) + "\n")
    assert "line 5 should be a genuine 'Name i j' line" in _error_line(
        _evaluate(tmp_path / "work", pairs, pairs.parent)
    )


def _cfp_protocol(data_dir: Path, root: Path, same_lines: list[str]) -> Path:
    """A CFP-style Protocol folder: the real pair lists, one FF fold of ``same_lines``, 10 real diff lines."""
    real = data_dir / "cfp" / "Protocol"
    root.mkdir(parents=True)
    for name in ("Pair_list_F.txt", "Pair_list_P.txt"):
        shutil.copyfile(real / name, root / name)
    fold = root / "Split" / "FF" / "01"
    fold.mkdir(parents=True)
    (fold / "same.txt").write_text("\n".join(same_lines) + "\n")
    diff = (real / "Split" / "FF" / "01" / "diff.txt").read_text().splitlines()[:10]
    (fold / "diff.txt").write_text("\n".join(diff) + "\n")
    return root


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("7,x", "line 3: index 'x' is not a whole number"),
        ("7;8", "line 3 should be 'i,j'"),
        ("7,99999", "line 3: index 99999 is not in Pair_list_F.txt"),
    ],
)
def test_malformed_cfp_split_line_is_one_line(tmp_path: Path, data_dir: Path, bad: str, message: str) -> None:
    real = (data_dir / "cfp" / "Protocol" / "Split" / "FF" / "01" / "same.txt").read_text().splitlines()
    protocol = _cfp_protocol(data_dir, tmp_path / "Protocol", [*real[:2], bad, *real[2:10]])
    line = _error_line(_evaluate(tmp_path / "work", protocol, data_dir / "cfp", protocol="cfp-ff"))
    assert f"{protocol / 'Split' / 'FF' / '01' / 'same.txt'}: {message}" in line


def test_cfp_pairs_on_real_images_and_a_missing_one(tmp_path: Path, data_dir: Path) -> None:
    real = (data_dir / "cfp" / "Protocol" / "Split" / "FF" / "01" / "same.txt").read_text().splitlines()
    protocol = _cfp_protocol(data_dir, tmp_path / "Protocol", real[:10])
    images = tmp_path / "cfp"
    shutil.copytree(data_dir / "cfp" / "Data" / "Images" / "001", images / "Data" / "Images" / "001")
    for number in range(2, 51):
        (images / "Data" / "Images" / f"{number:03d}").symlink_to(
            data_dir / "cfp" / "Data" / "Images" / f"{number:03d}"
        )
    result = _evaluate(tmp_path / "work", protocol, images, "--json", protocol="cfp-ff")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_genuine"] == 10
    first_pair = real[0].split(",")
    for image in (images / "Data" / "Images" / "001" / "frontal").glob("*.jpg"):
        image.unlink()  # identity 001's frontal images, used by the first genuine pair(s)
    line = _error_line(_evaluate(tmp_path / "work", protocol, images, protocol="cfp-ff"))
    assert "pairs name missing images" in line and "/001/frontal/" in line, (first_pair, line)


def test_one_fold_is_said_to_be_not_cross_validated(tmp_path: Path, data_dir: Path) -> None:
    """--folds 1 fits the threshold on the pairs it scores: the table and the report page say so."""
    pairs = _orl_tree(data_dir, tmp_path / "lfw")
    both = _evaluate(tmp_path / "w", pairs, tmp_path / "lfw", "--out", str(tmp_path / "both"))
    assert both.exit_code == 0, both.output
    assert "(2-fold)" in both.output and "not cross-validated" not in both.output
    one = _evaluate(tmp_path / "w", pairs, tmp_path / "lfw", "--folds", "1", "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    report = json.loads((tmp_path / "one" / "report.json").read_text())
    assert report["cross_validated"] is False
    assert "not cross-validated" in " ".join(one.output.split())
    from curate.report.sections import evaluation_section

    page = evaluation_section([tmp_path / "one", tmp_path / "both"], None)
    assert page.count("not cross-validated") == 1 and "(2-fold)" in page and "10-fold" not in page


def test_evaluations_with_other_settings_keep_their_own_report_folders(
    tmp_path: Path, data_dir: Path
) -> None:
    """Without --out, other --folds (or pairs, alignment...) write another folder, not the first one over."""
    pairs = _orl_tree(data_dir, tmp_path / "lfw")
    for extra in ((), ("--folds", "1"), ()):
        assert _evaluate(tmp_path / "w", pairs, tmp_path / "lfw", *extra).exit_code == 0
    reports = {
        p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "w" / "evaluate").glob("*/report.json")
    }
    assert len(reports) == 2, sorted(reports)
    assert sorted(len(report["folds"]) for report in reports.values()) == [1, 2]


def test_cfp_pairs_need_no_image_root(tmp_path: Path, data_dir: Path) -> None:
    """The CFP Protocol's lists name their images (../Data/Images/...): --images may be left out."""
    real = (data_dir / "cfp" / "Protocol" / "Split" / "FF" / "01" / "same.txt").read_text().splitlines()
    protocol = _cfp_protocol(data_dir, tmp_path / "cfp" / "Protocol", real[:10])
    (tmp_path / "cfp" / "Data").symlink_to(data_dir / "cfp" / "Data")
    args = ["-w", str(tmp_path / "work"), "evaluate", "--model", "handcrafted", "--pairs", str(protocol)]
    result = CliRunner().invoke(app, [*args, "--protocol", "cfp-ff", "--no-align", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_genuine"] == 10
    lfw = CliRunner().invoke(app, [*args[:-1], str(_orl_tree(data_dir, tmp_path / "lfw")), "--no-align"])
    assert "images" in _error_line(lfw)  # lfw's pairs.txt names people, not files: the root is needed
