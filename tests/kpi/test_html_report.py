"""The HTML KPI report in a real browser: headless Chromium loads it offline, without console errors, with
its charts in the DOM, and takes a screenshot.

Chromium is needed (Debian: ``apt-get install chromium``; ``.ci/run`` installs it). Without it the test is
skipped on a workstation, and fails in CI (when the ``CI`` environment variable is set).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from collectrules.engine.program import Program
from collectrules.kpi.outcomes import Outcomes
from collectrules.kpi.periods import parse_period
from collectrules.kpi.report import build_kpi_report, render_kpi_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must check the HTML report in it (see .ci/run)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _browse(chromium: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=60, check=True)


def _console_problems(log: str) -> list[str]:
    # the report has no scripts, so any console message (an error, a failed load) is a problem
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_the_html_report_loads_in_chromium_without_console_errors(chromium: str, tmp_path: Path,
                                                                  tiny_program: Program,
                                                                  tiny_book: Outcomes) -> None:
    page = tmp_path / "report.html"
    report = build_kpi_report(tiny_program, tiny_book, parse_period("2026-07"))
    page.write_text(render_kpi_report(report, "html"), encoding="utf-8")
    loaded = _browse(chromium, page, tmp_path / "profile-dom", "--enable-logging=stderr", "--v=0",
                     "--dump-dom")
    assert _console_problems(loaded.stderr) == []
    dom = loaded.stdout
    assert len(re.findall(r"<svg ", dom)) == 6  # recovery by bucket, roll-rate heat map, four trend lines
    for chart in ("recovery-title", "rollmatrix-title", "trend0-title", "trend3-title"):
        assert f'id="{chart}"' in dom
    assert dom.count('class="heat"') == 6 * 8  # a cell per bucket and destination
    assert "<polyline" in dom or "<circle" in dom

    shot = tmp_path / "report.png"
    _browse(chromium, page, tmp_path / "profile-shot", "--window-size=1200,1600", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def test_the_console_check_catches_errors(chromium: str, tmp_path: Path) -> None:
    """Guard against a check that cannot fail: a page with a script error is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>",
                    encoding="utf-8")
    loaded = _browse(chromium, page, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")
    problems = _console_problems(loaded.stderr)
    assert any("Uncaught ReferenceError: notDefined is not defined" in p for p in problems)
