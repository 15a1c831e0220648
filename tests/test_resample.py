"""Batched describe work equals Pillow, imagehash and the per-image embedder exactly, on real CFP crops.

describe computes the grey conversion, the Lanczos resizes of pHash, dHash and the thumbnails, and the
handcrafted embedding for a whole batch of squares in numpy (:mod:`curate.resample`); the stored values
must be exactly those of one image at a time through Pillow and imagehash, so dedup's thresholds hold.
"""

from __future__ import annotations

import logging
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from curate import resample
from curate.decode import load_rgb
from curate.embedders import handcrafted
from curate.hashing import describe_square, hashes_and_thumbnails, hex_to_code, shrink


def cfp_squares(data_dir: Path, count: int = 320, step: int = 7) -> np.ndarray:
    """describe's 64x64 squares of ``count`` CFP files (small face crops, frontal and profile, some grey)."""
    paths = sorted((data_dir / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[::step][:count]
    squares = [
        np.asarray(describe_square(shrink(load_rgb(path, reduce_to=128).image, 512))) for path in paths
    ]
    return np.stack(squares)


def test_grey_equals_pillow_for_every_colour() -> None:
    colours = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    assert np.array_equal(resample.grey(rgb), np.asarray(Image.fromarray(rgb).convert("L")))


@pytest.mark.parametrize("size", [(32, 32), (9, 8)])
def test_lanczos_equals_pillow_on_real_squares(data_dir: Path, size: tuple[int, int]) -> None:
    greys = resample.grey_batch(cfp_squares(data_dir))
    expected = np.stack(
        [np.asarray(Image.fromarray(g).resize(size, Image.Resampling.LANCZOS)) for g in greys]
    )
    assert np.array_equal(resample.lanczos_batch(greys, size), expected)
    assert resample.pass_order(64, 64, size) is False  # the numpy path itself, horizontal pass first
    assert len({g.tobytes() for g in expected}) > 0.95 * len(greys)  # distinct photos, not a constant


def test_lanczos_equals_pillow_for_any_shape_and_clipping_pixels() -> None:
    rng = np.random.default_rng(3)
    orders = set()
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(2, 200, 2))
        size = tuple(int(v) for v in rng.integers(1, 90, 2))
        images = rng.integers(0, 256, (3, height, width), dtype=np.uint8)
        images[0] = (images[0] > 127) * 255  # hard edges: Lanczos overshoots and both clips act
        expected = [np.asarray(Image.fromarray(im).resize(size, Image.Resampling.LANCZOS)) for im in images]
        assert np.array_equal(resample.lanczos_batch(images, size), np.stack(expected)), (height, width, size)
        orders.add(resample.pass_order(height, width, size))
    assert None not in orders


def test_lanczos_weights_are_pillows_fixed_point() -> None:
    for in_size, out_size in ((64, 32), (64, 9), (64, 8), (10, 37)):
        weights = resample.lanczos_weights(in_size, out_size)
        assert weights.shape == (out_size, in_size)
        assert np.array_equal(weights, np.round(weights))  # integers at 22 fractional bits
        assert np.all(np.abs(weights.sum(axis=1) - (1 << 22)) <= in_size)  # each row sums to one, rounded
    assert (resample.lanczos_weights(64, 32) < 0).any()  # Lanczos has negative lobes


def test_a_disagreeing_shape_falls_back_to_pillow(monkeypatch, caplog) -> None:
    images = np.random.default_rng(4).integers(0, 256, (5, 40, 30), dtype=np.uint8)
    expected = resample._pillow_lanczos(images, (11, 13))
    wrong = lambda in_size, out_size: np.full((out_size, in_size), float(1 << 22) / in_size)  # noqa: E731
    monkeypatch.setattr(resample, "lanczos_weights", wrong)
    resample.pass_order.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="curate.resample"):
            assert resample.pass_order(40, 30, (11, 13)) is None
            assert np.array_equal(resample.lanczos_batch(images, (11, 13)), expected)
        assert "using Pillow per image" in caplog.text
    finally:
        resample.pass_order.cache_clear()


def test_batched_hashes_and_thumbnails_equal_imagehash_per_crop(data_dir: Path) -> None:
    squares = cfp_squares(data_dir)
    hashes, thumbs = hashes_and_thumbnails(squares, ["phash", "dhash", "ahash"], with_thumbnails=True)
    images = [Image.fromarray(square) for square in squares]
    for kind, function in (
        ("phash", imagehash.phash),
        ("dhash", imagehash.dhash),
        ("ahash", imagehash.average_hash),
    ):
        references = [str(function(image)) for image in images]
        assert hashes[kind] == (references, [hex_to_code(h) for h in references]), kind
    expected = [np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS)) for im in images]
    assert np.array_equal(thumbs, np.stack(expected))
    assert len(set(hashes["phash"][0])) > 0.95 * len(squares)


