"""All pairs within a threshold, with faiss: inner product on float vectors, Hamming on binary codes.

Two ways to get every neighbour inside the threshold, both in query batches so that memory stays close
to the size of the descriptors plus the pairs found (no N x N matrix is ever built):

* ``range``: faiss ``range_search`` (CPU indexes have it; faiss GPU indexes do not).
* ``knn``: search the k nearest; a query whose k-th neighbour is still inside the threshold may have
  more, so it is searched again with k doubled, until its last neighbour falls outside (or k covers the
  set). On a GPU, k is capped by faiss (``GPU_MAX_K``): queries that still need more go through an exact
  CPU range search. ``auto`` picks ``knn`` on a GPU and ``range`` otherwise; tests force ``knn`` on CPU.

Thresholds are inclusive: ``similarity >= min_similarity`` and ``bits <= max_bits``. Pairs come back
once each, ``i < j``, sorted; self-pairs are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from curate.hashing import codes_to_bytes

logger = logging.getLogger(__name__)

Mode = Literal["auto", "range", "knn"]
IndexKind = Literal["auto", "flat", "ivf"]
# "auto" searches an IVF index from this many rows on a CPU, flat below and on a GPU. At 50,000 and 100,000
# near-duplicate files IVF found exactly the pairs flat found (the same copies, the same 96 and 104 false
# pairs) for 19 % and 30 % less dedup CPU (bench/RESULTS.md); flat's all-pairs cost grows with N^2.
IVF_FROM = 50_000
GPU_MAX_K = 2048  # faiss GPU k-selection limit
DEFAULT_BATCH = 4096
DEFAULT_K = 32
TRAIN_POINTS_PER_LIST = 64  # IVF training sample: this many points per inverted list


class SearchIndex:
    """A faiss index over ``data`` whose queries are rows of that same data (all-pairs search).

    Keeps the CPU index (range search, and the fallback when k exceeds the GPU limit) and, when asked
    for, a GPU copy for kNN search. The GPU resources object is held here so it outlives the index.
    """

    def __init__(self, data: np.ndarray, cpu_index: faiss.Index, gpu_index: faiss.Index | None, res: object):
        self.data = data
        self.cpu = cpu_index
        self.gpu = gpu_index
        self._gpu_resources = res
        self.on_gpu = gpu_index is not None

    def range(self, start: int, stop: int, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``range_search`` of rows ``start:stop`` on the CPU index: (lims, distances, labels)."""
        return self.cpu.range_search(self.data[start:stop], radius)

    def range_cpu(self, rows: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``range_search`` of the given rows on the CPU index."""
        return self.cpu.range_search(np.ascontiguousarray(self.data[rows]), radius)

    def knn(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest neighbours of the given rows (GPU copy when there is one): (distances, labels)."""
        target = self.gpu if self.gpu is not None else self.cpu
        return target.search(np.ascontiguousarray(self.data[rows]), k)


def _want_gpu(use_gpu: bool | None) -> bool:
    if use_gpu and not gpu_available():
        raise ValueError("use_gpu=True but faiss sees no GPU (install faiss-gpu on a machine with one)")
    return gpu_available() if use_gpu is None else use_gpu


def _ivf_sizes(n: int, nlist: int | None, nprobe: int | None) -> tuple[int, int]:
    """Default IVF list count (about 4 sqrt(n), at least 39 training points per list) and probes."""
    lists = nlist or int(np.clip(4 * np.sqrt(n), 1, max(1, n // 39)))
    return lists, min(lists, nprobe or 16)


def _train_sample(data: np.ndarray, nlist: int) -> np.ndarray:
    """A seeded sample of at most ``TRAIN_POINTS_PER_LIST * nlist`` rows to train the coarse quantizer."""
    size = min(len(data), TRAIN_POINTS_PER_LIST * nlist)
    rows = np.sort(np.random.default_rng(0).choice(len(data), size=size, replace=False))
    return np.ascontiguousarray(data[rows])


def chosen_index(kind: IndexKind, n: int, use_gpu: bool | None) -> IndexKind:
    """``kind``, with ``auto`` resolved: IVF for :data:`IVF_FROM` rows or more on a CPU, else flat."""
    if kind != "auto":
        return kind
    return "ivf" if n >= IVF_FROM and not _want_gpu(use_gpu) else "flat"


def build_float_index(
    vectors: np.ndarray,
    kind: IndexKind,
    use_gpu: bool | None,
    nlist: int | None = None,
    nprobe: int | None = None,
) -> SearchIndex:
    """Inner-product index (IndexFlatIP or IndexIVFFlat) over float32 rows, on the GPU when asked."""
    dim = vectors.shape[1]
    kind = chosen_index(kind, len(vectors), use_gpu)
    if kind == "flat":
        cpu: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        lists, probes = _ivf_sizes(len(vectors), nlist, nprobe)
        cpu = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        cpu.train(_train_sample(vectors, lists))
        cpu.nprobe = probes
    else:
        raise ValueError(f"index kind {kind!r}: use 'auto', 'flat' or 'ivf'")
    cpu.add(vectors)
    if not _want_gpu(use_gpu):
        return SearchIndex(vectors, cpu, None, None)
    res = faiss.StandardGpuResources()
    return SearchIndex(vectors, cpu, faiss.index_cpu_to_gpu(res, 0, cpu), res)


def build_binary_index(
    codes: np.ndarray,
    kind: IndexKind,
    use_gpu: bool | None,
    nlist: int | None = None,
    nprobe: int | None = None,
) -> SearchIndex:
    """Hamming index (IndexBinaryFlat or IndexBinaryIVF) over uint8 code rows; GPU for flat only."""
    bits = codes.shape[1] * 8
    kind = chosen_index(kind, len(codes), use_gpu)
    if kind == "flat":
        cpu: faiss.IndexBinary = faiss.IndexBinaryFlat(bits)
    elif kind == "ivf":
        lists, probes = _ivf_sizes(len(codes), nlist, nprobe)
        cpu = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, lists)
        cpu.train(_train_sample(codes, lists))
        cpu.nprobe = probes
    else:
        raise ValueError(f"index kind {kind!r}: use 'auto', 'flat' or 'ivf'")
    cpu.add(codes)
    if kind != "flat" or not _want_gpu(use_gpu):
        return SearchIndex(codes, cpu, None, None)
    res = faiss.StandardGpuResources()
    gpu = faiss.GpuIndexBinaryFlat(res, bits)
    gpu.add(codes)
    return SearchIndex(codes, cpu, gpu, res)


@dataclass(frozen=True)
class Pairs:
    """Index pairs ``i < j`` with their score (inner product, or Hamming bits) and the search's figures."""

    i: np.ndarray  # int64
    j: np.ndarray  # int64
    score: np.ndarray  # float32
    searches: int = 0  # index searches run (more than the batch count when k had to widen)

    def __len__(self) -> int:
        return len(self.i)

    def as_set(self) -> set[tuple[int, int]]:
        """The pairs as a Python set of ``(i, j)`` tuples (for tests and small sets)."""
        return set(zip(self.i.tolist(), self.j.tolist(), strict=True))


def _canonical(i: np.ndarray, j: np.ndarray, score: np.ndarray, searches: int) -> Pairs:
    """Drop self-pairs, order each pair, keep one copy of each, sort by (i, j)."""
    keep = i != j
    i, j, score = i[keep], j[keep], score[keep]
    low, high = np.minimum(i, j), np.maximum(i, j)
    if low.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0, dtype=np.float32), searches)
    order = np.lexsort((high, low))
    low, high, score = low[order], high[order], score[order]
    first = np.ones(low.size, dtype=bool)
    first[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    return Pairs(
        low[first].astype(np.int64), high[first].astype(np.int64), score[first].astype(np.float32), searches
    )


def _range_pairs(index: SearchIndex, n: int, radius: float, batch: int) -> tuple[list, int]:
    """Range search every row against the index, in query batches."""
    found, searches = [], 0
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        lims, distances, labels = index.range(start, stop, radius)
        searches += 1
        queries = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(lims).astype(np.int64))
        found.append((queries, labels.astype(np.int64), distances.astype(np.float32)))
    return found, searches


def _knn_pairs(
    index: SearchIndex, n: int, inside: Callable[[np.ndarray], np.ndarray], radius: float, batch: int, k: int
) -> tuple[list, int]:
    """kNN search with k doubled per query until no neighbour inside the threshold can be cut off."""
    found, searches = [], 0
    k_cap = min(n, GPU_MAX_K) if index.on_gpu else n
    for start in range(0, n, batch):
        pending = np.arange(start, min(n, start + batch), dtype=np.int64)
        k_now = min(max(k, 2), k_cap)
        while pending.size:
            distances, labels = index.knn(pending, k_now)
            searches += 1
            # the last column inside the threshold means more neighbours may lie beyond the k found
            cut_off = (
                inside(distances[:, -1]) & (labels[:, -1] >= 0) if k_now < n else np.zeros(len(pending), bool)
            )
            done = ~cut_off
            hits = inside(distances[done]) & (labels[done] >= 0)
            rows = np.nonzero(hits)
            found.append((pending[done][rows[0]], labels[done][hits].astype(np.int64), distances[done][hits]))
            pending = pending[cut_off]
            if pending.size and k_now >= k_cap:  # a GPU cannot go further: finish these on the CPU
                logger.info(
                    "%d queries need more than k=%d neighbours: exact CPU range search", pending.size, k_now
                )
                lims, dist, labels_cpu = index.range_cpu(pending, radius)
                searches += 1
                found.append(
                    (np.repeat(pending, np.diff(lims).astype(np.int64)), labels_cpu.astype(np.int64), dist)
                )
                pending = pending[:0]
            k_now = min(k_now * 2, k_cap)
    return found, searches


def _run(
    index: SearchIndex, n: int, inside: Callable, radius: float, mode: Mode, batch: int, k: int
) -> Pairs:
    """Search every row in the chosen mode, then keep the pairs inside the exact threshold."""
    chosen = ("knn" if index.on_gpu else "range") if mode == "auto" else mode
    if chosen == "range" and index.on_gpu:
        raise ValueError("faiss GPU indexes have no range search: use mode 'knn' or 'auto'")
    if chosen == "range":
        found, searches = _range_pairs(index, n, radius, batch)
    else:
        found, searches = _knn_pairs(index, n, inside, radius, batch, k)
    if not found:
        return _canonical(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), searches)
    i, j, score = (np.concatenate(parts) for parts in zip(*found, strict=True))
    keep = inside(score)  # range search radii are strict and padded; apply the exact threshold here
    return _canonical(i[keep], j[keep], score[keep].astype(np.float32), searches)


