"""Dedup's verdicts: clusters within an identity, conflicts across identities, review flags, written back.

Each function fills ``values`` (per participant, one list per output column) and ``status`` (per
participant, ``(Status, reason)`` or None) from the candidate pairs and their decisions; :func:`write_back`
scatters them into the shards. See :mod:`curate.stages.dedup` for the rules.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from curate import record
from curate.hashing import hamming_bits
from curate.record import Status
from curate.search.clusters import choose_keepers, cluster_labels
from curate.search.conflicts import FaceEvidence
from curate.search.pairs import Candidates, describe_scores
from curate.search.rows import Participants


def cluster_id(identity_id: str, image_id: str) -> int:
    """A stable non-negative int64 naming a cluster by its identity and kept image."""
    digest = hashlib.sha1(f"{identity_id}/{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def mark_clusters(i: np.ndarray, j: np.ndarray, p: Participants, values: dict, status: list) -> np.ndarray:
    """Cluster within-identity duplicate pairs (connected components); mark every member but the kept one.

    A cluster keeps an ``ok`` member when it has one (``p.kept``); its ``low_score`` members become
    duplicates like the rest, so a review that brings them back cannot bring back a second copy.
    """
    n = len(p.row)
    labels = cluster_labels(n, i, j)
    keepers = choose_keepers(
        labels, p.rank_score, p.resolution, p.image_id, [p.identity_id, p.source], preferred=p.kept
    )
    sizes = np.bincount(labels, minlength=n)
    for member in np.nonzero(sizes[labels] > 1)[0].tolist():
        keeper = int(keepers[member])
        values["dup_cluster"][member] = cluster_id(p.identity_id[keeper], p.image_id[keeper])
        if keeper == member:
            continue
        values["dup_of"][member] = p.image_id[keeper]
        if p.vectors is not None:
            values["dup_distance"][member] = float(1.0 - p.vectors[member] @ p.vectors[keeper])
        if p.codes:
            values["dup_hamming_bits"][member] = int(hamming_bits(p.codes[0][member], p.codes[0][keeper]))
        status[member] = (
            Status.DUPLICATE,
            f"near-duplicate of {p.image_id[keeper]} ({p.source[keeper]})",
        )
    return labels


def mark_reviews(found: Candidates, pending: np.ndarray, p: Participants, values: dict) -> None:
    """Flag both rows of each pending review pair, naming the closest partner."""
    partners: dict[int, int] = defaultdict(int)
    for a, b in zip(found.i[pending].tolist(), found.j[pending].tolist(), strict=True):
        partners[a] += 1
        partners[b] += 1
    for row, other, scores in _best_partners(found, pending, p):
        where = (
            ""
            if p.identity_id[row] == p.identity_id[other]
            else f" under identity '{p.identity_name[other]}'"
        )
        more = f" and {partners[row] - 1} more" if partners[row] > 1 else ""
        values["needs_review"][row] = True
        values["review_reason"][row] = (
            f"possible near-duplicate of {p.image_id[other]} ({p.source[other]}){where}: {scores}{more}"
        )


def mark_conflicts(
    found: Candidates,
    duplicate: np.ndarray,
    across: np.ndarray,
    faces: FaceEvidence | None,
    p: Participants,
    status: list,
) -> tuple[np.ndarray, np.ndarray]:
    """Mark cross-identity pairs ``identity_conflict``; return the (conflict, unconfirmed) pair masks.

    Without face evidence the descriptors decide, as within an identity. With it the face decides: every
    checked pair it confirms is a conflict (a review pair, or a pair the face vectors added), an
    unconfirmed duplicate is not (it goes to review).
    """
    if faces is None:
        cross, unconfirmed = duplicate & across, np.zeros(len(found), bool)
    else:
        cross = across & faces.confirmed
        unconfirmed = duplicate & across & ~faces.confirmed
    for row, other, scores in _best_partners(found, cross, p, faces.describe if faces else None):
        status[row] = (
            Status.IDENTITY_CONFLICT,
            f"same photo as {p.image_id[other]} ({p.source[other]}) under identity "
            f"'{p.identity_name[other]}' ({p.identity_id[other]}): {scores}",
        )
    return cross, unconfirmed


def unconfirmed_reviews(
    found: Candidates, unconfirmed: np.ndarray, faces: FaceEvidence | None, p: Participants, values: dict
) -> None:
    """Send rows of unconfirmed cross-identity duplicates (not already in review) to review."""
    for row, other, scores in _best_partners(found, unconfirmed, p, faces.describe if faces else None):
        if not values["needs_review"][row]:
            values["needs_review"][row] = True
            values["review_reason"][row] = (
                f"same photo as {p.image_id[other]} ({p.source[other]}) under identity "
                f"'{p.identity_name[other]}' by its descriptors, not confirmed by the face: {scores}"
            )


def _best_partners(
    found: Candidates, mask: np.ndarray, p: Participants, more: Callable[[int], str] | None = None
) -> Iterator[tuple[int, int, str]]:
    """For each row in a masked pair: its closest partner (by cosine, bits, image_id) and their scores.

    ``more`` adds text about pair ``k`` to its scores (the face evidence of a cross-identity pair).
    """
    best: dict[int, tuple] = {}
    cosine = np.nan_to_num(found.cosine, nan=-2.0)
    for k in np.nonzero(mask)[0].tolist():
        a, b = int(found.i[k]), int(found.j[k])
        for row, other in ((a, b), (b, a)):
            key = (-float(cosine[k]), int(found.bits[k]), p.image_id[other], p.identity_id[other], other, k)
            if row not in best or key < best[row]:
                best[row] = key
    for row in sorted(best):
        other, k = best[row][-2:]
        scores = describe_scores(float(found.cosine[k]), int(found.bits[k]), float(found.ncc[k]))
        yield row, other, scores if more is None else f"{scores}, {more(k)}"


def write_back(
    tables: dict[int, pa.Table], p: Participants, values: dict, status: list, types: dict[str, pa.DataType]
) -> dict[int, pa.Table]:
    """Scatter participant values back to their shard rows and set their statuses."""
    out: dict[int, pa.Table] = {}
    for shard, table in tables.items():
        columns = {column: [None] * table.num_rows for column in types}
        changed: dict[Status, tuple[list[int], list[str]]] = {}
        for k in np.nonzero(p.shard == shard)[0].tolist():
            row = int(p.row[k])
            for column in types:
                columns[column][row] = values[column][k]
            if status[k] is not None:
                changed.setdefault(status[k][0], ([], []))[0].append(row)
                changed[status[k][0]][1].append(status[k][1])
        table = record.add_columns(table, columns, types)
        for new_status, (rows, reasons) in changed.items():
            table = record.set_status(table, rows, new_status, reasons)
        out[shard] = table
    return out
