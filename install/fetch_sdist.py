"""Download a source distribution from the package index and verify its sha256.

Usage: python install/fetch_sdist.py install/sdists.txt DEST_DIR

``pip download`` cannot fetch pb1-detectron2 (its metadata declares a direct-URL extra, which pip
refuses for registry packages, and preparing it needs a build), so the sdists listed in
``install/sdists.txt`` (``name==version --hash=sha256:...``) are found on the index's simple page
(``$PIP_INDEX_URL`` or PyPI) and fetched directly; a hash mismatch is an error.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

LINE = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})\s*$")


def find_url(index: str, name: str, version: str) -> str:
    page = urllib.request.urlopen(f"{index.rstrip('/')}/{name}/", timeout=120).read().decode()
    for href in re.findall(r'href="([^"]+)"', page):
        fname = href.split("#")[0].rsplit("/", 1)[-1]
        if fname in (f"{name}-{version}.tar.gz", f"{name.replace('-', '_')}-{version}.tar.gz"):
            return urllib.parse.urljoin(f"{index.rstrip('/')}/{name}/", href.split("#")[0])
    raise SystemExit(f"fetch_sdist: no sdist {name}-{version}.tar.gz on {index}/{name}/")


def fetch(index: str, name: str, version: str, sha: str, dest: Path) -> Path:
    url = find_url(index, name, version)
    data = urllib.request.urlopen(url, timeout=600).read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise SystemExit(f"fetch_sdist: {url}: sha256 {got} != expected {sha}")
    out = dest / url.rsplit("/", 1)[-1]
    out.write_bytes(data)
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python install/fetch_sdist.py SDISTS_TXT DEST_DIR")
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    dest = Path(argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    for raw in Path(argv[0]).read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = LINE.match(raw.strip())
        if not m:
            raise SystemExit(f"fetch_sdist: {argv[0]}: cannot parse line {raw!r}")
        print(f"[setup] fetched {fetch(index, *m.groups(), dest)}")


if __name__ == "__main__":
    main(sys.argv[1:])
