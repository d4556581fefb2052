"""Restriction packs: resolving ``imports:``, loading and checking pack files, and filling in parameters.

A pack is a YAML document of kind ``RestrictionPack`` (schema ``pack-v1.json``). :func:`resolve_imports`
walks the import graph of a policy depth first: ``compliance/<name>.yaml`` names a pack shipped in
``collectrules/compliance/``, any other path is relative to the importing file. Every pack file is loaded
once, with its own :class:`~collectrules.policy.load.SourceDoc`, so that whatever is wrong in a pack is
reported at its own line. A missing file, a file that is not a pack and an import cycle are reported at the
import that causes them.

Parameters are named values a pack's restrictions use as ``${name}``; the importer may set them. Once the
values are known, :func:`parameterised_view` gives the pack's document with every placeholder replaced: a
value that is exactly one placeholder takes the parameter's value (a number stays a number), a placeholder
inside longer text is replaced by the value's text. The view remembers where each replacement stood, so an
error found later in a filled-in expression still points at the right column of the pack file.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import CollectRulesError, Diagnostic, Location
from .load import Path_, SourceDoc, load_yaml
from .schema import SCHEMA_ID, policy_schema, validate_part

PACK_KIND = "RestrictionPack"
PACK_SCHEMA_ID = "https://collectrules.dev/schema/pack-v1.json"
#: imports starting with this prefix name packs shipped with collectrules
SHIPPED_PREFIX = "compliance/"
PARAMETER_TYPES = ("int", "duration", "time")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DURATION = re.compile(r"^[1-9][0-9]*(m|h|d|w)$")
_TIME = re.compile(r"^([01][0-9]|2[0-4]):[0-5][0-9]$")


@functools.cache
def pack_schema_text() -> str:
    """The restriction pack v1 JSON Schema as shipped in the package."""
    return (resources.files("collectrules.policy") / "schema" / "pack-v1.json").read_text(encoding="utf-8")


@functools.cache
def _pack_validator() -> Any:
    import jsonschema
    from referencing import Registry, Resource

    # the pack schema reuses the policy schema's definitions by their published URI
    registry: Registry[Any] = Registry().with_resource(SCHEMA_ID, Resource.from_contents(policy_schema()))
    return jsonschema.Draft202012Validator(json.loads(pack_schema_text()), registry=registry)


@functools.cache
def _restriction_validator() -> Any:
    import jsonschema

    schema = policy_schema()
    return jsonschema.Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/restriction"})


def shipped_packs_dir() -> Path:
    """The folder of the packs shipped with collectrules."""
    return Path(str(resources.files("collectrules") / "compliance"))


def shipped_pack_names() -> list[str]:
    """``compliance/<name>.yaml`` for every shipped pack."""
    return sorted(f"{SHIPPED_PREFIX}{p.name}" for p in shipped_packs_dir().glob("*.yaml"))


def resolve_import_path(text: str, importer_file: str) -> Path:
    """The file an import names: a shipped pack for ``compliance/…``, else a path relative to the importer."""
    if text.startswith(SHIPPED_PREFIX):
        return shipped_packs_dir() / text[len(SHIPPED_PREFIX):]
    return Path(os.path.normpath(Path(importer_file).parent / text))


# ---- the import graph -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A parameter a pack declares."""

    name: str
    type: str  # int | duration | time
    default: Any
    description: str
    #: "up" or "down": the direction in which the value makes the pack stricter; None when not declared
    tightens: str | None = None

    def loosens(self, value: Any) -> bool:
        """Whether ``value`` goes against the declared direction (False when none is declared)."""
        if self.tightens is None or value == self.default:
            return False
        measure = _duration_seconds if self.type == "duration" else int
        bigger = measure(value) > measure(self.default)
        return bigger != (self.tightens == "up")


def _duration_seconds(text: str) -> int:
    from ..lang.parser import parse_duration_text

    return int(parse_duration_text(text).total_seconds())


