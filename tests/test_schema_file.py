"""The packaged JSON Schema for policy format v1: it is a valid draft 2020-12 schema, accepts the documents
the format allows and rejects the others with errors that point at the offending place."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

Doc = dict[str, Any]

RESTRICTION_KIND_KEYS = {"allowed_hours", "calendar", "max_attempts", "block_for", "min_gap", "holds",
                         "block_when"}


def _load_schema() -> Doc:
    resource = files("collectrules.policy") / "schema" / "policy-v1.json"
    return json.loads(resource.read_text(encoding="utf-8"))


SCHEMA = _load_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def minimal_policy() -> Doc:
    return {
        "apiVersion": "collectrules/v1",
        "kind": "Policy",
        "metadata": {"name": "consumer-lending", "version": "2026.11.1"},
        "fields": {"dpd": "int", "balance": "decimal"},
        "segments": {"rules": [{"id": "early", "when": "dpd between 1 and 30"}]},
    }


def full_policy() -> Doc:
    """A policy that uses every section and key of the format."""
    return {
        "apiVersion": "collectrules/v1",
        "kind": "Policy",
        "metadata": {"name": "consumer-lending", "version": "2026.11.1", "owner": "collections-strategy",
                     "description": "Consumer lending, US.", "market": "US"},
        "fields": {
            "dpd": "int",
            "balance": "decimal",
            "tags": "list[string]",
            "product": {"enum": ["card", "personal_loan", "sme_loan"]},
            "status": {"enum": ["active", "disputed"], "default": "active"},
            "last_payment_date": {"type": "date", "optional": True, "description": "Last payment received."},
        },
        "derive": {
            "bucket": 'if dpd <= 30 then "1-30" else "31+"',
            "high_balance": {"expr": "balance >= 5000", "description": "Large exposure."},
        },
        "scores": {"recovery": {"plugin": "scorecard", "params": {"bins": [[0, 0.1]], "nested": {"a": 1}},
                                "description": "Probability of recovery."}},
        "templates": {
            "friendly": {"channel": "sms", "body": "Hello {{ first_name }}, your payment is overdue."},
            "cease_ack": {"channel": "letter", "subject": "Your request", "body": "We confirm ...",
                          "description": "Acknowledges a cease request."},
        },
        "segments": {
            "hit_policy": "unique",
            "rules": [
                {"id": "early_low", "when": "dpd between 1 and 30 and balance < 5000", "description": "x"},
                {"id": "early_high", "when": "dpd between 1 and 30 and balance >= 5000"},
            ],
            "default": "writeoff_review",
        },
        "escalation": {
            "cure_when": "dpd <= 0",
            "ladders": {
                "standard": {
                    "description": "Early buckets.",
                    "segments": ["early_low", "early_high"],
                    "stages": [
                        {"id": "reminder", "enter": "dpd >= 1", "min_days_in_stage": 3, "description": "x",
                         "actions": [
                             {"channel": "sms", "template": "friendly", "priority": 1, "subject": "debtor",
                              "once": True},
                             {"channel": "email", "every": "3d"},
                             {"channel": "phone", "on_days": [1, 7, 15], "subject": "co_obligor"},
                             {"channel": "letter"},
                         ]},
                        {"id": "legal", "enter": "dpd >= 90"},
                    ],
                },
            },
        },
        "contact": {
            "restrictions": [
                {"id": "quiet-hours", "channels": ["phone", "sms"], "allowed_hours": "08:00-21:00",
                 "timezone": "debtor", "source": "12 CFR 1006.6(b)(1)(i)", "explain": "Outside 8am-9pm."},
                {"id": "weekly-hours", "channels": "phone", "timezone": "America/New_York",
                 "calendar": "US-CA",
                 "allowed_hours": {"default": "08:00-21:00", "sat": ["09:00-12:00", "14:00-18:00"],
                                   "sun": "closed", "fri": "08:00-24:00"}},
                {"id": "holidays", "calendar": "CN", "subjects": ["debtor", "co_obligor"]},
                {"id": "seven-in-seven", "channels": ["phone"], "max_attempts": 7, "per": "7d", "key": "debt",
                 "count": {"channels": "phone", "outcomes": ["conversation"], "exclude_outcomes": "busy",
                           "direction": "any", "exclude_consented": True}},
                {"id": "after-conversation", "channels": ["phone"], "block_for": "7d", "key": "person",
                 "after": {"channels": ["phone"], "outcomes": ["conversation"], "direction": "any"}},
                {"id": "sms-gap", "channels": ["sms"], "min_gap": "4h", "subjects": "debtor"},
                {"id": "cease", "holds": ["cease"],
                 "except": [{"channel": "letter", "template": "cease_ack"}]},
                {"id": "bankrupt", "holds": "bankruptcy", "except": [{"channel": "letter"}]},
                {"id": "status-holds", "block_when": 'status in ["disputed", "bankrupt"]'},
            ],
        },
        "kpis": [
            {"id": "recovery-1-30", "metric": "recovery_rate", "where": 'bucket == "1-30"',
             "target": ">= 90%", "period": "month", "description": "x", "params": {"weights": {"card": 2}}},
            {"id": "cycle", "metric": "collection_cycle_time", "target": "<=45", "period": "quarter"},
            {"id": "charge-off", "metric": "net_charge_off_rate", "target": " < -0.5% ", "period": "year"},
        ],
    }


def errors_of(doc: Doc) -> list[ValidationError]:
    return list(VALIDATOR.iter_errors(doc))


def error_places(doc: Doc) -> set[tuple[tuple[str | int, ...], str]]:
    """Each error as (where in the document, which schema keyword failed)."""
    return {(tuple(error.absolute_path), str(error.validator)) for error in errors_of(doc)}


def with_restriction(item: Any) -> Doc:
    doc = minimal_policy()
    doc["contact"] = {"restrictions": [item]}
    return doc


def with_action(action: Any) -> Doc:
    doc = minimal_policy()
    doc["escalation"] = {"ladders": {"standard": {"segments": ["early"], "stages": [
        {"id": "reminder", "enter": "dpd >= 1", "actions": [action]}]}}}
    return doc


def with_field(name: str, field_type: Any) -> Doc:
    doc = minimal_policy()
    doc["fields"][name] = field_type
    return doc


def edited(change: str, value: Any) -> Doc:
    """The full policy with the value at a dotted path (list indexes as numbers) replaced."""
    doc = full_policy()
    *parents, last = [int(part) if part.isdigit() else part for part in change.split(".")]
    target: Any = doc
    for part in parents:
        target = target[part]
    target[last] = value
    return doc


RESTRICTIONS = ("contact", "restrictions", 0)
ACTION = ("escalation", "ladders", "standard", "stages", 0, "actions", 0)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://collectrules.dev/schema/policy-v1.json"


def test_full_policy_using_every_key_is_valid() -> None:
    assert errors_of(full_policy()) == []


VALID = {
    "minimal": minimal_policy(),
    "window with per-day list of windows": with_restriction(
        {"id": "w", "allowed_hours": {"mon": ["08:00-12:00", "13:00-21:00"]}}),
    "window with fixed zone and calendar": with_restriction(
        {"id": "w", "allowed_hours": "00:00-24:00", "timezone": "Etc/GMT+5", "calendar": "GB"}),
    "cap with sliding window and phone key": with_restriction(
        {"id": "c", "max_attempts": 1, "per": "30m", "key": "phone"}),
    "cooldown with empty after": with_restriction({"id": "c", "block_for": "12h", "after": {}}),
    "hold given as one string": with_restriction({"id": "h", "holds": "mental_health_crisis"}),
    "action without cadence": with_action({"channel": "field_visit"}),
    "action every two weeks": with_action({"channel": "letter", "every": "2w"}),
    "plugin channel": with_action({"channel": "whatsapp"}),
    "list field long form": with_field("codes", {"type": "list[int]", "optional": True, "default": None}),
    "enum field with default": with_field("tier", {"enum": ["gold"], "default": "gold"}),
    "collect hit policy": edited("segments.hit_policy", "collect"),
    "score params are free-form": edited("scores.recovery.params", {"anything": {"goes": [1, "x", None]}}),
}


@pytest.mark.parametrize("doc", VALID.values(), ids=VALID.keys())
def test_valid_documents_are_accepted(doc: Doc) -> None:
    assert [error.message for error in errors_of(doc)] == []


def _without(doc: Doc, *path: str | int) -> Doc:
    doc = copy.deepcopy(doc)
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return doc


INVALID: dict[str, tuple[Doc, set[tuple[tuple[str | int, ...], str]]]] = {
    # restriction kinds
    "restriction without a kind": (with_restriction({"id": "r", "channels": ["sms"]}),
                                   {(RESTRICTIONS, "anyOf")}),
    "cap mixed with cooldown": (
        with_restriction({"id": "r", "max_attempts": 3, "per": "7d", "block_for": "7d", "after": {}}),
        {(RESTRICTIONS, "not")}),
    "calendar mixed with hold": (with_restriction({"id": "r", "calendar": "US", "holds": ["cease"]}),
                                 {(RESTRICTIONS, "not")}),
    "window mixed with expression": (
        with_restriction({"id": "r", "allowed_hours": "08:00-21:00", "block_when": "dpd > 90"}),
        {(RESTRICTIONS, "not")}),
    "cap without per": (with_restriction({"id": "r", "max_attempts": 3}), {(RESTRICTIONS, "required")}),
    "cooldown without after": (with_restriction({"id": "r", "block_for": "7d"}),
                               {(RESTRICTIONS, "required")}),
    "per on a gap restriction": (with_restriction({"id": "r", "min_gap": "4h", "per": "1d"}),
                                 {(RESTRICTIONS, "dependentRequired")}),
    "timezone without allowed_hours": (with_restriction({"id": "r", "calendar": "US", "timezone": "debtor"}),
                                       {(RESTRICTIONS, "dependentRequired")}),
    "except without holds": (
        with_restriction({"id": "r", "block_when": "dpd > 1", "except": [{"channel": "letter"}]}),
        {(RESTRICTIONS, "dependentRequired")}),
    "key on a gap restriction": (with_restriction({"id": "r", "min_gap": "4h", "key": "person"}),
                                 {(RESTRICTIONS, "anyOf")}),
    "phone key on a cooldown": (
        with_restriction({"id": "r", "block_for": "7d", "after": {}, "key": "phone"}),
        {((*RESTRICTIONS, "key"), "enum")}),
    "restriction without id": (with_restriction({"min_gap": "4h"}), {(RESTRICTIONS, "required")}),
    "restriction that is not a mapping": (with_restriction("quiet-hours"), {(RESTRICTIONS, "type")}),
    "malformed window": (with_restriction({"id": "r", "allowed_hours": "8-21"}),
                         {((*RESTRICTIONS, "allowed_hours"), "pattern")}),
    "unknown weekday": (with_restriction({"id": "r", "allowed_hours": {"monday": "08:00-21:00"}}),
                        {((*RESTRICTIONS, "allowed_hours"), "additionalProperties")}),
    "lowercase zone name": (
        with_restriction({"id": "r", "allowed_hours": "08:00-21:00", "timezone": "europe/london"}),
        {((*RESTRICTIONS, "timezone"), "pattern")}),
    "calendar name instead of code": (with_restriction({"id": "r", "calendar": "China"}),
                                      {((*RESTRICTIONS, "calendar"), "pattern")}),
    "duration without unit": (with_restriction({"id": "r", "min_gap": "4"}),
                              {((*RESTRICTIONS, "min_gap"), "pattern")}),
    "zero attempts": (with_restriction({"id": "r", "max_attempts": 0, "per": "1d"}),
                      {((*RESTRICTIONS, "max_attempts"), "minimum")}),
    "empty channel list": (with_restriction({"id": "r", "channels": [], "min_gap": "1h"}),
                           {((*RESTRICTIONS, "channels"), "minItems")}),
    "unknown subject": (with_restriction({"id": "r", "subjects": "employer", "min_gap": "1h"}),
                        {((*RESTRICTIONS, "subjects"), "enum")}),
    "boolean instead of an expression": (with_restriction({"id": "r", "block_when": True}),
                                         {((*RESTRICTIONS, "block_when"), "type")}),
    # action cadence
    "once mixed with every": (with_action({"channel": "sms", "once": True, "every": "3d"}),
                              {(ACTION, "not")}),
    "every mixed with on_days": (with_action({"channel": "sms", "every": "3d", "on_days": [1]}),
                                 {(ACTION, "not")}),
    "once false": (with_action({"channel": "sms", "once": False}), {((*ACTION, "once"), "const")}),
    "day zero": (with_action({"channel": "sms", "on_days": [0]}), {((*ACTION, "on_days", 0), "minimum")}),
    "repeated day": (with_action({"channel": "sms", "on_days": [7, 7]}),
                     {((*ACTION, "on_days"), "uniqueItems")}),
    "no days": (with_action({"channel": "sms", "on_days": []}), {((*ACTION, "on_days"), "minItems")}),
    "priority zero": (with_action({"channel": "sms", "priority": 0}), {((*ACTION, "priority"), "minimum")}),
    # field types
    "type and enum together": (with_field("tier", {"type": "string", "enum": ["gold"]}),
                               {(("fields", "tier"), "not")}),
    "neither type nor enum": (with_field("tier", {"optional": True}), {(("fields", "tier"), "required")}),
    "unknown type name": (with_field("tier", "integer"), {(("fields", "tier"), "enum")}),
    "list of an unknown type": (with_field("tier", "list[money]"), {(("fields", "tier"), "pattern")}),
    "empty enum": (with_field("tier", {"enum": []}), {(("fields", "tier", "enum"), "minItems")}),
    "field name with a hyphen": (with_field("days-past-due", "int"), {(("fields",), "pattern")}),
    # unknown keys at several depths
    "unknown top-level key": (edited("ladders", {}), {((), "additionalProperties")}),
    "unknown metadata key": (edited("metadata.team", "x"), {(("metadata",), "additionalProperties")}),
    "unknown stage key": (edited("escalation.ladders.standard.stages.0.exit", "dpd < 1"),
                          {(("escalation", "ladders", "standard", "stages", 0), "additionalProperties")}),
    "unknown action key": (edited("escalation.ladders.standard.stages.0.actions.0.description", "x"),
                           {(ACTION, "additionalProperties")}),
    "unknown count key": (edited("contact.restrictions.3.count.window", "7d"),
                          {(("contact", "restrictions", 3, "count"), "additionalProperties")}),
    "unknown hold exception key": (edited("contact.restrictions.6.except.0.subject", "debtor"),
                                   {(("contact", "restrictions", 6, "except", 0), "additionalProperties")}),
    "unknown restriction key": (edited("contact.restrictions.0.max_attempt", 3),
                                {(("contact", "restrictions", 0), "additionalProperties")}),
    # other sections
    "wrong apiVersion": (edited("apiVersion", "collectrules/v2"), {(("apiVersion",), "const")}),
    "numeric version": (edited("metadata.version", 2026.11), {(("metadata", "version"), "type")}),
    "no segment rules": (edited("segments.rules", []), {(("segments", "rules"), "minItems")}),
    "segment rule without when": (_without(full_policy(), "segments", "rules", 0, "when"),
                                  {(("segments", "rules", 0), "required")}),
    "unknown hit policy": (edited("segments.hit_policy", "all"), {(("segments", "hit_policy"), "enum")}),
    "ladder without segments": (_without(full_policy(), "escalation", "ladders", "standard", "segments"),
                                {(("escalation", "ladders", "standard"), "required")}),
    "negative min_days_in_stage": (edited("escalation.ladders.standard.stages.0.min_days_in_stage", -1),
                                   {(("escalation", "ladders", "standard", "stages", 0, "min_days_in_stage"),
                                     "minimum")}),
    "kpi target without comparison": (edited("kpis.0.target", "90%"), {(("kpis", 0, "target"), "pattern")}),
    "kpi period": (edited("kpis.0.period", "monthly"), {(("kpis", 0, "period"), "enum")}),
    "kpi metric with capitals": (edited("kpis.0.metric", "RecoveryRate"),
                                 {(("kpis", 0, "metric"), "pattern")}),
    "template without body": (_without(full_policy(), "templates", "friendly", "body"),
                              {(("templates", "friendly"), "required")}),
    "score without plugin": (_without(full_policy(), "scores", "recovery", "plugin"),
                             {(("scores", "recovery"), "required")}),
    "derive mapping without expr": (edited("derive.high_balance", {"description": "x"}),
                                    {(("derive", "high_balance"), "required")}),
    "empty expression": (edited("escalation.cure_when", ""), {(("escalation", "cure_when"), "minLength")}),
}


@pytest.mark.parametrize(("doc", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_documents_are_rejected_at_the_offending_place(
        doc: Doc, expected: set[tuple[tuple[str | int, ...], str]]) -> None:
    # Exactly these errors: one mistake must not bury its message under unrelated ones.
    assert error_places(doc) == expected


def test_restriction_without_kind_names_every_kind_key() -> None:
    (error,) = errors_of(with_restriction({"id": "r"}))
    missing = {sub.message.split("'")[1] for sub in error.context or []}
    assert missing == RESTRICTION_KIND_KEYS
    assert all(key in error.schema["description"] for key in RESTRICTION_KIND_KEYS)


def test_mixed_kinds_error_names_both_keys() -> None:
    (error,) = errors_of(with_restriction({"id": "r", "min_gap": "1h", "block_when": "dpd > 1"}))
    assert "'min_gap'" in error.message and "'block_when'" in error.message


def _properties(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}/properties/{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}/{index}")


def test_every_property_has_a_description_for_editors() -> None:
    undocumented = [where for where, sub in _properties(SCHEMA) if not sub.get("description")]
    assert undocumented == []
