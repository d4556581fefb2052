"""Built-in scoring models: a points scorecard and a logistic model.

**scorecard**: ``score = base + Σ points`` where each characteristic contributes the points of its first
bin whose ``when`` holds (a bin without ``when`` always holds, so it serves as "otherwise"); a
characteristic with no matching bin contributes 0.

**logistic**: ``p = 1 / (1 + e^-(intercept + Σ coefficient·value))``, computed in exact decimal arithmetic
and rounded half-up to 9 places; the score is null when any term's value is null.

Both read their parameters from the policy (``scores: NAME: {plugin: …, params: …}``); expressions inside
the parameters are type-checked and located like every other expression.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from ..registry import Scorer
from . import hookimpl

_NUMBER = {"type": "number"}

SCORECARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["characteristics"],
    "properties": {
        "base": {**_NUMBER, "description": "Points every account starts with (default 0)."},
        "characteristics": {
            "type": "array", "minItems": 1,
            "description": "Each characteristic adds the points of its first matching bin.",
            "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "bins"],
                "properties": {
                    "name": {"type": "string", "description": "What the characteristic measures."},
                    "bins": {
                        "type": "array", "minItems": 1,
                        "items": {
                            "type": "object", "additionalProperties": False, "required": ["points"],
                            "properties": {
                                "when": {"type": "string", "description": "Condition for this bin."},
                                "points": {**_NUMBER, "description": "Points added when the bin holds."},
                            },
                        },
                    },
                },
            },
        },
    },
}

LOGISTIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["intercept", "terms"],
    "properties": {
        "intercept": {**_NUMBER, "description": "The model's intercept (log-odds when every term is 0)."},
        "terms": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "additionalProperties": False, "required": ["value", "coefficient"],
                "properties": {
                    "value": {"type": "string", "description": "A numeric expression, e.g. dpd or balance / 1000."},
                    "coefficient": {**_NUMBER, "description": "Its coefficient in the log-odds."},
                },
            },
        },
    },
}


def _dec(number: int | float) -> Decimal:
    # YAML gives floats; go through their shortest text so 0.1 stays 0.1
    return Decimal(str(number))


def _prepare_scorecard(params: dict[str, Any], compile_expr: Callable[..., Any]) -> Callable[[Any], Any]:
    base = _dec(params.get("base", 0))
    characteristics: list[list[tuple[Callable[[Any], Any] | None, Decimal]]] = []
    for c_index, characteristic in enumerate(params["characteristics"]):
        bins = []
        for b_index, bin_ in enumerate(characteristic["bins"]):
            when = bin_.get("when")
            condition = (compile_expr(when, ("characteristics", c_index, "bins", b_index, "when"), condition=True)
                         if when is not None else None)
            bins.append((condition, _dec(bin_["points"])))
        characteristics.append(bins)

    def score(ctx: Any) -> Decimal:
        total = base
        for bins in characteristics:
            for condition, points in bins:
                if condition is None or condition(ctx) is True:
                    total += points
                    break
        return total

    return score


_QUANTUM = Decimal("0.000000001")


def _prepare_logistic(params: dict[str, Any], compile_expr: Callable[..., Any]) -> Callable[[Any], Any]:
    intercept = _dec(params["intercept"])
    terms = [(compile_expr(term["value"], ("terms", index, "value"), numeric=True), _dec(term["coefficient"]))
             for index, term in enumerate(params["terms"])]

    def score(ctx: Any) -> Decimal | None:
        z = intercept
        for value_of, coefficient in terms:
            value = value_of(ctx)
            if value is None:
                return None
            z += coefficient * Decimal(value)
        with localcontext() as context:
            context.prec = 40
            # clamp the exponent: beyond ±700 the probability is 0 or 1 to far more than 9 places
            z = max(min(z, Decimal(700)), Decimal(-700))
            probability = Decimal(1) / (Decimal(1) + (-z).exp())
        return probability.quantize(_QUANTUM, rounding=ROUND_HALF_UP)

    return score


@hookimpl
def collectrules_register_scorers(register: Callable[[Scorer], None]) -> None:
    register(Scorer("scorecard", "Points scorecard: base plus the points of each characteristic's first "
                                 "matching bin.", SCORECARD_SCHEMA, _prepare_scorecard))
    register(Scorer("logistic", "Logistic regression: probability from an intercept and weighted terms.",
                    LOGISTIC_SCHEMA, _prepare_logistic))
