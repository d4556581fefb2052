"""Benchmarks of the evaluation engine on the reference policy (``bench/reference-policy.yaml``).

Measures, each in a fresh subprocess so that every peak memory figure (``ru_maxrss``) is its own:

* accounts per second of the rows backend, the frame backend, the hand-written plain-Python function
  (``handwritten_python.py``) and the hand-written Polars expressions (``handwritten_polars.py``), with and
  without contact history, at every size asked for, with the ratio engine / hand-written; the four must
  give the same decisions (compared by digest) or the run says so;
* the phases: reading the Parquet files, deciding, and for the frame backend turning its frame into
  ``Decision`` objects; and ``collectrules evaluate`` from CSV to JSON Lines, end to end, with both engines;
* the latency of one ``Program.evaluate`` for an account with 50 history events (p50, p99), and how it
  grows with the number of events; how the rows backend's cost grows with events per account;
* the wall time of ``collectrules --help`` and ``collectrules validate`` on the reference policy.

Portfolios come from ``bench/generate.py`` (written on first use into ``build/bench/``). Every timed run is
preceded by one untimed run on the first 1,000 accounts, so one-time costs (imports, holiday tables) are
not counted as throughput, and up to 10^5 accounts the shortest of three timed runs is kept, which
filters out much of what other processes on the machine do. Results go to ``build/bench/results.json``
and ``build/bench/results.md``; ``--record`` also writes them into ``bench/RESULTS.md`` (between its
markers) with ``bench/scaling.svg``.

    python bench/run.py                        # 10^4 and 10^5 accounts
    python bench/run.py --sizes 1000000        # 10^6
    python bench/run.py --sizes 10000 --quick  # only the throughput table
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402  (the benchmark's own modules live beside this file)

ROOT = BENCH.parent
OUT = ROOT / "build" / "bench"
POLICY = BENCH / "reference-policy.yaml"
RESULTS = BENCH / "RESULTS.md"
PLOT = BENCH / "scaling.svg"
AS_OF = generate.AS_OF
DEFAULT_SIZES = (10_000, 100_000)
WARM_UP = 1_000
#: each deciding run is timed this many times, the shortest kept, up to this many accounts (once above)
REPEATS = 3
REPEAT_UP_TO = 100_000
IMPLEMENTATIONS = ("rows", "python", "frame", "polars")
LABELS = {"rows": "rows backend", "python": "hand-written Python", "frame": "frame backend",
          "polars": "hand-written Polars"}
#: events per account for the history scaling table (at SCALING_ACCOUNTS accounts)
EVENT_COUNTS = (0, 5, 10, 20, 40)
SCALING_ACCOUNTS = 10_000
#: history events of the single account whose latency is measured, and the other counts tried
LATENCY_EVENTS = 50
LATENCY_SERIES = (0, 10, 50, 100, 200, 400)
LATENCY_RUNS = 3_000
#: sizes up to which `collectrules evaluate` is also timed end to end, with both engines
CLI_MAX_SIZE = 100_000
ENGINE_COLOUR, HAND_COLOUR, REFERENCE_COLOUR = "#1f6feb", "#d97706", "#888888"
MARK_BEGIN = "<!-- results:begin -->"
MARK_END = "<!-- results:end -->"


# ---------------------------------------------------------------------------------------------------------
# measurements, each run in its own process (`run.py --worker ...`)


def _canonical(outcomes: Iterable[Any]) -> str:
    """A digest of decisions as ``handwritten_python.Outcome`` tuples (instants as ISO text, in UTC)."""
    digest = hashlib.sha256()
    for outcome in outcomes:
        blocked = [[c, t, list(r), n.astimezone(dt.UTC).isoformat() if n else None]
                   for c, t, r, n in outcome.blocked]
        digest.update(json.dumps([outcome.account_id, outcome.segment, outcome.ladder, outcome.stage,
                                  [list(d) for d in outcome.due], blocked]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _drain(decisions: Iterable[Any]) -> None:
    """Consume decisions one by one, keeping none, as ``collectrules evaluate`` does when it writes them."""
    for _ in decisions:
        pass


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _best(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The shortest of ``repeats`` timed runs of ``action`` (the one least disturbed by anything else the
    machine does), with the last run's result."""
    best, result = _timed(action)
    for _ in range(repeats - 1):
        seconds, result = _timed(action)
        best = min(best, seconds)
    return best, result


