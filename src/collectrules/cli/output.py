"""Rendering of diagnostics for people (text) and for CI systems (json, GitHub annotations, SARIF 2.1.0)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import Diagnostic
from ..policy.check import CheckResult
from ..policy.model import PackImport

DIAGNOSTIC_FORMATS = ("text", "json", "github", "sarif")


def render_diagnostics(results: Sequence[CheckResult], fmt: str, *, quiet: bool = False,
                       mode: str = "validate") -> str:
    """All results in one format. ``mode`` ("validate" or "lint") only changes the text summary lines."""
    if fmt == "json":
        return json.dumps(_json(results), indent=2) + "\n"
    if fmt == "github":
        return "".join(_github(d) + "\n" for r in results for d in r.diagnostics)
    if fmt == "sarif":
        return json.dumps(to_sarif(results), indent=2) + "\n"
    if mode == "lint":
        return _lint_text(results, quiet=quiet)
    return _text(results, quiet=quiet)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _lint_text(results: Sequence[CheckResult], *, quiet: bool) -> str:
    """Diagnostics, then ``file: clean`` or ``file: 2 findings`` per policy, then one summary line."""
    lines: list[str] = []
    with_findings = 0
    for result in results:
        lines.extend(diagnostic.render() for diagnostic in result.diagnostics)
        findings = sum(1 for d in result.diagnostics if d.severity != "note")
        with_findings += bool(result.ok and findings)
        if not quiet and result.ok:
            lines.append(f"{result.file}: " + (_plural(findings, "finding") if findings else "clean"))
    invalid = sum(1 for r in results if not r.ok)
    if not quiet or invalid or with_findings:
        counts = {severity: sum(1 for r in results for d in r.diagnostics if d.severity == severity)
                  for severity in ("error", "warning", "note")}
        clean = len(results) - invalid - with_findings
        notes = f", {_plural(counts['note'], 'note')}" if counts["note"] else ""
        lines.append(f"{len(results)} polic{'y' if len(results) == 1 else 'ies'} linted: {clean} clean, "
                     f"{with_findings} with findings, {invalid} invalid; "
                     f"{_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}{notes}")
    return "".join(line + "\n" for line in lines)


def _text(results: Sequence[CheckResult], *, quiet: bool) -> str:
    lines: list[str] = []
    for result in results:
        for diagnostic in result.diagnostics:
            lines.append(diagnostic.render())
        if not quiet and result.ok:
            warnings = len(result.diagnostics)
            suffix = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
            lines.append(f"{result.file}: valid{suffix}")
            if result.policy is not None:
                lines.extend(_pack_line(pack) for pack in result.policy.imports)
    invalid = sum(1 for r in results if not r.ok)
    if not quiet or invalid:
        errors = sum(len(r.errors) for r in results)
        lines.append(f"{len(results)} polic{'y' if len(results) == 1 else 'ies'} checked: "
                     f"{len(results) - invalid} valid, {invalid} invalid, {errors} error{'s' if errors != 1 else ''}")
    return "".join(line + "\n" for line in lines)


def _pack_line(pack: PackImport) -> str:
    """``  pack us-reg-f 2026.11.1 (US): 5 in force (…), 1 tightened (…), 0 overridden``"""
    parts = []
    groups = (("in force", pack.in_force), ("tightened", pack.tightened), ("overridden", pack.overridden))
    for what, ids in groups:
        parts.append(f"{len(ids)} {what}" + (f" ({', '.join(ids)})" if ids else ""))
    return f"  pack {pack.name} {pack.version} ({pack.jurisdiction}): {', '.join(parts)}"


def _pack_json(pack: PackImport) -> dict[str, Any]:
    return {"name": pack.name, "version": pack.version, "jurisdiction": pack.jurisdiction, "file": pack.file,
            "imported_at": str(pack.location), "parameters": pack.parameters, "in_force": list(pack.in_force),
            "tightened": list(pack.tightened), "overridden": list(pack.overridden)}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    loc = d.location
    return {
        "severity": d.severity, "code": d.code, "message": d.message, "hint": d.hint,
        "file": loc.file if loc else None, "line": loc.line if loc else None,
        "column": loc.column if loc else None, "end_column": loc.end_column if loc else None,
    }


def _json(results: Sequence[CheckResult]) -> dict[str, Any]:
    return {
        "valid": all(r.ok for r in results),
        "files": [{"file": r.file, "valid": r.ok, "diagnostics": [diagnostic_json(d) for d in r.diagnostics],
                   # only policies that import packs say which rules of them are in force
                   **({"imports": [_pack_json(p) for p in r.policy.imports]}
                      if r.policy is not None and r.policy.imports else {})}
                  for r in results],
    }


def _escape_github(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github(d: Diagnostic) -> str:
    level = {"error": "error", "warning": "warning"}.get(d.severity, "notice")
    props = [f"title={_escape_github(d.code, property_value=True)}"]
    if d.location:
        props[:0] = [f"file={_escape_github(d.location.file, property_value=True)}", f"line={d.location.line}",
                     f"col={d.location.column}"]
        if d.location.end_column:
            props.append(f"endColumn={d.location.end_column}")
    message = d.message + (f" (hint: {d.hint})" if d.hint else "")
    return f"::{level} {','.join(props)}::{_escape_github(message)}"


def to_sarif(results: Sequence[CheckResult]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; rule ids are the diagnostic codes."""
    from ..errors_catalog import ERROR_CODES

    codes = sorted({d.code for r in results for d in r.diagnostics})
    rules = [{"id": code, "name": code,
              "shortDescription": {"text": ERROR_CODES.get(code, "policy problem")}} for code in codes]
    index = {code: i for i, code in enumerate(codes)}
    sarif_results = []
    for result in results:
        for d in result.diagnostics:
            entry: dict[str, Any] = {
                "ruleId": d.code, "ruleIndex": index[d.code],
                "level": {"error": "error", "warning": "warning"}.get(d.severity, "note"),
                "message": {"text": d.message + (f" Hint: {d.hint}" if d.hint else "")},
            }
            if d.location:
                region: dict[str, int] = {"startLine": d.location.line, "startColumn": d.location.column}
                if d.location.end_column and d.location.end_column > d.location.column:
                    region["endColumn"] = d.location.end_column
                entry["locations"] = [{"physicalLocation": {
                    "artifactLocation": {"uri": d.location.file.replace("\\", "/")}, "region": region}}]
            sarif_results.append(entry)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "collectrules", "version": __version__,
                                "informationUri": "https://collectrules.dev", "rules": rules}},
            "results": sarif_results,
        }],
    }
