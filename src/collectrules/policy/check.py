"""The front door of the policy layer: file in, policy model or every located finding out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CollectRulesError, Diagnostic, PolicySchemaError
from ..registry import Registry
from .build import build_policy
from .load import load_yaml
from .model import Policy
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
    schema_problems = validate_schema(doc)
    if schema_problems:
        return CheckResult(file, None, schema_problems)
    policy, diagnostics = build_policy(doc, registry)
    return CheckResult(file, policy, diagnostics)


def load_policy(path: str | Path, registry: Registry | None = None) -> Policy:
    """Load a policy, raising :class:`~collectrules.errors.CollectRulesError` with every error found."""
    result = check_policy_file(path, registry)
    if result.policy is None or result.errors:
        raise PolicySchemaError(diagnostics=result.errors or result.diagnostics)
    return result.policy
