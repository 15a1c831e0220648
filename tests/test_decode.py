"""Safe decoding on real files: each bad kind built for real, every Pillow mode to RGB, and a small fuzz."""

from __future__ import annotations

import io
import os
import random
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from curate.decode import (
    DEFAULT_MAX_PIXELS,
    Decoded,
    decode_bytes,
    describe_non_image,
    load_rgb,
    sniff_format,
)
from curate.record import Status
from curate.safe_read import read_file


@pytest.fixture(scope="module")
def cfp_jpeg(data_dir: Path) -> bytes:
    return (data_dir / "cfp/Data/Images/001/frontal/01.jpg").read_bytes()


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 8-bit grey pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * min(height * (width + 1), 1 << 16))  # complete only for small sizes
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def pixels(decoded: Decoded) -> np.ndarray:
    assert decoded.status is Status.OK, decoded.reason
    assert decoded.image is not None and decoded.image.mode == "RGB"
    return np.asarray(decoded.image).astype(int)


def test_real_jpeg_and_pgm_decode(data_dir: Path, cfp_jpeg: bytes) -> None:
    decoded = decode_bytes(cfp_jpeg)
    with Image.open(io.BytesIO(cfp_jpeg)) as reference:
        assert (decoded.width, decoded.height) == reference.size
    assert (decoded.format, decoded.n_frames, decoded.reason) == ("JPEG", 1, "")
    pgm = load_rgb(data_dir / "orl_faces/s1/1.pgm")
    assert (pgm.format, pgm.mode, pgm.width, pgm.height) == ("PPM", "L", 92, 112)
    grey = pixels(pgm)
    assert (grey[..., 0] == grey[..., 2]).all() and grey.std() > 10


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated_jpeg_and_png_fail(cfp_jpeg: bytes, fraction: float) -> None:
    png = encode(Image.open(io.BytesIO(cfp_jpeg)), "PNG")
    for data, fmt in ((cfp_jpeg, "JPEG"), (png, "PNG")):
        decoded = decode_bytes(data[: int(len(data) * fraction)])
        assert decoded.status is Status.FAILED_DECODE, (fmt, fraction)
        assert decoded.image is None and decoded.format == fmt
        assert "truncated" in decoded.reason or "cannot" in decoded.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty file"),
        (b"<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>", "not an image: HTML document"),
        (b"\xef\xbb\xbf  <html lang='en'>", "not an image: HTML document"),
        (b"%PDF-1.7\n%\xe2\xe3", "not an image: PDF document"),
        (b'{"error": "not found"}', "not an image: JSON text"),
        (b"just some words\n", "not an image: text file"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "not an image: SVG document"),
        (bytes(range(256)) * 4, "not an image: unknown binary"),
    ],
)
def test_non_images_are_described(data: bytes, expected: str) -> None:
    decoded = decode_bytes(data)
    assert decoded.status is Status.FAILED_DECODE
    assert decoded.reason.startswith(expected)
    assert sniff_format(data) is None
    assert describe_non_image(data) in decoded.reason


def test_sniff_format_of_real_encodings(cfp_jpeg: bytes) -> None:
    face = Image.open(io.BytesIO(cfp_jpeg)).convert("RGB").resize((32, 32))
    cases = {
        "JPEG": cfp_jpeg,
        "PNG": encode(face, "PNG"),
        "GIF": encode(face, "GIF"),
        "WEBP": encode(face, "WEBP"),
        "BMP": encode(face, "BMP"),
        "TIFF": encode(face, "TIFF"),
        "PPM": encode(face, "PPM"),
    }
    cases["PPM (PGM)"] = encode(face.convert("L"), "PPM")
    cases["PPM (PBM)"] = encode(face.convert("1"), "PPM")
    for name, data in cases.items():
        assert sniff_format(data) == name.split()[0], name
        assert decode_bytes(data).status is Status.OK, name
    assert sniff_format(b"BM but not a bitmap at all") is None


