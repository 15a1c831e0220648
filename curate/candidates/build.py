"""Build the candidate identity list: merge sources, fold aliases, exclude benchmarks, balance, cap.

Every identity read keeps a row. One that is dropped (it overlaps a benchmark, balancing or the cap left it
out) has ``status`` "excluded", a ``reason`` and ``exclusion`` (``benchmark``, ``balance`` or ``max``).
Likely typos are flagged (``possible_duplicate_of``, ``benchmark_near_match``) for review, never merged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curate.candidates.sources import NameRecord, read_source
from curate.candidates.typos import close_pairs, compact_key
from curate.errors import ConfigError, CurateError
from curate.names import identity_id, match_key
from curate.record import Status

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "identity_id": pa.string(),  # curate.names.identity_id of the name
    "name": pa.string(),  # display name
    "match_key": pa.string(),  # curate.names.match_key of the name
    "aliases": pa.list_(pa.string()),  # other spellings folded into this identity
    "sources": pa.list_(pa.string()),  # stems of the source files that named it
    "popularity": pa.float64(),  # largest popularity any source gave; null when none did
    "external_id": pa.string(),  # the first source id given (e.g. VGGFace2 Class_ID)
    "status": pa.string(),  # "ok" or "excluded"
    "reason": pa.string(),  # why excluded; empty when ok
    "exclusion": pa.string(),  # "benchmark", "balance" or "max"; null when ok
    "overlaps": pa.list_(pa.string()),  # stems of the benchmark lists whose names it matches exactly
    "benchmark_near_match": pa.string(),  # a benchmark name a typo away, for review; null when none
    "possible_duplicate_of": pa.string(),  # identity_id of a more popular name a typo away, for review
    "duplicate_distance": pa.int32(),  # edits between the two compact keys
}
"""The fixed columns; each attribute (e.g. ``gender``) adds a string column after ``external_id``."""


@dataclass
class CandidatesConfig:
    """How to turn name sources into a candidate list."""

    exclude: list[Path] = field(default_factory=list)  # benchmark name lists whose identities are removed
    balance: str | None = None  # attribute whose values get equal numbers of identities
    max_identities: int | None = None  # keep at most this many, the most popular first
    max_typo_edits: int = 2  # edits that still count as a likely typo (0 turns detection off)

    def validate(self) -> None:
        """Raise ConfigError on a value that cannot work."""
        for path in self.exclude:
            if not Path(path).is_file():
                raise ConfigError("exclude", str(path), "give an existing benchmark name list file")
        if self.balance is not None and (not self.balance.strip() or self.balance in COLUMNS):
            raise ConfigError("balance", self.balance, "name an attribute column such as 'gender'")
        if self.max_identities is not None and self.max_identities < 1:
            raise ConfigError(
                "max_identities", self.max_identities, "use a positive count, or leave it unset"
            )
        if not 0 <= self.max_typo_edits <= 2:
            raise ConfigError("max_typo_edits", self.max_typo_edits, "use 0 (off), 1 or 2")


@dataclass
class Identity:
    """One folded identity while the list is being built."""

    name: str
    aliases: list[str]
    sources: list[str]
    popularity: float | None
    attributes: dict[str, str]
    external_id: str | None
    status: Status = Status.OK
    reasons: list[str] = field(default_factory=list)
    exclusion: str | None = None
    overlaps: list[str] = field(default_factory=list)
    near_match: str | None = None
    duplicate_of: str | None = None
    duplicate_distance: int | None = None

    def exclude(self, kind: str, reason: str) -> None:
        """Mark the identity excluded (the first kind wins; every reason is kept)."""
        self.status = Status.EXCLUDED
        self.exclusion = self.exclusion or kind
        self.reasons.append(reason)

    def spellings(self) -> list[str]:
        """The name first, then its aliases."""
        return [self.name, *self.aliases]


def _key(name: str) -> str:
    return match_key(name) or "\x00raw:" + name


def fold(records: Sequence[NameRecord]) -> list[Identity]:
    """Fold records whose names or aliases share a match key into identities, in first-seen order.

    The display name is the first name given that no record of the group lists as an alias.
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for record in records:
        first = root(_key(record.name))
        for alias in record.aliases:
            parent[root(_key(alias))] = first
    groups: dict[str, list[NameRecord]] = defaultdict(list)
    for record in records:
        groups[root(_key(record.name))].append(record)
    return [_merge(group) for group in groups.values()]


