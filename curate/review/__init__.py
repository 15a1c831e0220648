"""Manual review: plan blocks of images for people, serve a review page, apply their decisions.

Library API (what ``curate review ...`` and the demo use)::

    from curate.review import export_review, read_plan, record_decisions, apply_decisions
    result = export_review(workdir)                         # plan + Parquet/CSV/contact sheets
    plan = read_plan(result.out)
    frame = decide_from_truth(plan, "synth/truth.parquet")  # or any DataFrame of decision rows
    record_decisions(workdir, frame)                        # validated, stored in the SQLite log
    applied = apply_decisions(workdir)                      # writes the ``review`` stage

Decision rows use the CSV columns ``image_id,decision,reviewer,time,note,identity_id,target``
(``manifests/review.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Resolved on first use, so the review stage can import curate.review.* without pulling in dask.
_EXPORTS = {
    "ApplyResult": "apply",
    "apply_decisions": "apply",
    "record_decisions": "apply",
    "RULE": "decisions",
    "read_csv": "decisions",
    "write_csv": "decisions",
    "ExportResult": "export",
    "export_review": "export",
    "read_plan": "export",
    "ReviewPlan": "plan",
    "build_plan": "plan",
    "decide_from_truth": "scripted",
    "review_input_stage": "source",
    "store_path": "source",
    "DecisionStore": "store",
    "Event": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'curate.review' has no attribute {name!r}")
    return getattr(importlib.import_module(f"curate.review.{_EXPORTS[name]}"), name)
