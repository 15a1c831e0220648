"""Training: data sources, the P x K sampler, checkpoint/resume equality, export, and a tiny ORL run."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.config import build_config
from curate.embedders import get_embedder
from curate.errors import ConfigError, CurateError
from curate.manifest import shard_path, write_shard
from curate.storage import ContentStore
from curate.train.backbones import build_net
from curate.train.config import TrainConfig
from curate.train.data import FaceDataset, PKBatchSampler, from_folder, from_manifest
from curate.train.export import export_checkpoint, export_embedder
from curate.train.loop import progress_status, train
from curate.train.monitor import ChanceMonitor, at_chance


def _orl_tree(data_dir: Path, root: Path, subjects: range) -> Path:
    """A folder tree of symlinks to some ORL subjects (the data is never copied)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in subjects:
        (root / f"s{i}").symlink_to(data_dir / "orl_faces" / f"s{i}", target_is_directory=True)
    return root


def _tiny_config(images: Path, out: Path, **overrides: object) -> TrainConfig:
    values = {
        "images": images,
        "out": out,
        "input_size": 32,
        "embedding_dim": 32,
        "batch_size": 16,
        "epochs": 2,
        "warmup_epochs": 0.5,
        "threads": 1,
        "progress": False,
        **overrides,
    }
    return build_config(TrainConfig, values)


def test_pk_sampler_gives_p_identities_times_k_images() -> None:
    labels = [0] * 10 + [1] * 8 + [2] * 6 + [3] * 3 + [4] * 5 + [5] * 4
    sampler = PKBatchSampler(labels, p=3, k=4, seed=7)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // 12
    for batch in batches:
        counts = Counter(labels[i] for i in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
    assert batches == list(sampler)  # same (seed, epoch) -> same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    seen: Counter[int] = Counter()
    for epoch in range(30):
        sampler.set_epoch(epoch)
        seen.update(labels[i] for batch in sampler for i in batch)
    assert set(seen) == set(range(6)) and max(seen.values()) <= 2 * min(seen.values())
    halves = [PKBatchSampler(labels, 3, 4, seed=7, rank=r, world_size=2) for r in (0, 1)]
    whole = list(PKBatchSampler(labels, 3, 4, seed=7))
    n = len(whole) // 2  # every rank runs the same number of steps
    assert list(halves[0]) == whole[0 : 2 * n : 2] and list(halves[1]) == whole[1 : 2 * n : 2]


def test_data_from_a_manifest_and_a_folder(tmp_path: Path, data_dir: Path) -> None:
    orl = data_dir / "orl_faces"
    paths = [str(orl / "s1/1.pgm"), str(orl / "s1/2.pgm"), str(orl / "s2/1.pgm"), str(orl / "s2/2.pgm")]
    rows = {
        "identity_id": ["a", "a", "b", "b"],
        "source": paths,
        "path": paths,
        "crop_path": [str(orl / "s1/3.pgm"), None, None, None],
        "status": ["ok", "ok", "ok", "no_face"],
    }
    write_shard(pa.table(rows), shard_path(tmp_path, "rank", 0))
    images = from_manifest(tmp_path, "rank")
    assert images.classes == ["a", "b"]
    # crop_path wins, in the order of the sources (1.pgm's crop first); no_face left out
    assert [p.name for p in images.paths] == ["3.pgm", "2.pgm", "1.pgm"]
    assert images.labels == [0, 0, 1]


def test_training_order_follows_the_sources_not_the_crops_content_addresses(
    tmp_path: Path, data_dir: Path
) -> None:
    """The same crops written as other bytes (another PNG level: other content-addressed names) must give
    the same training data in the same order, or an encoding change alone would train another model."""
    orl = data_dir / "orl_faces"
    sources = [str(orl / f"s{s}" / f"{i}.pgm") for s in (1, 2) for i in range(1, 9)]
    orders = []
    for level in (1, 9):
        workdir = tmp_path / f"level{level}"
        crops = []
        for source in sources:
            buffer = io.BytesIO()
            Image.open(source).convert("RGB").save(buffer, format="PNG", compress_level=level)
            crops.append(str(ContentStore(workdir / "crops").put(buffer.getvalue(), ".png")))
        identities = [Path(source).parent.name for source in sources]
        rows = {"identity_id": identities, "source": sources, "path": sources, "crop_path": crops}
        write_shard(pa.table({**rows, "status": ["ok"] * len(sources)}), shard_path(workdir, "rank", 0))
        images = from_manifest(workdir, "rank")
        orders.append([np.asarray(Image.open(path)).tobytes() for path in images.paths])
        assert images.labels == [0] * 8 + [1] * 8
    names = [{p.name for p in (tmp_path / f"level{level}" / "crops").rglob("*.png")} for level in (1, 9)]
    assert not names[0] & names[1]  # the two levels really named every crop differently
    assert orders[0] == orders[1]  # the same pixels, image by image
    tree = from_folder(_orl_tree(data_dir, tmp_path / "tree", range(1, 4)))
    assert tree.classes == ["s1", "s2", "s3"] and len(tree.paths) == 30
    dataset = FaceDataset(tree, 32, augment=True)
    image, label = dataset[12]
    assert image.shape == (3, 32, 32) and label == 1 and -1.0 <= image.min() < image.max() <= 1.0
    expected = np.asarray(
        Image.open(tree.paths[12]).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    )
    assert np.array_equal(dataset.raw(12).permute(1, 2, 0).numpy(), expected)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="images"):
        build_config(TrainConfig, {})
    with pytest.raises(ConfigError, match="margin_rad"):
        build_config(TrainConfig, {"images": tmp_path, "margin_rad": 2.0})
    with pytest.raises(ConfigError, match="images_per_identity"):
        build_config(TrainConfig, {"images": tmp_path, "pair_loss": "triplet", "images_per_identity": 1})


