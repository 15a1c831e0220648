"""``collect`` from a URL list: download, sniff, decode and store every listed image.

``plan`` reads the list (:mod:`curate.download.urllist`) and groups its rows by identity shard. Each shard
task hands its distinct URLs to a :class:`~curate.download.collector.Collector` (journal first, then a
thread pool sharing one :class:`~curate.download.fetch.Fetcher`; the module explains why threads) and
turns the outcomes into columns.

Every row gets an outcome: ``ok`` (bytes stored under their sha256, ``path`` set), ``failed_download``
(HTTP status or network reason), ``failed_decode`` / ``unsafe_input`` (from :mod:`curate.decode`, bytes
not stored). Same bytes twice within one identity: the best-ranked row is kept, the others are
``exact_duplicate``. Same bytes under two identities is left to the global ``exact`` stage.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from curate import manifest, storage
from curate.download.collector import Collector
from curate.download.store import Outcome
from curate.download.urllist import read_url_list
from curate.names import identity_id, name_merges
from curate.record import BASE_COLUMNS, Status, add_columns, ok_mask
from curate.stage import ShardStage, StageContext
from curate.stages.download_config import DownloadConfig
from curate.storage import ContentStore

PLAN_COLUMNS: dict[str, pa.DataType] = {"search_rank": pa.int32(), "query": pa.string()}
COLUMNS: dict[str, pa.DataType] = {
    **PLAN_COLUMNS,
    "http_status": pa.int32(),
    "file_bytes": pa.int64(),
    "width": pa.int32(),
    "height": pa.int32(),
    "format": pa.string(),
    "mode": pa.string(),
    "n_frames": pa.int32(),
    "fetch_seconds": pa.float32(),
}
_OUTCOME_COLUMNS = (
    "http_status",
    "file_bytes",
    "width",
    "height",
    "format",
    "mode",
    "n_frames",
    "fetch_seconds",
)


class DownloadStage(ShardStage):
    """Collect images listed by URL into the content-addressed store; one row per listed URL."""

    name: ClassVar[str] = "collect"
    Config: ClassVar[type] = DownloadConfig
    default_input: ClassVar[str | None] = None

    config: DownloadConfig

    def plan(self, workdir: Path, n_shards: int) -> dict[int, pa.Table]:
        """The URL list's rows grouped by identity shard (every shard present, empty ones too)."""
        types = {**BASE_COLUMNS, **PLAN_COLUMNS}
        per_shard: dict[int, dict[str, list]] = {s: {key: [] for key in types} for s in range(n_shards)}
        for row in read_url_list(self.config.source, self.config.case_sensitive_names):
            ident = identity_id(row.name, self.config.case_sensitive_names)
            status, reason = row.problem or (Status.OK, "")
            values = (None, ident, row.name, row.url, None, status.value, reason, row.rank, row.query)
            columns = per_shard[manifest.shard_of(ident, n_shards)]
            for key, value in zip(types, values, strict=True):
                columns[key].append(value)
        return {
            s: pa.table({k: pa.array(v, type=types[k]) for k, v in cols.items()})
            for s, cols in per_shard.items()
        }

    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Fetch the ``ok`` rows' URLs (or take them from the journal) and fill in their outcomes."""
        for key, dtype in PLAN_COLUMNS.items():
            if key not in table.column_names:
                table = add_columns(table, {key: [None] * table.num_rows}, {key: dtype})
        config = self.config
        store = ContentStore(storage.store_dir(Path(ctx.workdir).resolve()))
        collector = Collector(
            config.fetch_settings(),
            store,
            store.root / "_journal" / f"{manifest.shard_name(ctx.shard or 0)}.jsonl",
            concurrency=config.concurrency,
            max_pixels=config.max_pixels,
            retry_failed_downloads=config.retry_failed_downloads,
        )
        todo = ok_mask(table)
        sources = table.column("source").to_pylist()
        report = collector.collect(
            list(dict.fromkeys(url for url, go in zip(sources, todo, strict=True) if go)), ctx.progress
        )
        table = mark_exact_duplicates(self._fill(table, todo, report.outcomes, store))
        ctx.stats.update(
            urls=len(report.outcomes),
            fetched=report.fetched,
            from_journal=report.reused,
            decoded_again=report.restored,
            fetched_bytes=report.fetched_bytes,
            download_seconds=round(report.seconds, 3),
            name_merges=name_merges(
                table.column("identity_id").to_pylist(), *[table.column("identity_name").to_pylist()] * 2
            ),
        )
        ctx.logger.info(
            "shard %s: %d URLs, %d fetched in %.1fs, %d from the journal, %d decoded again from the store",
            ctx.shard,
            len(report.outcomes),
            report.fetched,
            report.seconds,
            report.reused,
            report.restored,
        )
        return table

    @staticmethod
    def _fill(
        table: pa.Table, todo: list[bool], outcomes: dict[str, Outcome], store: ContentStore
    ) -> pa.Table:
        """Set base and outcome columns on the rows that were fetched; others get nulls."""
        base = {key: table.column(key).to_pylist() for key in ("image_id", "path", "status", "reason")}
        extra: dict[str, list] = {key: [None] * table.num_rows for key in _OUTCOME_COLUMNS}
        for i, (url, go) in enumerate(zip(table.column("source").to_pylist(), todo, strict=True)):
            if not go:
                continue
            out = outcomes[url]
            base["image_id"][i] = out.sha256
            base["path"][i] = str(store.path_for(out.sha256, out.extension)) if out.stored else None
            base["status"][i] = out.status
            base["reason"][i] = out.reason
            for key in _OUTCOME_COLUMNS:
                extra[key][i] = getattr(out, key)
        return add_columns(table, {**base, **extra}, {**BASE_COLUMNS, **COLUMNS})


def mark_exact_duplicates(table: pa.Table) -> pa.Table:
    """Within each identity, keep one ``ok`` row per sha256 and mark the rest ``exact_duplicate``.

    The kept row is the best-ranked (lowest ``search_rank``, unranked last, then URL, then row order), so
    the choice does not depend on the order of the list.
    """
    columns = {
        key: table.column(key).to_pylist() for key in ("identity_id", "image_id", "source", "search_rank")
    }
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, go in enumerate(ok_mask(table)):
        if go and columns["image_id"][i] is not None:
            groups[(columns["identity_id"][i], columns["image_id"][i])].append(i)
    statuses = table.column("status").to_pylist()
    reasons = table.column("reason").to_pylist()
    for rows in groups.values():
        if len(rows) < 2:
            continue
        rank = columns["search_rank"]
        ordered = sorted(rows, key=lambda i: (rank[i] is None, rank[i] or 0, columns["source"][i], i))
        kept_url = columns["source"][ordered[0]]
        for i in ordered[1:]:
            statuses[i] = Status.EXACT_DUPLICATE.value
            reasons[i] = f"same bytes as {kept_url}"
    return add_columns(table, {"status": statuses, "reason": reasons}, BASE_COLUMNS)
