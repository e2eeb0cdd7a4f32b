"""reports.html: a self-contained report, checked by check_report and rendered by headless Chromium."""
from __future__ import annotations

import base64
import glob
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_plots import all_plots, fake_store

from reports import html as H

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install Debian's chromium (`apt-get install -y chromium`, as the project's setup does) or point "
                "SSLBENCH_CHROMIUM at a Chromium/Chrome binary")
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
OKABE_BLUE = (0x00, 0x72, 0xB2)


def find_chromium() -> str | None:
    """$SSLBENCH_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH, else Playwright's."""
    if os.environ.get("SSLBENCH_CHROMIUM"):
        return shutil.which(os.environ["SSLBENCH_CHROMIUM"])
    for name in CHROMIUM_NAMES:
        if shutil.which(name):
            return shutil.which(name)
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser("~/.cache/ms-playwright")
    found = sorted(glob.glob(os.path.join(root, "chromium-*", "chrome-linux*", "chrome")))
    return found[-1] if found else None


def _strip_data_uris(text: str) -> str:
    return re.sub(r"data:[^\"'\s)]+", "data:", text)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with every plot kind of the fake store, a table and escaped text."""
    tmp = tmp_path_factory.mktemp("report")
    store = fake_store(tmp / "results.sqlite")
    plots = all_plots(store, tmp / "plots")
    frame = store.to_frame()
    table = frame.groupby(["task", "metric"])["value"].mean().head(8).to_frame().to_html()
    sections = [{"heading": "Summary <all> & more", "text": "Fake results.\n\n<script>alert(1)</script> & co",
                 "tables": [table]}]
    sections += [{"heading": kind.replace("_", " "), "images": paths} for kind, paths in plots.items()]
    return H.write_report(tmp / "out", "sslbench <test> report", sections)


# -------------------------------------------------------------------------------- the file

def test_report_is_one_self_contained_file(report: Path) -> None:
    assert report.name == "report.html" and [p.name for p in report.parent.iterdir()] == ["report.html"]
    assert H.check_report(report) == []
    text = report.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 7                                   # one per plot: the SVG of each png/svg pair
    assert all(src.startswith("data:image/svg+xml;base64,") for src in images)
    for src in images:                                       # each decodes to a whole SVG document
        assert base64.b64decode(src.split(",", 1)[1]).rstrip().endswith(b"</svg>")
    outside = _strip_data_uris(text).lower()
    assert "http:" not in outside and "https:" not in outside and "<script" not in outside
    assert "<link" not in outside and "<style>" in outside and "<table" in outside


def test_text_and_headings_are_escaped(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "<h2>Summary &lt;all&gt; &amp; more</h2>" in text
    assert "<title>sslbench &lt;test&gt; report</title>" in text


def test_prefer_png_and_rewrite(tmp_path: Path, report: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(base64.b64decode(PNG_1PX))
    (tmp_path / "a.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    out = H.write_report(tmp_path / "r", "t", [{"heading": "h", "images": [png, tmp_path / "a.svg"]}], prefer="png")
    assert re.findall(r'<img src="(data:[^;]+)', out.read_text()) == ["data:image/png"]
    assert H.check_report(out) == []                           # the SVG namespace is not a reference
    again = H.write_report(tmp_path / "r", "t2", [{"heading": "h", "images": [tmp_path / "a.svg"]}])
    assert again == out and "<title>t2</title>" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]   # replaced, no temporaries


def test_write_report_rejects_bad_sections(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        H.write_report(out, "t", [{"heading": "h", "images": [tmp_path / "missing.png"]}])
    with pytest.raises(ValueError, match="unknown keys"):
        H.write_report(out, "t", [{"heading": "h", "image": []}])
    with pytest.raises(ValueError, match="unsupported image type"):
        H.write_report(out, "t", [{"heading": "h", "images": [tmp_path / "x.gif"]}])
    with pytest.raises(TypeError, match="must be a list"):
        H.write_report(out, "t", [{"heading": "h", "images": str(tmp_path / "x.png")}])
    assert not out.exists()


def test_check_report_finds_problems(tmp_path: Path) -> None:
    (tmp_path / "here.png").write_bytes(base64.b64decode(PNG_1PX))
    svg_ext = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://x.org/a.png"/></svg>')
    bad = tmp_path / "bad.html"
    bad.write_text("\n".join([
        "<html><head><style>body { background: url('https://cdn.example/bg.png') }</style>",
        '<link rel="stylesheet" href="https://cdn.example/style.css"></head><body>',
        '<img src="here.png">',                               # fine: an existing relative file
        f'<img src="data:image/png;base64,{PNG_1PX}">',       # fine
        '<img src="missing.png">',
        '<img src="http://example.org/plot.png">',
        '<img src="/abs/plot.png">',
        '<img src="data:image/png;base64,@@not base64@@">',
        f'<img src="data:image/svg+xml;base64,{svg_ext.decode()}">',
        '<a href="https://example.org">paper</a>', '<script src="//cdn.example/x.js"></script>',
        "</body></html>"]))
    problems = H.check_report(bad)
    text = "\n".join(problems)
    for needle in ("https://cdn.example/bg.png", "stylesheet", "missing.png", "http://example.org/plot.png",
                   "/abs/plot.png", "not valid base64", "embedded SVG references 'https://x.org/a.png'",
                   "href='https://example.org'", "scripts are not allowed", "src='//cdn.example/x.js'"):
        assert needle in text, (needle, problems)
    assert "here.png" not in text and not any("line 4 " in p for p in problems)
    assert len(problems) == 11, problems   # external stylesheet counted twice: href and rel=stylesheet
    assert H.check_report(tmp_path / "nope.html") == [f"{tmp_path / 'nope.html'}: no such file"]
    good = tmp_path / "good.html"
    good.write_text(f'<html><body><img src="here.png"><img src="data:image/png;base64,{PNG_1PX}"></body></html>')
    assert H.check_report(good) == []


# --------------------------------------------------------------------------- the browser

def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def rendered_images(binary: str, report: Path, work: Path) -> dict:
    """What Chromium made of ``report``'s images: a test-only wrapper page loads the (unchanged)
    report in an iframe and, once it has loaded, lists each <img> (complete, natural size)."""
    work.mkdir(parents=True, exist_ok=True)
    wrapper = work / "wrapper.html"
    wrapper.write_text(f"""<!DOCTYPE html><html><body>
