"""Shared writer of the benchmarks' ``--json`` output: {"env": ..., "rows": [...]}."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_results(path: Path, env: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Write the rows with the machine's description (python, cpus, machine) merged into ``env``."""
    base = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": base | env, "rows": rows}, indent=1))
    print(f"wrote {path}")
