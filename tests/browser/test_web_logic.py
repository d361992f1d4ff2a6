"""The front end's pure helpers (dashboard/web/logic.js) under node's own test runner, so
they run with the rest of the suite: ``npm test`` in dashboard/ runs the same."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.browser.rig import REPO


@pytest.mark.timeout(60)
def test_web_logic_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: the dashboard is built and unit-tested with Node 20+")
    result = subprocess.run(
        [node, "--test", "web/logic.test.js"],
        cwd=REPO / "dashboard",
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
