"""The numpy pHash / dHash equal imagehash's bit for bit on real photos; squares are what describe uses."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

from curate.decode import decode_bytes, load_rgb
from curate.hashing import (
    FRAME_DECODE_SIDE,
    SQUARE_BYTES,
    SQUARE_DECODE_SIDE,
    corners_share_a_colour,
    decode_for_square,
    describe_square,
    hash_bits,
    hash_images,
    hashes_and_thumbnails,
    hex_to_code,
    shrink,
    square_bytes,
    square_from_bytes,
    thumbnails,
    trim_uniform_border,
)

REFERENCE = {"phash": imagehash.phash, "dhash": imagehash.dhash}


def cfp_photos(data_dir: Path, step: int = 47) -> list[Path]:
    """Every ``step``-th CFP photo: frontal and profile, all sizes, some greyscale."""
    return sorted((data_dir / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[::step]


def orl_photos(data_dir: Path, step: int = 3) -> list[Path]:
    """Every ``step``-th ORL photo: 92x112 greyscale PGM, near-identical faces of one person each."""
    return sorted((data_dir / "orl_faces").glob("s*/*.pgm"))[::step]


PHOTOS = {"cfp": (cfp_photos, 140), "orl": (orl_photos, 130)}


def _opened(path: Path) -> Image.Image:
    """The file as PIL opens it, in its own mode (``L`` for ORL, ``RGB`` or ``L`` for CFP)."""
    with Image.open(path) as image:
        image.load()
        return image


@pytest.mark.parametrize("dataset", sorted(PHOTOS))
@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_numpy_hashes_equal_imagehash_on_real_photos(data_dir: Path, kind: str, dataset: str) -> None:
    """Bit for bit, on the photos as opened, as decoded (RGB) and as describe's squares."""
    list_photos, least = PHOTOS[dataset]
    photos = list_photos(data_dir)
    assert len(photos) >= least
    images = [load_rgb(path).image for path in photos]
    squares = [describe_square(shrink(image, 512)) for image in images]  # what describe hashes
    for batch in ([_opened(path) for path in photos], images, squares):
        hexes, codes = hash_images(batch, kind)
        references = [REFERENCE[kind](image) for image in batch]
        assert hexes == [str(h) for h in references]
        assert codes == [hex_to_code(str(h)) for h in references]
        bits = np.array([np.asarray(h.hash, dtype=bool).reshape(-1) for h in references])
        assert np.array_equal(hash_bits(batch, kind), bits)  # row-major, as the module docstring says
    # not a constant or degenerate hash: the photos differ (ORL's 40 people pose 10 times each)
    assert len(set(hexes)) > 0.9 * len(photos)


def test_batched_hashes_and_thumbnails_equal_one_by_one(data_dir: Path) -> None:
    squares = [describe_square(shrink(load_rgb(p).image, 512)) for p in cfp_photos(data_dir, step=97)]
    kinds = ["phash", "dhash", "ahash"]
    hashes, thumbs = hashes_and_thumbnails(squares, kinds, with_thumbnails=True)
    assert hashes == {kind: hash_images(squares, kind) for kind in kinds}
    assert np.array_equal(thumbs, thumbnails(squares))
    assert hashes_and_thumbnails(squares, ["dhash"], with_thumbnails=False)[1] is None
    assert hashes_and_thumbnails([], kinds, with_thumbnails=True)[0]["phash"] == ([], [])


def test_square_bytes_round_trip(data_dir: Path) -> None:
    image = load_rgb(cfp_photos(data_dir)[0]).image
    stored = square_bytes(image)
    assert len(stored) == SQUARE_BYTES
    square = square_from_bytes(stored)
    assert square.size == (64, 64) and square.mode == "RGB"
    assert np.array_equal(np.asarray(square), np.asarray(describe_square(shrink(image, 512))))
    with pytest.raises(ValueError, match="12288 bytes"):
        square_from_bytes(stored[:-1])


def test_square_trims_an_added_frame(data_dir: Path) -> None:
    image = load_rgb(cfp_photos(data_dir)[3]).image
    framed = Image.new("RGB", (image.width + 40, image.height + 40), (0, 0, 0))
    framed.paste(image, (20, 20))
    plain, trimmed = (np.asarray(describe_square(im)).astype(int) for im in (image, framed))
    untrimmed = np.asarray(describe_square(framed, trim=False)).astype(int)
    assert np.abs(plain - trimmed).mean() < 0.2 * np.abs(plain - untrimmed).mean()


def test_trim_removes_a_jpeg_saved_frame_to_its_inner_edge(data_dir: Path) -> None:
    """A frame saved as JPEG goes whole, though chroma subsampling tints its last line; photos stay whole."""
    widths = []
    for k, path in enumerate(cfp_photos(data_dir, step=211)[:24]):
        image = load_rgb(path).image
        frame = max(2, round(min(image.size) * (0.03 + 0.01 * (k % 10))))
        colour = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 120)][k % 4]
        buffer = io.BytesIO()
        ImageOps.expand(image, border=frame, fill=colour).save(buffer, "JPEG", quality=92)
        framed = decode_bytes(buffer.getvalue()).image
        widths.append((frame, (framed.width - trim_uniform_border(framed).width) // 2))
        assert trim_uniform_border(image).size == image.size, path
    exact = sum(trimmed == frame for frame, trimmed in widths)
    assert all(frame - 2 <= trimmed <= frame for frame, trimmed in widths), widths
    assert exact >= 0.9 * len(widths), widths


def test_a_square_is_decoded_coarsely_unless_a_frame_may_need_trimming(data_dir: Path) -> None:
    """A photo is decoded at the coarsest DCT scale keeping the square's side; a framed copy at the scale
    keeping twice it, where its frame is trimmed to the inner edge: its square comes out nearer the
    original's than from the coarse decode."""
    fine_distances, coarse_distances, reduced = [], [], 0
    for k, path in enumerate(cfp_photos(data_dir, step=211)[:24]):
        data = path.read_bytes()
        original, image = decode_for_square(data), decode_bytes(data).image
        if not corners_share_a_colour(image):  # no frame is possible: the coarse scale
            assert original.image.size == decode_bytes(data, reduce_to=SQUARE_DECODE_SIDE).image.size
        assert (original.width, original.height) == image.size
        reduced += original.image.size != image.size
        frame = max(2, round(min(image.size) * (0.03 + 0.01 * (k % 10))))
        colour = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 120)][k % 4]
        buffer = io.BytesIO()
        ImageOps.expand(image, border=frame, fill=colour).save(buffer, "JPEG", quality=92)
        framed = buffer.getvalue()
        fine = decode_for_square(framed)
        assert fine.image.size == decode_bytes(framed, reduce_to=FRAME_DECODE_SIDE).image.size, path
        untrimmed = decode_for_square(framed, trim=False)
        assert untrimmed.image.size == decode_bytes(framed, reduce_to=SQUARE_DECODE_SIDE).image.size
        reference = np.frombuffer(square_bytes(original.image), np.uint8).astype(int)
        for decoded, distances in ((fine, fine_distances), (untrimmed, coarse_distances)):
            square = np.frombuffer(square_bytes(decoded.image), np.uint8).astype(int)
            distances.append(np.abs(square - reference).mean())
    assert reduced >= 20  # most of these photos decode below full size for their square
    assert np.mean(fine_distances) < 0.7 * np.mean(coarse_distances), (fine_distances, coarse_distances)