@dataclass
class PackUnit:
    """One pack file in the import graph, with the parameter values it is used with."""

    key: Path
    doc: SourceDoc
    #: where the pack is first imported: the importing document and the path of the import item
    importer: SourceDoc
    import_path: Path_
    children: list[PackUnit] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    #: parameter name → (document, path) where an importer set its value
    set_at: dict[str, tuple[SourceDoc, Path_]] = field(default_factory=dict)
    #: per restriction index, the parameters its values use
    uses: dict[int, frozenset[str]] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.doc.data["metadata"]
        return metadata

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def import_location(self) -> Location:
        return self.importer.location(self.import_path)


@dataclass
class ImportGraph:
    """The packs a document imports: its direct imports, and every pack in merge order (imports first)."""

    direct: list[PackUnit]
    ordered: list[PackUnit]
    diagnostics: list[Diagnostic]


def _import_item(item: Any) -> tuple[str, dict[str, Any], bool]:
    if isinstance(item, str):
        return item, {}, False
    return str(item["path"]), dict(item.get("parameters") or {}), "parameters" in item


class _Resolver:
    def __init__(self) -> None:
        self.units: dict[Path, PackUnit] = {}
        self.ordered: list[PackUnit] = []
        self.diagnostics: list[Diagnostic] = []
        self.failed: set[Path] = set()

    def error(self, doc: SourceDoc, code: str, message: str, path: Path_, *, hint: str | None = None,
              key: bool = False) -> None:
        self.diagnostics.append(doc.diagnostic(code, message, path, hint=hint, key=key))

    def imports_of(self, doc: SourceDoc, stack: list[tuple[Path, str]]) -> list[PackUnit]:
        items = doc.data.get("imports") or []
        found: list[PackUnit] = []
        seen: dict[Path, int] = {}
        for index, item in enumerate(items):
            path: Path_ = ("imports", index)
            text, values, has_values = _import_item(item)
            target = resolve_import_path(text, doc.file)
            key = target.resolve()
            if key in seen:
                self.error(doc, "CR432", f"{text} is imported twice (first as item {seen[key] + 1})", path,
                           hint="import each pack once")
                continue
            seen[key] = index
            chain = [k for k, _ in stack]
            if key in chain:
                names = [name for _, name in stack[chain.index(key):]] + [str(target)]
                self.error(doc, "CR431", "imports form a cycle: " + " → ".join(names), path,
                           hint="a pack cannot import a file that imports it, even through other packs")
                continue
            first_import = key not in self.units
            unit = self.load(doc, path, text, target, key, stack)
            if unit is None:
                continue
            if first_import:
                self.set_values(unit, doc, path, values)
            else:
                self.check_same_values(unit, doc, path, values, has_values)
            found.append(unit)
        return found

    def load(self, doc: SourceDoc, path: Path_, text: str, target: Path, key: Path,
             stack: list[tuple[Path, str]]) -> PackUnit | None:
        if key in self.units:
            return self.units[key]
        if key in self.failed:
            return None
        if not target.is_file():
            if text.startswith(SHIPPED_PREFIX):
                hint = "packs shipped with collectrules: " + ", ".join(shipped_pack_names())
            else:
                hint = f"the path is relative to {doc.file}; write compliance/<name>.yaml for a shipped pack"
            self.error(doc, "CR430", f"imported pack not found: {text} (looked for {target})", path,
                       hint=hint)
            self.failed.add(key)
            return None
        try:
            pack_doc = load_yaml(target)
        except CollectRulesError as exc:
            self.diagnostics.extend(exc.diagnostics)
            self.failed.add(key)
            return None
        kind = pack_doc.data.get("kind") if isinstance(pack_doc.data, dict) else None
        if kind != PACK_KIND:
            what = "a policy" if kind == "Policy" else f"of kind {kind!r}" if kind else "not a pack"
            self.error(doc, "CR437", f"{text} is {what}, not a restriction pack", path,
                       hint=f"an imported file starts with 'kind: {PACK_KIND}'")
            self.failed.add(key)
            return None
        problems = validate_part(pack_doc, _pack_validator(), pack_doc.data, ())
        if problems:
            self.diagnostics.extend(problems)
            self.failed.add(key)
            return None
        unit = PackUnit(key, pack_doc, doc, path)
        self.units[key] = unit
        unit.parameters = self.declared_parameters(unit)
        unit.children = self.imports_of(pack_doc, [*stack, (key, str(target))])
        self.ordered.append(unit)
        return unit

    def declared_parameters(self, unit: PackUnit) -> dict[str, Parameter]:
        declared: dict[str, Parameter] = {}
        for name, spec in (unit.doc.data.get("parameters") or {}).items():
            problem = parameter_value_problem(spec["type"], spec["default"])
            if problem:
                self.error(unit.doc, "CR435", f"default of parameter {name!r}: {problem}",
                           ("parameters", name, "default"))
                continue
            if "tightens" in spec and spec["type"] == "time":
                self.error(unit.doc, "CR435",
                           f"parameter {name!r}: a time of day has no direction in which it tightens",
                           ("parameters", name, "tightens"), key=True,
                           hint="remove `tightens`: the windows using it are compared as a whole")
            declared[name] = Parameter(name, spec["type"], spec["default"], spec["description"],
                                       spec.get("tightens") if spec["type"] != "time" else None)
        unit.values = {name: p.default for name, p in declared.items()}
        return declared

    def check_same_values(self, unit: PackUnit, doc: SourceDoc, path: Path_, values: dict[str, Any],
                          has_values: bool) -> None:
        """A pack imported again (through another document) is merged once: the values must agree."""
        wanted = {**{name: p.default for name, p in unit.parameters.items()}, **values}
        if wanted != unit.values:
            first = unit.import_location
            self.error(doc, "CR432", f"pack {unit.name!r} is imported with other parameter values at "
                                     f"{first.file}:{first.line}",
                       (*path, "parameters") if has_values else path,
                       hint="a pack is merged once, so every import of it must set the same values")

    def set_values(self, unit: PackUnit, doc: SourceDoc, path: Path_, values: dict[str, Any]) -> None:
        base: Path_ = (*path, "parameters")
        for name, value in values.items():
            parameter = unit.parameters.get(name)
            if parameter is None:
                known = ", ".join(sorted(unit.parameters))
                hint = f"its parameters: {known}" if known else "the pack has no parameters"
                self.error(doc, "CR435", f"pack {unit.name!r} has no parameter {name!r}", (*base, name),
                           key=True, hint=hint)
                continue
            problem = parameter_value_problem(parameter.type, value)
            if problem:
                self.error(doc, "CR435", f"parameter {name!r} of pack {unit.name!r}: {problem}",
                           (*base, name))
                continue
            unit.values[name] = value
            unit.set_at[name] = (doc, (*base, name))


