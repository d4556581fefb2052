"""The front door of the policy layer: file in, policy model or every located finding out.

A restriction pack given on its own is checked as the only import of an otherwise empty policy, so that it
gets every check a policy importing it would run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CollectRulesError, Diagnostic, PolicySchemaError
from ..registry import Registry
from .build import build_policy
from .load import SourceDoc, load_yaml, load_yaml_text
from .model import Policy
from .packs import PACK_KIND
from .schema import validate_schema


@dataclass
class CheckResult:
    """The outcome of checking one policy file."""

    file: str
    policy: Policy | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


def check_policy_file(path: str | Path, registry: Registry | None = None) -> CheckResult:
    """Load, schema-validate, build and type-check one policy. Never raises for bad input."""
    file = str(path)
    registry = registry or Registry.builtin_only()
    try:
        doc = load_yaml(path)
    except CollectRulesError as exc:
        return CheckResult(file, None, list(exc.diagnostics))
    if isinstance(doc.data, dict) and doc.data.get("kind") == PACK_KIND:
        return _check_pack(doc, registry)
    schema_problems = validate_schema(doc)
    if schema_problems:
        return CheckResult(file, None, schema_problems)
    policy, diagnostics = build_policy(doc, registry)
    return CheckResult(file, policy, diagnostics)


_PACK_HOST = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {{name: pack-check, version: "0"}}
imports: [{path}]
fields: {{}}
segments: {{rules: [{{id: every_account, when: "true"}}]}}
"""


def _check_pack(doc: SourceDoc, registry: Registry) -> CheckResult:
    host = load_yaml_text(_PACK_HOST.format(path=json.dumps(str(Path(doc.file).resolve()))),
                          f"{doc.file} (imported by an empty policy)")
    policy, diagnostics = build_policy(host, registry)
    return CheckResult(doc.file, policy, diagnostics)


def load_policy(path: str | Path, registry: Registry | None = None) -> Policy:
    """Load a policy, raising :class:`~collectrules.errors.CollectRulesError` with every error found."""
    result = check_policy_file(path, registry)
    if result.policy is None or result.errors:
        raise PolicySchemaError(diagnostics=result.errors or result.diagnostics)
    return result.policy