def test_handcrafted_batch_equals_one_square_at_a_time(data_dir: Path) -> None:
    squares = cfp_squares(data_dir, count=200)
    embedder = handcrafted.HandcraftedEmbedder()
    batched = embedder.embed(squares)
    one_by_one = np.concatenate([embedder.embed([square]) for square in squares])
    assert batched.shape == (200, embedder.dim)
    assert np.abs(batched - one_by_one).max() <= 1e-6
    assert np.array_equal(batched, embedder.embed(list(squares)))  # the list path, same batch


def test_handcrafted_shortcuts_equal_the_numpy_they_replace() -> None:
    rng = np.random.default_rng(5)
    gy, gx = rng.normal(size=(2, 100_000)).astype(np.float32)
    gy[:300], gx[:150] = 0.0, -1.0  # angles of exactly 0 and pi
    gy[300:400], gx[300:400] = -1e-30, -1.0  # a tiny negative y behind the origin: exactly -pi
    angles = np.arctan2(gy, gx)
    assert (angles == np.float32(np.pi)).any() and (angles == -np.float32(np.pi)).any()
    assert np.array_equal(handcrafted._unsigned(angles), angles % np.pi)
    values = np.concatenate([rng.uniform(-1, 1, 10_000), [-0.25, 0.0, 0.25, -0.0, 0.5]]).astype(np.float32)
    assert np.array_equal(handcrafted._chroma_bin(values), np.digitize(values, [-0.25, 0.0, 0.25]))


def _gradient_block_as_first_written(small: np.ndarray) -> np.ndarray:
    """handcrafted's gradient histograms as first written (bins wrapped by ``%``, indices built per call)."""
    n, size = small.shape[0], small.shape[1]
    gx, gy = np.zeros_like(small), np.zeros_like(small)
    gx[:, :, 1:-1] = small[:, :, 2:] - small[:, :, :-2]
    gy[:, 1:-1, :] = small[:, 2:, :] - small[:, :-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    position = (np.arctan2(gy, gx) % np.pi) * (6 / np.pi)
    floor = np.floor(position)
    lower = floor.astype(np.int64) % 6
    high = magnitude * (position - floor)
    cell_of = (np.arange(size)[:, None] // 4) * 8 + np.arange(size)[None, :] // 4
    base = (np.arange(n)[:, None, None] * 64 + cell_of[None]) * 6
    cells = np.bincount((base + lower).ravel(), (magnitude - high).ravel(), minlength=n * 64 * 6)
    cells += np.bincount((base + (lower + 1) % 6).ravel(), high.ravel(), minlength=n * 64 * 6)
    cells = cells.reshape(n, 8, 8, 6)
    energy = cells.sum(axis=3, keepdims=True)
    cells = cells / (energy + energy.mean(axis=(1, 2, 3), keepdims=True) + 1e-6)
    return np.sqrt(cells).reshape(n, -1)


def test_handcrafted_gradients_equal_the_histogram_as_first_written() -> None:
    rng = np.random.default_rng(6)
    small = rng.uniform(0, 1, (64, 32, 32)).astype(np.float32)
    small[::4] = 0.5  # flat images: no gradient anywhere
    # column 5 falls by 1e-12 a row where x rises by 1e-3: an angle of -2e-9, which float32 turns into
    # exactly pi, position 6.0, the bin past the last (which wraps to bin 0)
    small[1::4, :, 4], small[1::4, :, 6] = 0.0, 1e-3
    small[1::4, :, 5] = -1e-12 * np.arange(32, dtype=np.float32)
    gy = small[:, 2:, 5] - small[:, :-2, 5]
    gx = small[:, 1:-1, 6] - small[:, 1:-1, 4]
    position = handcrafted._unsigned(np.arctan2(gy, gx)) * (6 / np.pi)
    assert (np.floor(position) == 6).any()  # the wrap-around really happens
    for n in (64, 17, 64, 1):  # full and partial batches, through the cached cell indices
        assert np.array_equal(
            handcrafted._gradient_block(small[:n]), _gradient_block_as_first_written(small[:n])
        )
