"""Settings of the ``exact`` stage (:mod:`curate.stages.exact`): none; light to import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExactConfig:
    """The ``exact`` step has no settings."""

    def validate(self) -> None:
        """Nothing can be wrong: there are no settings."""