def _program() -> Any:
    from collectrules.engine.program import compile_policy
    from collectrules.policy.check import load_policy

    return compile_policy(load_policy(POLICY))


def _measure_python(impl: str, files: dict[str, Path], history: bool, repeats: int) -> dict[str, Any]:
    """Rows backend or hand-written Python: the same objects, read by the engine's reader."""
    import handwritten_python as hand

    from collectrules.engine.portfolio import Portfolio, evaluate_portfolio, load_portfolio

    program = _program()
    load, portfolio = _timed(lambda: load_portfolio(program, files["accounts.parquet"],
                                                    files["history.parquet"] if history else None,
                                                    files["holds.parquet"]))
    first = {a.account_id for a in portfolio.accounts[:WARM_UP]}
    warm = Portfolio(portfolio.accounts[:WARM_UP], [e for e in portfolio.history if e.account_id in first],
                     portfolio.holds, [])
    if impl == "rows":
        _drain(evaluate_portfolio(program, warm, AS_OF))
        decide, _ = _best(lambda: _drain(evaluate_portfolio(program, portfolio, AS_OF)), repeats)
        digest = _canonical(hand.engine_outcome(d) for d in evaluate_portfolio(program, portfolio, AS_OF))
    else:
        hand.decide_portfolio(warm.accounts, warm.history, warm.holds, AS_OF)
        decide, outcomes = _best(lambda: hand.decide_portfolio(portfolio.accounts, portfolio.history,
                                                               portfolio.holds, AS_OF), repeats)
        digest = _canonical(outcomes)
    return {"load_s": load, "decide_s": decide, "digest": digest}


def _measure_frames(impl: str, files: dict[str, Path], history: bool, repeats: int) -> dict[str, Any]:
    """Frame backend or hand-written Polars, each reading the Parquet files its own way."""
    import handwritten_polars as hand_polars
    import handwritten_python as hand
    import polars as pl

    if impl == "frame":
        from collectrules.engine.frame_io import load_frames
        from collectrules.engine.frame_program import FrameProgram

        program = _program()
        frames = FrameProgram(program)
        load, portfolio = _timed(lambda: load_frames(program, files["accounts.parquet"],
                                                     files["history.parquet"] if history else None,
                                                     files["holds.parquet"]))
        accounts, events, holds = portfolio.accounts, portfolio.history, portfolio.holds
        first = accounts["account_id"].head(WARM_UP).implode()
        warm_events = events.filter(pl.col("account_id").is_in(first)) if events is not None else None
        frames.evaluate_frame(accounts.head(WARM_UP), warm_events, holds, None, AS_OF)
        decide, frame = _best(lambda: frames.evaluate_frame(accounts, events, holds, None, AS_OF), repeats)
        convert, _ = _best(lambda: _drain(frames.to_decisions(frame)), repeats)
        return {"load_s": load, "decide_s": decide, "objects_s": convert,
                "digest": _canonical(hand.engine_outcome(d) for d in frames.to_decisions(frame))}
    load, (accounts, events, holds) = _timed(lambda: hand_polars.read_portfolio(
        str(files["accounts.parquet"]), str(files["history.parquet"]), str(files["holds.parquet"])))
    if not history:
        events = events.head(0)
    warm_events = events.filter(pl.col("account_id").is_in(accounts["account_id"].head(WARM_UP).implode()))
    hand_polars.decide_frames(accounts.head(WARM_UP), warm_events, holds, AS_OF)
    decide, frame = _best(lambda: hand_polars.decide_frames(accounts, events, holds, AS_OF), repeats)
    return {"load_s": load, "decide_s": decide, "digest": _canonical(hand_polars.outcomes(frame))}


