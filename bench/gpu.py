"""GPU paths, measured: faiss all-pairs search, the face detector and embedder in batches, training steps.

Every part also runs on a CPU (small sizes, ``--tiny``), so the script is tested where there is no GPU;
on a GPU machine ``bench/gpu.sh`` runs it at full size. Parts (each prints one markdown table row):

* ``search``: curate's all-pairs threshold search (:func:`curate.search.range_search.similar_pairs`, kNN mode
  on a GPU) over N descriptors (d = 128, random unit vectors, 1 % planted near copies), flat and IVF;
  recall against exact: a CPU flat range search of a random sample of queries against all N.
* ``embed``: curate's exported-model embedder (torch.export, CUDA when present) on 112x112 face crops in
  batches (faces/s, host-side resize and normalise included), beside the bare network on device tensors;
  and the ``dlib`` embedder (dlib's network run by torch, fp32) on 150x150 chips.
* ``detect``: dlib's MMOD CNN face detector on batches of CFP photos (on the GPU only when dlib was built
  with CUDA; the row says which).
* ``train``: training throughput of ResNet-50 (curate's IR-ResNet) at 112x112: forward + backward + SGD
  with an ArcFace head, fp32 beside bf16 autocast with channels_last (images/s).

    python bench/gpu.py all               # full size (a GPU machine)
    python bench/gpu.py all --tiny        # every part at a small size, on whatever device there is
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.search.range_search import gpu_available, similar_pairs

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _rate(value: float) -> str:
    """A rate with the digits that matter: 12,345 or 3.21 or 0.0213."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def planted_vectors(n: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    """``n`` random unit vectors; 1 % of them replaced by slightly moved copies of others."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim)).astype(np.float32)
    copies = rng.choice(n, n // 100, replace=False)
    data[copies] = data[rng.integers(0, n, len(copies))] + 0.15 * rng.standard_normal((len(copies), dim))
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def exact_sample(data: np.ndarray, min_cosine: float, queries: np.ndarray) -> set[tuple[int, int]]:
    """Exact pairs (i < j) of the sampled queries with every row, by a CPU flat range search."""
    import faiss

    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    radius = float(np.nextafter(np.float32(min_cosine), np.float32(-np.inf)))
    lims, scores, labels = index.range_search(data[queries], radius)
    pairs = set()
    for k, query in enumerate(queries):
        for other, score in zip(labels[lims[k] : lims[k + 1]], scores[lims[k] : lims[k + 1]], strict=True):
            if other != query and score >= min_cosine:
                pairs.add((min(query, other), max(query, other)))
    return pairs


def bench_search(n: int, sample: int, min_cosine: float = 0.9) -> list[str]:
    """All-pairs search at ``n``: one row per index kind (time, pairs, recall on the sample)."""
    data = planted_vectors(n)
    queries = np.random.default_rng(1).choice(n, min(sample, n), replace=False)
    truth = exact_sample(data, min_cosine, queries)
    chosen = set(queries.tolist())
    rows = []
    for kind in ("flat", "ivf"):
        start = time.perf_counter()
        found = similar_pairs(data, min_cosine, index=kind)  # on the GPU when faiss sees one
        seconds = time.perf_counter() - start
        pairs = {
            p
            for p in zip(found.i.tolist(), found.j.tolist(), strict=True)
            if p[0] in chosen or p[1] in chosen
        }
        recall = len(truth & pairs) / max(len(truth), 1)
        where = "GPU" if gpu_available() else "CPU"
        rows.append(
            f"| search {kind} ({where}) | N = {n:,}, d = 128, cosine >= {min_cosine} | {seconds:.1f} s | "
            f"{len(found):,} pairs; recall vs exact on {len(queries):,} queries: {recall:.4f} |"
        )
    return rows


def bench_embed(n: int, batch: int) -> list[str]:
    """faces/s of curate's exported-model embedder and of the bare network on device tensors."""
    from curate.embedders.exported import ExportedEmbedder
    from curate.train.backbones import build_net
    from curate.train.export import export_embedder

    net = build_net("resnet50", 128, 112)
    crops = [np.random.default_rng(k).integers(0, 255, (112, 112, 3), dtype=np.uint8) for k in range(batch)]
    with tempfile.TemporaryDirectory() as tmp:
        embedder = ExportedEmbedder(export_embedder(net, Path(tmp) / "model", 112))
        embedder.embed(crops)  # warm-up (kernels, cudnn autotune)
        start = time.perf_counter()
        for _ in range(max(1, n // batch)):
            embedder.embed(crops)
        curate_rate = max(1, n // batch) * batch / (time.perf_counter() - start)
    model = net.to(DEVICE).eval().to(memory_format=torch.channels_last)
    images = torch.randn(batch, 3, 112, 112, device=DEVICE).to(memory_format=torch.channels_last)
    rates = {}
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), torch.autocast(DEVICE.type, torch.bfloat16, enabled=precision == "bf16"):
            model(images)
            _sync()
            start = time.perf_counter()
            for _ in range(max(1, n // batch)):
                model(images)
            _sync()
        rates[precision] = max(1, n // batch) * batch / (time.perf_counter() - start)
    return [
        f"| embed ({DEVICE.type}) | ResNet-50 128-d, 112x112, batch {batch} | curate embedder "
        f"{_rate(curate_rate)} faces/s | bare network fp32 {_rate(rates['fp32'])}, "
        f"bf16 {_rate(rates['bf16'])} faces/s |",
        bench_dlib_embed(n, batch),
    ]


def bench_dlib_embed(n: int, batch: int) -> str:
    """faces/s of the ``dlib`` embedder (dlib's ResNet in torch, fp32) on 150x150 chips."""
    from curate.embedders import get_embedder

    embedder = get_embedder("dlib")
    chips = [np.random.default_rng(k).integers(0, 255, (150, 150, 3), dtype=np.uint8) for k in range(batch)]
    embedder.embed(chips)  # warm-up
    start = time.perf_counter()
    for _ in range(max(1, n // batch)):
        embedder.embed(chips)
    rate = max(1, n // batch) * batch / (time.perf_counter() - start)
    return (
        f"| embed ({DEVICE.type}) | dlib's ResNet 128-d, 150x150, batch {batch} | `dlib` embedder "
        f"{_rate(rate)} faces/s | |"
    )


def face_photos(data: Path, n: int) -> tuple[list[np.ndarray], str]:
    """``n`` 250x250 photos: CFP frontal photos when the data folder is there, else synthetic faces."""
    import io

    from PIL import Image

    paths = sorted((data / "cfp" / "Data" / "Images").glob("*/frontal/*.jpg"))[:n]
    if len(paths) == n:
        return [np.asarray(Image.open(p).convert("RGB").resize((250, 250))) for p in paths], "CFP photos"
    from curate.synth import photo_jpeg, sample_identity

    rng = np.random.default_rng(0)
    jpegs = [photo_jpeg(sample_identity(rng), 0.5, 250, rng) for _ in range(n)]
    return [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs], "synthetic faces"


def bench_detect(data: Path, n: int, batch: int) -> list[str]:
    """faces/s of dlib's CNN detector on batches of same-size CFP photos."""
    import dlib
    import face_recognition_models

    detector = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    images, what = face_photos(data, n)
    detector(images[:batch], 0, batch_size=batch)  # warm-up
    start = time.perf_counter()
    found = 0
    for k in range(0, len(images), batch):
        found += sum(len(faces) > 0 for faces in detector(images[k : k + batch], 0, batch_size=batch))
    rate = len(images) / (time.perf_counter() - start)
    where = "GPU" if dlib.DLIB_USE_CUDA else "CPU: this dlib has no CUDA"
    return [
        f"| detect ({where}) | dlib MMOD CNN, 250x250 {what}, batch {batch} | {_rate(rate)} faces/s | "
        f"face found in {found}/{len(images)} |"
    ]


def train_rate(precision: str, steps: int, batch: int) -> float:
    """images/s of ResNet-50 (512-d, ArcFace-style cosine head, 1,000 classes) SGD steps at 112x112."""
    from curate.train.backbones import build_net

    torch.manual_seed(0)
    bf16 = precision == "bf16"
    layout = torch.channels_last if bf16 else torch.contiguous_format
    net = build_net("resnet50", 512, 112).to(DEVICE).to(memory_format=layout)
    head = torch.nn.Linear(512, 1000, bias=False).to(DEVICE)
    optimiser = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    images = torch.randn(batch, 3, 112, 112, device=DEVICE).to(memory_format=layout)
    labels = torch.randint(0, 1000, (batch,), device=DEVICE)
    start = 0.0
    for k in range(steps + 2):  # two warm-up steps
        if k == 2:
            _sync()
            start = time.perf_counter()
        with torch.autocast(DEVICE.type, torch.bfloat16, enabled=bf16):
            cosines = net(images).float() @ torch.nn.functional.normalize(head.weight, dim=1).T
            loss = torch.nn.functional.cross_entropy(32 * cosines, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    _sync()
    return steps * batch / (time.perf_counter() - start)


def bench_train(steps: int, batch: int) -> list[str]:
    """images/s of ResNet-50 training steps at 112x112, fp32 beside bf16 + channels_last."""
    fp32, bf16 = train_rate("fp32", steps, batch), train_rate("bf16", steps, batch)
    return [
        f"| train ({DEVICE.type}) | ResNet-50, 112x112, batch {batch}, SGD | fp32 {_rate(fp32)} images/s | "
        f"bf16 + channels_last {_rate(bf16)} images/s ({bf16 / fp32:.2f}x) |"
    ]


def main() -> None:
    """Run the chosen parts and print their rows as one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["search", "embed", "detect", "train", "all"])
    parser.add_argument("--tiny", action="store_true", help="small sizes (CPU check of the script)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    sizes = (
        {"search": (20_000, 500), "embed": (64, 16), "detect": (4, 2), "train": (1, 4)}
        if args.tiny
        else {"search": (1_000_000, 10_000), "embed": (20_000, 512), "detect": (512, 32), "train": (30, 256)}
    )
    name = torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else "no GPU (CPU)"
    print(f"device: {name}; faiss GPU: {gpu_available()}; torch {torch.__version__}")
    rows = ["| part | workload | speed | detail |", "|---|---|---|---|"]
    parts = ["search", "embed", "detect", "train"] if args.part == "all" else [args.part]
    for part in parts:
        start = time.perf_counter()
        if part == "search":
            rows += bench_search(*sizes["search"])
        elif part == "embed":
            rows += bench_embed(*sizes["embed"])
        elif part == "detect":
            rows += bench_detect(args.data, *sizes["detect"])
        else:
            rows += bench_train(*sizes["train"])
        print(f"# {part}: {time.perf_counter() - start:.0f} s", flush=True)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
