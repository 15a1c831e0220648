"""Evaluation aligns images as the workdir's faces stage did, runs saved before a setting included."""

from __future__ import annotations

import json
from pathlib import Path

from curate import storage
from curate.evaluate.run import faces_config


def _save(workdir: Path, config: dict) -> None:
    path = storage.config_path(workdir, "faces")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config}))


def test_saved_faces_config_is_followed_and_older_runs_keep_centerface_points(tmp_path: Path) -> None:
    _save(tmp_path / "old", {"detector": "centerface", "crop_size": 112})
    old = faces_config(tmp_path / "old")
    assert old.crop_size == 112 and old.dlib_landmarks_max_yaw == 0.0  # as those crops were made
    _save(tmp_path / "new", {"detector": "centerface", "dlib_landmarks_max_yaw": 45.0})
    assert faces_config(tmp_path / "new").dlib_landmarks_max_yaw == 45.0
    fresh = faces_config(None)
    assert fresh.dlib_landmarks_max_yaw == 60.0 and fresh.keep_whole_if_no_face and fresh.min_face_px == 0
