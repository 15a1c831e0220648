"""The synthetic web collection: truth, rates, duplicates, broken files, determinism, CLI, learnability."""

from __future__ import annotations

import hashlib
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from curate.commands import synth as synth_commands
from curate.errors import ConfigError, CurateError
from curate.synth import SynthConfig, draw_face, heldout_file, sample_identity, sample_nuisance, synthesize
from curate.synth_config import MIN_ORIGINALS

SMALL = SynthConfig(
    identities=8,
    images_per_identity=20,
    intruder_rate=0.15,
    duplicate_rate=0.1,
    corrupt_rate=0.05,
    non_face_rate=0.05,
    intruder_identities=5,
    image_size=64,
    seed=7,
    heldout_identities=4,
    heldout_images=5,
    pair_folds=2,
    pairs_per_fold=10,
)


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synth")
    return out, synthesize(SMALL, out)


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except OSError:
        return False
    return True


def test_truth_table_describes_every_file(collection: tuple[Path, pd.DataFrame]) -> None:
    out, truth = collection
    on_disk = sorted(
        p.relative_to(out / "images").as_posix() for p in (out / "images").rglob("*") if p.is_file()
    )
    assert on_disk == sorted(truth["file"])
    assert pd.read_parquet(out / "truth.parquet").equals(truth)
    folders = set(truth["folder_identity"])
    assert len(folders) == SMALL.identities
    by_file = truth.set_index("file")
    for row in truth.itertuples(index=False):
        assert row.file.split("/")[0] == row.folder_identity
        assert hashlib.sha256((out / "images" / row.file).read_bytes()).hexdigest() == row.sha256
        if row.kind == "original":
            assert row.true_identity == row.folder_identity
        elif row.kind == "intruder":  # from a pool of people who have no folder of their own
            assert row.true_identity not in folders
        elif row.kind == "near_duplicate":
            assert row.true_identity == by_file.loc[row.duplicate_of, "true_identity"]
            assert by_file.loc[row.duplicate_of, "kind"] in ("original", "intruder")
        else:
            assert pd.isna(row.true_identity)
    for _, ranks in truth.groupby("folder_identity")["search_rank"]:
        assert sorted(ranks) == list(range(1, SMALL.images_per_identity + 1))
    assert (
        truth["file"].str.split("/").str[1]
        == truth.apply(lambda r: f"{r.folder_identity}_{r.search_rank:04d}.jpg", axis=1)
    ).all()


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        SynthConfig(
            identities=12,
            images_per_identity=25,
            intruder_rate=0.3,
            duplicate_rate=0.2,
            corrupt_rate=0.0,
            image_size=48,
            heldout_identities=0,
            seed=3,
        ),
    ],
)
def test_rates_come_out_as_configured(config: SynthConfig, tmp_path: Path) -> None:
    truth = synthesize(config, tmp_path)
    total = config.total_images()
    counts = truth["kind"].value_counts()
    for kind, rate in [
        ("intruder", config.intruder_rate),
        ("near_duplicate", config.duplicate_rate),
        ("corrupt", config.corrupt_rate),
        ("non_face", config.non_face_rate),
    ]:
        assert abs(counts.get(kind, 0) / total - rate) <= 0.5 / total + 1e-9, kind
    originals = truth[truth["kind"] == "original"]
    assert originals.groupby("folder_identity").size().min() >= MIN_ORIGINALS
    mean_rank = truth.groupby("kind")["search_rank"].mean()
    assert mean_rank["original"] < mean_rank["intruder"] - 1.5


def test_near_duplicates_are_closer_to_their_original_than_to_other_photos(
    collection: tuple[Path, pd.DataFrame],
) -> None:
    out, truth = collection
    faces = truth[truth["kind"].isin(["original", "intruder", "near_duplicate"])]
    hashes = {f: imagehash.phash(Image.open(out / "images" / f)) for f in faces["file"]}
    dups = faces[faces["kind"] == "near_duplicate"]
    assert len(dups) == round(SMALL.duplicate_rate * SMALL.total_images())
    margins = []
    for row in dups.itertuples(index=False):
        copies = set(dups.loc[dups["duplicate_of"] == row.duplicate_of, "file"]) | {row.duplicate_of}
        source_folder = row.duplicate_of.split("/")[0]
        related = (faces["true_identity"] == row.true_identity) | (faces["folder_identity"] == source_folder)
        others = faces.loc[related & ~faces["file"].isin(copies), "file"]
        nearest_other = min(hashes[row.file] - hashes[f] for f in others)
        to_original = hashes[row.file] - hashes[row.duplicate_of]
        margins.append(nearest_other - to_original)
    # pHash is blind to little; allow a rare tie (a small crop shifts the frame), demand a clear gap overall
    assert np.mean(np.array(margins) > 0) >= 0.95, margins
    assert np.median(margins) >= 10  # bits of a 64-bit pHash


