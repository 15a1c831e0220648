"""Evaluation protocol: pair-list readers, k-fold accuracy, ROC/TAR figures, faiss identification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curate.errors import CurateError
from curate.evaluate.identification import gallery_probe_split, identify
from curate.evaluate.pairs import read_cfp_split, read_lfw_pairs
from curate.evaluate.verification import best_threshold, by_group, plot_roc, tar_at_far, verify


def _clean_fold(rng: np.random.Generator) -> tuple[list[float], list[bool]]:
    genuine = [0.6, 0.7, *rng.choice([0.6, 0.7], 8).tolist()]
    impostor = [0.3, 0.4, *rng.choice([0.3, 0.4], 8).tolist()]
    return genuine + impostor, [True] * 10 + [False] * 10


def test_ten_fold_accuracy_uses_thresholds_from_the_other_nine_folds() -> None:
    rng = np.random.default_rng(0)
    scores, same, folds = [], [], []
    for fold in range(1, 10):
        s, y = _clean_fold(rng)
        scores += s
        same += y
        folds += [fold] * 20
    # Fold 10: two genuine pairs at 0.45 and three impostors at 0.55.
    scores += [0.45] * 2 + [0.7] * 8 + [0.55] * 3 + [0.3] * 7
    same += [True] * 10 + [False] * 10
    folds += [10] * 20
    result = verify(np.array(scores), np.array(same), np.array(folds))
    # Folds 1-9 train on 8 clean folds + fold 10: the best cut is between 0.55 and 0.6 (2 errors), so 0.575,
    # which is perfect on a clean fold. Fold 10 trains on clean folds only: cut 0.5 -> 5 errors of 20.
    assert result.fold_threshold[:9] == pytest.approx([0.575] * 9)
    assert result.fold_threshold[9] == pytest.approx(0.5)
    assert result.fold_accuracy == pytest.approx([1.0] * 9 + [0.75])
    assert result.accuracy_mean == pytest.approx(0.975)
    assert result.accuracy_std == pytest.approx(0.075)
    assert result.cross_validated
    assert result.correct.sum() == len(scores) - 5


def test_single_fold_is_scored_at_its_own_best_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.85, 0.1, 0.3])
    same = np.array([True, True, True, False, False, False])
    result = verify(scores, same, np.ones(6, dtype=int))
    assert not result.cross_validated
    assert result.accuracy_mean == pytest.approx(4 / 6)
    # Cuts at 0.15 and 0.55 both leave 2 errors; the lower one wins.
    assert best_threshold(scores, same) == (pytest.approx(0.15), pytest.approx(4 / 6))


def test_roc_auc_nan_scores_and_groups() -> None:
    scores = np.array([0.9, 0.4, 0.5, 0.1])
    same = np.array([True, True, False, False])
    result = verify(scores, same, np.array([1, 1, 2, 2]))
    assert result.roc_auc == pytest.approx(0.75)  # 3 of the 4 genuine/impostor orderings are right
    with_nan = verify(np.array([0.9, np.nan, 0.5, 0.1]), same, np.array([1, 1, 2, 2]))
    assert with_nan.roc_auc == pytest.approx(0.5)  # the unreadable genuine pair ranks below everything
    groups = by_group(result, same, scores, ["a", "b", "a", "b"])
    assert groups["a"]["pairs"] == 2 and groups["a"]["roc_auc"] == pytest.approx(1.0)
    assert groups["b"]["roc_auc"] == pytest.approx(1.0)


def test_tar_at_far_on_known_scores(tmp_path: Path) -> None:
    impostor = np.arange(1000) / 1000.0  # highest impostor 0.999, next 0.998
    genuine = np.array([1.5] * 30 + [0.9985] * 20 + [0.2] * 50)
    scores = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(100, bool), np.zeros(1000, bool)])
    tar = tar_at_far(same, scores)
    assert tar["1e-3"] == pytest.approx(0.5)  # one impostor accepted lets the 0.9985 pairs in
    assert "1e-4" not in tar  # 1000 impostors cannot resolve a FAR of 1e-4
    assert tar["1e-1"] >= tar["1e-2"] >= tar["1e-3"]
    result = verify(scores, same, np.arange(len(scores)) % 10)
    png = plot_roc({"known": (result.fpr, result.tpr)}, tmp_path / "roc.png", "known")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lfw_pairs_file_with_folds_and_view_one(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t1\nAnn_Lee\t1\t2\nBob_Ray\t3\tCid_Day\t1\nCid_Day\t1\t4\nAnn_Lee\t2\tBob_Ray\t3\n")
    result = read_lfw_pairs(pairs, tmp_path / "lfw")
    assert result.same.tolist() == [True, False, True, False]
    assert result.fold.tolist() == [1, 1, 2, 2]
    assert result.images[result.left[0]] == tmp_path / "lfw" / "Ann_Lee" / "Ann_Lee_0001.jpg"
    assert result.images[result.right[1]] == tmp_path / "lfw" / "Cid_Day" / "Cid_Day_0001.jpg"
    assert result.left[3] == result.right[0]  # Ann_Lee 2 is one image, indexed once
    assert result.identities[result.left[1]] == "Bob_Ray" and len(result.images) == 5
    view_one = tmp_path / "pairsDevTest.txt"
    view_one.write_text("1\nAnn_Lee 1 2\nAnn_Lee 1 Bob_Ray 3\n")
    assert read_lfw_pairs(view_one, tmp_path).fold.tolist() == [1, 1]
    broken = tmp_path / "broken.txt"
    broken.write_text("1\t1\nAnn_Lee\t1\tBob_Ray\t2\nAnn_Lee\t1\t2\n")
    with pytest.raises(CurateError, match="line 2 should be a genuine"):
        read_lfw_pairs(broken, tmp_path)


def test_cfp_split_on_the_real_protocol_folder(data_dir: Path) -> None:
    protocol = data_dir / "cfp" / "Protocol"
    ff = read_cfp_split(protocol, "cfp-ff", data_dir / "cfp")
    assert len(ff.same) == 7000 and ff.same.sum() == 3500 and ff.n_folds == 10
    identity = np.array([int(i) for i in ff.identities])
    assert np.array_equal(identity[ff.left] == identity[ff.right], ff.same)
    for fold in range(1, 11):  # identity-disjoint folds of 50 identities each, in id order
        members = set(identity[ff.left[ff.fold == fold]]) | set(identity[ff.right[ff.fold == fold]])
        assert min(members) == 50 * (fold - 1) + 1 and max(members) == 50 * fold
    assert all(p.is_file() for p in ff.images[:20])
    fp = read_cfp_split(protocol, "cfp-fp")
    assert len(fp.same) == 7000
    assert all(fp.images[i].parts[-2] == "frontal" for i in fp.left[:50])
    assert all(fp.images[i].parts[-2] == "profile" for i in fp.right[:50])
    assert fp.images[fp.right[0]].resolve().is_file()  # default: paths relative to the Protocol folder
    assert len(ff.subset([6, 7]).same) == 1400
    with pytest.raises(CurateError):
        read_cfp_split(protocol, "cfp-pp")


def test_identification_rank_one_and_five_with_faiss() -> None:
    eye = np.eye(8, dtype=np.float32)
    gallery_vectors = [eye[i] for i in range(7)]
    probes = [
        eye[0] + 0.1 * eye[1],  # identity 0: nearest is its own gallery image -> rank-1 hit
        0.5 * eye[1] + 0.8 * eye[2],  # identity 1: identity 2 first, itself second -> rank-5 hit only
        eye[[0, 1, 3, 4, 5, 6]].sum(0) + 0.1 * eye[2],  # identity 2: six others first -> misses both
        np.full(8, np.nan, dtype=np.float32),  # identity 3: unreadable image -> a miss
    ]
    vectors = np.stack([*gallery_vectors, *probes])
    vectors[:-1] /= np.linalg.norm(vectors[:-1], axis=1, keepdims=True)
    identities = [str(i) for i in range(7)] + ["0", "1", "2", "3"]
    gallery, probe_rows = gallery_probe_split(identities)
    assert gallery.tolist() == list(range(7)) and probe_rows.tolist() == [7, 8, 9, 10]
    result = identify(vectors, identities, gallery, probe_rows)
    assert result.rank == {"rank1": pytest.approx(0.25), "rank5": pytest.approx(0.5)}
    assert (result.n_gallery, result.n_probes, result.n_identities) == (7, 4, 7)


def test_identification_counts_identities_not_images() -> None:
    # Identity "a" has three gallery images that crowd the top of the list; "b" must still be rank 2.
    vectors = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0.6, 0.8], [0.95, 0.31]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    identities = ["a", "a", "a", "b", "b"]
    result = identify(vectors, identities, np.array([0, 1, 2, 3]), np.array([4]), ks=(1, 2))
    assert result.rank == {"rank1": 0.0, "rank2": 1.0}
    assert gallery_probe_split(identities, per_identity=2)[1].tolist() == [2]


def _sealed(workdir: Path, stage: str, rows: list[dict]) -> Path:
    """A finished one-shard manifest of ``rows``."""
    import pyarrow as pa
    from stage_helpers import seal_stage

    from curate import manifest

    manifest.write_shard(pa.Table.from_pylist(rows), manifest.shard_path(workdir, stage, 0))
    seal_stage(workdir, stage, 1)
    return workdir


def test_workdir_pairs_are_balanced_in_identity_disjoint_folds(tmp_path: Path) -> None:
    """``evaluate`` with no pair list: pairs of the manifest's own ok rows, their crops as training read."""
    from curate.evaluate.workdir import manifest_pairs

    people = {f"id{k}": 2 + k % 4 for k in range(12)}  # 2 to 5 ok photos each
    rows = [
        {"identity_id": who, "path": f"/p/{who}{i}", "crop_path": f"/crops/{who}{i}.png", "status": "ok"}
        for who, count in people.items()
        for i in range(count)
    ]
    rows.append({"identity_id": "id0", "path": "/photos/id0/x.jpg", "crop_path": None, "status": "duplicate"})
    pairs = manifest_pairs(_sealed(tmp_path / "w", "dedup", rows), "dedup", max_pairs=120)
    assert all(str(p).startswith("/crops/") for p in pairs.images)  # what training read
    assert len(pairs.images) == sum(people.values())  # every ok crop is used; the duplicate is not
    who = np.array(pairs.identities)
    assert np.array_equal(who[pairs.left] == who[pairs.right], pairs.same)
    assert sorted(set(pairs.fold.tolist())) == [1, 2, 3, 4, 5, 6]  # 12 people: two per fold
    for fold in set(pairs.fold.tolist()):
        here = pairs.fold == fold
        assert pairs.same[here].sum() == (~pairs.same[here]).sum() > 0
        members = set(who[pairs.left[here]]) | set(who[pairs.right[here]])
        elsewhere = set(who[pairs.left[~here]]) | set(who[pairs.right[~here]])
        assert len(members) == 2 and not members & elsewhere
    assert pairs.same.sum() == sum(min(5, n * (n - 1) // 2) for n in people.values())  # 120 // 2 // 12 each
    solo = [{"identity_id": "solo", "path": f"/p/{i}.jpg", "status": "ok"} for i in range(4)]
    with pytest.raises(CurateError, match="give --pairs and --images of a benchmark"):
        manifest_pairs(_sealed(tmp_path / "solo", "rank", solo), "rank")
