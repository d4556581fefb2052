"""The benchmarks' hand-written implementations of the reference policy decide as the engine does.

``bench/run.py`` compares the engine's speed with a plain-Python function and with Polars expressions
written by hand for ``bench/reference-policy.yaml``; the comparison means something only while the three
reach the same decisions (segment, stage, actions due, actions blocked with their restrictions and next
allowed time). Checked on a generated portfolio of 2,000 accounts, at the benchmark's as-of instant and on
the Thanksgiving holiday, where next-allowed times run over the holiday and the quiet hours.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from collectrules.engine.portfolio import Portfolio, evaluate_portfolio, load_portfolio
from collectrules.engine.program import Program, compile_policy
from collectrules.policy.check import load_policy

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import handwritten_polars  # noqa: E402
import handwritten_python  # noqa: E402

ACCOUNTS = 2_000
AS_OFS = (generate.AS_OF, dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate.write_portfolio(ACCOUNTS, tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def program() -> Program:
    return compile_policy(load_policy(generate.POLICY))


@pytest.fixture(scope="module")
def portfolio(program: Program, files: dict[str, Path]) -> Portfolio:
    return load_portfolio(program, files["accounts.parquet"], files["history.parquet"],
                          files["holds.parquet"])


@pytest.fixture(scope="module")
def engine(program: Program, portfolio: Portfolio) -> dict[dt.datetime, list[handwritten_python.Outcome]]:
    return {as_of: [handwritten_python.engine_outcome(d)
                    for d in evaluate_portfolio(program, portfolio, as_of)] for as_of in AS_OFS}


def _first_difference(expected: list[Any], actual: list[Any]) -> str:
    for want, got in zip(expected, actual, strict=True):
        if want != got:
            return f"engine {want}\nhand-written {got}"
    return ""


def test_the_portfolio_exercises_every_restriction(engine: dict[dt.datetime, list[Any]]) -> None:
    blocking = {rule for outcomes in engine.values() for outcome in outcomes
                for *_, rules, _ in outcome.blocked for rule in rules}
    assert blocking == set(handwritten_polars.RULES)
    later = [nxt for outcomes in engine.values() for outcome in outcomes
             for *_, nxt in outcome.blocked if nxt]
    assert later, "some blocked actions have a next allowed time"


@pytest.mark.parametrize("as_of", AS_OFS, ids=["benchmark-instant", "thanksgiving"])
def test_handwritten_python_decides_as_the_engine(as_of: dt.datetime, portfolio: Portfolio,
                                                   engine: dict[dt.datetime, list[Any]]) -> None:
    hand = handwritten_python.decide_portfolio(portfolio.accounts, portfolio.history, portfolio.holds, as_of)
    assert hand == engine[as_of], _first_difference(engine[as_of], hand)


@pytest.mark.parametrize("as_of", AS_OFS, ids=["benchmark-instant", "thanksgiving"])
def test_handwritten_polars_decides_as_the_engine(as_of: dt.datetime, files: dict[str, Path],
                                                  engine: dict[dt.datetime, list[Any]]) -> None:
    frames = handwritten_polars.read_portfolio(str(files["accounts.parquet"]), str(files["history.parquet"]),
                                               str(files["holds.parquet"]))
    hand = handwritten_polars.outcomes(handwritten_polars.decide_frames(*frames, as_of))
    assert hand == engine[as_of], _first_difference(engine[as_of], hand)


def test_the_generator_is_deterministic_and_extends_smaller_portfolios(tmp_path: Path,
                                                                       files: dict[str, Path]) -> None:
    smaller = generate.write_portfolio(500, tmp_path)
    for name in ("accounts.csv", "history.csv", "holds.csv"):
        small_lines = smaller[name].read_text(encoding="utf-8").splitlines()
        large_lines = files[name].read_text(encoding="utf-8").splitlines()
        last_account = "A00000500"
        # every row of the smaller portfolio, in order, begins the larger one
        assert large_lines[:len(small_lines)] == small_lines
        assert all(line.split(",", 1)[0] <= last_account for line in small_lines[1:])
