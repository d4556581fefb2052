"""Loading a policy test suite (``*.test.yaml``) into typed, checked test cases.

A suite names the policy it tests (relative to the suite file), optional ``defaults`` every case starts
from, ``cases`` (one account each) and ``tables`` (one account per row, the columns naming account values,
``as_of`` and ``expect.<key>`` expectations). Loading goes through the same YAML-with-positions reader as
policies, validates the document against ``suite-v1.json``, and then checks it against the policy: account
values are typed through the policy's fields, history, holds and promises through the standard input
columns, and every id an expectation names (segment, ladder, stage, action, restriction, error code) must
exist, so a misspelled id is a located error instead of a test that passes by naming nothing.

How inputs combine: a case's (or table row's) account is the defaults' account, then the table's, then
the case's own values, key by key; ``as_of``, ``history``, ``holds`` and ``promises`` are taken whole from
the most specific level that gives them. History, holds and promises belong to the case's account unless
they name another ``account_id``.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..engine.account import Account, ContactEvent, Hold, Promise
from ..engine.decision import ActionRef
from ..engine.program import Program
from ..errors import CollectRulesError, DataError, Diagnostic, Location
from ..errors_catalog import ERROR_CODES
from ..io.tables import ACCOUNT_STANDARD_COLUMNS, HISTORY_COLUMNS, HOLD_COLUMNS, PROMISE_COLUMNS, ColumnSpec
from ..io.values import ValueKind, parse_value
from ..policy import model as M
from ..policy.build import KNOWN_OUTCOMES
from ..policy.check import check_policy_file
from ..policy.load import NodePos, Path_, SourceDoc, load_yaml
from ..policy.schema import _diagnose, _leaves
from ..registry import Registry

SUITE_SUFFIXES = (".test.yaml", ".test.yml")
#: reasons the engine itself gives for blocking an action, besides the policy's restrictions
ENGINE_REASONS = ("opt-out", "contact-data", "promise-to-pay")
#: expectation keys, in the order mismatches are reported
EXPECT_KEYS = ("segment", "segments", "ladder", "stage", "status", "day_in_stage", "stage_entered", "due",
               "due_includes", "blocked", "blocked_includes", "next_allowed", "errors")
#: expectation keys whose value is a list; a table cell may give them as one comma-separated string
_LIST_KEYS = frozenset({"segments", "due", "due_includes", "errors"})
#: folders never searched for suites
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})

Sourced = tuple[Any, Path_]


# ---- the typed model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionKey:
    """An action as expectations name it: its channel, optionally with its template (``sms:reminder_sms``)."""

    channel: str
    template: str | None = None

    @classmethod
    def parse(cls, text: str) -> ActionKey:
        channel, _, template = text.partition(":")
        return cls(channel, template or None)

    def matches(self, action: ActionRef) -> bool:
        return action.channel == self.channel and (self.template is None or action.template == self.template)

    def __str__(self) -> str:
        return f"{self.channel}:{self.template}" if self.template else self.channel


def action_label(action: ActionRef) -> str:
    """How a decided action is shown next to expectations: ``channel`` or ``channel:template``."""
    return f"{action.channel}:{action.template}" if action.template else action.channel


@dataclass(frozen=True)
class Expectation:
    """What a case's decision must say; only the keys in ``given`` are checked."""

    given: frozenset[str]
    segment: str | None = None
    segments: tuple[str, ...] = ()
    ladder: str | None = None
    stage: str | None = None
    status: str | None = None
    day_in_stage: int | None = None
    stage_entered: _dt.date | None = None
    due: tuple[ActionKey, ...] = ()
    due_includes: tuple[ActionKey, ...] = ()
    blocked: tuple[tuple[ActionKey, frozenset[str]], ...] = ()
    blocked_includes: tuple[tuple[ActionKey, frozenset[str]], ...] = ()
    next_allowed: tuple[tuple[ActionKey, _dt.datetime | None], ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyCase:
    """One test: an account with its inputs at an instant, and the expected decision."""

    name: str
    location: Location
    account: Account
    as_of: _dt.datetime
    history: tuple[ContactEvent, ...]
    holds: tuple[Hold, ...]
    promises: tuple[Promise, ...]
    expect: Expectation
    #: the table the case is a row of, if any
    table: str | None = None


@dataclass
class Suite:
    """A loaded suite: its cases, or the located problems that make it invalid."""

    file: str
    policy_file: str | None = None
    program: Program | None = None
    cases: list[PolicyCase] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.program is not None and not self.errors


class ProgramCache:
    """Policies compiled once per run, however many suites test them.

    ``registry_for`` picks the plugin registry for a policy file (the CLI loads plugins beside the policy);
    without it every policy gets the built-in plugins only.
    """

    def __init__(self, registry_for: Callable[[Path], Registry] | None = None) -> None:
        self._registry_for = registry_for
        self._builtin: Registry | None = None
        self._loaded: dict[Path, tuple[Program | None, list[Diagnostic]]] = {}

    def _registry(self, policy: Path) -> Registry:
        if self._registry_for is not None:
            return self._registry_for(policy)
        if self._builtin is None:
            self._builtin = Registry.builtin_only()
        return self._builtin

    def load(self, policy: Path) -> tuple[Program | None, list[Diagnostic]]:
        """The compiled policy, or ``None`` with the policy's errors."""
        key = policy.resolve()
        if key not in self._loaded:
            registry = self._registry(policy)
            result = check_policy_file(policy, registry)
            if result.ok and result.policy is not None:
                self._loaded[key] = (Program(result.policy, registry), [])
            else:
                self._loaded[key] = (None, result.errors or result.diagnostics)
        return self._loaded[key]


# ---- finding and loading suites ------------------------------------------------------------------------


def is_suite_file(path: Path) -> bool:
    return path.name.endswith(SUITE_SUFFIXES)


def find_suites(paths: Sequence[str | Path]) -> list[Path]:
    """Suite files for the given paths.

    A folder is searched recursively for ``*.test.yaml`` (hidden folders and installed packages skipped); a
    suite file is taken as it is; a policy file stands for the suite beside it (``x.yaml`` → ``x.test.yaml``).
    Raises :class:`FileNotFoundError` for a path that does not exist and :class:`ValueError` for a file
    that is neither a suite nor a policy with a suite beside it.
    """
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            if is_suite_file(path):
                found.append(path)
                continue
            siblings = [path.with_name(path.stem + suffix) for suffix in SUITE_SUFFIXES]
            sibling = next((s for s in siblings if s.is_file()), None)
            if sibling is None:
                raise ValueError(f"{path} is not a test suite (*.test.yaml) and no {siblings[0].name} "
                                 f"stands next to it")
            found.append(sibling)
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
    return list(dict.fromkeys(found))


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        out.extend(Path(folder) / name for name in sorted(files) if name.endswith(SUITE_SUFFIXES))
    return out


@functools.cache
def suite_schema() -> dict[str, Any]:
    """The suite v1 JSON Schema as shipped in the package."""
    text = (resources.files("collectrules.testing") / "suite-v1.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@functools.cache
def _validator(definition: str | None = None) -> Any:
    import jsonschema

    schema = suite_schema()
    if definition is not None:
        # one part of the format on its own, for values assembled from table cells
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def _schema_problems(doc: SourceDoc, definition: str | None = None) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[object, ...]] = set()
    for error in _validator(definition).iter_errors(doc.data):
        for leaf in _leaves(error):
            for diagnostic in _diagnose(doc, leaf):
                key = (diagnostic.location, diagnostic.code, diagnostic.message)
                if key not in seen:
                    seen.add(key)
                    diagnostics.append(diagnostic)
    diagnostics.sort(key=lambda d: (d.location.line, d.location.column) if d.location else (0, 0))
    return diagnostics


def load_suite(path: str | Path, programs: ProgramCache | None = None) -> Suite:
    """Load, validate and type one suite. Never raises for bad input: problems become diagnostics."""
    file = str(path)
    suite = Suite(file)
    try:
        doc = load_yaml(path)
    except CollectRulesError as exc:
        suite.diagnostics.extend(exc.diagnostics)
        return suite
    problems = _schema_problems(doc)
    if problems:
        suite.diagnostics.extend(problems)
        return suite
    policy_path = Path(os.path.normpath(Path(file).parent / doc.data["policy"]))
    suite.policy_file = str(policy_path)
    if not policy_path.is_file():
        suite.diagnostics.append(doc.diagnostic(
            "CR402", f"policy file not found: {policy_path}", ("policy",),
            hint="the policy path is relative to the test file"))
        return suite
    program, policy_errors = (programs or ProgramCache()).load(policy_path)
    if program is None:
        suite.diagnostics.extend(policy_errors)
        count = len(policy_errors)
        suite.diagnostics.append(doc.diagnostic(
            "CR402", f"the policy under test, {policy_path}, is invalid "
                     f"({count} error{'s' if count != 1 else ''} above)", ("policy",)))
        return suite
    suite.program = program
    builder = _SuiteBuilder(doc, program)
    suite.cases = builder.build()
    suite.diagnostics.extend(builder.diagnostics)
    return suite


# ---- building cases ------------------------------------------------------------------------------------


def _parse(value: Any, spec: ColumnSpec) -> Any:
    """One value typed as the input column ``spec`` types it; raises ValueError when it does not fit."""
    return parse_value(value, spec.kind, enum_values=spec.enum_values, item_kind=spec.item_kind)


def _suggest(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _known(word: str, options: Iterable[str], what: str) -> str:
    options = sorted(set(options))
    return _suggest(word, options) or f"{what}: {', '.join(options)}"


@dataclass
class _Inputs:
    """Raw inputs of a case with where each came from, before typing."""

    as_of: Sourced | None = None
    account: dict[str, Sourced] = field(default_factory=dict)
    history: Sourced | None = None
    holds: Sourced | None = None
    promises: Sourced | None = None

    def overlay(self, mapping: Mapping[str, Any], path: Path_) -> _Inputs:
        out = _Inputs(self.as_of, dict(self.account), self.history, self.holds, self.promises)
        if "as_of" in mapping:
            out.as_of = (mapping["as_of"], (*path, "as_of"))
        for name, value in (mapping.get("account") or {}).items():
            out.account[name] = (value, (*path, "account", name))
        for key in ("history", "holds", "promises"):
            if key in mapping:
                setattr(out, key, (mapping[key], (*path, key)))
        return out


def _rerooted(doc: SourceDoc, data: Any, roots: Mapping[Path_, Path_], anchor: Path_) -> SourceDoc:
    """A view of ``doc`` whose data is assembled from table cells: path ``(key, …)`` points at its cell."""
    positions: dict[Path_, NodePos] = {}
    anchor_pos = doc.positions.get(anchor)
    if anchor_pos is not None:
        positions[()] = anchor_pos
    for new_root, old_root in roots.items():
        for old_path, pos in doc.positions.items():
            if old_path[:len(old_root)] == old_root:
                positions[(*new_root, *old_path[len(old_root):])] = pos
    return SourceDoc(doc.file, doc.text, data, positions)


class _SuiteBuilder:
    def __init__(self, doc: SourceDoc, program: Program) -> None:
        self.doc = doc
        self.program = program
        self.policy: M.Policy = program.policy
        self.diagnostics: list[Diagnostic] = []
        self.standard: dict[str, ColumnSpec] = {c.name: c for c in ACCOUNT_STANDARD_COLUMNS}
        self.stage_ids = {s.id for ladder in self.policy.escalation.ladders for s in ladder.stages}
        self.actions = {(a.channel, a.template) for ladder in self.policy.escalation.ladders
                        for s in ladder.stages for a in s.actions}
        self.reasons = {r.id for r in self.policy.restrictions} | set(ENGINE_REASONS)

    # ---- diagnostics -----------------------------------------------------------------------------------

    def error(self, code: str, message: str, path: Path_, *, doc: SourceDoc | None = None, key: bool = False,
              hint: str | None = None) -> None:
        self.diagnostics.append((doc or self.doc).diagnostic(code, message, path, key=key, hint=hint))

    def warn(self, code: str, message: str, path: Path_, *, hint: str | None = None) -> None:
        self.diagnostics.append(self.doc.diagnostic(code, message, path, hint=hint, severity="warning"))

    def _error_count(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    # ---- the suite -------------------------------------------------------------------------------------

    def build(self) -> list[PolicyCase]:
        data = self.doc.data
        if not data.get("cases") and not data.get("tables"):
            self.error("CR202", "the suite has no cases and no tables", (),
                       hint="add `cases:` (one account each) or `tables:` (one account per row)")
            return []
        base = _Inputs().overlay(data.get("defaults") or {}, ("defaults",))
        out: list[PolicyCase] = []
        names: dict[str, int] = {}
        for index, case in enumerate(data.get("cases") or []):
            path: Path_ = ("cases", index)
            name = case["name"]
            if name in names:
                self.error("CR401", f"a case named {name!r} already appears on line {names[name]}",
                           (*path, "name"), hint="give each case its own name; reports identify cases by it")
            else:
                names[name] = self.doc.location((*path, "name")).line
            expect = {k: (v, (*path, "expect", k)) for k, v in case["expect"].items()}
            built = self._case(name, path, base.overlay(case, path), expect, self.doc, None)
            if built is not None:
                out.append(built)
        for index, table in enumerate(data.get("tables") or []):
            out.extend(self._table(table, ("tables", index), base))
        return out

    def _table(self, table: Mapping[str, Any], path: Path_, base: _Inputs) -> list[PolicyCase]:
        before = self._error_count()
        columns: list[str] = table["columns"]
        kinds: list[str] = []
        for index, column in enumerate(columns):
            cpath = (*path, "columns", index)
            if column == "as_of":
                kinds.append("as_of")
            elif column.startswith("expect."):
                key = column.removeprefix("expect.")
                if key not in EXPECT_KEYS:
                    self.error("CR201", f"unknown expectation {key!r} in column {column!r}", cpath,
                               hint=_known(key, EXPECT_KEYS, "expectations"))
                kinds.append("expect")
            else:
                if column not in self.standard and column not in self.policy.fields:
                    self.error("CR201", f"column {column!r} is neither a field of the policy nor a standard "
                               f"account column", cpath,
                               hint=_known(column, [*self.policy.fields, *self.standard, "as_of"], "columns"))
                kinds.append("account")
        if "expect" not in kinds:
            self.error("CR202", f"table {table['name']!r} has no expect.* column, so its rows would check "
                       "nothing", (*path, "columns"),
                       hint="add a column such as expect.segment or expect.stage")
        if self._error_count() > before:
            return []
        tinputs = base.overlay(table, path)
        out: list[PolicyCase] = []
        for row_index, row in enumerate(table["rows"]):
            rpath: Path_ = (*path, "rows", row_index)
            if len(row) != len(columns):
                self.error("CR207", f"row {row_index + 1} has {len(row)} cells but the table has "
                           f"{len(columns)} columns", rpath, hint="columns: " + ", ".join(columns))
                continue
            inputs = _Inputs(tinputs.as_of, dict(tinputs.account), tinputs.history, tinputs.holds,
                             tinputs.promises)
            expect: dict[str, Any] = {}
            roots: dict[Path_, Path_] = {}
            shown: list[str] = []
            for column_index, (column, kind, cell) in enumerate(zip(columns, kinds, row, strict=True)):
                cell_path = (*rpath, column_index)
                if kind == "as_of":
                    inputs.as_of = (cell, cell_path)
                    shown.append(f"as_of={cell}")
                elif kind == "account":
                    inputs.account[column] = (cell, cell_path)
                    shown.append(f"{column}={cell}")
                else:
                    key = column.removeprefix("expect.")
                    if key in _LIST_KEYS and (cell is None or isinstance(cell, str)):
                        # a plain cell is easier to write in a table row than a nested list
                        cell = [part.strip() for part in (cell or "").split(",") if part.strip()]
                    expect[key] = cell
                    roots[(key,)] = cell_path
            view = _rerooted(self.doc, expect, roots, rpath)
            problems = _schema_problems(view, "expect")
            if problems:
                self.diagnostics.extend(problems)
                continue
            name = f"{table['name']}, row {row_index + 1}" + (f" ({', '.join(shown)})" if shown else "")
            sourced: dict[str, Sourced] = {k: (v, (k,)) for k, v in expect.items()}
            built = self._case(name, rpath, inputs, sourced, view, table["name"])
            if built is not None:
                out.append(built)
        return out

    def _case(self, name: str, path: Path_, inputs: _Inputs, expect: dict[str, Sourced],
              expect_doc: SourceDoc, table: str | None) -> PolicyCase | None:
        before = self._error_count()
        as_of: _dt.datetime | None = None
        if inputs.as_of is None:
            self.error("CR202", f"case {name!r} has no as_of", path,
                       hint="give the decision time in the case, the table or under defaults")
        else:
            as_of = self._typed(inputs.as_of, ValueKind.DATETIME, "as_of")
        account = self._account(inputs.account, name, path)
        expectation = self._expectation(expect, expect_doc)
        if account is None or as_of is None or self._error_count() > before:
            return None
        history = self._history(inputs.history, account)
        holds = self._holds(inputs.holds, account)
        promises = self._promises(inputs.promises, account)
        if self._error_count() > before:
            return None
        return PolicyCase(name, self.doc.location(path), account, as_of, tuple(history), tuple(holds),
                          tuple(promises), expectation, table)

    def _typed(self, sourced: Sourced, kind: ValueKind, what: str) -> Any:
        value, path = sourced
        try:
            return parse_value(value, kind)
        except ValueError as exc:
            self.error("CR205", f"{what}: {exc}", path)
            return None

    # ---- the account -----------------------------------------------------------------------------------

    def _account(self, raw: dict[str, Sourced], default_id: str, case_path: Path_) -> Account | None:
        policy = self.policy
        row: dict[str, Any] = {}
        fields: dict[str, Sourced] = {}
        ok = True
        misspelt: set[str] = set()  # fields an unknown key probably meant; not reported missing again
        for name, (value, path) in raw.items():
            spec = self.standard.get(name)
            if spec is not None:
                try:
                    row[name] = _parse(value, spec)
                except ValueError as exc:
                    self.error("CR205", f"account column {name!r}: {exc}", path)
                    ok = False
            elif name in policy.fields:
                fields[name] = (value, path)
            else:
                hint = _known(name, [*policy.fields, *self.standard], "account columns")
                misspelt.update(difflib.get_close_matches(name, list(policy.fields), n=1, cutoff=0.6))
                self.error("CR201", f"{name!r} is neither a field of the policy nor a standard account "
                           "column", path, key=True, hint=hint)
                ok = False
        if row.get("account_id") is None:
            row["account_id"] = default_id
        stage = row.get("stage")
        if stage is not None and stage not in self.stage_ids:
            self.error("CR402", f"the account's stage {stage!r} is not a stage of the policy",
                       raw["stage"][1], hint=_known(stage, self.stage_ids, "stages"))
            ok = False
        for name, field_spec in policy.fields.items():
            missing = name not in fields or fields[name][0] in (None, "")
            required = not field_spec.optional and field_spec.default is None
            if missing and required and name not in self.standard \
                    and name not in misspelt:
                self.error("CR202", f"the account has no value for the required field {name!r}",
                           (*case_path, "account"),
                           hint="give it in the case, the table or under defaults.account")
                ok = False
        if not ok:
            return None
        row.update((name, value) for name, (value, _) in fields.items())
        try:
            return self.program.account(row)
        except DataError:
            pass
        # locate each value that does not fit its field
        for name, (value, path) in fields.items():
            try:
                self.program.account({"account_id": row["account_id"], name: value})
            except DataError as exc:
                self.error("CR608", exc.diagnostics[0].message, path)
        return None

    # ---- history, holds, promises ----------------------------------------------------------------------

    def _records(self, sourced: Sourced | None, columns: Sequence[ColumnSpec],
                 what: str) -> list[dict[str, Any]]:
        if sourced is None:
            return []
        items, path = sourced
        specs = {c.name: c for c in columns}
        out = []
        for index, item in enumerate(items):
            typed: dict[str, Any] = {}
            fits = True
            for key, value in item.items():
                spec = specs[key]
                try:
                    typed[key] = _parse(value, spec)
                except ValueError as exc:
                    self.error("CR205", f"{what} {index + 1}, {key}: {exc}", (*path, index, key))
                    fits = False
            if not fits:
                continue
            for spec in columns:
                if typed.get(spec.name) is None and spec.default is not None:
                    typed[spec.name] = spec.default
            out.append({"_path": (*path, index), **typed})
        return out

    def _check_channel(self, channel: str, path: Path_) -> None:
        channels = self.program.registry.channels
        if channel not in channels:
            self.error("CR402", f"unknown channel {channel!r}", path,
                       hint=_known(channel, channels, "channels"))

    def _history(self, sourced: Sourced | None, account: Account) -> list[ContactEvent]:
        out = []
        for record in self._records(sourced, HISTORY_COLUMNS, "history event"):
            path = record["_path"]
            self._check_channel(record["channel"], (*path, "channel"))
            outcome = record["outcome"]
            if outcome not in KNOWN_OUTCOMES:
                self.warn("CR412", f"{outcome!r} is not a standard contact outcome", (*path, "outcome"),
                          hint=_suggest(outcome, KNOWN_OUTCOMES))
            owner = record.get("account_id") or account.account_id
            # an event of another account belongs to this debtor or debt only when it says so
            own = owner == account.account_id
            out.append(ContactEvent(
                account_id=owner, channel=record["channel"], outcome=outcome, at=record["at"],
                direction=record["direction"],
                person_id=record.get("person_id") or (account.person if own else None),
                debt_id=record.get("debt_id") or (account.debt if own else None),
                contact=record.get("contact"), consent=bool(record["consent"]),
                template=record.get("template"), subject=record["subject"],
                debt_ids=tuple(record.get("debt_ids") or ())))
        return out

    def _holds(self, sourced: Sourced | None, account: Account) -> list[Hold]:
        out = []
        for record in self._records(sourced, HOLD_COLUMNS, "hold"):
            for index, channel in enumerate(record["channels"]):
                self._check_channel(channel, (*record["_path"], "channels", index))
            out.append(Hold(record.get("account_id") or account.account_id, record["type"], record["start"],
                            record.get("end"), tuple(record["channels"]), record.get("note")))
        return out

    def _promises(self, sourced: Sourced | None, account: Account) -> list[Promise]:
        return [Promise(record.get("account_id") or account.account_id, record["promised_on"], record["due"],
                        record["amount"], record["paid"], record["status"])
                for record in self._records(sourced, PROMISE_COLUMNS, "promise")]

    # ---- the expectation -------------------------------------------------------------------------------

    def _expectation(self, raw: dict[str, Sourced], doc: SourceDoc) -> Expectation:
        policy = self.policy
        values: dict[str, Any] = {}
        segment_ids = policy.segments.segment_ids()
        ladder_ids = [ladder.id for ladder in policy.escalation.ladders]

        def known_id(value: str | None, options: Iterable[str], what: str, path: Path_) -> None:
            if value is not None and value not in options:
                self.error("CR402", f"{what} {value!r} is not in the policy", path, doc=doc,
                           hint=_known(value, options, f"{what}s"))

        for key in EXPECT_KEYS:
            if key not in raw:
                continue
            value, path = raw[key]
            if key in ("segment", "ladder", "stage"):
                options = {"segment": segment_ids, "ladder": ladder_ids, "stage": self.stage_ids}[key]
                known_id(value, options, key, path)
                values[key] = value
            elif key == "segments":
                for index, item in enumerate(value):
                    known_id(item, segment_ids, "segment", (*path, index))
                values[key] = tuple(value)
            elif key in ("status", "day_in_stage"):
                values[key] = value
            elif key == "stage_entered":
                values[key] = self._expected_time(value, ValueKind.DATE, key, path, doc)
            elif key in ("due", "due_includes"):
                values[key] = tuple(self._action_key(item, (*path, index), doc)
                                    for index, item in enumerate(value))
            elif key in ("blocked", "blocked_includes"):
                entries = []
                for action, ids in value.items():
                    for index, reason in enumerate(ids):
                        known_id(reason, self.reasons, "restriction", (*path, action, index))
                    entries.append((self._action_key(action, (*path, action), doc, key=True), frozenset(ids)))
                values[key] = tuple(entries)
            elif key == "next_allowed":
                values[key] = tuple(
                    (self._action_key(action, (*path, action), doc, key=True),
                     None if when is None
                     else self._expected_time(when, ValueKind.DATETIME, key, (*path, action), doc))
                    for action, when in value.items())
            elif key == "errors":
                for index, code in enumerate(value):
                    if code not in ERROR_CODES:
                        hint = _suggest(code, ERROR_CODES) or "evaluation errors are CR501 and CR502"
                        self.error("CR204", f"{code!r} is not a collectrules error code", (*path, index),
                                   doc=doc, hint=hint)
                values[key] = tuple(value)
        self._check_consistent(raw, doc)
        return Expectation(given=frozenset(values), **values)

    def _expected_time(self, value: Any, kind: ValueKind, key: str, path: Path_, doc: SourceDoc) -> Any:
        try:
            return parse_value(value, kind)
        except ValueError as exc:
            self.error("CR205", f"expect.{key}: {exc}", path, doc=doc)
            return None

    def _action_key(self, text: str, path: Path_, doc: SourceDoc, *, key: bool = False) -> ActionKey:
        action = ActionKey.parse(text)
        if not any(channel == action.channel and (action.template is None or template == action.template)
                   for channel, template in self.actions):
            options = sorted({c for c, _ in self.actions} | {f"{c}:{t}" for c, t in self.actions if t})
            self.error("CR402", f"no action of the policy is {text!r}", path, doc=doc, key=key,
                       hint=_known(text, options, "actions"))
        return action

    def _check_consistent(self, raw: dict[str, Sourced], doc: SourceDoc) -> None:
        """A segment and a stage that cannot occur together make a case that can never pass."""
        if self.policy.segments.hit_policy == "collect" or "segment" not in raw or "stage" not in raw:
            return
        segment, stage = raw["segment"][0], raw["stage"][0]
        if segment is None or stage is None or stage not in self.stage_ids:
            return
        ladder = self.policy.escalation.ladder_for(segment)
        if ladder is None:
            self.error("CR402", f"segment {segment!r} is on no ladder, so no account in it has stage "
                       f"{stage!r}", raw["stage"][1], doc=doc,
                       hint="expect `stage: null` for segments on no ladder")
        elif ladder.stage_index(stage) is None:
            self.error("CR402", f"stage {stage!r} is not on ladder {ladder.id!r}, which segment {segment!r} "
                       "climbs", raw["stage"][1], doc=doc,
                       hint=f"stages of {ladder.id!r}: {', '.join(s.id for s in ladder.stages)}")
