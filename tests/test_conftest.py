"""The test set-up itself: slow tests run under a long timeout, the others under pyproject's."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import pytest
pytestmark = pytest.mark.slow

def test_probe(request):
    mark = request.node.get_closest_marker("timeout")
    print("TIMEOUT", mark.args[0] if mark else None)

@pytest.mark.timeout(5)
def test_own(request):
    print("TIMEOUT", request.node.get_closest_marker("timeout").args[0])
'''

FAST = '''
def test_fast(request):
    mark = request.node.get_closest_marker("timeout")
    print("FAST", mark.args[0] if mark else None)
'''

HOOK = '''
import importlib.util, sys
sys.path[:0] = [{tests!r}, {root!r}]      # as pytest run from the project root: the packages, not tests/<name>
spec = importlib.util.spec_from_file_location("project_conftest", {tests!r} + "/conftest.py")
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)
pytest_collection_modifyitems = project.pytest_collection_modifyitems
'''


def test_slow_tests_get_the_long_timeout(tmp_path: Path) -> None:
    """A probe suite in ``tmp_path`` whose conftest is this project's hook, under pyproject's settings."""
    (tmp_path / "conftest.py").write_text(HOOK.format(tests=str(ROOT / "tests"), root=str(ROOT)))
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_fast.py").write_text(FAST)
    out = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
                          str(tmp_path), "-m", "slow or not slow", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    timeouts = sorted(re.findall(r"TIMEOUT (\S+)", out.stdout))                # -s: probe order, '.' between
    assert timeouts[0] == "14400"                                # the slow test without its own mark: 4 h
    assert timeouts[1] == "5"                                    # an explicit mark is kept
    assert "FAST None" in out.stdout                             # a default test keeps pyproject's 900 s
