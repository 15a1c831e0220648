"""The embedder registry: handcrafted and dlib embeddings on real CFP photos, exported torch.export models."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from curate.embedders import Embedder, get_embedder
from curate.errors import ConfigError, CurateError


def cfp_photo(data_dir: Path, identity: int, kind: str, number: int) -> np.ndarray:
    """One CFP image as an RGB uint8 array."""
    path = data_dir / "cfp" / "Data" / "Images" / f"{identity:03d}" / kind / f"{number:02d}.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def jpeg_copy(image: np.ndarray, quality: int, scale: float) -> np.ndarray:
    """A resized, re-encoded copy."""
    pil = Image.fromarray(image)
    pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_unknown_spec_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dlib.*handcrafted"):
        get_embedder("resnet-9000")
    with pytest.raises(ConfigError, match=r"embedder\.json"):
        get_embedder(str(tmp_path))  # a folder, but not an exported model


def test_handcrafted_rows_are_unit_length_for_any_size(data_dir: Path) -> None:
    embedder = get_embedder("handcrafted")
    assert isinstance(embedder, Embedder) and embedder.name == "handcrafted"
    images = [cfp_photo(data_dir, 1, "frontal", 1), cfp_photo(data_dir, 2, "profile", 3)]
    grey = np.asarray(Image.fromarray(images[0]).convert("L"))  # 2-D input is accepted as grey RGB
    vectors = embedder.embed([*images, grey, np.zeros((20, 30, 3), np.uint8)])
    assert vectors.shape == (4, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_handcrafted_ranks_a_copy_above_other_photos(data_dir: Path) -> None:
    embedder = get_embedder("handcrafted")
    for identity in (3, 17, 40):
        original = cfp_photo(data_dir, identity, "frontal", 1)
        copy = jpeg_copy(original, quality=20, scale=0.6)
        others = [cfp_photo(data_dir, identity, "frontal", n) for n in (4, 7)]  # same person, other photos
        stranger = cfp_photo(data_dir, identity + 100, "frontal", 1)
        v = embedder.embed([original, copy, *others, stranger])
        sims = v[1:] @ v[0]
        assert sims[0] > 0.9 and sims[0] > sims[1:].max() + 0.05, sims


def test_handcrafted_carries_identity_signal(data_dir: Path) -> None:
    embedder = get_embedder("handcrafted")
    people = list(range(1, 13))
    photos = [cfp_photo(data_dir, p, "frontal", n) for p in people for n in (2, 5, 8)]
    v = embedder.embed(photos)
    sims = v @ v.T
    owner = np.repeat(people, 3)
    same = (owner[:, None] == owner[None, :]) & ~np.eye(len(owner), dtype=bool)
    different = owner[:, None] != owner[None, :]
    assert sims[same].mean() > sims[different].mean() + 0.05


def aligned_chip(image: np.ndarray) -> np.ndarray:
    """The 150x150 dlib chip of the largest detected face (as the faces stage makes it)."""
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    faces = detector(image, 0)
    assert faces, "the test photo must show a detectable face"
    box = max(faces, key=lambda r: r.width() * r.height())
    return dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25)


def test_dlib_separates_identities(data_dir: Path) -> None:
    embedder = get_embedder("dlib")
    assert (embedder.dim, embedder.input_size, embedder.name) == (128, 150, "dlib")
    chips = [aligned_chip(cfp_photo(data_dir, p, "frontal", n)) for p in (5, 9) for n in (1, 6)]
    v = embedder.embed(chips)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    same = [v[0] @ v[1], v[2] @ v[3]]
    different = [v[0] @ v[2], v[0] @ v[3], v[1] @ v[2], v[1] @ v[3]]
    assert min(same) > max(different)
    resized = embedder.embed([np.asarray(Image.fromarray(chips[0]).resize((200, 200)))])
    assert float(resized[0] @ v[0]) > 0.95  # other sizes are resized to the chip first


def test_dlib_network_in_torch_gives_dlibs_own_vectors(data_dir: Path, tmp_path: Path) -> None:
    """The torch network read from dlib's model file matches dlib's compute_face_descriptor."""
    import dlib
    import face_recognition_models

    from curate.embedders.dlib_net import read_layers

    photos = [
        cfp_photo(data_dir, p, kind, n) for p in (7, 31, 120) for kind, n in (("frontal", 2), ("profile", 1))
    ]
    chips = [aligned_chip(photos[0]), *(np.asarray(Image.fromarray(p).resize((150, 150))) for p in photos)]
    model_file = face_recognition_models.face_recognition_model_location()
    reference = dlib.face_recognition_model_v1(model_file).compute_face_descriptor(chips)
    reference = np.array([np.array(vector) for vector in reference])
    ours = get_embedder("dlib").embed(chips)
    expected = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    assert len(read_layers(model_file)) == 1 + 4 + 14 * 7 + 4 + 2  # input, stem, blocks (4 halve), head
    not_a_model = tmp_path / "model.dat"
    not_a_model.write_bytes(b"\x01\x05con_4" + bytes(64))
    with pytest.raises(CurateError, match="not dlib's face recognition network"):
        read_layers(not_a_model)


def test_dlib_vector_of_a_face_does_not_depend_on_its_batch(data_dir: Path) -> None:
    """The same chip gives the same bits alone, in a batch of 7 and in one of 21 (shards split batches)."""
    chips = [
        np.asarray(Image.fromarray(cfp_photo(data_dir, p, "frontal", 3)).resize((150, 150)))
        for p in range(1, 22)
    ]
    embedder = get_embedder("dlib")
    alone, seven, all_of_them = (embedder.embed(chips[:n])[0] for n in (1, 7, 21))
    assert np.array_equal(alone, seven) and np.array_equal(alone, all_of_them)


class TinyNet(torch.nn.Module):
    """A small network with the exported embedder's contract: normalised N x 3 x H x W in, N x D out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.head = torch.nn.Linear(8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return torch.nn.functional.normalize(self.head(pooled), dim=1)