def _merge(group: list[NameRecord]) -> Identity:
    alias_keys = {_key(alias) for record in group for alias in record.aliases}
    primary = next((r for r in group if _key(r.name) not in alias_keys), group[0]).name
    spellings: dict[str, str] = {}
    for record in group:
        for spelling in (record.name, *record.aliases):
            spellings.setdefault(_key(spelling), spelling)
    spellings.pop(_key(primary), None)
    attributes: dict[str, str] = {}
    for record in group:
        for attribute, value in record.attributes.items():
            if attributes.setdefault(attribute, value) != value:
                logger.debug("%s: %s %r kept, %r ignored", primary, attribute, attributes[attribute], value)
    scores = [r.popularity for r in group if r.popularity is not None]
    return Identity(
        name=primary,
        aliases=list(spellings.values()),
        sources=list(dict.fromkeys(r.source for r in group)),
        popularity=max(scores) if scores else None,
        attributes=attributes,
        external_id=next((r.external_id for r in group if r.external_id is not None), None),
    )


def exclude_benchmarks(identities: list[Identity], benchmark: Path, max_typo_edits: int) -> int:
    """Exclude identities any of whose spellings matches a name of ``benchmark`` by compact key.

    Identities a typo away from a benchmark name get ``near_match`` for review. Returns the exclusion count.
    """
    names = [record.name for record in read_source(benchmark)]
    by_key = {key: name for name in reversed(names) if (key := compact_key(name))}
    excluded = 0
    for identity in identities:
        hit = next((by_key[k] for k in map(compact_key, identity.spellings()) if k in by_key), None)
        if hit is not None:
            identity.overlaps.append(benchmark.stem)
            identity.exclude("benchmark", f"overlaps benchmark {benchmark.stem}: {hit!r}")
            excluded += 1
    if max_typo_edits:
        rows = [
            (i, s)
            for i, identity in enumerate(identities)
            if not identity.overlaps
            for s in identity.spellings()
        ]
        for pair in close_pairs([s for _, s in rows], names, max_typo_edits):
            identity = identities[rows[pair.left][0]]
            if identity.near_match is None:
                edits = f"{pair.distance} edit{'s' if pair.distance != 1 else ''}"
                identity.near_match = f"{benchmark.stem}: {names[pair.right]!r} ({edits})"
    logger.info("benchmark %s: %d identities excluded", benchmark.stem, excluded)
    return excluded


def flag_typos(identities: list[Identity], max_typo_edits: int) -> int:
    """Point the less popular of each likely-typo pair at the other (``duplicate_of``); returns pair count.

    Every spelling (name and aliases) takes part, so a misspelling of another identity's alias is found.
    """
    owners = [(i, s) for i, identity in enumerate(identities) for s in identity.spellings()]
    pairs: dict[tuple[int, int], int] = {}
    for pair in close_pairs([s for _, s in owners], None, max_typo_edits):
        a, b = owners[pair.left][0], owners[pair.right][0]
        if a != b and pair.distance < pairs.get((a, b), pair.distance + 1):
            pairs[(a, b)] = pair.distance
    for (a, b), distance in pairs.items():
        first, second = identities[a], identities[b]
        flagged, kept = (first, second) if _rank_key(first, a) > _rank_key(second, b) else (second, first)
        if flagged.duplicate_distance is None or distance < flagged.duplicate_distance:
            flagged.duplicate_of = identity_id(kept.name)
            flagged.duplicate_distance = distance
    return len(pairs)


def _rank_key(identity: Identity, order: int) -> tuple[bool, float, int]:
    """Sort key: most popular first, unknown popularity last, then input order."""
    popularity = identity.popularity
    return (popularity is None, -(popularity or 0.0), order)


