"""Parser facade: expression text in, AST out, or an :class:`ExprProblem` with an exact offset.

The LALR parser is built once from ``grammar.lark`` (package data). Input is bounded before parsing (length)
and the parse tree's depth is measured without recursion before it is transformed, so hostile input yields a
clean error instead of a RecursionError. Parsed expressions are cached by their text.
"""

from __future__ import annotations

import datetime as _dt
import functools
from decimal import Decimal

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast

MAX_EXPR_LENGTH = 10_000
MAX_EXPR_DEPTH = 100

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# Friendly names for terminals in "expected …" messages.
_TERMINAL_NAMES = {
    "NAME": "a name", "INT": "a number", "DECIMAL": "a number", "PERCENT": "a percentage",
    "DURATION": "a duration", "STRING": "a string", "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
    "DOT": "'.'", "MINUS": "'-'", "BANG": "'!'", "$END": "the end of the expression",
}


class ExprProblem(Exception):
    """A located problem inside one expression; offsets index the expression text."""

    def __init__(self, code: str, message: str, start: int, end: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.start = start
        self.end = end
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (at offset {self.start})"


@functools.cache
def _parser() -> Lark:
    # cache=True keeps the built LALR tables in the temp folder, keyed by the grammar: start-up stays fast
    return Lark.open_from_package("collectrules.lang", "grammar.lark", parser="lalr", cache=True,
                                  propagate_positions=True, maybe_placeholders=True)


def _span(meta: object) -> ast.Span:
    return ast.Span(getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0))


def _tok_span(token: Token) -> ast.Span:
    start = token.start_pos or 0
    return ast.Span(start, start + len(token))


#: literal numbers are bounded so that every backend can hold them (64-bit integers, 28-digit decimals)
MAX_INT = 2**63 - 1
MAX_DECIMAL_DIGITS = 28
MAX_DURATION_SECONDS = 1000 * 366 * 86400


def parse_duration_text(text: str) -> _dt.timedelta:
    """``7d`` → 7 days; units w, d, h, m, s. Days and weeks give a :class:`~ast.CalendarDuration`."""
    seconds = int(text[:-1]) * _UNIT_SECONDS[text[-1]]
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {text} is longer than 1000 years")
    if text[-1] in "dw":
        return ast.CalendarDuration(seconds=seconds)
    return _dt.timedelta(seconds=seconds)


def _bounded_number(token: Token) -> None:
    text = str(token).rstrip("%")
    start = token.start_pos or 0
    if "." in text or str(token).endswith("%"):
        digits = len(text.replace(".", "").lstrip("0"))
        if digits > MAX_DECIMAL_DIGITS:
            raise ExprProblem("CR305", f"number literal has {digits} digits; at most {MAX_DECIMAL_DIGITS} are "
                                       "supported", start, start + len(token))
    elif len(text) > 19 or int(text) > MAX_INT:
        raise ExprProblem("CR305", f"integer literal {text[:24]}{'…' if len(text) > 24 else ''} is larger than "
                                   f"{MAX_INT:,}", start, start + len(token))


def _unescape(token: Token) -> str:
    body = str(token)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            mapped = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(nxt)
            if mapped is None:
                start = (token.start_pos or 0) + 1 + i
                raise ExprProblem("CR303", f"unknown escape '\\{nxt}' in string", start, start + 2,
                                  "write \\\\ for a backslash; known escapes: \\n \\t \\\\ \\\" \\'")
            out.append(mapped)
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


