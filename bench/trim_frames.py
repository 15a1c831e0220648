"""How exactly the describe square's frame trim removes frames added to copies, and how rarely it cuts photos.

The near-duplicate set (``bench/neardup_data.py``) plants "border" copies: a photo framed in black, white,
grey or dark blue, 3-12 % of its shorter side on every side, saved as JPEG (quality 92). For each framed
copy this compares the width :func:`curate.hashing.trim_uniform_border` removes with the frame's true width
(half the difference in size from its original), and it counts originals (no frame added) that get trimmed
at all. Frames leave a line or two tinted by JPEG's chroma subsampling at their inner edge; a trim that
stops there leaves that line in the copy's square.

The border copies are split in two halves by their order in the set: the rule was chosen on the first
``--calibrate`` copies (all CFP), and the rest (the remaining CFP copies, then the synthetic draws) report it.

    python bench/trim_frames.py [--data ../shared/data] [--size 50000] [--calibrate 1000]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neardup_data import Item, build_set

from curate.decode import load_rgb
from curate.hashing import trim_uniform_border

OUTCOMES = ("exact", "1-2 px left", "more left", "1-2 px too much", "more too much")


def trimmed_width(item: Item) -> tuple[tuple[int, int], int]:
    """The decoded image's size and the width trimmed from each side."""
    image = load_rgb(item.path).image
    assert image is not None, item.path
    return image.size, (image.size[0] - trim_uniform_border(image).size[0]) // 2


def outcome(error: int) -> str:
    """The table column of a trim that removed ``error`` pixels more (+) or less (-) than the frame."""
    if error == 0:
        return "exact"
    if error < 0:
        return "1-2 px left" if error >= -2 else "more left"
    return "1-2 px too much" if error <= 2 else "more too much"


def main() -> None:
    """Print the table: framed copies by how exactly their frame was trimmed, per half and source."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--size", type=int, default=50000, help="files of the near-duplicate set to read")
    parser.add_argument("--calibrate", type=int, default=1000, help="border copies in the calibration half")
    args = parser.parse_args()
    cfp = args.data / "cfp" / "Data" / "Images"
    items = build_set(cfp, Path(__file__).parent / "out" / "neardup", args.size)
    originals = {item.group: item for item in items if item.transform == "original"}
    framed = [item for item in items if item.transform == "border" and item.group in originals]
    counts: Counter[tuple[str, str, str]] = Counter()
    for k, copy in enumerate(framed):
        (width, _), trimmed = trimmed_width(copy)
        (original_width, _), _ = trimmed_width(originals[copy.group])
        half = "calibration" if k < args.calibrate else "report"
        source = "CFP" if copy.identity[0].isdigit() else "synthetic"
        counts[(half, source, outcome(trimmed - (width - original_width) // 2))] += 1
    cut = Counter(trimmed_width(item)[1] > 0 for item in originals.values())
    print(f"{len(framed):,} framed copies in the first {args.size:,} files\n")
    print("| half | source | copies | " + " | ".join(OUTCOMES) + " |")
    print("|---|---|---|" + "---|" * len(OUTCOMES))
    for half, source in sorted({key[:2] for key in counts}):
        row = [counts[(half, source, name)] for name in OUTCOMES]
        print(f"| {half} | {source} | {sum(row):,} | " + " | ".join(f"{n:,}" for n in row) + " |")
    print(f"\noriginals trimmed (no frame was added): {cut[True]:,} of {len(originals):,}")


if __name__ == "__main__":
    main()
