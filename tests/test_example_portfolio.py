"""Tests for the example portfolio generator and the data committed from it."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "make_example_portfolio.py"
COMMITTED = REPO / "policies" / "data"
FILES = ["accounts.csv", "history.csv", "holds.csv", "promises.csv"]

STANDARD_ACCOUNT_COLUMNS = [
    "account_id", "person_id", "debt_id", "timezone", "phone", "email", "address", "opt_out_channels",
    "stage", "stage_entered",
]
HISTORY_COLUMNS = [
    "account_id", "person_id", "debt_id", "contact", "channel", "direction", "outcome", "at", "consent",
    "template", "subject",
]
HOLD_COLUMNS = ["account_id", "type", "start", "end", "channels", "note"]
PROMISE_COLUMNS = ["account_id", "promised_on", "due", "amount", "paid", "status"]


def _run_generator(out: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("portfolio")
    _run_generator(out)
    return out


def test_generator_is_deterministic(generated: Path, tmp_path: Path) -> None:
    _run_generator(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (generated / name).read_bytes(), name


def test_committed_files_match_the_generator(generated: Path) -> None:
    for name in FILES:
        assert (COMMITTED / name).read_bytes() == (generated / name).read_bytes(), (
            f"policies/data/{name} is stale; run python scripts/make_example_portfolio.py"
        )


def test_headers(generated: Path) -> None:
    policy = yaml.safe_load((REPO / "policies" / "consumer-lending.yaml").read_text(encoding="utf-8"))
    account_columns, _ = _read(generated / "accounts.csv")
    missing = (set(policy["fields"]) | set(STANDARD_ACCOUNT_COLUMNS)) - set(account_columns)
    assert not missing
    assert _read(generated / "history.csv")[0] == HISTORY_COLUMNS
    assert _read(generated / "holds.csv")[0] == HOLD_COLUMNS
    assert _read(generated / "promises.csv")[0] == PROMISE_COLUMNS


def test_row_counts(generated: Path) -> None:
    _, accounts = _read(generated / "accounts.csv")
    _, history = _read(generated / "history.csv")
    _, holds = _read(generated / "holds.csv")
    _, promises = _read(generated / "promises.csv")
    assert len(accounts) == 2600
    assert len({a["account_id"] for a in accounts}) == len(accounts)
    assert 4.5 <= len(history) / len(accounts) <= 5.5
    assert 0.015 <= len(holds) / len(accounts) <= 0.025
    assert 0.04 <= len(promises) / len(accounts) <= 0.06
    # the shapes the restrictions depend on: shared persons, several zones, missing e-mail, opt-outs
    assert len({a["person_id"] for a in accounts}) < len(accounts)
    assert any(";" in a["timezone"] for a in accounts)
    assert any(a["email"] == "" for a in accounts)
    assert any(a["opt_out_channels"] for a in accounts)


def test_references_point_at_existing_accounts(generated: Path) -> None:
    _, accounts = _read(generated / "accounts.csv")
    owners = {a["account_id"]: (a["person_id"], a["debt_id"]) for a in accounts}
    _, history = _read(generated / "history.csv")
    for event in history:
        assert owners.get(event["account_id"]) == (event["person_id"], event["debt_id"]), event
    for name in ("holds.csv", "promises.csv"):
        _, rows = _read(generated / name)
        assert {row["account_id"] for row in rows} <= set(owners), name


def test_history_lies_in_the_fourteen_days_before_the_as_of_date(generated: Path) -> None:
    _, history = _read(generated / "history.csv")
    as_of = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    for event in history:
        assert event["at"].endswith("Z")
        at = dt.datetime.fromisoformat(event["at"])
        # local days 2026-11-09 to 2026-11-22 in US zones; late evening in Hawaii is already the 23rd in UTC
        assert as_of - dt.timedelta(days=14) < at < as_of + dt.timedelta(hours=10), event