def _latency(events_counts: Sequence[int]) -> dict[str, Any]:
    """Percentiles of one ``Program.evaluate``, by history size. The account entered its calling stage
    today, so its call and its text are due whatever its history, and every restriction on them reads
    the whole history (the 7-in-7 limit, the cool-down after a conversation, the gap between texts)."""
    import random

    from collectrules.engine.account import ContactEvent

    program = _program()
    account = program.account({
        "account_id": "A1", "person_id": "P1", "debt_id": "D1", "first_name": "Maria", "product": "card",
        "status": "active", "dpd": "45", "balance": "3200.00", "broken_promises": "0",
        "last_payment_date": "2026-09-28", "timezone": "America/Chicago", "phone": "+15550000001",
        "email": "customer1@example.com", "address": "1 Example Street, Springfield", "stage": "calls",
        "stage_entered": AS_OF.date().isoformat()})
    outcomes = ("no_answer", "voicemail", "busy", "conversation", "delivered", "opened")
    series = {}
    for count in events_counts:
        rng = random.Random(count)
        # from 1 to 14 days back: before the stage was entered, within the caps' and cool-downs' reach
        history = [ContactEvent("A1", rng.choice(("phone", "phone", "sms", "email")), rng.choice(outcomes),
                                AS_OF - dt.timedelta(seconds=rng.randint(86_400, 14 * 86_400)),
                                person_id="P1", debt_id="D1", contact="+15550000001") for _ in range(count)]
        for _ in range(200):
            program.evaluate(account, history, AS_OF)
        times = []
        for _ in range(LATENCY_RUNS):
            start = time.perf_counter()
            program.evaluate(account, history, AS_OF)
            times.append(time.perf_counter() - start)
        times.sort()
        series[str(count)] = {"p50_us": times[len(times) // 2] * 1e6,
                              "p99_us": times[int(len(times) * 0.99)] * 1e6, "max_us": times[-1] * 1e6}
    return series


def worker(kind: str, size: int, history: bool, events: int, repeats: int) -> dict[str, Any]:
    files = generate.paths(size, OUT, events=events)
    if kind in ("rows", "python"):
        result = _measure_python(kind, files, history, repeats)
    elif kind in ("frame", "polars"):
        result = _measure_frames(kind, files, history, repeats)
    elif kind == "latency":
        result = {"latency": _latency(LATENCY_SERIES)}
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    result["peak_mb"] = _peak_mb()
    # other processes on the machine slow a measurement down; the load average says whether there were any
    result["load"] = os.getloadavg()[0]
    return result


# ---------------------------------------------------------------------------------------------------------
# the parent: runs every measurement in a fresh process


def _run_worker(kind: str, size: int = 0, history: bool = True,
                events: int = generate.EVENTS_PER_ACCOUNT) -> dict[str, Any]:
    repeats = REPEATS if size <= REPEAT_UP_TO else 1
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--size", str(size),
               "--events", str(events), "--repeats", str(repeats), "--history" if history else "--no-history"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip().splitlines() or ["no output"])
        return {"error": lines[-1][:300]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _timed_command(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall time of ``command`` over ``runs`` runs, and the largest peak memory (MB) of one run."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        times.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return statistics.median(times), max(peaks)


def _cli() -> Path:
    return Path(sys.executable).parent / "collectrules"


def machine() -> dict[str, Any]:
    import polars

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": memory, "python": platform.python_version(),
            "polars": polars.__version__, "platform": platform.platform(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")}


def run(sizes: Sequence[int], quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "as_of": AS_OF.isoformat(), "sizes": list(sizes),
                               "throughput": [], "cli_evaluate": [], "events_scaling": [], "latency": {},
                               "cli": {}, "load": [os.getloadavg()[0]]}
    for size in sizes:
        log(f"portfolio of {size:,} accounts")
        generate.ensure_portfolio(size, OUT)
        for history in (True, False):
            row: dict[str, Any] = {"accounts": size, "history": history}
            for impl in IMPLEMENTATIONS:
                log(f"  {LABELS[impl]}, {'with' if history else 'without'} history")
                row[impl] = _run_worker(impl, size, history)
            results["throughput"].append(row)
        if not quick and size <= CLI_MAX_SIZE:
            results["cli_evaluate"].append(_cli_evaluate(size, log))
    if quick:
        results["load"].append(os.getloadavg()[0])
        return results
    log(f"history scaling at {SCALING_ACCOUNTS:,} accounts")
    for events in EVENT_COUNTS:
        generate.ensure_portfolio(SCALING_ACCOUNTS, OUT, events=events)
        row = {"events": events}
        for impl in ("rows", "python"):
            row[impl] = _run_worker(impl, SCALING_ACCOUNTS, True, events)
        results["events_scaling"].append(row)
    log("single-account latency")
    measured = _run_worker("latency")
    results["latency"] = measured.get("latency", {})
    results["latency_load"] = measured.get("load")
    log("command line")
    cli = str(_cli())
    results["cli"]["help_s"], _ = _timed_command([cli, "--help"], 7)
    results["cli"]["validate_s"], _ = _timed_command([cli, "validate", str(POLICY)], 7)
    results["load"].append(os.getloadavg()[0])
    return results


def _cli_evaluate(size: int, log: Callable[[str], None]) -> dict[str, Any]:
    files = generate.paths(size, OUT)
    row: dict[str, Any] = {"accounts": size}
    outputs = {}
    for engine in ("rows", "frame"):
        log(f"  collectrules evaluate --engine {engine}")
        output = OUT / f"decisions-{size}-{engine}.jsonl"
        command = [str(_cli()), "evaluate", str(POLICY), "--accounts", str(files["accounts.csv"]),
                   "--history", str(files["history.csv"]), "--holds", str(files["holds.csv"]),
                   "--as-of", AS_OF.isoformat(), "--engine", engine, "-o", str(output),
                   "--summary-output", os.devnull]
        try:
            seconds, peak = _timed_command(command, 1)
            row[engine] = {"seconds": seconds, "peak_mb": peak}
            outputs[engine] = hashlib.sha256(output.read_bytes()).hexdigest()
        except RuntimeError as exc:
            row[engine] = {"error": str(exc)}
    row["identical"] = len(outputs) == 2 and outputs["rows"] == outputs["frame"]
    return row


# ---------------------------------------------------------------------------------------------------------
# reporting


def _rate(size: int, seconds: float | None) -> str:
    return f"{size / seconds:,.0f}" if seconds else "–"


def _agreement(row: dict[str, Any]) -> str:
    digests = {impl: row[impl].get("digest") for impl in IMPLEMENTATIONS}
    if any(d is None for d in digests.values()):
        failed = [LABELS[i] for i, d in digests.items() if d is None]
        return "not compared (" + ", ".join(failed) + " failed)"
    if len(set(digests.values())) == 1:
        return "all four agree"
    return "DISAGREE: " + ", ".join(f"{LABELS[i]} {d[:8]}" for i, d in digests.items())


def _ratio(engine: dict[str, Any], hand: dict[str, Any]) -> str:
    if "decide_s" not in engine or "decide_s" not in hand:
        return "–"
    return f"{hand['decide_s'] / engine['decide_s']:.2f}"


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "### Machine",
        "",
        f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}",
        f"- Memory: {m['memory']}",
        f"- Python {m['python']}, Polars {m['polars']}",
        f"- {m['platform']}, measured {m['date']}",
        f"- Decisions at {results['as_of']}; sizes {', '.join(f'{s:,}' for s in results['sizes'])}",
        f"- Load average (1 min) when the run began and ended: "
        f"{' and '.join(f'{load:.2f}' for load in results['load'])}; each measurement's is in the phases "
        f"table (above {m['nproc']}, other processes were competing for the CPUs)",
        "",
        "### Throughput (accounts decided per second)",
        "",
        "Deciding only: the inputs are already in memory, each implementation in its own form. The rows "
        "backend's decisions are taken one by one and dropped, as `collectrules evaluate` writes them; the "
        "frame backend's whole frame and the hand-written functions' results are kept. Up to 10⁵ "
        "accounts, the shortest of three runs. "
        "Ratio = engine speed / hand-written speed (1.00: as fast as the hand-written code).",
        "",
        "| accounts | history | rows backend | hand-written Python | ratio | frame backend "
        "| hand-written Polars | ratio | decisions |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["throughput"]:
        size = row["accounts"]
        cells = [f"{size:,}", "yes" if row["history"] else "no"]
        for engine, hand in (("rows", "python"), ("frame", "polars")):
            cells += [_rate(size, row[engine].get("decide_s")) if "error" not in row[engine] else "failed",
                      _rate(size, row[hand].get("decide_s")) if "error" not in row[hand] else "failed",
                      _ratio(row[engine], row[hand])]
        cells.append(_agreement(row))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "### Phases and peak memory", "",
              "Seconds to read the Parquet files, to decide, and (frame backend) to turn the frame into "
              "`Decision` objects; peak resident memory of the process (MB); the load average when the "
              "measurement ended.", "",
              "| accounts | history | implementation | read s | decide s | to objects s | peak MB | load |",
              "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in results["throughput"]:
        for impl in IMPLEMENTATIONS:
            r = row[impl]
            head = f"| {row['accounts']:,} | {'yes' if row['history'] else 'no'} | {LABELS[impl]} |"
            if "error" in r:
                lines.append(f"{head} failed: {r['error']} | | | | |")
                continue
            objects = f"{r['objects_s']:.2f}" if "objects_s" in r else ""
            lines.append(f"{head} {r['load_s']:.2f} | {r['decide_s']:.2f} | {objects} "
                         f"| {r['peak_mb']:,.0f} | {r['load']:.1f} |")
    if results["cli_evaluate"]:
        lines += ["", "### `collectrules evaluate`, end to end", "",
                  "CSV in (accounts, history, holds), JSON Lines out; wall time and peak memory of the "
                  "command.", "",
                  "| accounts | rows: s | rows: accounts/s | rows: peak MB | frame: s | frame: accounts/s "
                  "| frame: peak MB | same output |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in results["cli_evaluate"]:
            cells = [f"{row['accounts']:,}"]
            for engine in ("rows", "frame"):
                r = row[engine]
                if "error" in r:
                    cells += ["failed", "", ""]
                else:
                    cells += [f"{r['seconds']:.2f}", _rate(row["accounts"], r["seconds"]),
                              f"{r['peak_mb']:,.0f}"]
            cells.append("yes" if row["identical"] else "no")
            lines.append("| " + " | ".join(cells) + " |")
    if results["latency"]:
        lat = results["latency"].get(str(LATENCY_EVENTS), {})
        lines += ["", "### One account", "",
                  f"`Program.evaluate` for one account in a calling stage with {LATENCY_EVENTS} history "
                  f"events, {LATENCY_RUNS:,} runs: **p50 {lat.get('p50_us', 0):.0f} µs, "
                  f"p99 {lat.get('p99_us', 0):.0f} µs** "
                  f"(load average {results.get('latency_load') or 0:.1f}).",
                  "", "| history events | p50 µs | p99 µs |", "| ---: | ---: | ---: |"]
        for count, values in results["latency"].items():
            lines.append(f"| {int(count):,} | {values['p50_us']:.0f} | {values['p99_us']:.0f} |")
    if results["cli"]:
        lines += ["", "### Command line", "",
                  f"- `collectrules --help`: {results['cli']['help_s'] * 1000:.0f} ms (median of 7)",
                  f"- `collectrules validate bench/reference-policy.yaml`: "
                  f"{results['cli']['validate_s'] * 1000:.0f} ms (median of 7)"]
    lines += _scaling_lines(results)
    return "\n".join(lines) + "\n"


def _scaling_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    sizes = [row for row in results["throughput"] if row["history"] and "decide_s" in row["rows"]]
    if len(sizes) > 1:
        lines += ["", "### Cost against the number of accounts", "",
                  "Rows backend with history: the deciding time per account as the portfolio grows.", "",
                  "| accounts | decide s | µs per account |", "| ---: | ---: | ---: |"]
        for row in sizes:
            lines.append(f"| {row['accounts']:,} | {row['rows']['decide_s']:.2f} | "
                         f"{row['rows']['decide_s'] / row['accounts'] * 1e6:.1f} |")
    if results["events_scaling"]:
        lines += ["", f"### Cost against history events per account ({SCALING_ACCOUNTS:,} accounts)", "",
                  "| events per account (about) | rows: µs per account "
                  "| hand-written Python: µs per account |",
                  "| ---: | ---: | ---: |"]
        for row in results["events_scaling"]:
            cells = [str(row["events"])]
            for impl in ("rows", "python"):
                r = row[impl]
                cells.append(f"{r['decide_s'] / SCALING_ACCOUNTS * 1e6:.1f}" if "decide_s" in r else "failed")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(results: dict[str, Any]) -> str | None:
    """An SVG with three panels: deciding time against accounts (log-log, with the line of proportional
    growth), µs per account against events per account, and one account's p50 latency against events."""
    accounts = [(row["accounts"], row["rows"]["decide_s"]) for row in results["throughput"]
                if row["history"] and "decide_s" in row["rows"]]
    accounts_hand = [(row["accounts"], row["python"]["decide_s"]) for row in results["throughput"]
                     if row["history"] and "decide_s" in row["python"]]
    events = [(row["events"], row["rows"]["decide_s"] / SCALING_ACCOUNTS * 1e6)
              for row in results["events_scaling"] if "decide_s" in row["rows"]]
    events_hand = [(row["events"], row["python"]["decide_s"] / SCALING_ACCOUNTS * 1e6)
                   for row in results["events_scaling"] if "decide_s" in row["python"]]
    latency = [(int(count), values["p50_us"]) for count, values in results["latency"].items()]
    panels = []
    if len(accounts) > 1:
        first_accounts, first_seconds = accounts[0]
        proportional = [(n, first_seconds * n / first_accounts) for n, _ in accounts]
        panels.append(("Deciding time vs accounts (log-log)", "accounts", "seconds", True,
                       [("rows backend", ENGINE_COLOUR, accounts),
                        ("hand-written Python", HAND_COLOUR, accounts_hand),
                        ("proportional to accounts", REFERENCE_COLOUR, proportional)]))
    if len(events) > 1:
        panels.append(("µs per account vs history events", "events per account", "µs per account", False,
                       [("rows backend", ENGINE_COLOUR, events),
                        ("hand-written Python", HAND_COLOUR, events_hand)]))
    if len(latency) > 1:
        panels.append(("One account: p50 latency vs history events", "history events", "µs", False,
                       [("Program.evaluate", ENGINE_COLOUR, latency)]))
    if not panels:
        return None
    width = 20 + 420 * len(panels)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="340" '
             f'viewBox="0 0 {width} 340" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="340" fill="white"/>']
    for index, (title, x_label, y_label, log, series) in enumerate(panels):
        parts += _panel(20 + 420 * index, title, x_label, y_label, series, log)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _round_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``raw``: a readable grid step."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _panel(x0: int, title: str, x_label: str, y_label: str,
           series: list[tuple[str, str, list[tuple[float, float]]]], log: bool) -> list[str]:
    """One chart: axes, grid, a polyline per series; on log axes (base 10) when ``log``."""
    width, top, left_margin, bottom = 400, 40, 50, 280

    def scale(value: float) -> float:
        return math.log10(value) if log else value

    xs = [scale(x) for _, _, points in series for x, _ in points]
    ys = [scale(y) for _, _, points in series for _, y in points]
    x_low = min(xs) if log else 0.0
    y_low = math.floor(min(ys)) if log else 0.0
    x_high = max(xs) if max(xs) > x_low else x_low + 1
    step = _round_step(max(ys) * 1.05 / 4) if not log else 1.0
    y_high = math.ceil(max(ys)) if log else math.ceil(max(ys) * 1.05 / step) * step

    def sx(x: float) -> float:
        return x0 + left_margin + (scale(x) - x_low) / (x_high - x_low) * (width - left_margin - 20)

    def sy(y: float) -> float:
        return bottom - (scale(y) - y_low) / (y_high - y_low) * (bottom - top)

    left_edge, right_edge = x0 + left_margin, x0 + width - 20
    out = [f'<text x="{x0 + width / 2}" y="22" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<line x1="{left_edge}" y1="{bottom}" x2="{right_edge}" y2="{bottom}" stroke="black"/>',
           f'<line x1="{left_edge}" y1="{bottom}" x2="{left_edge}" y2="{top}" stroke="black"/>',
           f'<text x="{x0 + width / 2}" y="{bottom + 32}" text-anchor="middle">{x_label}</text>',
           f'<text x="{x0 + 12}" y="{(top + bottom) / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {x0 + 12} {(top + bottom) / 2})">{y_label}</text>']
    ticks = [10.0 ** power for power in range(int(y_low), int(y_high) + 1)] if log else \
        [step * i for i in range(round(y_high / step) + 1)]
    for value in ticks:
        label = f"{value:g}" if log else f"{value:.0f}"
        out.append(f'<text x="{left_edge - 4}" y="{sy(value) + 4:.1f}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{left_edge}" y1="{sy(value):.1f}" x2="{right_edge}" y2="{sy(value):.1f}" '
                   f'stroke="#ddd"/>')
    last_label = -1e9
    for x in sorted({x for _, _, points in series for x, _ in points}):
        if sx(x) - last_label < 24:
            continue  # too close to the previous label to be read
        last_label = sx(x)
        out.append(f'<text x="{sx(x):.1f}" y="{bottom + 16}" text-anchor="middle">{x:,.0f}</text>')
    for index, (name, colour, points) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5,4"' if colour == REFERENCE_COLOUR else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in points]
        out.append(f'<text x="{left_edge + 10}" y="{top + 14 + 16 * index}" fill="{colour}">{name}</text>')
    return out


def record(results: dict[str, Any], text: str) -> None:
    """Write the results between the markers of bench/RESULTS.md, and the plot beside it."""
    svg = plot(results)
    if svg is not None:
        PLOT.write_text(svg, encoding="utf-8")
    empty = f"# Benchmark results\n\n{MARK_BEGIN}\n{MARK_END}\n"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else empty
    if MARK_BEGIN not in current or MARK_END not in current:
        raise SystemExit(f"{RESULTS} has no {MARK_BEGIN} … {MARK_END} section to fill")
    before, rest = current.split(MARK_BEGIN, 1)
    after = rest.split(MARK_END, 1)[1]
    RESULTS.write_text(f"{before}{MARK_BEGIN}\n{text}{MARK_END}{after}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="numbers of accounts (default: 10000 100000)")
    parser.add_argument("--quick", action="store_true", help="only the throughput table")
    parser.add_argument("--record", action="store_true",
                        help="also write bench/RESULTS.md and bench/scaling.svg")
    parser.add_argument("--report-from", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: report (and with --record, record) an earlier run's results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=generate.EVENTS_PER_ACCOUNT, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--history", action=argparse.BooleanOptionalAction, default=True,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, args.history, args.events, args.repeats)))
        return 0
    if args.report_from is not None:
        results = json.loads(args.report_from.read_text(encoding="utf-8"))
    else:
        results = run(args.sizes, args.quick, lambda message: print(message, file=sys.stderr, flush=True))
    text = report(results)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (OUT / "results.md").write_text(text, encoding="utf-8")
    svg = plot(results)
    if svg is not None:
        (OUT / "scaling.svg").write_text(svg, encoding="utf-8")
    if args.record:
        record(results, text)
    print(text)
    disagree = any("DISAGREE" in _agreement(row) for row in results["throughput"])
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