def _ranked(identities: list[Identity]) -> list[Identity]:
    indexed = [(i, identity) for i, identity in enumerate(identities) if identity.status is Status.OK]
    return [identity for _, identity in sorted(indexed, key=lambda item: _rank_key(item[1], item[0]))]


def balance(identities: list[Identity], attribute: str, max_identities: int | None) -> int:
    """Keep the same number of the most popular identities per value of ``attribute``; returns per value."""
    if not any(attribute in identity.attributes for identity in identities):
        known = sorted({a for identity in identities for a in identity.attributes}) or ["none"]
        raise ConfigError("balance", attribute, f"no source gives it; attributes read: {', '.join(known)}")
    groups: dict[str, list[Identity]] = defaultdict(list)
    for identity in _ranked(identities):
        value = identity.attributes.get(attribute, "").strip()
        if value:
            groups[value].append(identity)
        else:
            identity.exclude("balance", f"balance by {attribute}: no {attribute} value")
    if not groups:
        return 0
    per_value = min(len(members) for members in groups.values())
    if max_identities is not None:
        if max_identities < len(groups):
            raise ConfigError(
                "max_identities", max_identities, f"use at least {len(groups)}, one per {attribute}"
            )
        per_value = min(per_value, max_identities // len(groups))
    for value, members in groups.items():
        for rank, identity in enumerate(members[per_value:], start=per_value + 1):
            identity.exclude(
                "balance",
                f"balance by {attribute}: {value!r} keeps its {per_value} most popular of {len(members)}; "
                f"this one ranks {rank}",
            )
    return per_value


def cap(identities: list[Identity], max_identities: int) -> None:
    """Keep the ``max_identities`` most popular identities still ok; exclude the rest."""
    for rank, identity in enumerate(_ranked(identities)[max_identities:], start=max_identities + 1):
        identity.exclude("max", f"over the cap of {max_identities} identities: ranks {rank} by popularity")


def to_table(identities: list[Identity]) -> pa.Table:
    """The candidates manifest: fixed columns plus one string column per attribute."""
    attributes = sorted({a for identity in identities for a in identity.attributes})
    clashes = [a for a in attributes if a in COLUMNS]
    if clashes:
        raise CurateError(f"source attribute {clashes[0]!r} clashes with a candidates column; rename it")
    values: dict[str, list] = {
        "identity_id": [identity_id(i.name) for i in identities],
        "name": [i.name for i in identities],
        "match_key": [match_key(i.name) for i in identities],
        "aliases": [i.aliases for i in identities],
        "sources": [i.sources for i in identities],
        "popularity": [i.popularity for i in identities],
        "external_id": [i.external_id for i in identities],
        **{a: [i.attributes.get(a) for i in identities] for a in attributes},
        "status": [i.status.value for i in identities],
        "reason": ["; ".join(i.reasons) for i in identities],
        "exclusion": [i.exclusion for i in identities],
        "overlaps": [i.overlaps for i in identities],
        "benchmark_near_match": [i.near_match for i in identities],
        "possible_duplicate_of": [i.duplicate_of for i in identities],
        "duplicate_distance": [i.duplicate_distance for i in identities],
    }
    types = {name: COLUMNS.get(name, pa.string()) for name in values}
    return pa.table({name: pa.array(column, type=types[name]) for name, column in values.items()})


def build_candidates(sources: list[Path], config: CandidatesConfig) -> pa.Table:
    """Read, fold, exclude, flag, balance and cap: the candidates manifest as an Arrow table."""
    config.validate()
    if not sources:
        raise ConfigError("sources", [], "give at least one name source file")
    records = [record for source in sources for record in read_source(Path(source))]
    identities = fold(records)
    logger.info("%d names folded into %d identities", len(records), len(identities))
    for benchmark in config.exclude:
        exclude_benchmarks(identities, Path(benchmark), config.max_typo_edits)
    if config.max_typo_edits:
        flag_typos(identities, config.max_typo_edits)
    if config.balance is not None:
        balance(identities, config.balance, config.max_identities)
    if config.max_identities is not None:
        cap(identities, config.max_identities)
    return to_table(identities)
