"""Name normalisation: match keys for comparing names and stable, filesystem-safe identity ids."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def match_key(name: str) -> str:
    """Return the key two spellings of one name share.

    NFKC, accents stripped, case folded, underscores/spaces/punctuation collapsed to single spaces.
    ``"Jennifer_Aniston"``, ``"jennifer  aniston"`` and ``"Jennifer Aniston."`` share one key.
    """
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"[\W_]+", " ", text, flags=re.UNICODE)
    return " ".join(text.split())


def identity_id(name: str) -> str:
    """Return a stable, filesystem-safe id for an identity name: ``<ascii slug>-<8 hex>``.

    The same match key always gives the same id. The id holds only ``[a-z0-9-]``, so names such as
    ``".."`` or ``"a/b"`` can never escape a folder when the id is used as a path component.
    """
    key = match_key(name)
    # names with no letters or digits ("..", "") still get a distinct, stable id from their raw text
    hashed = key or "\x00raw:" + name
    digest = hashlib.sha1(hashed.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = _NON_ALNUM.sub("-", ascii_key).strip("-")[:40].strip("-") or "id"
    return f"{slug}-{digest}"
