"""Scoring a manifest against synthetic ground truth: purity, catches and planted duplicate pairs."""

from __future__ import annotations

import pandas as pd

from curate.groundtruth import curation_figures


def _frame(root, rows):
    return pd.DataFrame([{"source": str(root / f), "status": s, "dup_cluster": c} for f, s, c in rows])


def test_figures_count_catches_misses_and_cross_identity_copies(tmp_path):
    truth = pd.DataFrame(
        [
            ("A/1.jpg", "A", "A", "original", None),
            ("A/2.jpg", "A", "A", "near_duplicate", "A/1.jpg"),  # caught: same cluster
            ("A/3.jpg", "A", "X", "intruder", None),  # caught by rank
            ("A/4.jpg", "A", "A", "original", None),
            ("A/5.jpg", "A", "A", "near_duplicate", "A/4.jpg"),  # missed
            ("B/1.jpg", "B", "A", "near_duplicate", "A/4.jpg"),  # filed under B: caught as a conflict
            ("B/2.jpg", "B", None, "corrupt", None),
        ],
        columns=["file", "folder_identity", "true_identity", "kind", "duplicate_of"],
    )
    collected = _frame(
        tmp_path, [(f, "ok", None) for f in truth.file[:-1]] + [("B/2.jpg", "failed_decode", None)]
    )
    final = _frame(
        tmp_path,
        [
            ("A/1.jpg", "ok", 7),
            ("A/2.jpg", "duplicate", 7),
            ("A/3.jpg", "low_score", None),
            ("A/4.jpg", "identity_conflict", None),
            ("A/5.jpg", "ok", None),
            ("B/1.jpg", "identity_conflict", None),
            ("B/2.jpg", "failed_decode", None),
        ],
    )
    figures = curation_figures(collected, final, truth, tmp_path)
    # A/5's original A/4 is flagged identity_conflict, so the pair is not left in the kept set
    assert figures["duplicate_pairs"] == {
        "planted": 3,
        "found": 2,
        "resolved_earlier": 1,
        "left": 0,
        "recall": 0.6667,
    }
    assert figures["intruders"] == {"planted": 1, "removed": 1, "share_removed": 1.0}
    assert figures["corrupt"]["removed"] == 1
    # before: 6 decodable rows, 4 show their folder's person (A/3 intruder, B/1 someone else's face)
    assert figures["purity_before"] == round(4 / 6, 4)
    assert figures["purity_after"] == 1.0  # kept: A/1 and A/5
    assert figures["true_images_kept"] == 0.5  # originals A/1 kept, A/4 flagged


def test_a_pair_whose_copy_an_earlier_stage_removed_is_resolved_not_missed(tmp_path):
    truth = pd.DataFrame(
        [
            ("A/1.jpg", "A", "A", "original", None),
            ("A/2.jpg", "A", "A", "near_duplicate", "A/1.jpg"),  # rank dropped the copy: resolved
            ("A/3.jpg", "A", "A", "original", None),
            ("A/4.jpg", "A", "A", "near_duplicate", "A/3.jpg"),  # both kept: left
        ],
        columns=["file", "folder_identity", "true_identity", "kind", "duplicate_of"],
    )
    collected = _frame(tmp_path, [(f, "ok", None) for f in truth.file])
    final = _frame(
        tmp_path,
        [
            ("A/1.jpg", "ok", None),
            ("A/2.jpg", "low_score", None),
            ("A/3.jpg", "ok", None),
            ("A/4.jpg", "ok", None),
        ],
    )
    pairs = curation_figures(collected, final, truth, tmp_path)["duplicate_pairs"]
    assert (pairs["found"], pairs["resolved_earlier"], pairs["left"]) == (0, 1, 1)