def test_declared_bomb_is_unsafe_before_decoding() -> None:
    decoded = decode_bytes(png_declaring(100_000, 100_000))  # over twice Pillow's limit: its error
    assert decoded.status is Status.UNSAFE_INPUT and "decompression bomb" in decoded.reason
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow only warns here; the header check refuses
        decoded = decode_bytes(png_declaring(12_000, 12_000), max_pixels=10**9)
    assert decoded.status is Status.UNSAFE_INPUT and "PIL.Image.MAX_IMAGE_PIXELS" in decoded.reason
    decoded = decode_bytes(png_declaring(5000, 2000), max_pixels=9_999_999)
    assert decoded.status is Status.UNSAFE_INPUT
    assert (decoded.width, decoded.height) == (5000, 2000) and "max_pixels" in decoded.reason
    assert decode_bytes(png_declaring(4, 16), max_pixels=63).status is Status.UNSAFE_INPUT
    assert decode_bytes(png_declaring(8, 8), max_pixels=64).status is Status.OK
    assert Image.MAX_IMAGE_PIXELS is not None and DEFAULT_MAX_PIXELS < Image.MAX_IMAGE_PIXELS


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 12, 12))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    decoded = decode_bytes(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert (decoded.width, decoded.height) == (40, 60)
    shown = pixels(decoded)
    assert shown[4, 35, 0] > 200 and shown[4, 35, 2] < 60  # red moved to the top-right
    assert shown[4, 4, 2] > 200 and shown[4, 4, 0] < 60


def test_every_exif_orientation_gives_pillows_transposed_pixels() -> None:
    """The decoded image is the opened one turned in place (no copy): the very pixels and size that
    ``ImageOps.exif_transpose`` gives, for all eight orientations, at full and at reduced scale."""
    stored = Image.fromarray(np.random.default_rng(6).integers(0, 256, (300, 420, 3), dtype=np.uint8))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encode(stored, "JPEG", exif=exif.tobytes(), quality=90)
        for reduce_to in (0, 128):
            decoded = decode_bytes(data, reduce_to=reduce_to)
            with Image.open(io.BytesIO(data)) as opened:
                if reduce_to:
                    opened.draft("RGB", (reduce_to, reduce_to))
                expected = np.asarray(ImageOps.exif_transpose(opened))
            assert np.array_equal(pixels(decoded), expected), (orientation, reduce_to)
            turned = orientation >= 5
            assert (decoded.width, decoded.height) == ((300, 420) if turned else (420, 300))


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_bytes(encode(cmyk, "JPEG", quality=95))
    assert decoded.mode == "CMYK"
    assert np.abs(pixels(decoded)[16, 16] - [255, 0, 0]).max() < 30


def test_sixteen_bit_gradient_keeps_its_gradient() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    for fmt in ("PNG", "TIFF"):
        decoded = decode_bytes(encode(Image.fromarray(ramp), fmt))
        assert decoded.mode.startswith("I;16"), fmt
        row = pixels(decoded)[0, :, 0]
        assert np.abs(row - np.arange(256)).max() <= 1, fmt


def test_float_and_int32_images_are_rescaled() -> None:
    stretched = pixels(
        decode_bytes(encode(Image.fromarray(np.linspace(-5, 5, 200, dtype=np.float32)[None]), "TIFF"))
    )
    assert stretched[0, 0, 0] == 0 and stretched[0, -1, 0] == 255 and (np.diff(stretched[0, :, 0]) >= 0).all()
    unit = pixels(decode_bytes(encode(Image.fromarray(np.full((2, 2), 0.5, np.float32)), "TIFF")))
    assert unit[0, 0, 0] == 128
    wide = np.tile(np.arange(0, 65536, 4096, dtype=np.int32), (2, 1))
    decoded = decode_bytes(encode(Image.fromarray(wide), "TIFF"))
    assert decoded.mode == "I"
    assert np.abs(pixels(decoded)[0, :, 0] - np.rint(wide[0] / 257)).max() <= 1


def test_transparency_is_composited_on_white() -> None:
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 200, 0, 10, 10, 10])
    palette.paste(1, (0, 0, 4, 8))
    for fmt in ("PNG", "GIF"):
        decoded = decode_bytes(encode(palette, fmt, transparency=1))
        assert decoded.mode == "P"
        out = pixels(decoded)
        assert (out[0, 0] == 255).all(), fmt  # transparent index -> white, not the palette's near-black
        assert list(out[0, 7]) == [0, 200, 0], fmt
    half = pixels(decode_bytes(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG")))
    assert np.abs(half[0, 0] - 127).max() <= 1
    grey_alpha = pixels(decode_bytes(encode(Image.new("LA", (4, 4), (0, 0)), "PNG")))
    assert (grey_alpha == 255).all()
    opaque = pixels(decode_bytes(encode(palette, "PNG")))  # no transparency: the palette colour stays
    assert list(opaque[0, 0]) == [10, 10, 10]


def test_one_bit_and_grey_modes() -> None:
    bits = Image.new("1", (8, 8), 0)
    bits.paste(1, (0, 0, 8, 4))
    out = pixels(decode_bytes(encode(bits, "PNG")))
    assert (out[:4] == 255).all() and (out[4:] == 0).all()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_first_frame_and_frame_count(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    decoded = decode_bytes(data)
    assert decoded.n_frames == 3
    assert np.abs(pixels(decoded)[8, 8] - [255, 0, 0]).max() < 8


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt metadata it skips
def test_fuzzed_bytes_never_raise(cfp_jpeg: bytes) -> None:
    rng = random.Random(1234)
    face = Image.open(io.BytesIO(cfp_jpeg)).convert("RGB").resize((48, 48))
    seeds = [cfp_jpeg] + [encode(face, fmt) for fmt in ("PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM")]
    samples: list[bytes] = []
    for seed in seeds:
        samples += [seed[: rng.randrange(len(seed))] for _ in range(12)]
        for _ in range(12):
            flipped = bytearray(seed)
            for _ in range(rng.randrange(1, 8)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            samples.append(bytes(flipped))
        samples += [seed[:16] + rng.randbytes(rng.randrange(200)) for _ in range(6)]
    samples += [rng.randbytes(rng.randrange(1, 300)) for _ in range(40)]
    seen: set[Status] = set()
    for data in samples:
        decoded = decode_bytes(data, max_pixels=1_000_000)
        assert decoded.status in (Status.OK, Status.FAILED_DECODE, Status.UNSAFE_INPUT)
        assert (decoded.image is None) == (decoded.status is not Status.OK)
        assert (decoded.reason == "") == (decoded.status is Status.OK)
        seen.add(decoded.status)
    assert {Status.OK, Status.FAILED_DECODE} <= seen  # the fuzz reaches both the decoders and the guards


def test_read_file_refuses_what_it_should(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * 1000)
    assert read_file(big, max_bytes=100).status is Status.UNSAFE_INPUT
    assert read_file(big).data == big.read_bytes()
    assert read_file(tmp_path).reason == "not a regular file (directory)"
    os.mkfifo(tmp_path / "pipe.jpg")  # opening must not block waiting for a writer
    assert read_file(tmp_path / "pipe.jpg").reason == "not a regular file (named pipe)"
    missing = load_rgb(tmp_path / "missing.jpg")
    assert (missing.status, missing.reason) == (Status.FAILED_DECODE, "unreadable: file not found")


def test_permission_denied_is_failed_decode() -> None:
    """As root the check runs in a forked child that drops to ``nobody``, so the file mode is enforced."""
    folder = Path(tempfile.mkdtemp(prefix="curate-perm-"))
    try:
        folder.chmod(0o755)
        secret = folder / "secret.jpg"
        secret.write_bytes(b"\xff\xd8\xff")
        secret.chmod(0)
        if os.geteuid() != 0:
            read = read_file(secret)
            assert (read.status, read.reason) == (Status.FAILED_DECODE, "unreadable: permission denied")
            return
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child process, which must never return to pytest
            try:
                os.setgid(65534)
                os.setuid(65534)
                read = read_file(secret)
                os.write(writer, f"{read.status.value}|{read.reason}".encode())
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            answer = pipe.read().decode()
        os.waitpid(child, 0)
        assert answer == "failed_decode|unreadable: permission denied"
    finally:
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()


def test_reduced_jpeg_decode_keeps_the_checks_and_the_full_size(cfp_jpeg: bytes) -> None:
    photo = Image.open(io.BytesIO(cfp_jpeg)).convert("RGB").resize((600, 400))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown a quarter turn clockwise: 400 wide, 600 high
    data = encode(photo, "JPEG", exif=exif.tobytes(), quality=90)
    full, reduced = decode_bytes(data), decode_bytes(data, reduce_to=128)
    assert (full.width, full.height) == (reduced.width, reduced.height) == (400, 600)
    assert full.image is not None and full.image.size == (400, 600)
    assert reduced.image is not None and reduced.image.size == (200, 300)  # 1/2: 1/4 would be under 128
    halved = np.asarray(full.image.reduce(2)).astype(int)
    assert np.abs(pixels(reduced) - halved).mean() < 4  # the same picture, at half the size
    small = encode(photo.resize((200, 150)), "JPEG")
    assert decode_bytes(small, reduce_to=128).image.size == (200, 150)  # 1/2 would be under 128
    assert decode_bytes(encode(photo, "PNG"), reduce_to=128).image.size == (600, 400)  # JPEG only
    for fraction in (0.3, 0.6, 0.9):  # every byte is still decoded: a cut file fails as in full
        cut = decode_bytes(data[: int(len(data) * fraction)], reduce_to=128)
        assert (cut.status, cut.image) == (Status.FAILED_DECODE, None), fraction
