"""Settings of the ``select`` stage (:mod:`curate.stages.select`); light to import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import ConfigError
from curate.settings import setting


@dataclass
class SelectConfig:
    """Which candidates list to apply and how many images an identity needs."""

    candidates: Path | None = setting(
        None, help="candidates list (default: <workdir>/candidates/candidates.parquet when it exists)"
    )
    min_images: int = setting(
        0, help="identities with fewer ok images get too_few_images (0 = no minimum)", unit="images", min=0
    )

    def validate(self) -> None:
        """Raise ConfigError on a value that cannot work."""
        if self.candidates is not None and not Path(self.candidates).is_file():
            raise ConfigError(
                "candidates", str(self.candidates), "give an existing candidates.parquet (curate candidates)"
            )
