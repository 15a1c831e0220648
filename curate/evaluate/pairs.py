"""Verification pair lists: LFW ``pairs.txt`` (10 folds, or View-1 as one fold) and the CFP split folders.

Both readers return a :class:`PairSet`: the distinct images, each with its identity, and per pair the two
image indices, whether it is a genuine (same identity) pair and its fold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.errors import CurateError

logger = logging.getLogger(__name__)

CFP_PROTOCOLS = {
    "cfp-ff": ("FF", "Pair_list_F.txt", "Pair_list_F.txt"),
    "cfp-fp": ("FP", "Pair_list_F.txt", "Pair_list_P.txt"),
}


@dataclass
class PairSet:
    """Images and pairs of a verification protocol."""

    images: list[Path] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)  # one per image
    left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    same: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_folds(self) -> int:
        """Number of distinct folds."""
        return len(np.unique(self.fold))

    def subset(self, folds: list[int]) -> PairSet:
        """Only the pairs of the given folds (1-based, as the protocols number them); same image list."""
        keep = np.isin(self.fold, folds)
        if not keep.any():
            raise CurateError(
                f"no pairs in folds {folds}; this protocol has folds {sorted(set(self.fold.tolist()))}"
            )
        return PairSet(
            self.images, self.identities, self.left[keep], self.right[keep], self.same[keep], self.fold[keep]
        )


class _Builder:
    """Collects pairs, giving each distinct image path one index."""

    def __init__(self) -> None:
        self.index: dict[Path, int] = {}
        self.pairs = PairSet()
        self.rows: list[tuple[int, int, bool, int]] = []

    def image(self, path: Path, identity: str) -> int:
        if path not in self.index:
            self.index[path] = len(self.pairs.images)
            self.pairs.images.append(path)
            self.pairs.identities.append(identity)
        return self.index[path]

    def add(self, a: int, b: int, same: bool, fold: int) -> None:
        self.rows.append((a, b, same, fold))

    def build(self) -> PairSet:
        left, right, same, fold = zip(*self.rows, strict=True) if self.rows else ((), (), (), ())
        self.pairs.left = np.array(left, dtype=np.int64)
        self.pairs.right = np.array(right, dtype=np.int64)
        self.pairs.same = np.array(same, dtype=bool)
        self.pairs.fold = np.array(fold, dtype=np.int64)
        return self.pairs


def _numbered_lines(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank lines of ``path`` split on whitespace, each with its 1-based line number."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: cannot read the pair list ({exc})") from None
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _whole_number(path: Path, line: int, text: str, what: str) -> int:
    """``text`` as a non-negative integer, or a one-line error naming the file and line."""
    if not (text.isascii() and text.isdigit()):
        raise CurateError(f"{path}: line {line}: {what} {text!r} is not a whole number")
    return int(text)


def read_lfw_pairs(pairs_file: Path, images_root: Path, extension: str = "jpg") -> PairSet:
    """LFW ``pairs.txt`` (header ``folds<TAB>n``) or a View-1 file (header ``n``, one fold).

    Each fold holds ``n`` genuine lines ``Name i j`` then ``n`` impostor lines ``Name1 i Name2 j``; the image
    of ``(Name, i)`` is ``<images_root>/<Name>/<Name>_<i:04d>.<extension>``. A malformed line is a one-line
    :class:`CurateError` naming the file and line.
    """
    lines = _numbered_lines(pairs_file)
    if not lines or not all(token.isdigit() for token in lines[0][1]) or len(lines[0][1]) > 2:
        raise CurateError(f"{pairs_file}: first line must be '<folds> <pairs per half-fold>' or '<pairs>'")
    header = lines[0][1]
    folds, per_half = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    body = lines[1:]
    if len(body) != folds * 2 * per_half:
        raise CurateError(
            f"{pairs_file}: header promises {folds * 2 * per_half} pairs, found {len(body)} lines"
        )
    builder = _Builder()

    def image(line: int, name: str, number: str) -> int:
        index = _whole_number(pairs_file, line, number, "image number")
        return builder.image(Path(images_root) / name / f"{name}_{index:04d}.{extension}", name)

    for row, (line, tokens) in enumerate(body):
        fold = row // (2 * per_half) + 1
        genuine = row % (2 * per_half) < per_half
        if genuine and len(tokens) == 3:
            builder.add(image(line, tokens[0], tokens[1]), image(line, tokens[0], tokens[2]), True, fold)
        elif not genuine and len(tokens) == 4:
            builder.add(image(line, tokens[0], tokens[1]), image(line, tokens[2], tokens[3]), False, fold)
        else:
            kind = "genuine 'Name i j'" if genuine else "impostor 'Name1 i Name2 j'"
            raise CurateError(f"{pairs_file}: line {line} should be a {kind} line, got {' '.join(tokens)!r}")
    return builder.build()


def _read_pair_list(path: Path) -> dict[int, str]:
    """``index relative/path`` lines of a CFP pair list."""
    entries: dict[int, str] = {}
    for line, tokens in _numbered_lines(path):
        if len(tokens) < 2:
            raise CurateError(f"{path}: line {line} should be 'index path', got {' '.join(tokens)!r}")
        entries[_whole_number(path, line, tokens[0], "index")] = " ".join(tokens[1:])
    return entries


def _read_split_file(
    path: Path, lists: list[dict[int, str]], names: tuple[str, str]
) -> list[tuple[int, int]]:
    """The ``i,j`` lines of a CFP ``same.txt``/``diff.txt``; each index must be in its pair list."""
    if not path.is_file():
        raise CurateError(f"{path} not found; --pairs must be the CFP 'Protocol' folder")
    pairs: list[tuple[int, int]] = []
    for line, tokens in _numbered_lines(path):
        parts = "".join(tokens).split(",")
        if len(parts) != 2:
            raise CurateError(f"{path}: line {line} should be 'i,j', got {' '.join(tokens)!r}")
        i, j = (_whole_number(path, line, part, "index") for part in parts)
        for which, number in enumerate((i, j)):
            if number not in lists[which]:
                raise CurateError(f"{path}: line {line}: index {number} is not in {names[which]}")
        pairs.append((i, j))
    return pairs


def read_cfp_split(protocol_dir: Path, protocol: str, images_root: Path | None = None) -> PairSet:
    """CFP ``Protocol/Split/{FF,FP}/NN/{same,diff}.txt`` (``i,j`` indices into the pair lists).

    Pair-list paths are relative to ``protocol_dir`` (``../Data/Images/...``); with ``images_root`` they are
    taken relative to it instead (the CFP root, or a derived copy with the same ``Data/Images`` layout).
    Identity = the ``<id>`` folder of ``Data/Images/<id>/{frontal,profile}/NN.jpg``. A malformed line is a
    one-line :class:`CurateError` naming the file and line.
    """
    if protocol not in CFP_PROTOCOLS:
        raise CurateError(f"unknown CFP protocol {protocol!r}; use one of {sorted(CFP_PROTOCOLS)}")
    split, first_list, second_list = CFP_PROTOCOLS[protocol]
    protocol_dir = Path(protocol_dir)
    split_dir = protocol_dir / "Split" / split
    if not split_dir.is_dir():
        raise CurateError(f"{split_dir} not found; --pairs must be the CFP 'Protocol' folder")
    lists = [_read_pair_list(protocol_dir / name) for name in (first_list, second_list)]
    builder = _Builder()

    def image(which: int, number: int) -> int:
        relative = lists[which][number]
        parts = Path(relative).parts
        path = Path(images_root, *[p for p in parts if p != ".."]) if images_root else protocol_dir / relative
        return builder.image(path, parts[-3] if len(parts) >= 3 else parts[0])

    for fold_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if not fold_dir.name.isdigit():
            raise CurateError(f"{fold_dir}: fold folders of {split_dir} must be numbered (01..10)")
        for name, same in (("same.txt", True), ("diff.txt", False)):
            for i, j in _read_split_file(fold_dir / name, lists, (first_list, second_list)):
                builder.add(image(0, i), image(1, j), same, int(fold_dir.name))
    return builder.build()
