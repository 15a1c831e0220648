"""Settings of the ``review`` stage (:mod:`curate.stages.review`); light to import."""

from __future__ import annotations

from dataclasses import dataclass

from curate.settings import setting


@dataclass
class ReviewConfig:
    """Settings of the ``review`` stage."""

    decisions: str = setting("", help="the decision log ('' = <workdir>/_review/decisions.sqlite)")
    digest: str = setting("", help="fingerprint of the decisions applied (recorded by 'curate review apply')")

    def validate(self) -> None:
        """Nothing to check before the run: the log is checked when it is read."""
