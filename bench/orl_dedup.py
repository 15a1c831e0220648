"""Default dedup on the ORL faces: which distinct same-sitting photos pass as duplicates, and by which rule.

ORL (AT&T, 40 people x 10 grey 92x112 photos of one sitting) holds no copies, so every duplicate verdict
is wrong. This runs collect -> describe (handcrafted) -> dedup at default settings over ORL subjects
``--first``..``--last`` (one identity per folder), prints the rows marked duplicate per half (s1-s20,
s21-s40) and every within-identity pair that the decision calls a duplicate, with its pHash bits,
handcrafted cosine, aligned thumbnail NCC and the rule that fired (``bits`` / ``cosine`` / ``ncc``).

    python bench/orl_dedup.py --data ../shared/data --show 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neardup_data import Item
from neardup_methods import describe_all, planned

from curate.config import build_config
from curate.search.pairs import classify, find_candidates, strong, verify
from curate.search.rows import gather
from curate.search.verify import aligned_ncc
from curate.stage import local_context
from curate.stages.dedup import DedupStage


def orl_items(root: Path, first: int, last: int) -> list[Item]:
    """Every photo of subjects ``first``..``last``, each its own original (no copies)."""
    items = []
    for s in range(first, last + 1):
        for k in range(1, 11):
            items.append(Item(root / f"s{s}" / f"{k}.pgm", len(items), f"s{s}", f"s{s}/{k}", "original"))
    return items


def main() -> None:
    """Describe once, dedup at default settings, print counts per half and the duplicate pairs."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--last", type=int, default=40)
    parser.add_argument("--dedup", default="{}", help="dedup settings as JSON")
    parser.add_argument("--show", type=int, default=20, help="duplicate pairs to list (highest NCC first)")
    args = parser.parse_args()

    settings = {"confirm_conflicts_with": ""} | json.loads(args.dedup)
    items = orl_items(args.data / "orl_faces", args.first, args.last)
    with tempfile.TemporaryDirectory(prefix="orl-dedup-") as tmp:
        described = describe_all(planned(items, 16), Path(tmp), 2, {"embedders": ["handcrafted"]})
        stage = DedupStage(build_config(DedupStage.Config, settings))
        context = local_context(Path(tmp), "dedup", None, len(described))
        result = stage.run_all(described, context)
        p = gather(described, context, stage.config)
    halves = Counter()
    for table in result.values():
        columns = (table.column(name).to_pylist() for name in ("identity_id", "status"))
        for who, status in zip(*columns, strict=True):
            subject = int(who.removeprefix("person-s"))
            halves["s1-s20" if subject <= 20 else "s21-s40"] += status == "duplicate"
    print("rows marked duplicate:", dict(halves))
    limits = stage.config.thresholds()
    found = find_candidates(p.codes, p.vectors, limits)
    verify(found, p.thumbnails, limits)
    duplicate, review = classify(found, limits, verified=True)
    identity = np.array(p.identity_id, dtype=object)
    within = identity[found.i] == identity[found.j]
    rule = np.where(
        found.bits <= limits.max_hamming_bits, "bits", np.where(strong(found, limits), "cosine", "ncc")
    )
    wrong = duplicate & within
    print(
        f"within-identity candidate pairs {int(within.sum())}: duplicate {int(wrong.sum())} "
        f"({dict(Counter(rule[wrong].tolist()))}), review {int((review & within).sum())}"
    )
    print("(NCC is computed only for pairs no descriptor decides; here for every listed pair)")
    listed = np.nonzero(wrong)[0]
    ncc = aligned_ncc(p.thumbnails[found.i[listed]], p.thumbnails[found.j[listed]])
    ranked = sorted(zip(listed.tolist(), ncc.tolist(), strict=True), key=lambda x: -x[1])
    for k, value in ranked[: args.show]:
        a, b = int(found.i[k]), int(found.j[k])
        who = identity[a].removeprefix("person-")
        print(
            f"  {who}/{p.source[a]} ~ {p.source[b]}: {int(found.bits[k])} bits, "
            f"cosine {found.cosine[k]:.3f}, aligned NCC {value:.3f}, duplicate by {rule[k]}"
        )


if __name__ == "__main__":
    main()
