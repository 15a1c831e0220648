"""``curate faces``: detect, align and crop faces in the collected images (the ``faces`` stage)."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.commands.common import INPUT_HELP, run_stage_command
from curate.faces import DetectorKind


def register(app: typer.Typer) -> None:
    """Add the ``faces`` command to ``app``."""

    @app.command("faces")
    def faces(
        ctx: typer.Context,
        detector: Annotated[
            DetectorKind | None,
            typer.Option(help="centerface (default: frontal and profile), hog or cnn (dlib)"),
        ] = None,
        upsample: Annotated[
            int | None, typer.Option(help="dlib: image doublings before detection (0-3)")
        ] = None,
        retry_detector: Annotated[
            DetectorKind | None,
            typer.Option(help="on a miss, detect again with this one (cnn: more poses)"),
        ] = None,
        retry_upsample: Annotated[int | None, typer.Option(help="upsample of the second pass")] = None,
        retry_max_side: Annotated[
            int | None, typer.Option(help="longest side the second pass sees (0 = any)")
        ] = None,
        crop_size: Annotated[int | None, typer.Option(help="side of the aligned crop in pixels")] = None,
        padding: Annotated[float | None, typer.Option(help="margin around the face (dlib: 0.25)")] = None,
        keep_whole_if_no_face: Annotated[
            bool | None,
            typer.Option(
                "--keep-whole-if-no-face/--no-keep-whole-if-no-face",
                help="for pre-cropped data sets: keep the whole image as the crop when no face is found",
            ),
        ] = None,
        min_face_px: Annotated[int | None, typer.Option(help="ignore smaller faces (0 = off)")] = None,
        max_side: Annotated[
            int | None, typer.Option(help="shrink larger images before detection (0 = never)")
        ] = None,
        max_pixels: Annotated[int | None, typer.Option(help="refuse images with more pixels")] = None,
        input_stage: Annotated[str | None, typer.Option("--input", help=INPUT_HELP)] = None,
        overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
    ) -> None:
        """Detect, align (5 points) and crop the subject's face in every ok image."""
        settings = {
            "detector": detector,
            "upsample": upsample,
            "retry_detector": retry_detector,
            "retry_upsample": retry_upsample,
            "retry_max_side": retry_max_side,
            "crop_size": crop_size,
            "padding": padding,
            "keep_whole_if_no_face": keep_whole_if_no_face,
            "min_face_px": min_face_px,
            "max_side": max_side,
            "max_pixels": max_pixels,
        }
        run_stage_command(ctx, "faces", settings, overwrite, input_stage=input_stage)
