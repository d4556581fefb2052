"""The closing summary of an evaluation run, and the rejected-rows file."""

from __future__ import annotations

import csv
import datetime as _dt
import json
from collections import Counter
from pathlib import Path
from typing import Any


def _table(title: str, counts: Counter[str], total: int | None = None) -> list[str]:
    if not counts:
        return [f"{title}: none"]
    width = max(len(k) for k in counts)
    lines = [f"{title}:"]
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        share = f"  {value / total:6.1%}" if total else ""
        lines.append(f"  {key:<{width}}  {value:>8,}{share}")
    return lines


def render_summary(summary: Any, portfolio: Any, as_of: _dt.datetime, output: Path | None, fmt: str,
                   *, shown: int) -> str:
    if fmt == "json":
        data = {**summary.to_dict(), "as_of": as_of.isoformat(), "output": str(output) if output else None,
                "inputs": [{"file": i.file, "rows": i.total_rows, "rejected": i.rejected_rows,
                            "problems": [str(p) for p in i.problems]} for i in portfolio.inputs]}
        return json.dumps(data, indent=2) + "\n"
    lines = [f"as of {as_of.isoformat().replace('+00:00', 'Z')}: {summary.accounts:,} accounts decided"
             + (f", written to {output}" if output else "")]
    lines += _table("segments", summary.by_segment, summary.accounts)
    lines += _table("stages", summary.by_stage, summary.accounts)
    lines += _table("status", summary.by_status, summary.accounts)
    lines += _table("actions due by channel", summary.due_by_channel)
    lines += _table("actions blocked by channel", summary.blocked_by_channel)
    lines += _table("blocks by restriction", summary.blocked_by_restriction)
    if summary.accounts_with_errors:
        lines.append(f"accounts with evaluation errors: {summary.accounts_with_errors:,} "
                     f"({', '.join(f'{c} ×{n}' for c, n in summary.error_codes.items())})")
    lines.append("inputs:")
    remaining = shown
    for report in portfolio.inputs:
        lines.append(f"  {report.file}: {report.total_rows:,} rows, {report.rejected_rows:,} rejected")
        for problem in report.problems[:remaining]:
            lines.append(f"    {problem}")
        hidden = max(0, len(report.problems) - remaining) + report.omitted_problems
        remaining = max(0, remaining - len(report.problems))
        if hidden:
            lines.append(f"    … and {hidden:,} more problems (write them all with --rejects FILE)")
    return "\n".join(lines) + "\n"


def write_rejects(path: Path, inputs: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "column", "problem"])
        for report in inputs:
            for problem in report.problems:
                writer.writerow([problem.file, problem.row, problem.column or "", problem.message])
