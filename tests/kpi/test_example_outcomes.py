"""The example outcome data: the generator is deterministic, the committed files are its output, and the
consumer-lending policy's KPIs can all be measured on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collectrules.engine.portfolio import field_columns
from collectrules.engine.program import compile_policy
from collectrules.kpi.outcomes import load_outcomes
from collectrules.kpi.periods import parse_period
from collectrules.kpi.report import build_kpi_report
from collectrules.policy.check import load_policy

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_example_outcomes.py"
COMMITTED = REPO / "policies" / "data" / "outcomes"
FILES = ["balances.csv", "accounts.csv", "payments.csv", "writeoffs.csv", "promises.csv", "agreements.csv",
         "contacts.csv", "costs.csv", "sales.csv"]


def _generate(out: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True,
                   timeout=60)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outcomes")
    _generate(out)
    return out


def test_the_generator_is_deterministic(generated: Path, tmp_path: Path) -> None:
    _generate(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (generated / name).read_bytes(), name


def test_the_committed_files_are_the_generators_output(generated: Path) -> None:
    for name in FILES:
        assert (COMMITTED / name).read_bytes() == (generated / name).read_bytes(), (
            f"policies/data/outcomes/{name} is stale; run python scripts/make_example_outcomes.py")


def test_every_consumer_lending_kpi_is_measured_on_the_example_data() -> None:
    program = compile_policy(load_policy(REPO / "policies" / "consumer-lending.yaml"))
    outcomes = load_outcomes(COMMITTED, field_columns(program.policy))
    assert [(i.file.rsplit("/", 1)[-1], i.rejected_rows) for i in outcomes.inputs] == [(f, 0) for f in (
        "accounts.csv", "balances.csv", "payments.csv", "writeoffs.csv", "promises.csv", "agreements.csv",
        "contacts.csv", "costs.csv", "sales.csv")]
    # monthly snapshots from the end of 2025 through 2026
    assert (outcomes.dates[0].isoformat(), outcomes.dates[-1].isoformat(), len(outcomes.dates)) == (
        "2025-12-31", "2026-12-31", 13)
    report = build_kpi_report(program, outcomes, parse_period("2026-Q3"))
    assert report["kpis"], "the consumer-lending policy has KPIs"
    for kpi in report["kpis"]:
        for result in kpi["results"]:
            assert result["actual"] is not None, (kpi["id"], result["period"], result["detail"])
        if kpi["period_kind"] == "month":
            # monthly trends exist: the four months before July
            assert all(t["actual"] is not None for t in kpi["trend"]), kpi["id"]
    assert report["roll_matrix"]["from"] == "2026-06-30" and report["roll_matrix"]["to"] == "2026-09-30"
