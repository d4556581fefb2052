"""Rows backend: compiles a checked expression into one Python function, evaluated one account at a time.

``compile_expr`` turns the checked AST into the source of a single function and compiles it; the result
does no dispatch on node types, no lookups by name in registries and no parsing. The source is built only
from fixed text of this module (operators, keywords) and generated identifiers: every field name, literal,
score name and function of the checked AST is bound to a numbered slot of the function's namespace
(``_k0``, ``_f1`` …), so no text from a policy ever reaches the compiler, and the namespace has no
builtins. An expression too deeply nested for one function falls back to nested closures (the same
semantics, more calls per evaluation).

Null semantics (the same in every backend, see docs/expression-language.md):
- a comparison, ``in``, ``not in`` or ``between`` with a null operand is false;
- arithmetic and most functions propagate null;
- ``and``/``or``/``not`` follow three-valued logic (null and false = false, null or true = true,
  not null = null); a condition whose value is null does not match.

Operands are evaluated in the same order, and under the same conditions, by the generated function and by
the closures: left before right, every argument of a call or an arithmetic operation before the null check,
the bounds of ``between`` only once the value is known not to be null.
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from ..lang import ast
from ..lang.checker import TypedExpr
from ..lang.functions import FunctionRegistry

Evaluator = Callable[[Any], Any]

#: nesting depth above which an expression is compiled to closures: the generated source nests one level of
#: parentheses per node, and CPython's parser refuses more than 200
MAX_GENERATED_DEPTH = 40


class ExprRuntimeError(Exception):
    """Evaluation of one expression failed (division by zero, overflow); carries the node's span."""

    def __init__(self, message: str, span: ast.Span) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
#: the Python operator written into generated source for each comparison of the language
_COMPARE_SOURCE: dict[str, str] = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def compile_expr(typed: TypedExpr, functions: FunctionRegistry) -> Evaluator:
    """Compile a checked expression into ``Callable[[ctx], value]``.

    ``ctx`` must offer ``values`` (a dict of field and derived values), ``scores`` (a dict) and, for
    context functions, the :class:`~collectrules.lang.functions.EvalContext` members.
    """
    if _depth(typed.expr) <= MAX_GENERATED_DEPTH:
        try:
            return _Generator(typed, functions).function()
        except (SyntaxError, RecursionError, MemoryError):
            # CPython's compiler has limits of its own; the closures have none
            pass
    return _Compiler(typed, functions).compile(typed.expr)


def _depth(root: ast.Expr) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.children(node))
    return deepest


# ---------------------------------------------------------------------------------------------------------
# what both compilers share: the semantics of arithmetic, calls and decimal results


def _as_decimal(value: Any) -> Any:
    """An int where the checker unified int and decimal into decimal becomes a Decimal."""
    return Decimal(value) if type(value) is int else value


