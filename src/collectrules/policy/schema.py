"""JSON Schema validation of a loaded policy, with every error mapped to the user's line and column.

All errors are collected (``iter_errors``), reduced to the most relevant leaf for ``oneOf``/``anyOf``
branches, turned into located diagnostics with "did you mean" suggestions for misspelled keys and enum
values, and sorted by position.
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from typing import Any

from ..errors import Diagnostic
from .load import SourceDoc

SCHEMA_ID = "https://collectrules.dev/schema/policy-v1.json"


@functools.cache
def policy_schema_text() -> str:
    """The policy v1 JSON Schema as shipped in the package."""
    return (resources.files("collectrules.policy") / "schema" / "policy-v1.json").read_text(encoding="utf-8")


@functools.cache
def policy_schema() -> dict[str, Any]:
    return json.loads(policy_schema_text())  # type: ignore[no-any-return]


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(policy_schema())


def _suggest(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _subschema_properties(error: Any) -> list[str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    props = list(schema.get("properties", {}))
    return props


def _describe_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _leaves(error: Any) -> list[Any]:
    """For oneOf/anyOf, descend to the errors of the branch that came closest."""
    if error.validator in ("oneOf", "anyOf") and error.context \
            and all(e.validator == "required" and not e.relative_path for e in error.context):
        # "one of these keys is needed": one finding naming them all beats the first branch's complaint
        return [error]
    if error.validator in ("oneOf", "anyOf") and error.context:
        import jsonschema.exceptions as jx

        best = jx.best_match(error.context, key=jx.relevance)
        if best is not None:
            # errors of the same branch as the best match
            first = list(best.relative_schema_path)[:1]
            branch = [e for e in error.context if list(e.relative_schema_path)[:1] == first]
            out: list[Any] = []
            for e in branch:
                out.extend(_leaves(e))
            return out or [best]
    return [error]


def _diagnose(doc: SourceDoc, error: Any) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    validator = error.validator
    instance = error.instance
    where = "/".join(str(p) for p in path) or "the top level"
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = _subschema_properties(error)
        patterns = list((error.schema or {}).get("patternProperties", {}))
        import re

        extras = [k for k in instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        out = []
        for key in extras:
            hint = _suggest(key, allowed) or (f"allowed keys here: {', '.join(allowed)}" if allowed else None)
            out.append(doc.diagnostic("CR201", f"unknown key {key!r} in {where}", (*path, key), key=True,
                                      hint=hint))
        return out
    if validator == "unevaluatedProperties" and isinstance(instance, dict):
        allowed = _subschema_properties(error)
        out = []
        for key in instance:
            if key not in allowed:
                out.append(doc.diagnostic("CR201", f"unknown key {key!r} in {where}", (*path, key), key=True,
                                          hint=_suggest(key, allowed)))
        return out or [doc.diagnostic("CR206", error.message, path)]
    if validator in ("oneOf", "anyOf") and error.context and isinstance(instance, dict):
        options = list(dict.fromkeys(k for e in error.context for k in e.validator_value if k not in instance))
        return [doc.diagnostic("CR202", f"{where} needs one of these keys: {', '.join(options)}", path,
                               hint=_description_hint(error, None))]
    if validator == "required":
        missing = [k for k in error.validator_value if isinstance(instance, dict) and k not in instance]
        name = missing[0] if missing else "?"
        return [doc.diagnostic("CR202", f"missing required key {name!r} in {where}", path, key=bool(path),
                               hint=_description_hint(error, name))]
    if validator == "type":
        expected = error.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        hint = None
        if expected_text == "string" and not isinstance(instance, dict | list):
            hint = "put the value in quotes"
        return [doc.diagnostic("CR203", f"{where} must be {_article(expected_text)}, not {_describe_type(instance)}",
                               path, hint=hint)]
    if validator in ("enum", "const"):
        options = error.validator_value if validator == "enum" else [error.validator_value]
        hint = _suggest(instance, options) if isinstance(instance, str) else None
        shown = ", ".join(str(o) for o in options)
        return [doc.diagnostic("CR204", f"{instance!r} is not allowed for {where}; expected one of: {shown}",
                               path, hint=hint)]
    if validator == "pattern":
        return [doc.diagnostic("CR205", f"{instance!r} is not a valid value for {where}", path,
                               hint=_description_hint(error, None) or f"it must match {error.validator_value}")]
    if validator in ("minLength", "maxLength") and isinstance(instance, str):
        limit = error.validator_value
        size = "longer" if validator == "maxLength" else "shorter"
        return [doc.diagnostic("CR207", f"{where} is {len(instance):,} characters long; it may not be {size} "
                                        f"than {limit:,}", path)]
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
                     "uniqueItems", "minProperties", "maxProperties"):
        return [doc.diagnostic("CR207", f"{where}: {_short(error.message)}", path)]
    if validator == "not":
        clash = error.validator_value.get("required") if isinstance(error.validator_value, dict) else None
        if clash and isinstance(instance, dict) and all(k in instance for k in clash):
            keys = " and ".join(repr(k) for k in clash)
            return [doc.diagnostic("CR206", f"{keys} cannot be used together in {where}", (*path, clash[-1]),
                                   key=True, hint=_description_hint(error, None) or "keep only one of them")]
        return [doc.diagnostic("CR206", f"{where}: these keys cannot be used together here", path,
                               hint=_description_hint(error, None))]
    return [doc.diagnostic("CR206", f"{where}: {error.message}", path)]


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _article(text: str) -> str:
    return ("an " if text[:1] in "aeiou" else "a ") + text


def _description_hint(error: Any, key: str | None) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if key is not None:
        prop = schema.get("properties", {}).get(key, {})
        if isinstance(prop, dict) and prop.get("description"):
            return f"{key}: {prop['description'].split('. ')[0].rstrip('.')}"
    description = schema.get("description") or schema.get("$comment")
    return description.split(". ")[0].rstrip(".") if description else None


def validate_schema(doc: SourceDoc) -> list[Diagnostic]:
    """Every schema violation in ``doc``, located and sorted by position."""
    return validate_part(doc, _validator(), doc.data, ())


def validate_part(doc: SourceDoc, validator: Any, instance: Any, base: tuple[str | int, ...]) -> list[Diagnostic]:
    """Validate ``instance`` (the part of ``doc`` at ``base``) with ``validator``, located like the policy.

    Plugins' schema fragments (a scorer's or transport's ``params``) are validated with this, so their
    errors read and point exactly like every other schema error.
    """
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[object, ...]] = set()
    for error in validator.iter_errors(instance):
        if base:
            error.path.extendleft(reversed(base))
        for leaf in _leaves(error):
            for diagnostic in _diagnose(doc, leaf):
                key = (diagnostic.location, diagnostic.code, diagnostic.message)
                if key not in seen:
                    seen.add(key)
                    diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: (d.location.line, d.location.column) if d.location else (0, 0))
    return diagnostics