@v_args(meta=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    """Builds AST nodes from the parse tree; one method per grammar alternative."""

    def if_expr(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.If(c[0], c[1], c[2], _span(meta))

    def or_op(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.BinOp("or", c[0], c[1], _span(meta))

    def and_op(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.BinOp("and", c[0], c[1], _span(meta))

    def not_op(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.Unary("not", c[0], _span(meta))

    def compare(self, meta: object, c: list[ast.Expr | Token]) -> ast.Expr:
        left, op, right = c
        return ast.BinOp(str(op), left, right, _span(meta))  # type: ignore[arg-type]

    def in_op(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.In(c[0], c[1], False, _span(meta))

    def not_in_op(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.In(c[0], c[1], True, _span(meta))

    def between(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.Between(c[0], c[1], c[2], _span(meta))

    def is_null(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.IsNull(c[0], False, _span(meta))

    def is_not_null(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        return ast.IsNull(c[0], True, _span(meta))

    def arith(self, meta: object, c: list[ast.Expr | Token]) -> ast.Expr:
        left, op, right = c
        return ast.BinOp(str(op), left, right, _span(meta))  # type: ignore[arg-type]

    def neg(self, meta: object, c: list[ast.Expr]) -> ast.Expr:
        operand = c[0]
        span = _span(meta)
        # fold "-5" into a literal so that it reads back as one and type-checks as a constant
        if isinstance(operand, ast.Literal) and operand.kind in ("int", "decimal", "percent", "duration"):
            value = -operand.value  # type: ignore[operator]
            if isinstance(operand.value, ast.CalendarDuration):
                value = ast.CalendarDuration(seconds=value.total_seconds())
            return ast.Literal(operand.kind, value, span)
        return ast.Unary("neg", operand, span)

    def call(self, meta: object, c: list[Token | Tree | None]) -> ast.Expr:
        name, args = c
        items = tuple(args.children) if isinstance(args, Tree) else ()
        return ast.Call(str(name), items, _span(meta))  # type: ignore[arg-type]

    def member(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Member(str(c[0]), str(c[1]), _span(meta))

    def list_lit(self, meta: object, c: list[Tree | None]) -> ast.Expr:
        args = c[0]
        items = tuple(args.children) if isinstance(args, Tree) else ()
        return ast.ListLit(items, _span(meta))  # type: ignore[arg-type]

    def args(self, meta: object, c: list[ast.Expr]) -> Tree:  # type: ignore[type-arg]
        return Tree("args", c)

    def int_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        _bounded_number(c[0])
        return ast.Literal("int", int(c[0]), _tok_span(c[0]))

    def decimal_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        _bounded_number(c[0])
        return ast.Literal("decimal", Decimal(str(c[0])), _tok_span(c[0]))

    def percent_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        _bounded_number(c[0])
        return ast.Literal("percent", Decimal(str(c[0])[:-1]).scaleb(-2), _tok_span(c[0]))

    def duration_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        token = c[0]
        if len(token) > 12:
            start = token.start_pos or 0
            raise ExprProblem("CR305", "duration literal is too long", start, start + len(token))
        try:
            value = parse_duration_text(str(token))
        except ValueError as exc:
            start = token.start_pos or 0
            raise ExprProblem("CR305", str(exc), start, start + len(token)) from None
        return ast.Literal("duration", value, _tok_span(token))

    def string_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Literal("string", _unescape(c[0]), _tok_span(c[0]))

    def true_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Literal("bool", True, _span(meta))

    def false_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Literal("bool", False, _span(meta))

    def null_lit(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Literal("null", None, _span(meta))

    def name(self, meta: object, c: list[Token]) -> ast.Expr:
        return ast.Name(str(c[0]), _tok_span(c[0]))


_TO_AST = _ToAst()


def _tree_depth(tree: Tree) -> int:  # type: ignore[type-arg]
    deepest = 0
    stack: list[tuple[Tree, int]] = [(tree, 1)]  # type: ignore[type-arg]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def _describe_expected(expected: set[str]) -> str:
    if {"NAME", "INT"} <= expected:
        return "a value (a name, number, string, list or '(')"
    if "ADD_OP" in expected:
        # LALR merges look-ahead sets, so listing them all would mislead; say what kind of thing fits
        return "an operator (and, or, ==, <, +, …), a closing bracket or a keyword such as 'then'"
    names = sorted({_TERMINAL_NAMES.get(t, f"'{t.lower()}'" if t.isalpha() else t) for t in expected})
    keywords = [n for n in names if n.startswith("'") and n.strip("'").isalpha()]
    others = [n for n in names if n not in keywords]
    if len(others) > 6:
        others = others[:6] + ["…"]
    return ", ".join(others + keywords[:4])


def _syntax_problem(text: str, exc: UnexpectedInput) -> ExprProblem:
    pos = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
    if isinstance(exc, UnexpectedCharacters):
        char = text[pos] if pos < len(text) else ""
        if char in "\"'":
            return ExprProblem("CR303", "unterminated string", pos, len(text),
                               f"close the string with {char}")
        hint = None
        if char == "=":
            hint = "compare with '=='"
        elif char == "&" or char == "|":
            hint = "write '&&'/'||' or 'and'/'or'"
        elif char == "%":
            hint = "a percentage is written right after its number, as in 90%"
        return ExprProblem("CR302", f"unexpected character {char!r}", pos, pos + 1, hint)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        expected = getattr(exc, "expected", set()) or set()
        end = len(text.rstrip())  # block scalars end with a newline; point just after the last character
        return ExprProblem("CR301", "unexpected end of expression", end, end + 1,
                           f"expected {_describe_expected(set(expected))}" if expected else None)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    start = token.start_pos if token.start_pos is not None else pos
    found = str(token)
    hint = f"expected {_describe_expected(set(exc.expected))}" if exc.expected else None
    if token.type == "COMP_OP" and exc.expected and "COMP_OP" not in exc.expected:
        hint = "comparisons do not chain: write 'a < b and b < c', or use 'between'"
    if found == "=" or token.type == "EQUAL":
        hint = "compare with '=='"
    return ExprProblem("CR301", f"unexpected {found!r}", start, start + max(1, len(found)), hint)


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> ast.Expr:
    """Parse one expression. Raises :class:`ExprProblem` (codes CR301–CR305) on bad input."""
    if len(text) > MAX_EXPR_LENGTH:
        raise ExprProblem("CR304", f"expression is {len(text):,} characters long; the limit is {MAX_EXPR_LENGTH:,}",
                          0, 1, "split it into named expressions under 'derive'")
    if not text.strip():
        raise ExprProblem("CR301", "empty expression", 0, 1, "write a condition such as 'dpd >= 30'")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_problem(text, exc) from None
    except RecursionError:
        raise ExprProblem("CR304", f"expression nests deeper than {MAX_EXPR_DEPTH} levels", 0, 1) from None
    if _tree_depth(tree) > MAX_EXPR_DEPTH:
        raise ExprProblem("CR304", f"expression nests deeper than {MAX_EXPR_DEPTH} levels", 0, 1,
                          "split it into named expressions under 'derive'")
    if isinstance(tree, Token):
        # a lone literal or name: the grammar inlines it, so wrap it for the transformer
        tree = Tree("name", [tree]) if tree.type == "NAME" else Tree(_LONE_TOKEN_RULES[tree.type], [tree])
    try:
        result = _TO_AST.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExprProblem):
            raise exc.orig_exc from None
        raise
    return result  # type: ignore[no-any-return]


_LONE_TOKEN_RULES = {"INT": "int_lit", "DECIMAL": "decimal_lit", "PERCENT": "percent_lit",
                     "DURATION": "duration_lit", "STRING": "string_lit"}
