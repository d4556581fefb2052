"""Tests for the expression pretty-printer (collectrules.lang.printer): canonical text, parse round trips."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectrules.lang import ast
from collectrules.lang.parser import parse
from collectrules.lang.printer import strip_spans, to_source

S = ast.Span(0, 0)

# ------------------------------------------------------------------------------------------------------------
# Random trees
# ------------------------------------------------------------------------------------------------------------

# Includes names that start with a keyword, which must stay names when printed and read back.
NAMES = ("dpd", "balance", "a", "b", "_x1", "order", "notes", "iffy", "nullable", "between_x", "isolated")
FUNCTIONS = ("days_since", "min", "coalesce", "f")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")

# Unary minus in front of these is folded into the literal by the parser, so such trees are not generated;
# negative literals are generated directly instead.
FOLDED_KINDS = frozenset({"int", "decimal", "percent", "duration"})


def _scaled(unscaled: int, places: int) -> Decimal:
    # built from digits and an exponent, so the value is exact (no float, no context rounding)
    sign = 1 if unscaled < 0 else 0
    digits = tuple(int(d) for d in str(abs(unscaled)))
    return Decimal((sign, digits, -places))


decimals = st.builds(_scaled, st.integers(-(10**12), 10**12), st.integers(-3, 8))
percents = st.builds(_scaled, st.integers(-(10**9), 10**9), st.integers(0, 8))
# Days and weeks are calendar durations, the rest sliding ones; both stay within the 1000-year bound.
durations = st.one_of(
    st.builds(lambda count, unit: _dt.timedelta(seconds=count * unit),
              st.integers(-100_000, 100_000), st.sampled_from((1, 60, 3600, 90, 5400))),
    st.builds(lambda count, unit: ast.CalendarDuration(seconds=count * unit),
              st.integers(-40_000, 40_000), st.sampled_from((86400, 7 * 86400))),
)
# Quotes of both kinds, backslashes and control characters are the interesting part of a string.
strings = st.text(
    alphabet=st.one_of(st.sampled_from('"\'\\\n\t\r %é€ ab'), st.characters(exclude_categories=("Cs",))),
    max_size=12,
)

literals: st.SearchStrategy[ast.Expr] = st.one_of(
    st.builds(lambda v: ast.Literal("int", v, S), st.integers(-(2**63 - 1), 2**63 - 1)),
    st.builds(lambda v: ast.Literal("decimal", v, S), decimals),
    st.builds(lambda v: ast.Literal("percent", v, S), percents),
    st.builds(lambda v: ast.Literal("duration", v, S), durations),
    st.builds(lambda v: ast.Literal("string", v, S), strings),
    st.builds(lambda v: ast.Literal("bool", v, S), st.booleans()),
    st.just(ast.Literal("null", None, S)),
)
dates = st.builds(
    lambda d: ast.Call("date", (ast.Literal("string", d.isoformat(), S),), S),
    st.dates(min_value=_dt.date(1990, 1, 1), max_value=_dt.date(2100, 12, 31)),
)
leaves: st.SearchStrategy[ast.Expr] = st.one_of(
    literals,
    st.builds(lambda n: ast.Name(n, S), st.sampled_from(NAMES)),
    st.builds(lambda n: ast.Member("score", n, S), st.sampled_from(NAMES)),
    dates,
)


def _negatable(node: ast.Expr) -> bool:
    return not (isinstance(node, ast.Literal) and node.kind in FOLDED_KINDS)


def _compound(sub: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    items = st.lists(sub, max_size=3).map(tuple)
    return st.one_of(
        st.builds(lambda op, left, right: ast.BinOp(op, left, right, S),
                  st.sampled_from(("and", "or", *COMPARISONS, *ARITHMETIC)), sub, sub),
        st.builds(lambda e: ast.Unary("not", e, S), sub),
        st.builds(lambda e: ast.Unary("neg", e, S), sub.filter(_negatable)),
        st.builds(lambda v, c, neg: ast.In(v, c, neg, S), sub, sub, st.booleans()),
        st.builds(lambda v, lo, hi: ast.Between(v, lo, hi, S), sub, sub, sub),
        st.builds(lambda v, neg: ast.IsNull(v, neg, S), sub, st.booleans()),
        st.builds(lambda c, t, o: ast.If(c, t, o, S), sub, sub, sub),
        st.builds(lambda f, args: ast.Call(f, args, S), st.sampled_from(FUNCTIONS), items),
        st.builds(lambda args: ast.ListLit(args, S), items),
    )


def _expressions(depth: int) -> st.SearchStrategy[ast.Expr]:
    if depth == 0:
        return leaves
    return st.one_of(leaves, _compound(_expressions(depth - 1)))


expressions = _expressions(4)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_printed_text_parses_back_to_the_same_tree(expr: ast.Expr) -> None:
    text = to_source(expr)
    assert strip_spans(parse(text)) == strip_spans(expr), text


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_printing_is_stable(expr: ast.Expr) -> None:
    text = to_source(expr)
    assert to_source(parse(text)) == text


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_strip_spans_keeps_structure_and_zeroes_spans(expr: ast.Expr) -> None:
    parsed = parse(to_source(expr))
    stripped = strip_spans(parsed)
    assert all(node.span == S for node in ast.walk(stripped))
    assert [type(n).__name__ for n in ast.walk(stripped)] == [type(n).__name__ for n in ast.walk(parsed)]


# ------------------------------------------------------------------------------------------------------------
# Canonical text of known inputs
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # spelling and spacing
        ("a&&b||!c", "a and b or not c"),
        ("f( a ,b, )", "f(a, b)"),
        ("[1,2,]", "[1, 2]"),
        ("x not in[1]", "x not in [1]"),
        ("x is not null", "x is not null"),
        ("score . recovery", "score.recovery"),
        # parentheses only where precedence needs them
        ("(a + b) * c", "(a + b) * c"),
        ("a + (b * c)", "a + b * c"),
        ("(a - b) - c", "a - b - c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a / (b / c)", "a / (b / c)"),
        ("(a or b) and c", "(a or b) and c"),
        ("a or (b and c)", "a or b and c"),
        ("(a or b) or c", "a or b or c"),
        ("a or (b or c)", "a or (b or c)"),
        ("a and (not b)", "a and not b"),
        ("not (a and b)", "not (a and b)"),
        ("not (not a)", "not not a"),
        ("(not a) == b", "(not a) == b"),
        ("(a == b) == c", "(a == b) == c"),
        ("a == (b < c)", "a == (b < c)"),
        ("(a in b) in c", "(a in b) in c"),
        ("x between (a and b) and c", "x between (a and b) and c"),
        ("x between a + 1 and b * 2", "x between a + 1 and b * 2"),
        ("(x is null) is null", "(x is null) is null"),
        ("-(a + b)", "-(a + b)"),
        ("-(-a)", "--a"),
        ("(if a then b else c) + 1", "(if a then b else c) + 1"),
        ("if a then b else (c or d)", "if a then b else c or d"),
        ("if (if a then b else c) then d else e", "if if a then b else c then d else e"),
        ("f((if a then 1 else 2))", "f(if a then 1 else 2)"),
        ("((((a))))", "a"),
        # literals
        ("5000.50", "5000.50"),
        ("-5", "-5"),
        ("a - -5", "a - -5"),
        ("-2.50 * a", "-2.50 * a"),
        ("90%", "90%"),
        ("12.5%", "12.5%"),
        ("0.125%", "0.125%"),
        ("100%", "100%"),
        ("-90%", "-90%"),
        ("-0.0", "0.0"),
        ("7d", "1w"),
        ("168h", "168h"),  # hours stay a sliding period: never rewritten as calendar days
        ("48h", "48h"),
        ("14d", "2w"),
        ("90m", "90m"),
        ("3600s", "1h"),
        ("0d", "0s"),
        ("-14d", "-2w"),
        ("'it\\'s'", "\"it's\""),
        ("'say \"hi\"'", '"say \\"hi\\""'),
        ('"a\\\\b\\nc\\td"', '"a\\\\b\\nc\\td"'),
        ('date("2026-01-31")', 'date("2026-01-31")'),
        ("true || null", "true or null"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_source(parse(text)) == canonical


def test_decimal_without_fraction_keeps_a_point_so_it_stays_a_decimal() -> None:
    assert to_source(ast.Literal("decimal", Decimal("5"), S)) == "5.0"
    assert to_source(ast.Literal("decimal", Decimal("5E+2"), S)) == "500.0"
    assert to_source(ast.Literal("decimal", Decimal("1E-10"), S)) == "0.0000000001"
    assert parse("5.0") == ast.Literal("decimal", Decimal("5"), ast.Span(0, 3))


def test_percent_prints_the_hundredfold_value_exactly() -> None:
    assert to_source(ast.Literal("percent", Decimal("0.9"), S)) == "90%"
    assert to_source(ast.Literal("percent", Decimal("0.125"), S)) == "12.5%"
    assert to_source(ast.Literal("percent", Decimal("3"), S)) == "300%"
    assert to_source(ast.Literal("percent", Decimal("0.0100"), S)) == "1%"
    assert to_source(ast.Literal("percent", Decimal("-0.000"), S)) == "0%"
    long_value = Decimal("0." + "1234567890" * 4)  # more digits than the default decimal context keeps
    assert to_source(ast.Literal("percent", long_value, S)) == "12.34567890" + "1234567890" * 2 + "123456789%"


def test_unary_minus_over_a_name_and_a_literal_operand() -> None:
    negated_name = ast.Unary("neg", ast.Name("dpd", S), S)
    assert to_source(negated_name) == "-dpd"
    assert to_source(ast.BinOp("*", negated_name, ast.Literal("int", -2, S), S)) == "-dpd * -2"
    # a negative literal as the operand of a product on the right still needs no parentheses
    minus_negative = ast.BinOp("-", ast.Name("a", S), ast.Literal("decimal", Decimal("-1.5"), S), S)
    assert to_source(minus_negative) == "a - -1.5"


@pytest.mark.parametrize(
    "node",
    [
        ast.Name("and", S),
        ast.Name("true", S),
        ast.Name("has-dash", S),
        ast.Call("not", (), S),
        ast.Member("score", "in", S),
        ast.Literal("duration", _dt.timedelta(milliseconds=1500), S),
        ast.Literal("decimal", Decimal("NaN"), S),
        ast.Literal("percent", Decimal("Infinity"), S),
    ],
    ids=repr,
)
def test_trees_no_text_can_produce_are_rejected(node: ast.Expr) -> None:
    with pytest.raises(ValueError):
        to_source(node)


def test_strip_spans_only_changes_spans() -> None:
    parsed = parse('if dpd between 1 and 30 then score.recovery * 90% else coalesce(balance, 0) - 1')
    stripped = strip_spans(parsed)
    assert isinstance(stripped, ast.If) and isinstance(parsed, ast.If)
    assert stripped.span == S and parsed.span != S
    assert to_source(stripped) == to_source(parsed)
    assert strip_spans(stripped) == stripped


def test_deep_trees_print_without_recursion() -> None:
    node: ast.Expr = ast.Name("x", S)
    for _ in range(5000):
        node = ast.BinOp("+", node, ast.Name("y", S), S)
    text = to_source(node)
    assert text == "x" + " + y" * 5000
    assert to_source(strip_spans(node)) == text


@pytest.mark.parametrize(
    "node",
    [
        ast.Literal("int", "5", S),
        ast.Literal("decimal", "1.5", S),
        ast.Literal("bool", 1, S),
        ast.Literal("string", 5, S),
        ast.Literal("date", _dt.date(2026, 1, 31), S),
    ],
    ids=repr,
)
def test_literals_whose_value_does_not_fit_their_kind_are_rejected(node: ast.Literal) -> None:
    with pytest.raises(ValueError):
        to_source(node)
