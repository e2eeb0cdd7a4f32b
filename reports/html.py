"""A self-contained HTML report: one file, opens from disk with no server and no network.

``write_report(out_dir, title, sections)`` writes ``out_dir/report.html``. Each section is a dict::

    {"heading": str, "text": str (optional), "tables": [html, ...] (optional),
     "images": [path to .png / .svg, ...] (optional)}

Headings and text are HTML-escaped (text: blank lines separate paragraphs); tables are trusted
HTML fragments (e.g. ``DataFrame.to_html()``) inserted as they are. Images are embedded as
base64 data URIs, PNG as ``image/png`` and SVG as ``image/svg+xml`` inside ``<img>`` (an SVG in
an ``<img>`` is isolated: its element ids cannot collide with another figure's and it cannot run
scripts). When a section lists both ``x.png`` and ``x.svg`` (what the plot functions return), only
the ``prefer``-red format of the two is embedded. CSS is inline; there are no scripts and no
external URLs.

``check_report(path)`` lists what would stop the file from being self-contained: an ``<img>``
whose source is neither a valid data URI nor an existing file relative to the report, any
http(s) / protocol-relative reference in attributes or CSS (also inside embedded SVGs), scripts.
"""
from __future__ import annotations

import base64
import binascii
import html
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fsio import write_text_atomic

REPORT_NAME = "report.html"
MIME = {".png": "image/png", ".svg": "image/svg+xml"}
SECTION_KEYS = {"heading", "text", "tables", "images"}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.5rem 2rem 3rem; color: #1b1b1b; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid #ccc; }
p.meta { color: #555; font-size: .85rem; margin-top: 0; }
nav ol { columns: 2; font-size: .9rem; }
nav a, nav a:visited { color: #0b5cad; text-decoration: none; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: .8rem; color: #555; }
.table-wrap { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; text-align: right; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) td { background: #fafafa; }
"""

_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?\s*((?:https?:)?//[^'")\s]*)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+['"]\s*((?:https?:)?//[^'"\s]*)""", re.IGNORECASE)
# references that load something inside an SVG (xmlns / DTD / metadata URIs are only names)
_SVG_REF = re.compile(r"""\b(?:xlink:)?href\s*=\s*["']\s*((?:https?:)?//[^"']*)""", re.IGNORECASE)
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,"
                       r"(?P<data>.*)$", re.IGNORECASE | re.DOTALL)
_URL_ATTRS = {"src", "href", "srcset", "action", "data", "poster", "background", "formaction", "xlink:href",
              "cite", "longdesc", "manifest", "ping"}


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    return "\n".join(f"<p>{html.escape(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def _pick_images(paths: Iterable[str | os.PathLike], prefer: str) -> list[Path]:
    """The images to embed, in order; of a ``x.png`` / ``x.svg`` pair only the preferred one."""
    paths = [Path(p) for p in paths]
    stems: dict[Path, set[str]] = {}
    for p in paths:
        stems.setdefault(p.with_suffix(""), set()).add(p.suffix.lower())
    out, seen = [], set()
    for p in paths:
        suffix, stem = p.suffix.lower(), p.with_suffix("")
        if suffix not in MIME:
            raise ValueError(f"write_report: {p}: unsupported image type {p.suffix!r}; expected .png or .svg")
        if len(stems[stem] & set(MIME)) > 1 and suffix != f".{prefer}":
            continue
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def data_uri(path: str | os.PathLike) -> str:
    """``data:<mime>;base64,...`` of a PNG or SVG file."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: unsupported image type {path.suffix!r}; expected .png or .svg")
    if not path.is_file():
        raise FileNotFoundError(f"write_report: image {path} does not exist")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _section_html(i: int, section: Mapping[str, Any], prefer: str) -> str:
    if not isinstance(section, Mapping):
        raise TypeError(f"write_report: section {i} must be a dict, got {type(section).__name__}")
    unknown = set(section) - SECTION_KEYS
    if unknown:
        raise ValueError(f"write_report: section {i}: unknown keys {sorted(unknown)}; "
                         f"expected {sorted(SECTION_KEYS)}")
    if "heading" not in section:
        raise ValueError(f"write_report: section {i} has no 'heading'")
    for key in ("tables", "images"):
        if isinstance(section.get(key), (str, bytes, os.PathLike)):
            raise TypeError(f"write_report: section {i}: {key!r} must be a list, got one {type(section[key]).__name__}")
    parts = [f'<section id="s{i}">', f"<h2>{html.escape(str(section['heading']))}</h2>"]
    if section.get("text"):
        parts.append(_paragraphs(str(section["text"])))
    for table in section.get("tables") or ():
        parts.append(f'<div class="table-wrap">{table}</div>')
    for path in _pick_images(section.get("images") or (), prefer):
        name = html.escape(path.name)
        parts.append(f'<figure><img src="{data_uri(path)}" alt="{name}" loading="eager">'
                     f"<figcaption>{name}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render_report(title: str, sections: Sequence[Mapping[str, Any]], prefer: str = "svg") -> str:
    """The report's HTML text (see the module docstring)."""
    if prefer not in ("png", "svg"):
        raise ValueError(f"prefer must be 'png' or 'svg', got {prefer!r}")
    body = [_section_html(i, s, prefer) for i, s in enumerate(sections, 1)]
    toc = "".join(f'<li><a href="#s{i}">{html.escape(str(s["heading"]))}</a></li>' for i, s in enumerate(sections, 1))
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t = html.escape(str(title))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # belt and braces: even a stray external reference cannot load
        ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">"),
        f"<title>{t}</title>", f"<style>{CSS}</style>", "</head>", "<body>", f"<h1>{t}</h1>",
        f'<p class="meta">generated {html.escape(created)} by sslbench</p>',
        f"<nav><ol>{toc}</ol></nav>" if len(sections) > 1 else "", *body, "</body>", "</html>", ""])


