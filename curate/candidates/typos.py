"""Likely-duplicate names that differ by a typo ("Jennifer Anniston" / "Jennifer Aniston").

Such pairs are reported for review, never merged: two real people can have names one letter apart.
Names are compared on their *compact key* (the match key without spaces, so "A. J. Buckley" meets
"AJ Buckley") with a bounded edit distance. To stay fast on lists of tens of thousands of names, only
names that share a *block* are compared: a word of the name, or the first or last four letters of the
compact key. Typos that change every block of a name are missed; that is the price of near-linear time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from curate.names import match_key

logger = logging.getLogger(__name__)

EDGE_LETTERS = 4
"""How many leading / trailing compact-key letters form the edge blocks."""


def compact_key(name: str) -> str:
    """The match key without spaces: ``"A._J._Buckley"`` and ``"AJ Buckley"`` both give ``"ajbuckley"``."""
    return match_key(name).replace(" ", "")


def allowed_edits(a: str, b: str, max_edits: int) -> int:
    """Edits tolerated between two compact keys, growing with the shorter key's length.

    None under 6 letters, 1 up to 15 letters, 2 from 16 letters on; never more than ``max_edits``. Two
    edits in a short name too often make another real name ("David Silva" / "David Villa").
    """
    shorter = min(len(a), len(b))
    if shorter < 6:
        return 0
    return min(max_edits, 1 if shorter < 16 else 2)


def bounded_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b``, or ``limit + 1`` when it exceeds ``limit``.

    Edits are insertion, deletion, substitution and the swap of two adjacent letters. Only a band of width
    ``2 * limit + 1`` around the diagonal is filled, and the loop stops as soon as a whole row exceeds the
    limit, so a comparison costs O(len * limit) at most.
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    # a shared prefix or suffix never changes the distance; trimming it keeps the table small
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(a) - start and end < len(b) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if len(a) > len(b):
        a, b = b, a
    over = limit + 1
    width = len(b)
    before: list[int] = []
    previous = list(range(width + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [over] * width
        low, high = max(1, i - limit), min(width, i + limit)
        row_min = current[0] if low == 1 else over
        letter = a[i - 1]
        for j in range(low, high + 1):
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (letter != b[j - 1]))
            if i > 1 and j > 1 and letter == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
            row_min = min(row_min, value)
        if row_min > limit:
            return over
        before, previous = previous, current
    return min(previous[width], over)


@dataclass(frozen=True)
class ClosePair:
    """Two names whose compact keys are within the allowed edits (``left``/``right`` index the inputs)."""

    left: int
    right: int
    distance: int


def _blocks(key: str) -> set[str]:
    words = key.split()
    compact = "".join(words)
    blocks = {"w:" + word for word in words if len(word) >= 3 or len(words) == 1}
    if len(compact) >= EDGE_LETTERS:
        blocks.add("p:" + compact[:EDGE_LETTERS])
        blocks.add("s:" + compact[-EDGE_LETTERS:])
    return blocks


def _index(keys: Sequence[str]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for position, key in enumerate(keys):
        for block in _blocks(key):
            index[block].append(position)
    return index


def _candidate_pairs(left: Sequence[str], right: Sequence[str] | None) -> Iterable[tuple[int, int]]:
    left_index = _index(left)
    if right is None:
        for members in left_index.values():
            for a_pos, a in enumerate(members):
                for b in members[a_pos + 1 :]:
                    yield a, b
        return
    right_index = _index(right)
    for block, members in left_index.items():
        for b in right_index.get(block, ()):
            for a in members:
                yield a, b


def close_pairs(
    left: Sequence[str], right: Sequence[str] | None = None, max_edits: int = 2
) -> list[ClosePair]:
    """Pairs of names within a few edits of each other, with different match keys.

    With ``right`` None, pairs within ``left`` (``left < right`` index); otherwise pairs across the two lists.
    Names with the same match key are not reported: they are one identity, folded elsewhere.
    """
    left_keys = [match_key(name) for name in left]
    right_keys = left_keys if right is None else [match_key(name) for name in right]
    left_compact = [key.replace(" ", "") for key in left_keys]
    right_compact = left_compact if right is None else [key.replace(" ", "") for key in right_keys]
    seen: set[tuple[int, int]] = set()
    found: list[ClosePair] = []
    for a, b in _candidate_pairs(left_keys, None if right is None else right_keys):
        if (a, b) in seen or left_keys[a] == right_keys[b]:
            continue
        seen.add((a, b))
        limit = allowed_edits(left_compact[a], right_compact[b], max_edits)
        distance = bounded_distance(left_compact[a], right_compact[b], limit)
        if distance <= limit:
            found.append(ClosePair(a, b, distance))
    logger.debug("compared %d name pairs, %d within the allowed edits", len(seen), len(found))
    return sorted(found, key=lambda pair: (pair.left, pair.right))
