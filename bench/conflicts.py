"""Precision and recall of ``identity_conflict`` pairs, before and after the face check (issue 12 item 5).

Builds a tree of real CFP photos (Sengupta et al., WACV 2016) with planted cross-identity copies (one photo,
resized, cropped and recompressed, filed under a second identity) and look-alike compositions (DIFFERENT
people's faces pasted into one template: team cards, ID photos, a press-conference lectern), see
``tests/conflictset.py``; also namesakes (another photo of a person filed under a second name: one
person, two photos, not one photo). Runs collect -> faces -> describe -> dedup in process, as
``pipelines/cfp.toml`` does (describe on the aligned crops), and again with describe on the whole images
(no faces stage), and scores dedup's conflicts with the face check off (``confirm_conflicts_with = ""``,
the old rule) and on (the default).

A flagged pair is a conflict row and the partner its reason names; it is right when both are copies of
one photo. Recall counts planted copies whose row and original are both ``identity_conflict``.

    python bench/conflicts.py --identities 60 --copies 24 --templates 30
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the planted-set builder lives beside the tests

import conflictset  # noqa: E402
from neardup import SAME_PHOTO  # noqa: E402

from curate.config import build_config  # noqa: E402
from curate.stage import local_context  # noqa: E402
from curate.stages.dedup import DedupStage  # noqa: E402
from curate.stages.describe import DescribeStage  # noqa: E402
from curate.stages.faces import FacesStage  # noqa: E402
from curate.stages.ingest import IngestConfig, IngestStage  # noqa: E402

# CFP photos that are one photo but not in bench/neardup.py's list (it covers part of CFP): looked at by eye
# at full size after the face check linked them (the same face, expression and pose; background replaced).
LOOKED_AT = [("003/frontal/02", "003/frontal/10")]
PARTNER = re.compile(r"^same photo as ([0-9a-f]{64}) ")
FACE = re.compile(r"face cosine (-?[0-9.]+), face NCC (-?[0-9.]+)")


def prepare(root: Path, work: Path, crops: bool) -> pa.Table:
    """collect (-> faces) -> describe on one shard; returns the described table."""
    stage = IngestStage(IngestConfig(source=root))
    table = stage.run_shard(stage.plan(work, 1)[0], local_context(work, "collect", 0, 1))
    if crops:
        table = FacesStage(build_config(FacesStage.Config, {})).run_shard(
            table, local_context(work, "faces", 0, 1)
        )
    settings = {"hashes": ["phash", "dhash"], "embedders": ["handcrafted", "dlib"]}  # as pipelines/cfp.toml
    describe = DescribeStage(build_config(DescribeStage.Config, settings))
    return describe.run_shard(table, local_context(work, "describe", 0, 1))


def score(table: pa.Table, truth: conflictset.ConflictSet) -> dict[str, float]:
    """Flagged pairs, their precision, look-alike pairs flagged, and recall over planted copies."""
    rows = table.to_pylist()
    relative = {row["image_id"]: str(Path(row["source"]).relative_to(truth.root)) for row in rows}
    status = {relative[row["image_id"]]: row["status"] for row in rows if row["image_id"]}
    group: dict[str, int] = {}
    for k, (original, copy) in enumerate(truth.conflicts):
        group[copy] = group.setdefault(original, k)
    lookalikes = {frozenset(pair) for pair in truth.lookalikes}
    namesakes = {frozenset(pair) for pair in truth.namesakes}
    flagged = set()
    for row in rows:
        found = PARTNER.match(row["reason"] or "") if row["status"] == "identity_conflict" else None
        if found:
            flagged.add(frozenset((relative[row["image_id"]], relative[found.group(1)])))
    wrong = [pair for pair in flagged if len({group.get(p, -1 - i) for i, p in enumerate(pair)}) != 1]
    missed = [
        f"{original} {status[original]} / {copy} {status[copy]}"
        for original, copy in truth.conflicts
        if not status[original] == status[copy] == "identity_conflict"
    ]
    same_photo, other = [], []
    for row in rows:
        for text in (row["reason"], row.get("review_reason")):
            partner, face = PARTNER.match(text or ""), FACE.search(text or "")
            if partner and face:
                pair = (relative[row["image_id"]], relative[partner.group(1)])
                twins = group.get(pair[0], -1) == group.get(pair[1], -2)
                (same_photo if twins else other).append((float(face.group(1)), float(face.group(2))))
    return {
        "face_same_photo": same_photo,
        "face_other": other,
        "flagged_pairs": len(flagged),
        "precision": 1 - len(wrong) / len(flagged) if flagged else 1.0,
        "lookalikes_flagged": len(flagged & lookalikes),
        "namesakes_flagged": len(flagged & namesakes),
        "recall": 1 - len(missed) / len(truth.conflicts),
        "wrong": [" + ".join(sorted(pair)) for pair in wrong],
        "missed": missed,
        "review_rows": sum(1 for row in rows if row.get("needs_review")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--copies", type=int, default=24)
    parser.add_argument("--templates", type=int, default=30)
    parser.add_argument("--people", type=int, default=2, help="different people per template")
    parser.add_argument("--namesakes", type=int, default=12, help="other photos filed under a second name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="list wrong pairs and missed copies (check on)")
    args = parser.parse_args()
    identities = [f"{i:03d}" for i in range(1, args.identities + 1)]
    print(
        f"{args.identities} CFP identities x 3 originals, {args.copies} planted copies, "
        f"{args.templates} templates x {args.people} people, {args.namesakes} namesakes (seed {args.seed})"
    )
    print(
        "| describe on | face check | flagged pairs | precision | look-alikes flagged | namesakes flagged "
        "| recall | review rows | dedup s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="curate-conflicts-") as tmp:
        truth = conflictset.build(
            args.data,
            Path(tmp) / "images",
            identities,
            copies=args.copies,
            templates=args.templates,
            people_per_template=args.people,
            namesakes=args.namesakes,
            seed=args.seed,
            same_photo=[*SAME_PHOTO, *LOOKED_AT],
        )
        faces: list[dict] = []
        for crops in (True, False):
            work = Path(tmp) / ("crops" if crops else "whole")
            described = prepare(truth.root, work, crops)
            for check in ("", "dlib"):
                stage = DedupStage(build_config(DedupStage.Config, {"confirm_conflicts_with": check}))
                started = time.perf_counter()
                out = stage.run_all({0: described}, local_context(work, "dedup", None, 1))[0]
                seconds = time.perf_counter() - started
                s = score(out, truth)
                print(
                    f"| {'aligned crops' if crops else 'whole images'} | {check or 'off (before)'} | "
                    f"{s['flagged_pairs']} | {s['precision']:.3f} | {s['lookalikes_flagged']} of "
                    f"{len(truth.lookalikes)} | {s['namesakes_flagged']} | {s['recall']:.3f} | "
                    f"{s['review_rows']} | {seconds:.1f} |",
                    flush=True,
                )
                faces.append(s)
                if args.show and check:
                    for line in [
                        *(f"  wrong: {w}" for w in s["wrong"]),
                        *(f"  missed: {m}" for m in s["missed"]),
                    ]:
                        print(line)
        for name, key, pick in (("one photo", "face_same_photo", min), ("two photos", "face_other", max)):
            scores = [score for s in faces for score in s[key]]
            if scores:
                cosine, ncc = pick(c for c, _ in scores), pick(n for _, n in scores)
                print(
                    f"face check, pairs of {name}: {len(scores)} rows, {pick.__name__} face cosine "
                    f"{cosine:.3f}, {pick.__name__} face NCC {ncc:.3f}"
                )


if __name__ == "__main__":
    main()
