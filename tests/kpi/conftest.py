"""Shared fixtures of the KPI tests: the tiny book of the docs' worked examples and a small policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectrules.engine.program import Program, compile_policy
from collectrules.kpi.outcomes import Outcomes, load_outcomes
from collectrules.policy.check import load_policy

DATA = Path(__file__).resolve().parent / "data"
#: the book of the worked examples in docs/kpis.md
TINY_BOOK = DATA / "tiny-book"
TINY_POLICY = DATA / "tiny-policy.yaml"


@pytest.fixture(scope="session")
def tiny_book() -> Outcomes:
    return load_outcomes(TINY_BOOK)


@pytest.fixture(scope="session")
def tiny_program() -> Program:
    return compile_policy(load_policy(TINY_POLICY))