def _state(out: Path) -> dict:
    return torch.load(out / "checkpoints" / "last.pt", weights_only=False)


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's network, head and optimiser state, by a flat name."""
    out = {f"model.{k}": v for k, v in state["model"].items()}
    out.update({f"head.{k}": v for k, v in (state["head"] or {}).items()})
    for index, slots in state["optimizer"]["state"].items():
        out.update({f"optimizer.{index}.{k}": v for k, v in slots.items() if isinstance(v, torch.Tensor)})
    return out


def _metrics(out: Path) -> list[dict]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("seconds", "images_per_s")} for line in lines]


@pytest.mark.parametrize(
    ("overrides", "stop_after"),
    [
        ({"head": "arcface", "augment": True}, 1),
        (
            {
                "head": "softmax",
                "recipe": "vggface",
                "epochs": 1,
                "projection_epochs": 2,
                "projection_dim": 16,
                "identities_per_batch": 3,
                "images_per_identity": 4,
            },
            2,  # stops after the first epoch of the projection phase
        ),
    ],
    ids=["arcface", "vggface"],
)
def test_resume_gives_the_same_weights_as_a_straight_run(
    tmp_path: Path, data_dir: Path, overrides: dict, stop_after: int
) -> None:
    tree = _orl_tree(data_dir, tmp_path / "tree", range(1, 7))
    straight = train(_tiny_config(tree, tmp_path / "straight", **overrides))
    first = train(_tiny_config(tree, tmp_path / "resumed", **overrides), stop_after=stop_after)
    assert first.model_dir is None and first.epochs_done == 1
    assert _state(tmp_path / "resumed")["phase"] == ("projection" if "recipe" in overrides else "classify")
    resumed = train(_tiny_config(tree, tmp_path / "resumed", resume=True, **overrides))
    assert resumed.model_dir is not None
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "resumed")
    assert (a["phase"], a["epoch"], a["step"]) == (b["phase"], b["epoch"], b["step"])
    weights_a, weights_b = _tensors(a), _tensors(b)
    assert weights_a.keys() == weights_b.keys() and len(weights_a) > 20
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key
    assert _metrics(tmp_path / "straight") == _metrics(tmp_path / "resumed")
    other_seed = train(_tiny_config(tree, tmp_path / "seed1", seed=1, **overrides))
    changed = _tensors(_state(other_seed.out))
    assert any(not torch.equal(v, changed[k]) for k, v in weights_a.items())
    if "projection_dim" in overrides:
        assert get_embedder(str(straight.model_dir)).dim == 16


