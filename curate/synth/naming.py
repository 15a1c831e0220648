"""Made-up person names for synthetic identities, LFW style (``First_Last``)."""

from __future__ import annotations

import numpy as np

_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "m", "k", "th")


def _word(rng: np.random.Generator, syllables: int) -> str:
    parts = [
        str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))
        for _ in range(syllables)
    ]
    return "".join(parts).capitalize()


def make_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct ASCII names ``First_Last``, safe as folder names and in a pairs file.

    Names are also distinct after case folding, so they never collide on a case-insensitive file system
    or under :func:`curate.names.match_key`.
    """
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = f"{_word(rng, int(rng.integers(1, 3)))}_{_word(rng, int(rng.integers(2, 4)))}"
        if name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    return names