<iframe id="report" src="{report.resolve().as_uri()}" width="1200" height="3000"></iframe>
<pre id="result">pending</pre>
<script>
document.getElementById("report").addEventListener("load", () => {{
  let out;
  try {{
    const doc = document.getElementById("report").contentDocument;
    out = JSON.stringify({{title: doc.title, scripts: doc.scripts.length,
      images: [...doc.images].map(i => ({{alt: i.alt, complete: i.complete,
                                         w: i.naturalWidth, h: i.naturalHeight}}))}});
  }} catch (e) {{ out = JSON.stringify({{error: String(e)}}); }}
  document.getElementById("result").textContent = out;
}});
</script></body></html>""")
    proc = _chromium(binary, work / "profile", "--allow-file-access-from-files", "--virtual-time-budget=15000",
                     "--dump-dom", wrapper.as_uri())
    assert proc.returncode == 0, f"chromium --dump-dom exited {proc.returncode}: {proc.stderr[-2000:]}"
    m = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert m, f"no result in chromium's DOM dump: {proc.stdout[-2000:]}"
    assert m.group(1) != "pending", "the report never finished loading in chromium"
    result = json.loads(html.unescape(m.group(1)))
    assert "error" not in result, result
    return result


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.fail(f"no Chromium binary found (tried $SSLBENCH_CHROMIUM, {', '.join(CHROMIUM_NAMES)}, "
                    f"Playwright's); {INSTALL_HINT}")
    # 1. a screenshot of the report itself: it exits cleanly and shows text and the plots' colours
    shot = tmp_path / "report.png"
    proc = _chromium(binary, tmp_path / "profile", "--window-size=1200,3000", f"--screenshot={shot}",
                     report.resolve().as_uri())
    assert proc.returncode == 0, f"chromium --screenshot exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot at {shot}: {proc.stderr[-2000:]}"
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (3000, 1200)
    grey = pixels.mean(axis=2)
    assert grey.std() > 20, f"the screenshot is blank (pixel std {grey.std():.1f})"
    assert (grey < 200).mean() > 0.02, "almost nothing drawn on the page"
    blue = (np.abs(pixels - np.array(OKABE_BLUE)).max(axis=2) < 12).sum()
    assert blue > 500, f"the plots' first palette colour is missing from the screenshot ({blue} pixels)"
    # 2. every <img> of the report decoded to a real image in the browser
    result = rendered_images(binary, report, tmp_path / "dom")
    assert result["title"] == "sslbench <test> report" and result["scripts"] == 0
    assert len(result["images"]) == 7
    broken = [i["alt"] for i in result["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert broken == [], f"images that did not render: {broken}"
    # 3. the check itself sees a broken image (the method can fail)
    bad = tmp_path / "bad" / "report.html"
    bad.parent.mkdir()
    bad.write_text(report.read_text(encoding="utf-8").replace('<img src="data:', '<img src="missing.png" x="', 1))
    seen = rendered_images(binary, bad, tmp_path / "bad-dom")["images"]
    assert [i["w"] > 0 for i in seen].count(False) == 1
