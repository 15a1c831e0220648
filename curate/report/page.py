"""A small HTML writer: sections, tables and PNGs embedded as data URIs, so the page is one file."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #4c72b0; } h2 { margin-top: 2em; color: #2b4c7e; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; } th { background: #eef2f8; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9em; } .verdict { font-size: 1.2em; }
nav a { margin-right: 1em; }
"""


def esc(value: Any) -> str:
    """HTML-escaped text of any value (floats to 4 significant figures)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def image(png: bytes | None, alt: str) -> str:
    """An ``<img>`` holding ``png`` inline (nothing when there is no picture)."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A plain table."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def paragraph(text: str, css: str = "") -> str:
    """Escaped text in a ``<p>``."""
    return f'<p class="{css}">{esc(text)}</p>' if css else f"<p>{esc(text)}</p>"


class Page:
    """Sections in order, each with an anchor in the navigation bar."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.sections: list[tuple[str, str, str]] = []

    def add(self, anchor: str, heading: str, *parts: str) -> None:
        """Append a section (empty parts are skipped)."""
        self.sections.append((anchor, heading, "\n".join(p for p in parts if p)))

    def render(self) -> str:
        """The whole document."""
        nav = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in self.sections)
        body = "".join(f'<h2 id="{a}">{esc(h)}</h2>\n{content}\n' for a, h, content in self.sections)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(self.title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(self.title)}</h1><nav>{nav}</nav>\n{body}</body></html>\n"
        )
