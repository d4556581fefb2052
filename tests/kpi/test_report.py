"""`collectrules report`: every format, -o, --fail-on-miss, rejected outcome rows and usage errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collectrules.cli import cli
from collectrules.ledger import Ledger
from collectrules.registry import DeliveryResult

#: the tiny book of docs/kpis.md and the small policy measured on it (also conftest.py's fixtures)
TINY_BOOK = Path(__file__).resolve().parent / "data" / "tiny-book"
TINY_POLICY = Path(__file__).resolve().parent / "data" / "tiny-policy.yaml"

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
ARGS = ["report", "tests/kpi/data/tiny-policy.yaml", "--outcomes", "tests/kpi/data/tiny-book", "--period",
        "2026-07"]


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    # the report names its input files as given: run from the repository root so they read the same
    monkeypatch.chdir(REPO)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(("fmt", "golden"), [("text", "tiny-2026-07.txt"), ("md", "tiny-2026-07.md")])
def test_text_and_markdown_match_their_golden_files(fmt: str, golden: str) -> None:
    result = run(*ARGS, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / golden).read_text(encoding="utf-8")


def test_json_is_the_whole_report() -> None:
    result = run(*ARGS, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"] == {"kpis": 4, "measurements": 4, "met": 2, "missed": 1, "no_data": 1}
    assert report["period"] == {"period": "2026-07", "start": "2026-07-01", "end": "2026-07-31",
                                "to_date": False, "kind": "month", "name": "July 2026"}
    rpc = next(k for k in report["kpis"] if k["id"] == "rpc")
    (result_row,) = rpc["results"]
    assert {k: result_row[k] for k in ("actual", "threshold", "status", "numerator", "denominator")} == {
        "actual": "0.5", "threshold": "1.01", "status": "missed", "numerator": "4", "denominator": "8"}
    assert result_row["previous"]["period"] == "2026-06" and result_row["previous"]["actual"] == "1"
    assert [t["period"] for t in rpc["trend"]] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert report["roll_matrix"]["columns"][-2:] == ["paid off", "written off"]
    (experiment,) = report["experiments"]
    champion, challenger = experiment["comparisons"][0]["arms"]
    assert (champion["arm"], champion["actual"], champion["successes"], champion["trials"]) == (
        "champion", "0.75", 2, 2)
    assert challenger["actual"] is None and challenger["p_value"] is None


def test_csv_has_a_row_per_measurement_trend_point_and_arm() -> None:
    result = run(*ARGS, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    sections = [r["section"] for r in rows]
    assert (sections.count("result"), sections.count("trend"), sections.count("experiment")) == (4, 16, 2)
    roll = next(r for r in rows if r["section"] == "result" and r["kpi"] == "roll")
    assert (roll["actual"], roll["status"], roll["threshold"]) == ("0.2", "no_data", "")
    assert roll["detail"].startswith("the target needs the value of 2026-06, which has none")


def test_html_is_one_self_contained_page_with_the_charts(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run(*ARGS, "--format", "html", "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, "")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)
    charts = set(re.findall(r'aria-labelledby="(\w+)-title', page))
    assert {"recovery", "rollmatrix", "trend0", "trend3"} <= charts
    assert '<td class="missed">MISSED</td>' in page


def test_fail_on_miss_sets_the_exit_status(tmp_path: Path) -> None:
    assert run(*ARGS, "--fail-on-miss").exit_code == 1
    assert run(*ARGS).exit_code == 0
    met_only = tmp_path / "policy.yaml"
    met_only.write_text(TINY_POLICY.read_text(encoding="utf-8").split("  - id: roll\n")[0] +
                        "experiments: []\n", encoding="utf-8")
    result = run("report", str(met_only), "--outcomes", str(TINY_BOOK), "--period", "2026-07",
                 "--fail-on-miss")
    assert result.exit_code == 0, result.output
    assert "1 KPIs, 1 measurements: 1 met, 0 missed" in result.stdout
    missed = run(*ARGS, "--fail-on-miss")
    assert missed.stderr == "1 KPI measurement missed the target\n"


def test_rejected_outcome_rows_are_reported_with_their_row_numbers(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(TINY_BOOK, book)
    with (book / "payments.csv").open("a", encoding="utf-8") as handle:
        handle.write("A1,2026-07-06,twelve\n")
    with (book / "balances.csv").open("a", encoding="utf-8") as handle:
        handle.write("A1,2026-07-31,5.00,0,false,early\n")
    result = run("report", str(TINY_POLICY), "--outcomes", str(book), "--period", "2026-07")
    assert result.exit_code == 1
    assert f"{book / 'balances.csv'}:11: column 'date': account 'A1' already has a balance on 2026-07-31 " \
           "(row 7)" in result.stdout
    assert f"{book / 'payments.csv'}:7: column 'amount': " in result.stdout
    assert result.stderr == "warning: 2 outcome rows were rejected; the report uses the others\n"
    # the other rows are used: the recovery of A2 and A3 is unchanged
    assert "recovery-early  2026-07  75.00%" in result.stdout


def test_usage_and_data_errors() -> None:
    bad = run(*ARGS[:-1], "2026-Q5")
    assert bad.exit_code == 2
    assert "'2026-Q5' is not a period; write a year (2026)" in bad.stderr
    fmt = run(*ARGS, "--format", "pdf")
    assert fmt.exit_code == 2
    empty = run("report", str(TINY_POLICY), "--outcomes", "tests/kpi", "--period", "2026-07")
    assert empty.exit_code == 1
    assert "error[CR602]: the outcomes folder tests/kpi has no balances table" in empty.stderr


def test_sent_attempts_of_a_contact_ledger_count_as_contacts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    run_id = ledger.start_run("tiny", "1", dt.datetime(2026, 7, 2, tzinfo=dt.UTC))
    ledger.plan(run_id, key="k1", account_id="A1", person_id=None, debt_id=None, contact="+15555550100",
                channel="phone", template=None, stage="remind", subject="debtor", subject_line=None,
                body_sha256=None, transport="dialler")
    ledger.record("k1", DeliveryResult("right_party_contact"),
                  contact_at=dt.datetime(2026, 7, 2, 15, tzinfo=dt.UTC))
    ledger.finish_run(run_id)
    ledger.close()
    result = run(*ARGS, "--format", "json", "--ledger", str(tmp_path / "ledger.sqlite"))
    assert result.exit_code == 0, result.output
    rpc = next(k for k in json.loads(result.stdout)["kpis"] if k["id"] == "rpc")
    # the tiny book's 8 July calls reached the debtor 4 times; the ledger adds A1's call, which did too
    assert Decimal(rpc["results"][0]["actual"]) == Decimal(5) / Decimal(9)
