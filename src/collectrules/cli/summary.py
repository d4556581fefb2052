"""The closing summary of an evaluation run, and the rejected-rows file.

The summary is rendered by a reporter plugin (built-in: :mod:`collectrules.builtin.reporters`); this module
builds the report dict they all take.
"""

from __future__ import annotations

import csv
import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def build_report(summary: Any, portfolio: Any, as_of: _dt.datetime, output: Path | None) -> dict[str, Any]:
    """The run's summary as the JSON-ready dict every reporter renders.

    It is ``summary.to_dict()`` plus ``as_of``, ``output`` and, per input file, its rows, rejected rows,
    the problems kept in memory and how many more were counted but not kept (``omitted_problems``).
    """
    return {**summary.to_dict(), "as_of": as_of.isoformat(), "output": str(output) if output else None,
            "inputs": [{"file": i.file, "rows": i.total_rows, "rejected": i.rejected_rows,
                        "problems": [str(p) for p in i.problems], "omitted_problems": i.omitted_problems}
                       for i in portfolio.inputs]}


def render_summary(summary: Any, portfolio: Any, as_of: _dt.datetime, output: Path | None, fmt: str,
                   reporters: Mapping[str, Any] | None = None) -> str:
    """Render the run's summary with the reporter named ``fmt``.

    :param reporters: name → :class:`~collectrules.registry.Reporter`, usually the program's registry's;
        ``None`` means the built-in reporters.
    """
    if reporters is None:
        from ..registry import Registry

        reporters = Registry.builtin_only().reporters
    return str(reporters[fmt].render(build_report(summary, portfolio, as_of, output)))


def check_reporter(name: str, reporters: Mapping[str, Any]) -> None:
    """Fail as a usage error, before any work is done, when ``--summary-format`` names no reporter."""
    if name in reporters:
        return
    import difflib

    import click

    close = difflib.get_close_matches(name, list(reporters), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise click.BadParameter(f"no reporter named {name!r}; {hint}available: {', '.join(sorted(reporters))}",
                             param_hint="--summary-format")


def write_summary(path: Path, text: str) -> None:
    """Write a rendered summary to ``path``, creating its folder; line endings are kept as rendered."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_rejects(path: Path, inputs: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "column", "problem"])
        for report in inputs:
            for problem in report.problems:
                writer.writerow([problem.file, problem.row, problem.column or "", problem.message])
