"""All-pairs threshold search (faiss) against brute-force numpy references, and union-find clusters."""

from __future__ import annotations

import numpy as np
import pytest

from curate.search import choose_keepers, cluster_labels, gpu_available, hamming_pairs, similar_pairs


def clustered_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors in small tight groups (so there are many pairs above a high cosine) plus loners."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 4, dim))
    members = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.35, (n, dim))
    members[: n // 5] = rng.standard_normal((n // 5, dim))  # some without any near neighbour
    return (members / np.linalg.norm(members, axis=1, keepdims=True)).astype(np.float32)


def reference_cosine_pairs(x: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Every pair i < j with x_i . x_j >= threshold, by a full numpy product (fine for small n)."""
    sims = x @ x.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def random_codes(n: int, seed: int) -> np.ndarray:
    """Random 64-bit codes, a third of them copies of others with 0-12 bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)
    for k in range(0, n, 3):
        flips = rng.choice(64, size=rng.integers(0, 13), replace=False)
        mask = int(sum(1 << int(b) for b in flips))
        mask = mask - (1 << 64) if mask >= 1 << 63 else mask
        codes[k] = codes[rng.integers(0, n)] ^ np.int64(mask)
    return codes


def reference_hamming_pairs(codes: np.ndarray, max_bits: int) -> set[tuple[int, int]]:
    """Every pair i < j within ``max_bits``, by popcount of all XORs."""
    bits = np.bitwise_count((codes[:, None] ^ codes[None, :]).view(np.uint64))
    i, j = np.nonzero(np.triu(bits <= max_bits, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_range_search_equals_brute_force(threshold: float) -> None:
    x = clustered_unit_vectors(400, 16, seed=1)
    expected = reference_cosine_pairs(x, threshold)
    # no pair sits so close to the threshold that float rounding could decide it
    sims = (x @ x.T)[np.triu_indices(len(x), 1)]
    assert np.abs(sims - threshold).min() > 1e-5
    found = similar_pairs(x, threshold, mode="range", batch_size=64)
    assert len(expected) > 100
    assert found.as_set() == expected
    assert np.all(found.i < found.j)
    assert np.all(found.score >= threshold)


def test_widen_k_equals_range_search() -> None:
    x = clustered_unit_vectors(400, 16, seed=2)
    by_range = similar_pairs(x, 0.5, mode="range")
    by_knn = similar_pairs(x, 0.5, mode="knn", k=2, batch_size=50)
    assert by_knn.as_set() == by_range.as_set()
    assert by_knn.searches > 8  # 8 query batches; more searches means k had to widen
    np.testing.assert_allclose(by_knn.score, by_range.score, rtol=0, atol=1e-5)


def test_widen_k_on_a_neighbourhood_larger_than_the_set_start() -> None:
    x = np.tile(np.eye(8, dtype=np.float32)[:1], (40, 1))  # 40 identical rows: 780 pairs at cosine 1
    found = similar_pairs(x, 0.99, mode="knn", k=2)
    assert len(found) == 40 * 39 // 2


def test_ivf_recall_against_flat() -> None:
    x = clustered_unit_vectors(3000, 32, seed=3)
    exact = similar_pairs(x, 0.7, index="flat").as_set()
    approx = similar_pairs(x, 0.7, index="ivf", nlist=32, nprobe=8).as_set()
    recall = len(exact & approx) / len(exact)
    assert approx <= exact  # IVF computes exact scores for what it finds: it can miss, never invent
    assert recall >= 0.97, f"IVF recall {recall:.3f}"


def test_auto_index_is_ivf_from_the_threshold_on_a_cpu_and_flat_below(monkeypatch) -> None:
    import faiss

    from curate.search import range_search

    monkeypatch.setattr(range_search, "IVF_FROM", 2000)
    x = clustered_unit_vectors(3000, 32, seed=3)
    assert isinstance(range_search.build_float_index(x, "auto", False).cpu, faiss.IndexIVFFlat)
    assert isinstance(range_search.build_float_index(x[:1999], "auto", False).cpu, faiss.IndexFlatIP)
    codes = range_search.codes_to_bytes(random_codes(2000, seed=5))
    assert isinstance(range_search.build_binary_index(codes, "auto", False).cpu, faiss.IndexBinaryIVF)
    assert range_search.chosen_index("flat", 10**9, False) == "flat"
    exact = similar_pairs(x, 0.7, index="flat").as_set()
    assert similar_pairs(x, 0.7, index="auto").as_set() <= exact


@pytest.mark.parametrize("mode", ["range", "knn"])
def test_hamming_search_equals_brute_force(mode: str) -> None:
    codes = random_codes(500, seed=4)
    expected = reference_hamming_pairs(codes, 8)
    found = hamming_pairs(codes, 8, mode=mode, k=2, batch_size=100)
    assert len(expected) > 50
    assert found.as_set() == expected
    bits = np.bitwise_count((codes[found.i] ^ codes[found.j]).view(np.uint64))
    np.testing.assert_array_equal(found.score, bits)


def test_hamming_threshold_is_inclusive() -> None:
    codes = np.array([0, 0b111, 0b1111], dtype=np.int64)
    assert hamming_pairs(codes, 3).as_set() == {(0, 1), (1, 2)}
    assert hamming_pairs(codes, 4).as_set() == {(0, 1), (0, 2), (1, 2)}


def test_binary_ivf_finds_only_true_pairs() -> None:
    codes = random_codes(2000, seed=5)
    exact = hamming_pairs(codes, 6).as_set()
    approx = hamming_pairs(codes, 6, index="ivf", nlist=16, nprobe=16).as_set()
    assert approx == exact  # probing every list is exhaustive


def test_asking_for_a_gpu_without_one_fails_loudly() -> None:
    if gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no GPU"):
        similar_pairs(np.eye(4, dtype=np.float32), 0.9, use_gpu=True)


def test_union_find_matches_connected_components() -> None:
    rng = np.random.default_rng(6)
    n = 200
    i, j = rng.integers(0, n, 150), rng.integers(0, n, 150)
    labels = cluster_labels(n, i, j)
    # reference: grow components by repeated relaxation
    ref = np.arange(n)
    changed = True
    while changed:
        low = np.minimum(ref[i], ref[j])
        before = ref.copy()
        np.minimum.at(ref, i, low)
        np.minimum.at(ref, j, low)
        ref = ref[ref]
        changed = not np.array_equal(before, ref)
    same_ours = labels[:, None] == labels[None, :]
    same_ref = ref[:, None] == ref[None, :]
    assert np.array_equal(same_ours, same_ref)


def test_components_with_repeated_pairs_self_loops_and_no_pairs() -> None:
    none = np.zeros(0, dtype=np.int64)
    assert cluster_labels(0, none, none).shape == (0,)
    assert len(set(cluster_labels(3, none, none).tolist())) == 3
    i = np.array([0, 2] * 300 + [4], dtype=np.int64)  # one pair 600 times (both directions), a self-loop
    j = np.array([2, 0] * 300 + [4], dtype=np.int64)
    labels = cluster_labels(5, i, j)
    assert labels[0] == labels[2] and len({labels[0], labels[1], labels[3], labels[4]}) == 4


def test_keeper_choice_does_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(7)
    n = 300
    i, j = rng.integers(0, n, 250), rng.integers(0, n, 250)
    score = np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 4, n).astype(float))  # ties and nulls
    resolution = rng.integers(0, 3, n).astype(float) * 1000
    ids = [f"{k:04x}" for k in rng.permutation(n)]

    def kept_ids(order: np.ndarray) -> set[str]:
        position = np.argsort(order)  # new position of each original row
        labels = cluster_labels(n, position[i], position[j])
        keepers = choose_keepers(labels, score[order], resolution[order], [ids[k] for k in order])
        return {ids[order[k]] for k in set(keepers.tolist())}

    first = kept_ids(np.arange(n))
    for seed in range(3):
        assert kept_ids(np.random.default_rng(seed).permutation(n)) == first


def test_keeper_prefers_score_then_resolution_then_image_id() -> None:
    labels = np.zeros(4, dtype=np.int64)
    assert (
        choose_keepers(labels, np.array([0.2, 0.9, 0.9, np.nan]), np.array([9, 1, 5, 99.0]), list("dcba"))[0]
        == 2
    )
    assert choose_keepers(labels, np.full(4, np.nan), np.array([5, 5, 1, 5.0]), list("dcba"))[0] == 3


def test_keeper_takes_the_larger_copy_when_rank_scores_all_but_tie() -> None:
    """Copies of one photo score alike: within SCORE_TIE the larger is kept, beyond it the score wins."""
    pair = np.zeros(2, dtype=np.int64)
    half_size, original = 90 * 82, 180 * 165
    near = choose_keepers(pair, np.array([0.999815, 0.999667]), np.array([half_size, original]), ["a", "b"])
    assert near.tolist() == [1, 1]  # the original, though its score is 0.00015 lower
    far = choose_keepers(pair, np.array([0.95, 0.90]), np.array([half_size, original]), ["a", "b"])
    assert far.tolist() == [0, 0]
    two = np.array([0, 0, 1, 1])  # each cluster decides on its own best score
    mixed = choose_keepers(two, np.array([0.5, 0.995, 0.999, 0.2]), np.array([9.0, 1, 1, 9]), list("abcd"))
    assert mixed.tolist() == [1, 1, 2, 2]


def test_keeper_is_a_preferred_member_whenever_the_cluster_has_one() -> None:
    """dedup prefers ok rows to low_score ones: a set-aside copy is never kept over a kept one, whatever its
    score or size; the order among preferred members is the usual one; a cluster of others chooses as ever."""
    labels = np.array([0, 0, 0, 1, 1])
    score = np.array([0.50, 0.499, 0.95, 0.30, 0.45])
    resolution = np.array([100, 900, 900, 1, 1.0])
    preferred = np.array([True, True, False, False, False])
    keepers = choose_keepers(labels, score, resolution, list("abcde"), preferred=preferred)
    assert keepers.tolist() == [
        1,
        1,
        1,
        4,
        4,
    ]  # b: within SCORE_TIE of a and larger; never c; e: best of d, e
    assert choose_keepers(labels, score, resolution, list("abcde")).tolist() == [2, 2, 2, 4, 4]


def blob_image(seed: int, size: int = 96) -> np.ndarray:
    """A smooth random grey picture (different seeds: unrelated pictures)."""
    from PIL import Image

    coarse = (np.random.default_rng(seed).random((8, 8)) * 255).astype(np.uint8)
    return np.asarray(
        Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32
    )


def thumbnail(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop ``box`` of ``image`` resized to 32x32."""
    from PIL import Image

    crop = Image.fromarray(image.astype(np.uint8)).crop(box).resize((32, 32), Image.Resampling.LANCZOS)
    return np.asarray(crop, dtype=np.float32)


def brute_force_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Best NCC over every pair of x and y warps, both directions (the search coordinate ascent shortcuts)."""
    from curate.search import verify

    warps = verify.warps(32)
    dense = np.zeros((len(warps.left), 32, 32), np.float32)
    for k in range(len(warps.left)):
        np.add.at(dense[k], (np.arange(32), warps.left[k]), 1 - warps.weight[k])
        np.add.at(dense[k], (np.arange(32), warps.right[k]), warps.weight[k])
    best = -1.0
    for x, y in ((a, b), (b, a)):
        warped = np.einsum("kyv,vw,lzw->klyz", dense, x, dense).reshape(-1, 1024)
        warped = warped - warped.mean(axis=1, keepdims=True)
        target = y.reshape(-1) - y.mean()
        scores = warped @ target / np.sqrt((warped * warped).sum(axis=1) * (target @ target))
        best = max(best, float(scores.max()))
    return best


def test_aligned_ncc_matches_a_crop_and_not_another_picture() -> None:
    from curate.search.verify import aligned_ncc

    picture = blob_image(1)
    whole = thumbnail(picture, (0, 0, 96, 96))
    crops = [thumbnail(picture, box) for box in ((3, 0, 96, 94), (0, 4, 92, 96), (2, 2, 94, 93))]
    others = [thumbnail(blob_image(seed), (0, 0, 96, 96)) for seed in (2, 3, 4)]
    copies = aligned_ncc(np.stack([whole] * 3), np.stack(crops))
    strangers = aligned_ncc(np.stack([whole] * 3), np.stack(others))
    plain = [np.corrcoef(whole.ravel(), crop.ravel())[0, 1] for crop in crops]
    assert copies.min() > 0.97 and copies.min() > max(plain)  # alignment recovers what the crop moved
    assert strangers.max() < copies.min() - 0.1
    np.testing.assert_allclose(aligned_ncc(np.stack(crops), np.stack([whole] * 3)), copies, atol=1e-6)
    assert copies[0] >= brute_force_ncc(whole, crops[0]) - 0.01