def _as_decimal_items(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(Decimal(v) if type(v) is int else v for v in values)


def _coerces_to_decimal(typed: TypedExpr, node: ast.Expr) -> bool:
    # where the checker unified int and decimal into decimal (if/else branches, min, max, coalesce), make the
    # value a Decimal too, so a value's type never depends on which branch produced it
    return typed.type_of(node).kind == "decimal" and isinstance(node, ast.If | ast.Call)


def _decimal_list(typed: TypedExpr, node: ast.Expr) -> bool:
    node_type = typed.type_of(node)
    return node_type.kind == "list" and node_type.item is not None and node_type.item.kind == "decimal" \
        and isinstance(node, ast.ListLit)


def _arith_operation(typed: TypedExpr, node: ast.BinOp) -> Callable[[Any, Any], Any]:
    """``(left, right) → result`` of an arithmetic node, null-propagating; errors carry its span."""
    span = node.span
    op = node.op
    if op == "/":
        def divide(a: Any, b: Any) -> Decimal | None:
            if a is None or b is None:
                return None
            if b == 0:
                raise ExprRuntimeError("division by zero", span)
            try:
                return Decimal(a) / Decimal(b)
            except (InvalidOperation, DivisionByZero) as exc:
                raise ExprRuntimeError(f"invalid division: {exc}", span) from None
        return divide
    fn = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]
    result_kind = typed.type_of(node).kind
    left_kind = typed.type_of(node.left).kind
    right_kind = typed.type_of(node.right).kind
    if result_kind == "duration" and "decimal" in (left_kind, right_kind):
        # timedelta * Decimal is not defined in Python: go through whole seconds, exactly
        def scale(a: Any, b: Any) -> _dt.timedelta | None:
            if a is None or b is None:
                return None
            duration, factor = (a, b) if isinstance(a, _dt.timedelta) else (b, a)
            seconds = Decimal(int(duration.total_seconds())) * Decimal(factor)
            return _dt.timedelta(seconds=int(seconds))
        return scale

    def arith(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return fn(a, b)
        except (OverflowError, InvalidOperation) as exc:
            raise ExprRuntimeError(f"arithmetic failed: {exc}", span) from None
    return arith


def _constant_call(functions: FunctionRegistry, node: ast.Call) -> tuple[bool, Any]:
    """``date("…")`` and ``datetime("…")`` literals are values known when compiling."""
    if node.func in ("date", "datetime") and functions.get(node.func) is None:
        text = str(node.args[0].value)  # type: ignore[union-attr]
        if node.func == "date":
            return True, _dt.date.fromisoformat(text)
        return True, _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(_dt.UTC)
    return False, None


def _call_operation(functions: FunctionRegistry, node: ast.Call) -> tuple[Callable[..., Any], bool]:
    """The call of a function on evaluated arguments (the context first when it uses one), null-propagating
    unless the function is null-safe; a failure carries the call's span. Returns it and whether it takes
    the context."""
    function = functions.get(node.func)
    assert function is not None, "the checker guarantees every called function exists"
    impl = function.impl
    span = node.span
    name = node.func
    null_safe = function.null_safe

    if function.uses_context:
        def call_with_context(ctx: Any, *values: Any) -> Any:
            if not null_safe:
                for value in values:
                    if value is None:
                        return None
            try:
                return impl(ctx, *values)
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise ExprRuntimeError(f"{name}() failed: {exc}", span) from None
        return call_with_context, True

    def call(*values: Any) -> Any:
        if not null_safe:
            for value in values:
                if value is None:
                    return None
        try:
            return impl(*values)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ExprRuntimeError(f"{name}() failed: {exc}", span) from None
    return call, False


# ---------------------------------------------------------------------------------------------------------
# the generator: one function per expression


class _Generator:
    """Writes the source of ``def evaluate(ctx)`` for a checked expression and compiles it.

    Every value the source refers to lives in the namespace under a generated name: ``_k<n>`` for
    constants (names of fields and scores, literals), ``_f<n>`` for operations (calls, arithmetic);
    ``_t<n>`` are the function's temporaries. Sub-expressions become Python expressions whose evaluation
    order and short-circuits are those of the closures of :class:`_Compiler`.
    """

    def __init__(self, typed: TypedExpr, functions: FunctionRegistry) -> None:
        self.typed = typed
        self.functions = functions
        self.namespace: dict[str, Any] = {"__builtins__": {}, "_type": type, "_int": int}
        self.counter = 0
        self.reads_values = False

    def function(self) -> Evaluator:
        body = self.expr(self.typed.expr)
        values = "    _v = ctx.values\n" if self.reads_values else ""
        source = f"def evaluate(ctx):\n{values}    return {body}\n"
        code = compile(source, "<collectrules expression>", "exec")
        exec(code, self.namespace)  # noqa: S102 - source built from this module's text and generated names only
        evaluate: Evaluator = self.namespace["evaluate"]
        return evaluate

    def slot(self, prefix: str, value: Any) -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        self.namespace[name] = value
        return name

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def expr(self, node: ast.Expr) -> str:
        text = self._expr(node)
        if _coerces_to_decimal(self.typed, node):
            t = self.temp()
            # the condition runs first and binds the temporary the branches read
            return f"({self.slot('f', Decimal)}({t}) if _type({t} := {text}) is _int else {t})"
        if _decimal_list(self.typed, node):
            return f"{self.slot('f', _as_decimal_items)}({text})"
        return text

    def _literal(self, node: ast.Expr) -> tuple[bool, Any]:
        """Whether ``node`` is a constant (literal, list of literals, date/datetime literal) and its value."""
        if isinstance(node, ast.Literal):
            return True, node.value
        if isinstance(node, ast.ListLit) and all(isinstance(i, ast.Literal) for i in node.items):
            if _decimal_list(self.typed, node):
                return False, None
            return True, tuple(i.value for i in node.items)  # type: ignore[union-attr]
        if isinstance(node, ast.Call):
            constant, value = _constant_call(self.functions, node)
            if constant and not _coerces_to_decimal(self.typed, node):
                return True, value
        return False, None

    def _expr(self, node: ast.Expr) -> str:  # noqa: C901 - one branch per node type, by design
        match node:
            case ast.Literal(value=value):
                return self.slot("k", value)
            case ast.ListLit(items=items):
                if all(isinstance(i, ast.Literal) for i in items):
                    return self.slot("k", tuple(i.value for i in items))  # type: ignore[union-attr]
                return "(" + "".join(f"{self.expr(i)}, " for i in items) + ")"
            case ast.Name(name=name):
                self.reads_values = True
                return f"_v[{self.slot('k', name)}]"
            case ast.Member(member=member):
                return f"ctx.scores.get({self.slot('k', member)})"
            case ast.Call():
                constant, value = _constant_call(self.functions, node)
                if constant:
                    return self.slot("k", value)
                operation, uses_context = _call_operation(self.functions, node)
                args = [self.expr(a) for a in node.args]
                if uses_context:
                    args.insert(0, "ctx")
                return f"{self.slot('f', operation)}({', '.join(args)})"
            case ast.Unary(op="not", operand=operand):
                t = self.temp()
                return f"(None if ({t} := {self.expr(operand)}) is None else not {t})"
            case ast.Unary(op="neg", operand=operand):
                t = self.temp()
                return f"(None if ({t} := {self.expr(operand)}) is None else -{t})"
            case ast.BinOp(op="and", left=left, right=right):
                a, b = self.temp(), self.temp()
                return (f"(False if ({a} := {self.expr(left)}) is False else "
                        f"(False if ({b} := {self.expr(right)}) is False else "
                        f"(None if {a} is None or {b} is None else True)))")
            case ast.BinOp(op="or", left=left, right=right):
                a, b = self.temp(), self.temp()
                return (f"(True if ({a} := {self.expr(left)}) is True else "
                        f"(True if ({b} := {self.expr(right)}) is True else "
                        f"(None if {a} is None or {b} is None else False)))")
            case ast.BinOp(op=op, left=left, right=right) if op in ast.COMPARISON_OPS:
                symbol = _COMPARE_SOURCE[op]
                a = self.temp()
                constant, value = self._literal(right)
                if constant and value is not None:
                    k = self.slot("k", value)
                    return f"(False if ({a} := {self.expr(left)}) is None else {a} {symbol} {k})"
                b = self.temp()
                return (f"(False if ({a} := {self.expr(left)}) is None else "
                        f"(False if ({b} := {self.expr(right)}) is None else {a} {symbol} {b}))")
            case ast.BinOp(left=left, right=right):
                operation = _arith_operation(self.typed, node)
                return f"{self.slot('f', operation)}({self.expr(left)}, {self.expr(right)})"
            case ast.In(value=value, container=container, negated=negated):
                symbol = "not in" if negated else "in"
                a = self.temp()
                constant, items = self._literal(container)
                if constant and items is not None:
                    k = self.slot("k", items)
                    return f"(False if ({a} := {self.expr(value)}) is None else {a} {symbol} {k})"
                c = self.temp()
                return (f"(False if ({a} := {self.expr(value)}) is None else "
                        f"(False if ({c} := {self.expr(container)}) is None else {a} {symbol} {c}))")
            case ast.Between(value=value, low=low, high=high):
                a = self.temp()
                low_constant, low_value = self._literal(low)
                high_constant, high_value = self._literal(high)
                if low_constant and high_constant and low_value is not None and high_value is not None:
                    return (f"(False if ({a} := {self.expr(value)}) is None else "
                            f"{self.slot('k', low_value)} <= {a} <= {self.slot('k', high_value)})")
                lo, hi = self.temp(), self.temp()
                # both bounds are evaluated before either is tested, as the closures do
                return (f"(False if ({a} := {self.expr(value)}) is None else "
                        f"(False if (({lo} := {self.expr(low)}), ({hi} := {self.expr(high)}))[0] is None "
                        f"or {hi} is None else ({lo} <= {a} <= {hi})))")
            case ast.IsNull(value=value, negated=negated):
                return f"({self.expr(value)} is {'not ' if negated else ''}None)"
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                return f"({self.expr(then)} if {self.expr(cond)} is True else {self.expr(otherwise)})"
        raise AssertionError(f"unhandled node {type(node).__name__}")


# ---------------------------------------------------------------------------------------------------------
# the closure compiler: for expressions nested too deeply to become one function


class _Compiler:
    def __init__(self, typed: TypedExpr, functions: FunctionRegistry) -> None:
        self.typed = typed
        self.functions = functions

    def compile(self, node: ast.Expr) -> Evaluator:
        evaluator = self._compile(node)
        if _coerces_to_decimal(self.typed, node):
            inner = evaluator
            return lambda ctx: _as_decimal(inner(ctx))
        if _decimal_list(self.typed, node):
            inner_list = evaluator
            return lambda ctx: _as_decimal_items(inner_list(ctx))
        return evaluator

    def _compile(self, node: ast.Expr) -> Evaluator:  # noqa: C901 - one branch per node type, by design
        match node:
            case ast.Literal(value=value):
                return lambda ctx: value
            case ast.ListLit(items=items):
                if all(isinstance(i, ast.Literal) for i in items):
                    constant = tuple(i.value for i in items)  # type: ignore[union-attr]
                    return lambda ctx: constant
                parts = [self.compile(i) for i in items]
                return lambda ctx: tuple(p(ctx) for p in parts)
            case ast.Name(name=name):
                return lambda ctx: ctx.values[name]
            case ast.Member(member=member):
                return lambda ctx: ctx.scores.get(member)
            case ast.Call():
                return self._call(node)
            case ast.Unary(op="not", operand=operand):
                inner = self.compile(operand)

                def not_(ctx: Any) -> bool | None:
                    value = inner(ctx)
                    return None if value is None else not value
                return not_
            case ast.Unary(op="neg", operand=operand):
                inner = self.compile(operand)

                def neg(ctx: Any) -> Any:
                    value = inner(ctx)
                    return None if value is None else -value
                return neg
            case ast.BinOp(op="and", left=left, right=right):
                lf, rf = self.compile(left), self.compile(right)

                def and_(ctx: Any) -> bool | None:
                    a = lf(ctx)
                    if a is False:
                        return False
                    b = rf(ctx)
                    if b is False:
                        return False
                    return None if a is None or b is None else True
                return and_
            case ast.BinOp(op="or", left=left, right=right):
                lf, rf = self.compile(left), self.compile(right)

                def or_(ctx: Any) -> bool | None:
                    a = lf(ctx)
                    if a is True:
                        return True
                    b = rf(ctx)
                    if b is True:
                        return True
                    return None if a is None or b is None else False
                return or_
            case ast.BinOp(op=op, left=left, right=right) if op in ast.COMPARISON_OPS:
                lf, rf, cmp = self.compile(left), self.compile(right), _COMPARE[op]

                def compare(ctx: Any) -> bool:
                    a = lf(ctx)
                    if a is None:
                        return False
                    b = rf(ctx)
                    if b is None:
                        return False
                    return cmp(a, b)
                return compare
            case ast.BinOp(left=left, right=right):
                operation = _arith_operation(self.typed, node)
                lf, rf = self.compile(left), self.compile(right)
                return lambda ctx: operation(lf(ctx), rf(ctx))
            case ast.In(value=value, container=container, negated=negated):
                vf, cf = self.compile(value), self.compile(container)

                def in_(ctx: Any) -> bool:
                    v = vf(ctx)
                    if v is None:
                        return False
                    c = cf(ctx)
                    if c is None:
                        return False
                    return (v in c) != negated
                return in_
            case ast.Between(value=value, low=low, high=high):
                vf, lo, hi = self.compile(value), self.compile(low), self.compile(high)

                def between(ctx: Any) -> bool:
                    v = vf(ctx)
                    if v is None:
                        return False
                    a, b = lo(ctx), hi(ctx)
                    if a is None or b is None:
                        return False
                    return bool(a <= v <= b)
                return between
            case ast.IsNull(value=value, negated=negated):
                vf = self.compile(value)
                if negated:
                    return lambda ctx: vf(ctx) is not None
                return lambda ctx: vf(ctx) is None
            case ast.If(cond=cond, then=then, otherwise=otherwise):
                cf, tf, of = self.compile(cond), self.compile(then), self.compile(otherwise)
                return lambda ctx: tf(ctx) if cf(ctx) is True else of(ctx)
        raise AssertionError(f"unhandled node {type(node).__name__}")

    def _call(self, node: ast.Call) -> Evaluator:
        constant, value = _constant_call(self.functions, node)
        if constant:
            return lambda ctx: value
        operation, uses_context = _call_operation(self.functions, node)
        args = [self.compile(a) for a in node.args]
        if uses_context:
            return lambda ctx: operation(ctx, *[a(ctx) for a in args])
        return lambda ctx: operation(*[a(ctx) for a in args])
