"""Name normalisation: match keys for comparing names, stable filesystem-safe identity ids, merge reports.

The folding rule (documented in ``docs/collect.md``): Unicode compatibility forms (NFC/NFD/NFKC) always
fold; accents, case and punctuation/spacing fold too, except case when ``case_sensitive`` is set.
Names that fold to one identity are reported by :func:`name_merges`, never merged silently.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def match_key(name: str, case_sensitive: bool = False) -> str:
    """Return the key two spellings of one name share.

    NFKC, accents stripped, case folded (unless ``case_sensitive``), underscores/spaces/punctuation
    collapsed to single spaces. ``"Jennifer_Aniston"``, ``"jennifer  aniston"`` and ``"Jennifer Aniston."``
    share one key.
    """
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text if case_sensitive else text.casefold()
    text = re.sub(r"[\W_]+", " ", text, flags=re.UNICODE)
    return " ".join(text.split())


def identity_id(name: str, case_sensitive: bool = False) -> str:
    """Return a stable, filesystem-safe id for an identity name: ``<ascii slug>-<8 hex>``.

    The same match key always gives the same id. The id holds only ``[a-z0-9-]``, so names such as
    ``".."`` or ``"a/b"`` can never escape a folder when the id is used as a path component. With
    ``case_sensitive``, names differing in case get different ids (the slug stays lower case).
    """
    key = match_key(name, case_sensitive)
    # names with no letters or digits ("..", "") still get a distinct, stable id from their raw text
    hashed = key or "\x00raw:" + name
    digest = hashlib.sha1(hashed.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = _NON_ALNUM.sub("-", ascii_key.lower()).strip("-")[:40].strip("-") or "id"
    return f"{slug}-{digest}"


def fold_kinds(names: Sequence[str]) -> list[str]:
    """What folded ``names``: ``same name``, ``unicode form``, ``case``, ``accents`` or ``punctuation``.

    Each name after the first is matched with the earlier name it is closest to: the earliest step of the
    match key that makes the two equal (``punctuation`` when only the whole key does).
    """
    steps = [
        ("same name", lambda t: t),
        ("unicode form", lambda t: unicodedata.normalize("NFKC", t)),
        ("case", lambda t: unicodedata.normalize("NFKC", t).casefold()),
        ("accents", lambda t: _strip_accents(t).casefold()),
    ]
    labels = [label for label, _ in steps] + ["punctuation"]
    kinds: set[str] = set()
    for position, name in enumerate(names[1:], start=1):
        closest = min(
            next((i for i, (_, key) in enumerate(steps) if key(name) == key(earlier)), len(steps))
            for earlier in names[:position]
        )
        kinds.add(labels[closest])
    return sorted(kinds)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_merges(identity_ids: Sequence[str], names: Sequence[str], origins: Sequence[str]) -> list[dict]:
    """Identities that more than one origin (identity folder, or list name) folded into, sorted by id.

    Each entry: ``identity_id``, the distinct ``names`` and ``origins`` (as given, so NFC and NFD spellings
    both appear) and the ``kinds`` of folding (:func:`fold_kinds`). Rows with an empty name are ignored.
    """
    grouped: dict[str, dict[str, str]] = {}
    for ident, name, origin in zip(identity_ids, names, origins, strict=True):
        if name:
            grouped.setdefault(ident, {}).setdefault(origin, name)
    merges = []
    for ident, by_origin in sorted(grouped.items()):
        if len(by_origin) > 1:
            origins_sorted = sorted(by_origin)
            names_in_order = [by_origin[origin] for origin in origins_sorted]
            merges.append(
                {
                    "identity_id": ident,
                    "names": list(dict.fromkeys(names_in_order)),
                    "origins": origins_sorted,
                    "kinds": fold_kinds(names_in_order),
                }
            )
    return merges


def shown(name: str) -> str:
    """A name quoted for a message, marked ``[NFD]`` when it is not in NFC form (else two look the same)."""
    return repr(name) + ("" if unicodedata.is_normalized("NFC", name) else " [NFD]")


def merge_summary(merges: Sequence[dict], case_sensitive: bool, limit: int = 3) -> str | None:
    """One line on the identities that several names folded into, or None when there were none."""
    if not merges:
        return None
    origins = sum(len(m["origins"]) for m in merges)
    kinds = sorted({kind for m in merges for kind in m["kinds"]})
    listed = "; ".join(
        f"{m['identity_id']} <- {', '.join(shown(o) for o in m['origins'])}" for m in merges[:limit]
    )
    more = f"; and {len(merges) - limit} more" if len(merges) > limit else ""
    rule = "case kept apart" if case_sensitive else "case folded; --case-sensitive-names keeps it apart"
    return (
        f"name merges: {origins} names folded into {len(merges)} "
        f"{'identity' if len(merges) == 1 else 'identities'} ({', '.join(kinds)}): "
        f"{listed}{more} ({rule}; all listed under name_merges in collect/_stats)"
    )
