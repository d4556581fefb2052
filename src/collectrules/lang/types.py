"""Types of the expression language.

Numbers: ``int`` and ``decimal`` mix freely and the result of mixing is ``decimal``; ``/`` always yields a
``decimal``. Decimals are exact (Python's :class:`decimal.Decimal`), never binary floating point, because they
hold money. An ``enum`` is a string restricted to declared values; it compares with strings, and a string
literal compared with an enum must be one of its values.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALAR_KINDS = ("bool", "int", "decimal", "string", "date", "datetime", "duration", "timezone")


@dataclass(frozen=True, slots=True)
class Type:
    kind: str  # one of SCALAR_KINDS, "enum", "list", "null", "any"
    enum_values: tuple[str, ...] = ()
    item: Type | None = None

    def __str__(self) -> str:
        if self.kind == "enum":
            shown = ", ".join(self.enum_values[:6]) + (", …" if len(self.enum_values) > 6 else "")
            return f"enum[{shown}]"
        if self.kind == "list":
            return f"list[{self.item}]"
        return self.kind

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("int", "decimal")

    @property
    def is_textual(self) -> bool:
        return self.kind in ("string", "enum", "timezone")


BOOL = Type("bool")
INT = Type("int")
DECIMAL = Type("decimal")
STRING = Type("string")
DATE = Type("date")
DATETIME = Type("datetime")
DURATION = Type("duration")
TIMEZONE = Type("timezone")
NULL = Type("null")
ANY = Type("any")

_BY_NAME = {t.kind: t for t in (BOOL, INT, DECIMAL, STRING, DATE, DATETIME, DURATION, TIMEZONE)}


def scalar(name: str) -> Type:
    return _BY_NAME[name]


def list_of(item: Type) -> Type:
    return Type("list", item=item)


def enum_of(values: tuple[str, ...]) -> Type:
    return Type("enum", enum_values=values)


def parse_type_name(text: str) -> Type | None:
    """``int`` / ``list[string]`` → Type; ``None`` when the name is not a type."""
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text.startswith("list[") and text.endswith("]") and text[5:-1] in _BY_NAME:
        return list_of(_BY_NAME[text[5:-1]])
    return None


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two values that may stand in the same place (if/else branches, list items)."""
    if a.kind == "null" or a.kind == "any":
        return b
    if b.kind == "null" or b.kind == "any":
        return a
    if a == b:
        return a
    if a.is_numeric and b.is_numeric:
        return DECIMAL
    if a.is_textual and b.is_textual and "timezone" not in (a.kind, b.kind):
        if a.kind == "enum" and b.kind == "enum":
            return enum_of(tuple(dict.fromkeys(a.enum_values + b.enum_values)))
        return STRING
    if a.kind == "list" and b.kind == "list" and a.item and b.item:
        item = unify(a.item, b.item)
        return list_of(item) if item else None
    return None


def comparable(a: Type, b: Type, *, ordered: bool) -> bool:
    """Whether ``a OP b`` is meaningful; ``ordered`` for < <= > >= (not == !=)."""
    if a.is_numeric and b.is_numeric:
        return True
    if a.kind in ("string", "enum") and b.kind in ("string", "enum"):
        return True
    if a.kind == b.kind and a.kind in ("date", "datetime", "duration"):
        return True
    if not ordered and a.kind == b.kind and a.kind in ("bool", "timezone", "list"):
        return True
    if not ordered and {a.kind, b.kind} == {"timezone", "string"}:
        return True
    return False