def export_tiny(folder: Path, **overrides: object) -> TinyNet:
    """Export TinyNet into ``folder`` (torch.export, dynamic batch) with its embedder.json."""
    folder.mkdir(parents=True)
    net = TinyNet().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(net, (torch.zeros(2, 3, 24, 20),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(folder / "embedder.pt2"))
    meta = {"format": "curate-embedder", "version": 2, "input_size": [24, 20], "mean": [0.5, 0.4, 0.3]}
    meta |= {"std": [0.2, 0.25, 0.3], "embedding_dim": 6, **overrides}
    (folder / "embedder.json").write_text(json.dumps(meta))
    return net


def test_exported_model_preprocesses_as_declared(tmp_path: Path, data_dir: Path) -> None:
    net = export_tiny(tmp_path / "tiny-v1")
    embedder = get_embedder(str(tmp_path / "tiny-v1"))
    assert (embedder.name, embedder.dim) == ("model:tiny-v1", 6)
    images = [cfp_photo(data_dir, 7, "frontal", 2), cfp_photo(data_dir, 8, "profile", 1)]
    got = embedder.embed(images)
    resized = [np.asarray(Image.fromarray(im).resize((20, 24), Image.Resampling.BILINEAR)) for im in images]
    x = np.stack(resized).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    x = (x - np.array([0.5, 0.4, 0.3], np.float32)[None, :, None, None]) / np.array(
        [0.2, 0.25, 0.3], np.float32
    )[None, :, None, None]
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("override", "message"),
    [({"format": "onnx"}, "format"), ({"version": 1}, "version"), ({"mean": [0.5]}, "mean")],
)
def test_exported_model_refuses_unknown_metadata(tmp_path: Path, override: dict, message: str) -> None:
    export_tiny(tmp_path / "model", **override)
    with pytest.raises(CurateError, match=message):
        get_embedder(str(tmp_path / "model"))


def test_a_torchscript_export_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Version 1 folders (TorchScript embedder.pt) say how to export again."""
    folder = tmp_path / "old"
    export_tiny(folder, version=1)
    (folder / "embedder.pt2").rename(folder / "embedder.pt")
    with pytest.raises(CurateError, match=r"export the model again.*checkpoints/last\.pt"):
        get_embedder(str(folder))


def test_exported_model_with_wrong_output_size_is_an_error(tmp_path: Path) -> None:
    export_tiny(tmp_path / "model", embedding_dim=7)
    embedder = get_embedder(str(tmp_path / "model"))
    with pytest.raises(CurateError, match="expected"):
        embedder.embed([np.zeros((30, 30, 3), np.uint8)])
