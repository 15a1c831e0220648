"""Settings of the ``collect`` stage for folders (:mod:`curate.stages.ingest`); light to import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from curate.errors import ConfigError
from curate.settings import setting


@dataclass
class IngestConfig:
    """Settings of ``curate collect DIR``."""

    source: Path = setting(
        help="the folder holding one sub-folder per identity (or a URL list: see download)", argument=True
    )
    names_file: Path | None = setting(None, help="line N names numbered folder N (CFP's Data/list_name.txt)")
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS,
        help="larger images are unsafe_input (decompression-bomb guard)",
        unit="pixels",
        min=1,
    )
    follow_symlinks: bool = setting(
        False, help="enter symlinked folders and read symlinks pointing out of the tree"
    )
    max_file_bytes: int = setting(
        DEFAULT_MAX_BYTES, help="larger files are unsafe_input, never read into memory", unit="bytes", min=1
    )
    case_sensitive_names: bool = setting(
        False, help="keep folders differing only in case apart (docs/collect.md)"
    )
    squares: bool = setting(
        False,
        help="also store describe's 64x64 square per image, so describe need not decode again "
        "(when describe runs with --embedders handcrafted: a face model reads the crops)",
    )

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the key and the fix for a bad value."""
        if not Path(self.source).is_dir():
            raise ConfigError(
                "source", str(self.source), "give an existing folder with one sub-folder per identity"
            )
        if self.names_file is not None and not Path(self.names_file).is_file():
            raise ConfigError(
                "names_file", str(self.names_file), "give an existing text file, one name per line"
            )
