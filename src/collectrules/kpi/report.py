"""The KPI report: every target of a policy judged on outcome data, in text, Markdown, JSON, CSV or HTML.

:func:`build_kpi_report` measures the policy's KPIs for a report period (:mod:`.targets`), compares the
arms of its experiments on the KPIs they name (:mod:`.experiments`) and adds the roll-rate matrix of the
period; the result is one JSON-ready dict (decimals as strings, so they stay exact). :func:`render_kpi_report`
renders that dict in one of :data:`FORMATS`.

The HTML page is self-contained: inline CSS and inline SVG charts (recovery rate by bucket against its
targets, the roll-rate matrix as a heat map, a trend line per KPI), no scripts, nothing fetched. Every chart
has a title and a description, and its numbers are also in a table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ..builtin.reporters import _CSS, _e, _md_cell, _md_code, _md_table, _svg_open
from .experiments import Comparison, compare_arms
from .metrics import BucketScheme, MetricValue, NoData, closing_snapshot, opening_snapshot
from .outcomes import Outcomes
from .periods import Period
from .targets import KpiEvaluator, KpiResult

if TYPE_CHECKING:
    from ..engine.program import Program

__all__ = ["FORMATS", "build_kpi_report", "missed_count", "render_kpi_report", "roll_matrix"]

#: the report formats
FORMATS: Final[tuple[str, ...]] = ("text", "md", "json", "csv", "html")

_STATUS_TEXT: Final[dict[str, str]] = {"met": "met", "missed": "MISSED", "no_data": "no data"}


# --------------------------------------------------------------------------------------------------
# building the report


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _period(period: Period) -> dict[str, Any]:
    return {"period": str(period), "start": period.start.isoformat(), "end": period.end.isoformat(),
            "to_date": period.to_date}


def _value(value: MetricValue) -> dict[str, Any]:
    proportion = value.proportion
    return {"actual": _dec(value.value), "numerator": _dec(value.numerator),
            "denominator": _dec(value.denominator), "counts": dict(value.counts), "detail": value.detail,
            "successes": proportion.successes if proportion else None,
            "trials": proportion.trials if proportion else None,
            "proportion": proportion.label if proportion else None}


def _kpi(result: KpiResult) -> dict[str, Any]:
    kpi, metric = result.kpi, result.metric
    results = []
    for m in result.measurements:
        previous = None
        if m.previous is not None and m.previous_period is not None:
            previous = {**_period(m.previous_period), "actual": _dec(m.previous.value),
                        "detail": m.previous.detail}
        results.append({**_period(m.period), **_value(m.value), "detail": m.note,
                        "threshold": _dec(m.threshold), "status": m.status, "previous": previous})
    return {
        "id": kpi.id, "metric": kpi.metric, "description": kpi.description,
        "unit": metric.unit if metric else "ratio",
        "higher_is_better": metric.higher_is_better if metric else True,
        "formula": metric.formula if metric else None,
        "where": kpi.where.source if kpi.where is not None else None,
        "target": kpi.target_text.strip(), "period_kind": kpi.period, "params": kpi.params,
        "policy": f"{kpi.location.file}:{kpi.location.line}",
        "status": result.status, "results": results,
        "trend": [{**_period(p), "actual": _dec(v.value), "detail": v.detail} for p, v in result.trend],
    }


def _comparison(comparison: Comparison, unit: str) -> dict[str, Any]:
    arms = []
    for arm in comparison.arms:
        interval = arm.interval
        arms.append({"arm": arm.arm.id, "share": str(arm.arm.share), **_value(arm.value),
                     "ci_low": interval[0] if interval else None,
                     "ci_high": interval[1] if interval else None, "p_value": arm.p_value})
    return {"kpi": comparison.kpi.id, "metric": comparison.kpi.metric, "unit": unit,
            **_period(comparison.period), "arms": arms}


def roll_matrix(outcomes: Outcomes, period: Period,
                scheme: BucketScheme | None = None) -> dict[str, Any] | None:
    """Where the book's opening balance went over ``period``: from each bucket at the opening snapshot to each
    bucket at the closing snapshot, or off the book (paid off, written off). ``None`` without snapshots."""
    scheme = scheme or BucketScheme()
    try:
        opening, opening_rows = opening_snapshot(outcomes, period)
        closing, closing_rows = closing_snapshot(outcomes, period)
    except NoData:
        return None
    labels = scheme.labels
    columns = [*labels, "paid off", "written off"]
    balances = [[Decimal(0)] * len(columns) for _ in labels]
    accounts = [[0] * len(columns) for _ in labels]
    written_on = outcomes.written_off_on() if outcomes.writeoffs is not None else {}
    for account_id, start in opening_rows.items():
        if not start.on_book:
            continue
        end = closing_rows.get(account_id)
        if end is not None and end.written_off or end is None and opening < written_on.get(
                account_id, opening) <= closing:
            column = len(columns) - 1
        elif end is None:
            column = len(columns) - 2
        else:
            column = scheme.index(end.dpd)
        row = scheme.index(start.dpd)
        balances[row][column] += start.balance
        accounts[row][column] += 1
    shares: list[list[str | None]] = []
    for row_balances in balances:
        row_total = sum(row_balances, Decimal(0))
        shares.append([str(b / row_total) if row_total > 0 else None for b in row_balances])
    return {"from": opening.isoformat(), "to": closing.isoformat(), "buckets": labels, "columns": columns,
            "balances": [[str(b) for b in row] for row in balances], "accounts": accounts, "shares": shares}


def build_kpi_report(program: Program, outcomes: Outcomes, period: Period) -> dict[str, Any]:
    """Measure every KPI of the program's policy for ``period`` and compare every experiment's arms.

    Experiment arms are compared over the last period each compared KPI is measured in.
    """
    policy = program.policy
    evaluator = KpiEvaluator(program, outcomes)
    results = [evaluator.evaluate(kpi, period) for kpi in policy.kpis]
    kpis = [_kpi(r) for r in results]
    by_id = {r.kpi.id: r for r in results}
    experiments = []
    for experiment in policy.experiments:
        comparisons = []
        for kpi_id in experiment.compare:
            result = by_id[kpi_id]
            compared = compare_arms(evaluator, experiment, result.kpi, result.measurements[-1].period)
            comparisons.append(_comparison(compared, result.metric.unit if result.metric else "ratio"))
        experiments.append({"id": experiment.id, "description": experiment.description,
                            "arms": [{"id": a.id, "share": str(a.share), "ladders": dict(a.ladders),
                                      "description": a.description} for a in experiment.arms],
                            "comparisons": comparisons})
    statuses = [m["status"] for k in kpis for m in k["results"]]
    return {
        "policy": {"name": policy.metadata.name, "version": policy.metadata.version, "file": policy.file},
        "period": {**_period(period), "kind": period.kind, "name": period.describe()},
        "outcomes": outcomes.source,
        "summary": {"kpis": len(kpis), "measurements": len(statuses), "met": statuses.count("met"),
                    "missed": statuses.count("missed"), "no_data": statuses.count("no_data")},
        "kpis": kpis,
        "roll_matrix": roll_matrix(outcomes, period),
        "experiments": experiments,
        "inputs": [{"file": i.file, "rows": i.total_rows, "rejected": i.rejected_rows,
                    "problems": [str(p) for p in i.problems], "omitted_problems": i.omitted_problems}
                   for i in outcomes.inputs],
    }


def missed_count(report: Mapping[str, Any]) -> int:
    """How many KPI measurements of the report missed their target."""
    return int(report["summary"]["missed"])


# --------------------------------------------------------------------------------------------------
# shared formatting


def show(value: str | None, unit: str) -> str:
    """A metric value as people read it: 81.23% for ratios, 34.5 days, 0.0812 per unit collected."""
    if value is None:
        return "n/a"
    number = Decimal(value)
    if unit == "ratio":
        return f"{number * 100:.2f}%"
    if unit == "days":
        return f"{number:.1f} days"
    if unit == "currency":
        return f"{number:.4f}"
    return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.2f}"


def _target(kpi: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    """The target as written, with the number a relative target resolved to."""
    text = str(kpi["target"])
    previous = result.get("previous")
    if previous is None:
        return text
    if result["threshold"] is None:
        return f"{text} (previous n/a)"
    return f"{text} = {show(result['threshold'], kpi['unit'])}"


def _trend_text(kpi: Mapping[str, Any]) -> str:
    return " ".join(show(t["actual"], kpi["unit"]) for t in kpi["trend"])


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _ci(arm: Mapping[str, Any]) -> str:
    if arm["ci_low"] is None:
        return "n/a"
    return f"{arm['ci_low'] * 100:.1f}% to {arm['ci_high'] * 100:.1f}%"


def _share_of(arm: Mapping[str, Any]) -> str:
    if arm["trials"] is None:
        return "n/a"
    share = arm["successes"] / arm["trials"] if arm["trials"] else None
    return f"{arm['successes']:,}/{arm['trials']:,}" + (f" ({share:.1%})" if share is not None else "")


def _lead(report: Mapping[str, Any]) -> str:
    period = report["period"]
    return (f"{report['policy']['name']} {report['policy']['version']}, {period['name']} "
            f"({period['start']} to {period['end']}); outcomes from {report['outcomes']}")


def _summary_text(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    return (f"{s['kpis']} KPIs, {s['measurements']} measurements: {s['met']} met, {s['missed']} missed, "
            f"{s['no_data']} without data")


def _matrix_rows(matrix: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for label, shares, balances in zip(matrix["buckets"], matrix["shares"], matrix["balances"], strict=True):
        total = sum((Decimal(b) for b in balances), Decimal(0))
        rows.append([label, f"{total:,.2f}"] + [f"{Decimal(s) * 100:.1f}%" if s is not None else "–"
                                                for s in shares])
    return rows


# --------------------------------------------------------------------------------------------------
# text


def _columns(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    lines = [f"KPI report: {_lead(report)}", _summary_text(report), ""]
    rows = [["KPI", "Period", "Actual", "Target", "Status", "Previous 4 periods"]]
    notes = []
    for kpi in report["kpis"]:
        for index, result in enumerate(kpi["results"]):
            rows.append([kpi["id"] if index == 0 else "", result["period"],
                         show(result["actual"], kpi["unit"]), _target(kpi, result),
                         _STATUS_TEXT[result["status"]], _trend_text(kpi) if index == 0 else ""])
            if result["detail"]:
                notes.append(f"  {kpi['id']} {result['period']}: {result['detail']}")
    if len(rows) > 1:
        lines += _columns(rows, {2})
    else:
        lines.append("The policy has no KPIs.")
    if notes:
        lines += ["", "Without data:", *notes]
    matrix = report["roll_matrix"]
    if matrix is not None:
        lines += ["", f"Roll rates from {matrix['from']} to {matrix['to']} (share of each bucket's opening "
                      "balance):"]
        table = [["From", "Balance", *matrix["columns"]], *_matrix_rows(matrix)]
        lines += ["  " + line for line in _columns(table, set(range(1, len(matrix["columns"]) + 2)))]
    for experiment in report["experiments"]:
        arms = ", ".join(f"{a['id']} {a['share']}%" for a in experiment["arms"])
        lines += ["", f"Experiment {experiment['id']} ({arms}):"]
        for comparison in experiment["comparisons"]:
            lines.append(f"  {comparison['kpi']} ({comparison['metric']}), {comparison['period']}:")
            table = [["Arm", "Actual", "Proportion", "95% CI", "p-value vs " + experiment["arms"][0]["id"]]]
            for arm in comparison["arms"]:
                table.append([arm["arm"], show(arm["actual"], comparison["unit"]), _share_of(arm), _ci(arm),
                              _p(arm["p_value"]) if arm is not comparison["arms"][0] else "–"])
            lines += ["    " + line for line in _columns(table, {1, 2})]
            label = comparison["arms"][0]["proportion"]
            if label:
                lines.append(f"    proportion: {label}")
    lines += ["", "Inputs:"]
    for item in report["inputs"]:
        lines.append(f"  {item['file']}: {item['rows']:,} rows, {item['rejected']:,} rejected")
        lines += [f"    {problem}" for problem in item["problems"][:50]]
        hidden = max(0, len(item["problems"]) - 50) + item["omitted_problems"]
        if hidden:
            lines.append(f"    … and {hidden:,} more problems")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Markdown, JSON, CSV


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = ["# KPI report", "", _md_cell(_lead(report)) + ".", "", f"**{_summary_text(report)}**", ""]
    rows = []
    for kpi in report["kpis"]:
        for index, result in enumerate(kpi["results"]):
            status = _STATUS_TEXT[result["status"]]
            rows.append([_md_code(kpi["id"]) if index == 0 else "", _md_cell(result["period"]),
                         _md_cell(show(result["actual"], kpi["unit"])), _md_code(_target(kpi, result)),
                         f"**{status}**" if result["status"] == "missed" else status,
                         _md_cell(_trend_text(kpi)) if index == 0 else ""])
    if rows:
        lines += _md_table(["KPI", "Period", "Actual", "Target", "Status", "Previous 4 periods"], rows, {2})
    else:
        lines.append("The policy has no KPIs.")
    lines.append("")
    details = [f"- {_md_code(k['id'])} {_md_cell(r['period'])}: {_md_cell(r['detail'])}"
               for k in report["kpis"] for r in k["results"] if r["detail"]]
    if details:
        lines += ["## Without data", "", *details, ""]
    matrix = report["roll_matrix"]
    if matrix is not None:
        lines += ["## Roll rates", "", f"Share of each bucket's opening balance on {matrix['from']} by where "
                                       f"it stood on {matrix['to']}.", ""]
        lines += _md_table(["From", "Balance", *matrix["columns"]], _matrix_rows(matrix),
                           set(range(1, len(matrix["columns"]) + 2))) + [""]
    for experiment in report["experiments"]:
        lines += [f"## Experiment {_md_code(experiment['id'])}", ""]
        if experiment["description"]:
            lines += [_md_cell(experiment["description"]), ""]
        for comparison in experiment["comparisons"]:
            lines += [f"### {_md_code(comparison['kpi'])}, {comparison['period']}", ""]
            table = [[_md_code(a["arm"]), f"{a['share']}%", show(a["actual"], comparison["unit"]),
                      _share_of(a), _ci(a), _p(a["p_value"]) if index else "–"]
                     for index, a in enumerate(comparison["arms"])]
            lines += _md_table(["Arm", "Share", "Actual", "Proportion", "95% CI", "p-value"], table,
                               {1, 2, 3})
            lines.append("")
    lines += ["## Inputs", ""]
    inputs = [[_md_code(i["file"]), f"{i['rows']:,}", f"{i['rejected']:,}"] for i in report["inputs"]]
    lines += _md_table(["File", "Rows", "Rejected"], inputs, {1, 2})
    problems = [p for i in report["inputs"] for p in i["problems"][:50]]
    if problems:
        lines += ["", "```text", *problems, "```"]
    return "\n".join(lines) + "\n"


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS: Final[tuple[str, ...]] = (
    "section", "kpi", "metric", "period", "start", "end", "arm", "actual", "target", "threshold", "status",
    "numerator", "denominator", "successes", "trials", "ci_low", "ci_high", "p_value", "detail")


def render_csv(report: Mapping[str, Any]) -> str:
    """One row per measurement (``result``), trend point (``trend``) and experiment arm (``experiment``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for kpi in report["kpis"]:
        common = {"kpi": kpi["id"], "metric": kpi["metric"], "target": kpi["target"]}
        for result in kpi["results"]:
            writer.writerow({**common, "section": "result", **{k: result[k] for k in (
                "period", "start", "end", "actual", "threshold", "status", "numerator", "denominator",
                "successes", "trials", "detail")}})
        for point in kpi["trend"]:
            writer.writerow({**common, "section": "trend", **{k: point[k] for k in (
                "period", "start", "end", "actual", "detail")}})
    for experiment in report["experiments"]:
        for comparison in experiment["comparisons"]:
            for arm in comparison["arms"]:
                values = {k: arm[k] for k in ("arm", "actual", "numerator", "denominator", "successes",
                                              "trials", "ci_low", "ci_high", "p_value", "detail")}
                writer.writerow({"section": "experiment", "kpi": comparison["kpi"],
                                 "metric": comparison["metric"], "period": comparison["period"],
                                 "start": comparison["start"], "end": comparison["end"], **values})
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# HTML

_KPI_CSS = """
.met { color: #276749; } .missed { color: #c53030; font-weight: 700; } .no_data { color: var(--muted); }
@media (prefers-color-scheme: dark) { .met { color: #68d391; } .missed { color: #fc8181; } }
.target-mark { stroke: #c53030; stroke-width: 2; }
.trend-line { fill: none; stroke: var(--bar); stroke-width: 2; }
.trend-dot { fill: var(--bar); } .target-line { stroke: #c53030; stroke-dasharray: 4 3; stroke-width: 1.5; }
.axis { stroke: var(--rule); } .heat { fill: #c05621; } .cell-text { font-size: 11px; }
.small { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 1rem; }
.small figure { border: 1px solid var(--rule); border-radius: .4rem; padding: .5rem; }
figcaption { font-weight: 600; font-size: .9rem; }
"""


def _fraction(value: str | None) -> float | None:
    return float(value) if value is not None else None


def _recovery_chart(kpis: Sequence[Mapping[str, Any]]) -> str:
    """Bars for each recovery-rate KPI's measurements, with the target as a red tick on each bar's scale."""
    rows: list[tuple[str, str, float | None, float | None]] = []
    for kpi in kpis:
        for result in kpi["results"]:
            rows.append((kpi["id"], result["period"], _fraction(result["actual"]),
                         _fraction(result["threshold"])))
    top = max([v for _, _, v, _ in rows if v is not None] + [t for _, _, _, t in rows if t is not None]
              + [0.01])
    label_width, bar_width, row_height = 230, 380, 22
    width, height = label_width + bar_width + 110, row_height * len(rows) + 8
    desc = "; ".join(f"{k} {p}: {('n/a' if v is None else f'{v:.1%}')}, target "
                     f"{('n/a' if t is None else f'{t:.1%}')}" for k, p, v, t in rows)
    parts = [_svg_open("recovery", "Recovery rate by bucket against target", desc, width, height)]
    for index, (kpi_id, period, value, threshold) in enumerate(rows):
        y = 4 + index * row_height
        length = round(bar_width * (value or 0) / top, 1)
        parts.append(f'<g><title>{_e(kpi_id)} {_e(period)}</title>'
                     f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">'
                     f"{_e(kpi_id)} {_e(period)}</text>"
                     f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{length}" '
                     f'height="{row_height - 6}"/>'
                     f'<text x="{label_width + length + 6}" y="{y + 15}">'
                     f'{"n/a" if value is None else f"{value:.1%}"}</text>')
        if threshold is not None:
            x = round(label_width + bar_width * threshold / top, 1)
            parts.append(f'<line class="target-mark" x1="{x}" x2="{x}" y1="{y + 1}" '
                         f'y2="{y + row_height - 1}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _heat_map(matrix: Mapping[str, Any]) -> str:
    """The roll-rate matrix: one cell per (from, to) pair, darker for a larger share of the row's balance."""
    columns, buckets = matrix["columns"], matrix["buckets"]
    cell_w, cell_h, left, top = 74, 28, 80, 44
    width, height = left + cell_w * len(columns) + 8, top + cell_h * len(buckets) + 8
    desc = "; ".join(f"from {b}: " + ", ".join(f"{c} {Decimal(s) * 100:.1f}%"
                                               for c, s in zip(columns, row, strict=True) if s is not None)
                     for b, row in zip(buckets, matrix["shares"], strict=True))
    parts = [_svg_open("rollmatrix", f"Roll-rate matrix from {matrix['from']} to {matrix['to']}", desc, width,
                       height),
             f'<text x="{left}" y="12">to →</text><text x="4" y="{top - 6}">from ↓</text>']
    for c, column in enumerate(columns):
        parts.append(f'<text x="{left + c * cell_w + cell_w / 2}" y="{top - 6}" text-anchor="middle">'
                     f"{_e(column)}</text>")
    for r, (bucket, shares) in enumerate(zip(buckets, matrix["shares"], strict=True)):
        y = top + r * cell_h
        parts.append(f'<text x="{left - 6}" y="{y + cell_h / 2 + 4}" text-anchor="end">{_e(bucket)}</text>')
        for c, share in enumerate(shares):
            x = left + c * cell_w
            opacity = 0.0 if share is None else round(0.08 + 0.92 * float(share), 3)
            label = "–" if share is None else f"{Decimal(share) * 100:.1f}%"
            parts.append(f'<g><title>from {_e(bucket)} to {_e(columns[c])}: {label}</title>'
                         f'<rect class="heat" x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" '
                         f'height="{cell_h - 2}" '
                         f'fill-opacity="{opacity}"/><rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" '
                         f'height="{cell_h - 2}" fill="none" class="axis" stroke="currentColor"/>'
                         f'<text class="cell-text" x="{x + cell_w / 2}" y="{y + cell_h / 2 + 4}" '
                         f'text-anchor="middle">{label}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _trend_chart(index: int, kpi: Mapping[str, Any]) -> str:
    """The KPI over the trend periods and the report's measurements, with its target as a dashed line."""
    points = [(t["period"], _fraction(t["actual"])) for t in kpi["trend"]] + \
        [(r["period"], _fraction(r["actual"])) for r in kpi["results"]]
    thresholds = [_fraction(r["threshold"]) for r in kpi["results"]]
    known = [v for _, v in points if v is not None] + [t for t in thresholds if t is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    if high == low:
        low, high = low - 0.5 * abs(low or 1), high + 0.5 * abs(high or 1)
    width, height, left, right, top, bottom = 300, 150, 62, 10, 14, 30
    span_x = (width - left - right) / max(1, len(points) - 1)

    def y_of(value: float) -> float:
        return round(top + (height - top - bottom) * (1 - (value - low) / (high - low)), 1)

    unit = kpi["unit"]
    desc = "; ".join(f"{p}: {show(None if v is None else str(v), unit)}" for p, v in points)
    parts = [_svg_open(f"trend{index}", f"{kpi['id']}: trend", desc, width, height),
             f'<line class="axis" x1="{left}" x2="{width - right}" y1="{height - bottom}" '
             f'y2="{height - bottom}"/>',
             f'<text class="cell-text" x="{left - 6}" y="{y_of(high) + 4}" text-anchor="end">'
             f"{_e(show(str(high), unit))}</text>"
             f'<text class="cell-text" x="{left - 6}" y="{y_of(low) + 4}" text-anchor="end">'
             f"{_e(show(str(low), unit))}</text>"]
    threshold = thresholds[-1] if thresholds else None
    if threshold is not None:
        parts.append(f'<line class="target-line" x1="{left}" x2="{width - right}" y1="{y_of(threshold)}" '
                     f'y2="{y_of(threshold)}"><title>target {_e(kpi["target"])}</title></line>')
    segments: list[list[tuple[float, float]]] = [[]]
    for i, (_, value) in enumerate(points):
        if value is None:
            segments.append([])
            continue
        segments[-1].append((round(left + i * span_x, 1), y_of(value)))
    for segment in segments:
        if len(segment) > 1:
            parts.append('<polyline class="trend-line" points="'
                         + " ".join(f"{x},{y}" for x, y in segment) + '"/>')
    for i, (period, value) in enumerate(points):
        x = round(left + i * span_x, 1)
        if value is not None:
            parts.append(f'<circle class="trend-dot" cx="{x}" cy="{y_of(value)}" r="3">'
                         f"<title>{_e(period)}: {_e(show(str(value), unit))}</title></circle>")
        if i in (0, len(points) - 1):
            anchor = "start" if i == 0 else "end"
            parts.append(f'<text x="{x}" y="{height - 10}" text-anchor="{anchor}">{_e(period)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_rows(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int], caption: str) -> str:
    """A table; a cell that already is markup (``<th …>``, ``<td …>``) is kept as it is."""
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell if cell.startswith(("<th", "<td")) else
                                    f'<td{num if i in numeric else ""}>{_e(cell)}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def render_html(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    body = ["<h1>KPI report</h1>", f'<p class="lead">{_e(_lead(report))}</p>',
            '<ul class="cards" aria-label="Key numbers">'
            f"<li><strong>{summary['kpis']}</strong> KPIs</li>"
            f'<li><strong class="met">{summary["met"]}</strong> met</li>'
            f'<li><strong class="missed">{summary["missed"]}</strong> missed</li>'
            f'<li><strong class="no_data">{summary["no_data"]}</strong> without data</li></ul>']
    rows = []
    for kpi in report["kpis"]:
        for index, result in enumerate(kpi["results"]):
            status = result["status"]
            rows.append([f'<th scope="row"><code>{_e(kpi["id"])}</code></th>' if index == 0 else "<td></td>",
                         result["period"], show(result["actual"], kpi["unit"]), _target(kpi, result),
                         f'<td class="{status}">{_e(_STATUS_TEXT[status])}</td>',
                         _trend_text(kpi) if index == 0 else "", result["detail"] or ""])
    body.append('<section aria-labelledby="targets-h"><h2 id="targets-h">Targets</h2>')
    if rows:
        body.append(_html_rows(["KPI", "Period", "Actual", "Target", "Status", "Previous 4 periods", "Note"],
                               rows, {2}, "Every KPI target and its measurements"))
    else:
        body.append("<p>The policy has no KPIs.</p>")
    body.append("</section>")
    recovery = [k for k in report["kpis"] if k["metric"] == "recovery_rate"]
    if recovery:
        body.append('<section aria-labelledby="recovery-h"><h2 id="recovery-h">Recovery rate by bucket</h2>'
                    f"<figure>{_recovery_chart(recovery)}<figcaption>Bars: recovery rate; red ticks: target."
                    "</figcaption></figure></section>")
    matrix = report["roll_matrix"]
    if matrix is not None:
        body.append('<section aria-labelledby="roll-h"><h2 id="roll-h">Roll rates</h2>'
                    f"<p>Share of each bucket's opening balance on {_e(matrix['from'])} by where it stood on "
                    f"{_e(matrix['to'])}.</p><figure>{_heat_map(matrix)}</figure>"
                    "<details><summary>Roll rates as a table</summary>"
                    + _html_rows(["From", "Balance", *matrix["columns"]], _matrix_rows(matrix),
                                 set(range(1, len(matrix["columns"]) + 2)), "Roll-rate matrix")
                    + "</details></section>")
    if report["kpis"]:
        body.append('<section aria-labelledby="trend-h"><h2 id="trend-h">Trends</h2><div class="small">')
        for index, kpi in enumerate(report["kpis"]):
            body.append(f"<figure><figcaption><code>{_e(kpi['id'])}</code> target {_e(kpi['target'])} per "
                        f"{_e(kpi['period_kind'])}</figcaption>{_trend_chart(index, kpi)}</figure>")
        body.append("</div></section>")
    for experiment in report["experiments"]:
        anchor = f"exp-{_e(experiment['id'])}-h"
        body.append(f'<section aria-labelledby="{anchor}"><h2 id="{anchor}">'
                    f"Experiment <code>{_e(experiment['id'])}</code></h2>")
        if experiment["description"]:
            body.append(f"<p>{_e(experiment['description'])}</p>")
        for comparison in experiment["comparisons"]:
            table = [[f'<th scope="row"><code>{_e(a["arm"])}</code></th>', f"{a['share']}%",
                      show(a["actual"], comparison["unit"]), _share_of(a), _ci(a),
                      _p(a["p_value"]) if index else "–"] for index, a in enumerate(comparison["arms"])]
            body.append(_html_rows(["Arm", "Share", "Actual", "Proportion", "95% CI", "p-value"], table,
                                   {1, 2, 3}, f"{comparison['kpi']}, {comparison['period']}"))
        body.append("</section>")
    body.append('<section aria-labelledby="inputs-h"><h2 id="inputs-h">Inputs</h2>'
                + _html_rows(["File", "Rows", "Rejected"],
                             [[i["file"], f"{i['rows']:,}", f"{i['rejected']:,}"] for i in report["inputs"]],
                             {1, 2}, "Outcome files"))
    problems = [p for i in report["inputs"] for p in i["problems"][:50]]
    if problems:
        body.append('<h3>Rejected rows</h3><ul class="problems">'
                    + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>")
    body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>collectrules KPI report, {_e(report['policy']['name'])}, "
            f"{_e(report['period']['period'])}</title>\n<style>{_CSS}{_KPI_CSS}</style>\n</head>\n"
            "<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


_RENDERERS: Final[dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "text": render_text, "md": render_markdown, "json": render_json, "csv": render_csv, "html": render_html,
}


def render_kpi_report(report: Mapping[str, Any], fmt: str) -> str:
    """Render a report built by :func:`build_kpi_report` in one of :data:`FORMATS`."""
    return _RENDERERS[fmt](report)

