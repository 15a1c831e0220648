"""The embedded default data: a synthetic "web collection" of procedurally drawn faces with ground truth.

``synthesize(SynthConfig(), out)`` writes ``out/images/<identity>/<identity>_<rank>.jpg`` as a search engine's
export would look (right people, wrong people, near-duplicates, broken files, pictures without a face),
``out/truth.parquet`` saying which is which, and a clean held-out set with an LFW-format pairs file.
"""

from curate.synth.collection import TRUTH_COLUMNS, planned_files, synthesize
from curate.synth.draw import draw_face, photo_jpeg
from curate.synth.heldout import heldout_file
from curate.synth.params import IdentityParams, Nuisance, sample_identity, sample_nuisance
from curate.synth_config import SynthConfig

__all__ = [
    "TRUTH_COLUMNS",
    "IdentityParams",
    "Nuisance",
    "SynthConfig",
    "draw_face",
    "heldout_file",
    "photo_jpeg",
    "planned_files",
    "sample_identity",
    "sample_nuisance",
    "synthesize",
]
