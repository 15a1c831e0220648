"""The dataset card as Markdown: Hugging Face's YAML header and sections, filled from ``card.json``."""

from __future__ import annotations

from typing import Any

from curate.export.funnel import dropped_text


def _size_category(images: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if images < limit:
            return label
    return "1M<n<10M"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _collection(data: dict[str, Any]) -> list[str]:
    collection = data["collection"]
    lines = ["## Collection", ""]
    sources = ", ".join(f"`{s}`" for s in collection["sources"]) or "not recorded"
    lines += [f"Images were collected by the `{collection['source_stage']}` stage from {sources}.", ""]
    listing = collection.get("candidate_list")
    if listing is None:
        lines += ["No candidate identity list was applied; every collected identity was considered.", ""]
        return lines
    lines += [
        f"Candidate list `{listing['path']}`: {listing['identities']} identities from "
        f"{', '.join(listing['sources']) or 'unnamed sources'}, {listing['kept']} kept.",
        "",
    ]
    excluded = collection.get("benchmark_exclusions", [])
    lines += [f"{len(excluded)} identities were left out because they appear in evaluation benchmarks:", ""]
    lines += _table(["identity", "why"], [[e["identity"], e["reason"]] for e in excluded[:50]])
    if len(excluded) > 50:
        lines += [f"... and {len(excluded) - 50} more (see card.json).", ""]
    return lines


def _removals(data: dict[str, Any]) -> list[str]:
    lines = ["## Preprocessing and removals", "", "Rows entering, kept and dropped by each stage:", ""]
    rows = []
    for step in data["removals"]["by_stage"]:
        dropped = dropped_text(step["dropped"], step.get("restored", 0), step.get("relabelled", 0))
        rows.append([step["stage"], step["rows_in"], step["kept"], dropped])
    lines += _table(["stage", "rows in", "kept", "dropped"], rows)
    lines += ["Every removal reason with its count (numbers and names in reasons blanked):", ""]
    reasons = [
        [step["stage"], status, reason, count]
        for step in data["removals"]["by_stage"]
        for status, patterns in step["reasons"].items()
        for reason, count in patterns.items()
    ]
    lines += _table(["stage", "status", "reason", "rows"], reasons)
    dup = data["duplicates"]
    if dup.get("checked"):
        lines += [
            f"Duplicates: {dup['clusters']} near-duplicate clusters holding {dup['images_in_clusters']} "
            f"images; {dup['removed_as_duplicate']} removed as duplicates, "
            f"{dup['cross_identity_conflicts']} rows showed one photo under two identities, "
            f"{dup['left_for_review']} images were left for review.",
            "",
        ]
    review = data["review"]
    if review.get("reviewed"):
        parts = [f"{k.replace('_', ' ')}: {v}" for k, v in review.items() if k != "reviewed"]
        lines += ["Review: " + "; ".join(parts) + ".", ""]
    else:
        lines += ["Review: no manual or scripted review ran on this data set.", ""]
    return lines


def card_markdown(data: dict[str, Any]) -> str:
    """The README.md of an export."""
    comp, purity = data["composition"], data["purity"]
    per = comp["images_per_identity"]
    lines = [
        "---",
        f"pretty_name: {data['name']}",
        "license: other",
        "task_categories:",
        "- image-classification",
        "tags:",
        "- face-recognition",
        "- curate",
        "size_categories:",
        f"- {_size_category(comp['images'])}",
        "---",
        "",
        f"# Dataset card: {data['name']}",
        "",
        f"Exported by curate {data['curate_version']} from `{data['workdir']}` (final manifest: "
        f"`{data['final_stage']}`; stages {' -> '.join(data['stages'])}). Images: {data['images_kind']}; "
        f"formats: {', '.join(data['formats'])}, plus `manifest.parquet` and `list.txt`.",
        "",
        "## Composition",
        "",
        f"{comp['images']} images of {comp['identities']} identities "
        f"({comp['rows_collected']} rows collected). Images per identity: min {per['min']}, "
        f"median {per['median']:g}, mean {per['mean']:g}, max {per['max']}.",
        "",
        f"![images per identity]({comp['histogram']})",
        "",
        *_collection(data),
        *_removals(data),
        "## Estimated purity",
        "",
        f"Estimate: {purity['estimate'] if purity['estimate'] is not None else 'not estimated'}. "
        f"How: {purity['method']}.",
        "",
        "## Attribute balance",
        "",
    ]
    if not data["attributes"]:
        lines += ["No attribute (such as gender) was recorded for these identities.", ""]
    for attribute, values in data["attributes"].items():
        lines += [f"`{attribute}`:", ""]
        lines += _table(
            ["value", "identities", "images"], [[v, c["identities"], c["images"]] for v, c in values.items()]
        )
    lines += ["## Licence", "", data["licence"], "", "## Intended use", "", data["intended_use"], ""]
    lines += ["## Known limitations", "", *[f"- {item}" for item in data["limitations"]], ""]
    return "\n".join(lines)