def similar_pairs(
    vectors: np.ndarray,
    min_similarity: float,
    *,
    index: IndexKind = "flat",
    mode: Mode = "auto",
    use_gpu: bool | None = None,
    batch_size: int = DEFAULT_BATCH,
    k: int = DEFAULT_K,
    nlist: int | None = None,
    nprobe: int | None = None,
) -> Pairs:
    """All pairs of rows with inner product ``>= min_similarity`` (cosine, for L2-normalised rows)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    built = build_float_index(vectors, index, use_gpu, nlist=nlist, nprobe=nprobe)
    # faiss keeps inner products strictly above the radius: step just below the threshold
    radius = float(np.nextafter(np.float32(min_similarity), np.float32(-np.inf)))
    return _run(built, n, lambda s: s >= np.float32(min_similarity), radius, mode, batch_size, k)


def hamming_pairs(
    codes: np.ndarray,
    max_bits: int,
    *,
    index: IndexKind = "flat",
    mode: Mode = "auto",
    use_gpu: bool | None = None,
    batch_size: int = DEFAULT_BATCH,
    k: int = DEFAULT_K,
    nlist: int | None = None,
    nprobe: int | None = None,
) -> Pairs:
    """All pairs of binary codes (uint8 rows, or int64 packed 64-bit codes) within ``max_bits``."""
    if codes.dtype == np.int64 and codes.ndim == 1:
        codes = codes_to_bytes(codes)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = len(codes)
    built = build_binary_index(codes, index, use_gpu, nlist=nlist, nprobe=nprobe)
    # faiss binary range search keeps distances strictly below the radius
    return _run(built, n, lambda d: d <= max_bits, max_bits + 1, mode, batch_size, k)


def gpu_available() -> bool:
    """Whether this faiss build sees a GPU (faiss-gpu installed and a device present)."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