def write_report(out_dir: str | os.PathLike, title: str, sections: Sequence[Mapping[str, Any]],
                 prefer: str = "svg") -> Path:
    """Write the self-contained ``out_dir/report.html`` (atomically) and return its path."""
    out_dir = Path(out_dir)
    text = render_report(title, list(sections), prefer)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    write_text_atomic(path, text)
    return path


# ------------------------------------------------------------------------------------ checking

class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]], int]] = []
        self.styles: list[tuple[str, int]] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs, self.getpos()[0]))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs, self.getpos()[0]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append((data, self.getpos()[0]))


def _css_problems(css: str, where: str) -> list[str]:
    return [f"{where}: external CSS reference {m.group(1)!r}" for r in (_CSS_URL, _CSS_IMPORT) for m in r.finditer(css)]


def _data_uri_problems(src: str, where: str) -> list[str]:
    m = _DATA_URI.match(src)
    if not m:
        return [f"{where}: malformed data URI"]
    data = m["data"]
    try:
        payload = base64.b64decode(data, validate=True) if m["b64"] else unquote(data).encode()
    except (binascii.Error, ValueError) as e:
        return [f"{where}: data URI is not valid base64 ({e})"]
    if not payload:
        return [f"{where}: empty data URI"]
    if (m["mime"] or "").lower() == "image/svg+xml":
        svg = payload.decode("utf-8", errors="replace")
        out = [f"{where}: embedded SVG references {r!r}" for r in _SVG_REF.findall(svg)]
        out += _css_problems(svg, f"{where}: embedded SVG")
        if re.search(r"<script\b", svg, re.IGNORECASE):
            out.append(f"{where}: embedded SVG contains a script")
        return out
    return []


def check_report(path: str | os.PathLike) -> list[str]:
    """Problems that stop ``path`` from being a self-contained report; [] when it is fine."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: no such file"]
    scan = _Scan()
    scan.feed(path.read_text(encoding="utf-8", errors="replace"))
    scan.close()
    problems: list[str] = []
    for tag, attrs, line in scan.tags:
        where = f"line {line} <{tag}>"
        if tag == "script":
            problems.append(f"{where}: scripts are not allowed in a self-contained report")
        values = dict(attrs)
        for name, value in attrs:
            if value is None:
                continue
            if name == "style":
                problems += _css_problems(value, where)
            elif name in _URL_ATTRS:
                candidates = [c.strip().split(" ")[0] for c in value.split(",")] if name == "srcset" else [value]
                problems += [f"{where}: external reference {name}={c!r}" for c in candidates if _EXTERNAL.match(c)]
        if tag == "img":
            src = (values.get("src") or "").strip()
            if not src:
                problems.append(f"{where}: image without a src")
            elif src.lower().startswith("data:"):
                problems += _data_uri_problems(src, where)
            elif _EXTERNAL.match(src):
                pass  # reported above
            elif re.match(r"^[a-z][a-z0-9+.-]*:", src, re.IGNORECASE) or src.startswith("/"):
                problems.append(f"{where}: image src {src[:80]!r} is neither a data URI nor a relative file")
            elif not (path.parent / unquote(src.split("#")[0].split("?")[0])).is_file():
                problems.append(f"{where}: image file {src!r} does not exist (relative to {path.parent})")
        if tag == "link" and (values.get("rel") or "").lower() == "stylesheet":
            problems.append(f"{where}: external stylesheet {values.get('href')!r}")
    for css, line in scan.styles:
        problems += _css_problems(css, f"line {line} <style>")
    return problems


__all__ = ["CSS", "REPORT_NAME", "check_report", "data_uri", "render_report", "write_report"]