def test_export_round_trip_through_the_embedder_registry(tmp_path: Path, data_dir: Path) -> None:
    torch.manual_seed(0)
    net = build_net("small", 24, 32).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    export_embedder(net, tmp_path / "model", 32)
    embedder = get_embedder(str(tmp_path / "model"))
    assert embedder.dim == 24 and embedder.input_size == 32
    pictures = [
        np.asarray(Image.open(data_dir / "orl_faces" / "s1" / f"{i}.pgm").convert("RGB")) for i in (1, 2)
    ]
    vectors = embedder.embed(pictures)
    batch = np.stack(
        [np.asarray(Image.fromarray(p).resize((32, 32), Image.Resampling.BILINEAR)) for p in pictures]
    )
    tensor = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    with torch.no_grad():
        expected = net(tensor).numpy()
    assert np.allclose(vectors, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def _lfw_style_holdout(data_dir: Path, root: Path, subjects: range, seed: int = 0) -> Path:
    """Link held-out ORL subjects as <s>/<s>_<i:04d>.jpg and write a 10-fold LFW pairs.txt for them."""
    names = [f"s{i}" for i in subjects]
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(1, 11):
            (root / name / f"{name}_{i:04d}.jpg").symlink_to(data_dir / "orl_faces" / name / f"{i}.pgm")
    rng = np.random.default_rng(seed)
    genuine = [(n, a, b) for n in names for a in range(1, 11) for b in range(a + 1, 11)]
    genuine = [genuine[i] for i in rng.permutation(len(genuine))[:300]]
    impostor = []
    while len(impostor) < 300:
        first, second = rng.choice(len(names), 2, replace=False)
        impostor.append((names[first], int(rng.integers(1, 11)), names[second], int(rng.integers(1, 11))))
    lines = ["10\t30"]
    for fold in range(10):
        lines += ["\t".join(map(str, row)) for row in genuine[fold * 30 : (fold + 1) * 30]]
        lines += ["\t".join(map(str, row)) for row in impostor[fold * 30 : (fold + 1) * 30]]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root / "pairs.txt"


def test_orl_end_to_end_train_then_evaluate_held_out_identities(tmp_path: Path, data_dir: Path) -> None:
    tree = _orl_tree(data_dir, tmp_path / "train", range(1, 31))
    pairs = _lfw_style_holdout(data_dir, tmp_path / "heldout", range(31, 41))
    runner = CliRunner()
    work = tmp_path / "work"
    trained = runner.invoke(
        app,
        [
            "-w",
            str(work),
            "train",
            "--images",
            str(tree),
            "--head",
            "softmax",
            "--input-size",
            "32",
            "--epochs",
            "10",
            "--batch-size",
            "32",
            "--threads",
            "1",
            "--no-progress",
        ],
    )
    assert trained.exit_code == 0, trained.output
    model = work / "train" / "model"
    args = [
        "-w",
        str(work),
        "evaluate",
        "--model",
        str(model),
        "--pairs",
        str(pairs),
        "--images",
        str(pairs.parent),
        "--no-align",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy_mean"] > 0.8 and report["roc_auc"] > 0.88  # chance is 0.5
    assert len(report["fold_accuracy"]) == 10 and report["accuracy_std"] < 0.1
    assert report["identification"]["rank1"] > 0.6 and report["images"]["as_is"] == 100
    assert (work / "evaluate").is_dir() and next((work / "evaluate").glob("*/roc.png")).is_file()
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["images"]["from_cache"] == 100 and again["accuracy_mean"] == report["accuracy_mean"]
    attributes = {"identity_name": [f"s{i}" for i in range(31, 41)], "status": ["ok"] * 10}
    attributes["group"] = ["odd" if i % 2 else "even" for i in range(31, 41)]
    write_shard(pa.table(attributes), shard_path(work, "rank", 0))
    grouped = json.loads(runner.invoke(app, [*args, "--group-by", "group"]).stdout)
    groups = grouped["groups"]
    assert groups["by"] == "group" and {"odd", "even", "mixed"} <= set(groups)
    assert sum(g["pairs"] for k, g in groups.items() if k != "by") == 600
    assert groups["mixed"]["roc_auc"] is None  # only impostor pairs mix the two groups
    exported = export_checkpoint(work / "train" / "checkpoints" / "last.pt", tmp_path / "from_ckpt")
    pictures = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((pairs.parent / "s31").glob("*.jpg"))
    ]
    assert np.allclose(
        get_embedder(str(exported)).embed(pictures), get_embedder(str(model)).embed(pictures), atol=1e-6
    )


def test_default_head_and_recipe_leave_chance_on_real_faces(tmp_path: Path, data_dir: Path) -> None:
    """ORL, 40 subjects, 6 short epochs with curate train's defaults (head, scale, margin warm-up, rate)."""
    tree = _orl_tree(data_dir, tmp_path / "orl", range(1, 41))
    values = {"images": tree, "out": tmp_path / "out", "input_size": 32, "epochs": 6, "batch_size": 32}
    result = train(build_config(TrainConfig, {**values, "threads": 1, "progress": False}))
    metrics = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    assert result.model_dir is not None and len(metrics) == 6
    chance = 1 / 40
    assert metrics[-1]["train_acc"] > 4 * chance  # measured 0.14-0.5 depending on the head; chance 0.025


def test_training_stops_with_one_line_when_accuracy_stays_at_chance(tmp_path: Path, data_dir: Path) -> None:
    """ORL with its labels shuffled: nothing to learn, so the run warns, then stops before the last epoch."""
    files = sorted((data_dir / "orl_faces").glob("s*/*.pgm"))
    labels = np.random.default_rng(0).permutation([p.parent.name for p in files])
    for path, label in zip(files, labels, strict=True):
        (tmp_path / "shuffled" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "shuffled" / label / f"{path.parent.name}_{path.name}").symlink_to(path)
    args = [
        "-w",
        str(tmp_path / "work"),
        "train",
        "--images",
        str(tmp_path / "shuffled"),
        "--input-size",
        "32",
    ]
    args += ["--epochs", "8", "--batch-size", "32", "--threads", "1", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if "Error" in line or "error" in line]
    assert len(error) == 1 and "at chance" in error[0] and "--head softmax" in error[0]
    metrics = (tmp_path / "work" / "train" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) < 8  # stopped early, and no model was exported
    assert not (tmp_path / "work" / "train" / "model").exists()


def test_progress_status_shows_running_loss_and_accuracy() -> None:
    sums = {"loss": torch.tensor(64.0), "correct": torch.tensor(8)}
    assert progress_status(sums, 32) == "loss 2.000 acc 0.250"
    assert progress_status({"loss": torch.tensor(3.2)}, 32) == "loss 0.100"


def test_chance_monitor_warns_then_stops_and_resets_on_progress() -> None:
    monitor = ChanceMonitor([0, 0, 1, 1], warmup_epochs=1.0)
    assert monitor.chance == 0.5 and at_chance(0.55, 0.5, 100) and not at_chance(0.7, 0.5, 100)
    monitor.check(1, 0.5, 100, 10)  # still warming up: not counted
    monitor.check(2, 0.5, 100, 10)
    assert monitor.strikes == 1
    monitor.check(3, 0.9, 100, 10)
    assert monitor.strikes == 0
    monitor.check(4, 0.5, 100, 10)
    with pytest.raises(CurateError, match="at chance"):
        monitor.check(5, 0.52, 100, 10)