def test_corrupt_files_do_not_decode_and_the_rest_do(collection: tuple[Path, pd.DataFrame]) -> None:
    out, truth = collection
    for row in truth.itertuples(index=False):
        path = out / "images" / row.file
        if row.kind == "corrupt":
            assert not _decodes(path), row.file
            data = path.read_bytes()
            assert {
                "zero_bytes": data == b"",
                "html": data.startswith(b"<!DOCTYPE html>"),
                "truncated_jpeg": data.startswith(b"\xff\xd8") and not data.endswith(b"\xff\xd9"),
                "random_bytes": len(data) >= 200,
            }[row.transform], row.transform
        else:
            assert _decodes(path), row.file
            if row.kind in ("original", "intruder", "non_face"):
                assert Image.open(path).size == (SMALL.image_size, SMALL.image_size)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(
    collection: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    out, truth = collection
    again = synthesize(SMALL, tmp_path / "again")
    assert again.equals(truth)
    originals = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    copies = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert originals == copies
    for relative in originals:
        assert (out / relative).read_bytes() == (tmp_path / "again" / relative).read_bytes(), relative
    other = synthesize(SynthConfig(**{**SMALL.__dict__, "seed": 8}), tmp_path / "other")
    pictures = truth["kind"] != "corrupt"  # empty files and error pages repeat across seeds by design
    assert not set(other.loc[other["kind"] != "corrupt", "sha256"]) & set(truth.loc[pictures, "sha256"])


def test_heldout_set_follows_the_lfw_pairs_format(collection: tuple[Path, pd.DataFrame]) -> None:
    out, truth = collection
    lines = (out / "heldout_pairs.txt").read_text().splitlines()
    assert lines[0] == f"{SMALL.pair_folds}\t{SMALL.pairs_per_fold}"
    body = [line.split("\t") for line in lines[1:]]
    assert len(body) == 2 * SMALL.pair_folds * SMALL.pairs_per_fold
    names = {p.name for p in (out / "heldout").iterdir()}
    assert len(names) == SMALL.heldout_identities
    assert not names & set(truth["folder_identity"]) and not names & set(truth["true_identity"].dropna())
    for fold in range(SMALL.pair_folds):
        block = body[fold * 2 * SMALL.pairs_per_fold : (fold + 1) * 2 * SMALL.pairs_per_fold]
        genuine, impostor = block[: SMALL.pairs_per_fold], block[SMALL.pairs_per_fold :]
        assert all(len(p) == 3 and p[1] != p[2] for p in genuine)
        assert all(len(p) == 4 and p[0] != p[2] for p in impostor)
    ends = [(p[0], p[1], p[0], p[2]) if len(p) == 3 else tuple(p) for p in body]
    referenced = {heldout_file(name, int(i)) for a, i, b, j in ends for name, i in ((a, i), (b, j))}
    assert all((out / "heldout" / f).is_file() for f in referenced)
    assert len({tuple(p) for p in body}) == len(body)
    assert sum(1 for _ in (out / "heldout").rglob("*.jpg")) == SMALL.heldout_identities * SMALL.heldout_images


def test_draw_face_is_deterministic_and_nuisance_changes_the_photo() -> None:
    person = sample_identity(np.random.default_rng(1))
    other = sample_identity(np.random.default_rng(2))

    def photo(who: object, strength: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.asarray(draw_face(who, sample_nuisance(rng, who, strength), rng, 96), dtype=np.float32)

    assert np.array_equal(photo(person, 1.0, 5), photo(person, 1.0, 5))
    assert photo(person, 1.0, 5).shape == (96, 96, 3)
    centre = slice(36, 60)  # inside the head whatever its shape
    neutral_same = np.abs(photo(person, 0.0, 5) - photo(person, 0.0, 6))[centre, centre].mean()
    neutral_other = np.abs(photo(person, 0.0, 5) - photo(other, 0.0, 5))[centre, centre].mean()
    varied_same = np.abs(photo(person, 1.0, 5) - photo(person, 1.0, 6))[centre, centre].mean()
    assert neutral_same < 2.0  # without nuisance only the background differs
    assert neutral_other > 10.0 and varied_same > 10.0


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"identities": 0}, "identities"),
        ({"images_per_identity": 2}, "images_per_identity"),
        ({"duplicate_rate": 1.5}, "duplicate_rate"),
        ({"intruder_rate": 0.5, "duplicate_rate": 0.3}, "intruder_rate"),
        ({"image_size": 16}, "image_size"),
        ({"nuisance": -1.0}, "nuisance"),
        ({"seed": -3}, "seed"),
        ({"heldout_identities": 1}, "heldout_identities"),
        ({"heldout_images": 3, "pair_folds": 10, "pairs_per_fold": 30}, "pairs_per_fold"),
    ],
)
def test_config_rejects_bad_values(changes: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SynthConfig(**changes).validate()  # type: ignore[arg-type]
    assert raised.value.key == key


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    tiny = SynthConfig(identities=2, images_per_identity=4, image_size=48, heldout_identities=0)
    synthesize(tiny, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CurateError):
        synthesize(tiny, tmp_path)
    stale = tmp_path / "images" / "Stale_Name" / "Stale_Name_0001.jpg"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    truth = synthesize(tiny, tmp_path, overwrite=True)
    assert not stale.parent.exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert len(truth) == 8 == sum(1 for _ in (tmp_path / "images").rglob("*.jpg"))


def _cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the curate app, holding only this command."""

    app.add_typer(synth_commands.app)
    return app


def test_cli_writes_the_collection(tmp_path: Path) -> None:
    out = tmp_path / "web"
    args = [
        "synth",
        str(out),
        "--identities",
        "3",
        "--images-per-identity",
        "6",
        "--image-size",
        "48",
        "--heldout-identities",
        "2",
        "--heldout-images",
        "3",
        "--pair-folds",
        "1",
        "--pairs-per-fold",
        "2",
    ]
    result = CliRunner().invoke(_cli_app(), args)
    assert result.exit_code == 0, result.output
    truth = pd.read_parquet(out / "truth.parquet")
    assert len(truth) == 18 and truth["folder_identity"].nunique() == 3
    assert sum(1 for _ in (out / "heldout").rglob("*.jpg")) == 6
    assert (out / "heldout_pairs.txt").read_text().startswith("1\t2\n")
    assert "wrote 18 files" in result.output
    again = CliRunner().invoke(_cli_app(), args)
    assert isinstance(again.exception, CurateError)
    bad = CliRunner().invoke(_cli_app(), ["synth", str(tmp_path / "bad"), "--intruder-rate", "1.5"])
    assert isinstance(bad.exception, ConfigError) and bad.exception.key == "intruder_rate"
    assert not (tmp_path / "bad").exists()


def _face_crops(out: Path, files: pd.Series, size: int = 32, margin: float = 0.15) -> np.ndarray:
    """Centre crops (the face region, as a face detector would give) scaled to ``size``, floats in 0..1."""
    crops = []
    for file in files:
        with Image.open(out / "images" / file) as image:
            cut = image.width * margin
            box = (cut, cut, image.width - cut, image.height - cut)
            crops.append(
                np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box))
            )
    return np.stack(crops).astype(np.float32) / 255


def _train_tiny_cnn(x: torch.Tensor, y: torch.Tensor, classes: int, epochs: int = 30) -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for c_in, c_out in [(3, 16), (16, 32), (32, 64)]:
        layers += [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU()]
        layers.append(torch.nn.MaxPool2d(2) if c_out < 64 else torch.nn.AdaptiveAvgPool2d(1))
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(64, classes))
    batches = (len(x) + 31) // 32
    optimiser = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 1e-2, total_steps=epochs * batches)
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            images = x[batch]
            images = torch.where(torch.rand(len(batch))[:, None, None, None] < 0.5, images.flip(3), images)
            dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
            loss = torch.nn.functional.cross_entropy(net(torch.roll(images, (dy, dx), (2, 3))), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval()


@pytest.mark.slow
def test_identities_are_learnable_but_not_trivial(tmp_path: Path) -> None:
    """A tiny CNN learns 10 identities from 20 photos each; a fixed pixel descriptor does much worse."""
    config = SynthConfig(
        identities=10,
        images_per_identity=30,
        intruder_rate=0.0,
        duplicate_rate=0.0,
        corrupt_rate=0.0,
        non_face_rate=0.0,
        image_size=64,
        heldout_identities=0,
        seed=1,
    )
    truth = synthesize(config, tmp_path)
    names = sorted(truth["folder_identity"].unique())
    labels = truth["folder_identity"].map(names.index).to_numpy(copy=True)
    train = (truth["search_rank"] <= 20).to_numpy(copy=True)
    crops = _face_crops(tmp_path, truth["file"])

    grey = crops.mean(axis=3)[:, ::2, ::2].reshape(len(crops), -1)
    grey = (grey - grey.mean(1, keepdims=True)) / grey.std(1, keepdims=True)
    means = np.stack([grey[train & (labels == k)].mean(0) for k in range(len(names))])
    nearest = ((grey[~train, None] - means[None]) ** 2).sum(-1).argmin(1)
    descriptor_accuracy = float((nearest == labels[~train]).mean())

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.as_tensor(crops).permute(0, 3, 1, 2)
        y = torch.as_tensor(labels)
        mask = torch.as_tensor(train)
        net = _train_tiny_cnn(x[mask], y[mask], len(names))
        with torch.no_grad():
            cnn_accuracy = float((net(x[~mask]).argmax(1) == y[~mask]).float().mean())
    finally:
        torch.set_num_threads(threads)
    print(
        f"held-out accuracy: tiny CNN {cnn_accuracy:.2f}, grey-pixel nearest mean {descriptor_accuracy:.2f}"
    )
    assert cnn_accuracy > 0.8  # chance is 0.1
    assert descriptor_accuracy < cnn_accuracy - 0.1  # the nuisance is strong enough to defeat raw pixels
