"""The numpy pHash / dHash equal imagehash's bit for bit on real photos; squares are what describe uses."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from curate.decode import load_rgb
from curate.hashing import (
    SQUARE_BYTES,
    describe_square,
    hash_images,
    hashes_and_thumbnails,
    hex_to_code,
    shrink,
    square_bytes,
    square_from_bytes,
    thumbnails,
)

REFERENCE = {"phash": imagehash.phash, "dhash": imagehash.dhash}


def cfp_photos(data_dir: Path, step: int = 47) -> list[Path]:
    """Every ``step``-th CFP photo: frontal and profile, all sizes, some greyscale."""
    return sorted((data_dir / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[::step]


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_numpy_hashes_equal_imagehash_on_cfp(data_dir: Path, kind: str) -> None:
    photos = cfp_photos(data_dir)
    assert len(photos) >= 140
    images = [load_rgb(path).image for path in photos]
    squares = [describe_square(shrink(image, 512)) for image in images]  # what describe hashes
    for batch in (images, squares):
        hexes, codes = hash_images(batch, kind)
        expected = [str(REFERENCE[kind](image)) for image in batch]
        assert hexes == expected
        assert codes == [hex_to_code(h) for h in expected]
    # not a constant or degenerate hash: the photos differ
    assert len(set(hexes)) > 0.95 * len(photos)


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