def parameter_value_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` cannot be a parameter of type ``kind``; None when it fits."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {value!r}"
        return None
    if not isinstance(value, str):
        example = "a duration such as 7d" if kind == "duration" else "a time of day such as 08:00"
        return f"expected {example} in quotes, got {value!r}"
    if kind == "duration" and not _DURATION.match(value):
        return f"{value!r} is not a duration such as 30m, 12h, 7d or 2w"
    if kind == "time" and (not _TIME.match(value) or (value.startswith("24") and value != "24:00")):
        return f"{value!r} is not a time of day in HH:MM form (00:00 to 24:00)"
    return None


def resolve_imports(doc: SourceDoc) -> ImportGraph:
    """Load every pack ``doc`` imports, directly or not; problems are located diagnostics, never raised."""
    resolver = _Resolver()
    direct = resolver.imports_of(doc, [(Path(doc.file).resolve(), doc.file)])
    return ImportGraph(direct, resolver.ordered, resolver.diagnostics)


# ---- parameters -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Replacement:
    """One placeholder: where it stood in the original text and where its value stands in the new text."""

    old_start: int
    old_end: int
    new_start: int
    new_end: int


@dataclass(frozen=True)
class ParameterisedDoc(SourceDoc):
    """A pack document with its parameters filled in; offsets into filled-in text map back to the file."""

    original: Any = None
    replacements: dict[Path_, tuple[_Replacement, ...]] = field(default_factory=dict)

    def scalar_offset_location(self, path: Path_, offset: int, length: int = 1) -> Location:
        replacements = self.replacements.get(tuple(path))
        if not replacements:
            return SourceDoc.scalar_offset_location(self, path, offset, length)
        original_offset = _original_offset(replacements, offset)
        plain = SourceDoc(self.file, self.text, self.original, self.positions)
        return plain.scalar_offset_location(path, original_offset, length)


def _original_offset(replacements: tuple[_Replacement, ...], offset: int) -> int:
    shift = 0
    for item in replacements:
        if offset < item.new_start:
            break
        if offset < item.new_end:
            # inside a filled-in value: point at its placeholder
            return item.old_start
        shift = item.old_end - item.new_end
    return offset + shift


def parameterised_view(unit: PackUnit, values: dict[str, Any] | None = None,
                       diagnostics: list[Diagnostic] | None = None) -> ParameterisedDoc:
    """The pack's document with ``${name}`` replaced in its restrictions (all but their ids).

    ``values`` defaults to the unit's values. Unknown names are reported to ``diagnostics`` (when given) at
    the scalar that uses them, and left in place, so that the restriction fails its check there too.
    """
    values = unit.values if values is None else values
    doc = unit.doc
    data = json.loads(json.dumps(doc.data))  # a deep copy of plain data
    replacements: dict[Path_, tuple[_Replacement, ...]] = {}
    uses: dict[int, frozenset[str]] = {}
    restrictions = (data.get("contact") or {}).get("restrictions") or []

    def fill(value: Any, path: Path_, used: set[str]) -> Any:
        if isinstance(value, dict):
            # the restriction's own id is never filled in: it is how policies refer to the rule
            return {k: (v if k == "id" and len(path) == 3 else fill(v, (*path, k), used))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, (*path, i), used) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None and whole.group(1) in values:
            used.add(whole.group(1))
            return values[whole.group(1)]
        out: list[str] = []
        spans: list[_Replacement] = []
        last = 0
        for match in _PLACEHOLDER.finditer(value):
            name = match.group(1)
            out.append(value[last:match.start()])
            if name not in values:
                if diagnostics is not None:
                    known = ", ".join(sorted(values)) or "none"
                    reason = "is not a parameter of the pack" if _NAME.match(name) \
                        else "is not a parameter name"
                    diagnostics.append(doc.diagnostic("CR435", f"${{{name}}}: {name!r} {reason}", path,
                                                      hint=f"parameters of pack {unit.name!r}: {known}"))
                text = match.group(0)
            else:
                used.add(name)
                text = str(values[name])
            start = sum(len(part) for part in out)
            spans.append(_Replacement(match.start(), match.end(), start, start + len(text)))
            out.append(text)
            last = match.end()
        out.append(value[last:])
        replacements[path] = tuple(spans)
        return "".join(out)

    for index, item in enumerate(restrictions):
        used: set[str] = set()
        restrictions[index] = fill(item, ("contact", "restrictions", index), used)
        uses[index] = frozenset(used)
    if values is unit.values:
        unit.uses = uses
    return ParameterisedDoc(doc.file, doc.text, data, doc.positions, original=doc.data,
                            replacements=replacements)


def restriction_schema_problems(view: SourceDoc, index: int) -> list[Diagnostic]:
    """A filled-in pack restriction checked against the policy format's restriction schema."""
    path: Path_ = ("contact", "restrictions", index)
    item = view.data["contact"]["restrictions"][index]
    return validate_part(view, _restriction_validator(), item, path)
