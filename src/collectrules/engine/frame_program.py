"""Whole-portfolio evaluation with Polars, deciding as :class:`~collectrules.engine.program.Program` does.

:class:`FrameProgram` compiles a policy for the frame backend (:mod:`collectrules.backends.frame`) and
:meth:`FrameProgram.evaluate_frame` runs the pipeline of the rows backend over every account at once:
derive (in dependency order) → scores → segment → ladder, cure and stage → cadence → contact restrictions
→ decision. Each step mirrors the rows code it replaces, rule for rule (see the docstrings of
:mod:`~collectrules.engine.ladder` and :mod:`~collectrules.engine.restrict`), including the order of errors,
the wording of reasons and the fixed point that finds next-allowed times.

How the per-account work is vectorised:

* **History.** Each account sees the union of the events of its account, person, debts and phone (as
  :class:`~collectrules.engine.portfolio.HistoryIndex` builds it), ordered as
  :class:`~collectrules.engine.account.AccountContext` orders them (by time, ties broken on the other
  columns); the union is one join per group. Caps, cool-downs, gaps, cadences and the history functions
  are joins and aggregations over it.
* **Local time.** Rows are partitioned by time zone (the number of distinct zones is small) and converted
  with Polars' time-zone support per partition. A local midnight that does not exist (a DST gap at
  midnight) resolves to the transition instant, found by bisection as in :mod:`~collectrules.engine.timecalc`.
  Before a run, Polars' time-zone data is compared with Python's :mod:`zoneinfo` for every zone of the
  portfolio over the period evaluated; a disagreement makes the run unsupported.
* **Windows.** The allowed instants of a window are computed per zone as UTC intervals (the preimages of the
  local windows under each zone's offsets, holidays removed) and intersected per zone list; the next allowed
  instant is an as-of join on these intervals. Membership at an instant is computed from the local wall
  clock directly, as the rows backend does.
* **Next allowed times.** The fixed point of :func:`~collectrules.engine.restrict.earliest_allowed` runs as
  rounds over the still-blocked actions, with the same limit of
  :data:`~collectrules.engine.restrict.MAX_NEXT_ALLOWED_STEPS` steps.

What is computed in Python: once per zone, its offset transitions over the period and the as-of date;
once per holiday calendar and year, its table of dates and names (the ``holidays`` package has no vectorised
form); once per policy, the static tables of actions and restrictions. One step is computed in Python for
each account because Polars has no expression for it: the SHA-256 hash that assigns an account to the arm
of a champion/challenger experiment (:meth:`~collectrules.policy.model.Experiment.arm_for`).

What is not covered: a plugin's function, a scorer other than the built-in ``scorecard`` and ``logistic``,
and fields named like standard columns with another type raise :class:`FrameUnsupported` when compiling;
data beyond the emulated ranges (see :mod:`collectrules.backends.frame`) and date-times in a named zone
other than UTC raise it when evaluating. The caller then uses the rows backend.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from ..backends import frame as F
from ..backends.frame import FrameCompiled, FrameUnsupported, Plan, compile_frame
from ..errors import Location
from ..lang import types as T
from ..policy import model as M
from . import timecalc
from .decision import ActionRef, BlockedAction, Decision, Finding, Reason
from .program import Program
from .restrict import MAX_NEXT_ALLOWED_STEPS

__all__ = ["FrameProgram", "FrameUnsupported", "decision_schema"]

UTC_US = pl.Datetime("us", "UTC")
I32, I64, I128 = pl.Int32, pl.Int64, pl.Int128
_DAY_US = 86_400_000_000
#: how far ahead a window's next opening is searched (timecalc.next_allowed's default)
_HORIZON_DAYS = 400

_STANDARD_KINDS: dict[str, tuple[str, str | None]] = {
    "account_id": ("string", None),
    "person_id": ("string", None),
    "debt_id": ("string", None),
    "phone": ("string", None),
    "email": ("string", None),
    "address": ("string", None),
    "stage": ("string", None),
    "stage_entered": ("date", None),
    "timezone": ("list", "string"),
    "opt_out_channels": ("list", "string"),
}

_REASON = pl.Struct(
    {
        "restriction": pl.String,
        "reason": pl.String,
        "policy": pl.String,
        "next_allowed": UTC_US,
        "source": pl.String,
    }
)
_ACTION_FIELDS = {
    "channel": pl.String,
    "template": pl.String,
    "priority": I64,
    "subject": pl.String,
    "stage": pl.String,
    "cadence": pl.String,
    "policy": pl.String,
}
_ACTION = pl.Struct(_ACTION_FIELDS)
_BLOCKED = pl.Struct({**_ACTION_FIELDS, "blocked_by": pl.List(_REASON), "next_allowed": UTC_US})
_FINDING = pl.Struct({"code": pl.String, "message": pl.String, "policy": pl.String})
_SCORE = pl.Struct({"name": pl.String, "value": pl.String})
_ARM = pl.Struct({"experiment": pl.String, "arm": pl.String})


def decision_schema() -> dict[str, pl.DataType]:
    """The columns of :meth:`FrameProgram.evaluate_frame`'s result, one row per account."""
    return {
        "account_id": pl.String(),
        "as_of": UTC_US,
        "segment": pl.String(),
        "segment_rule": pl.String(),
        "segment_policy": pl.String(),
        "ladder": pl.String(),
        "stage": pl.String(),
        "stage_policy": pl.String(),
        "stage_entered": pl.Date(),
        "day_in_stage": I64(),
        "status": pl.String(),
        "due": pl.List(_ACTION),
        "blocked": pl.List(_BLOCKED),
        "scores": pl.List(_SCORE),
        "warnings": pl.List(_FINDING),
        "errors": pl.List(_FINDING),
        "segments": pl.List(pl.String),
        "experiments": pl.List(_ARM),
    }


def _where(location: Location | None) -> str | None:
    return f"{location.file}:{location.line}" if location else None


def _or_else(value: pl.Expr, fallback: pl.Expr) -> pl.Expr:
    """Python's ``value or fallback`` for optional text: empty text counts as missing."""
    return pl.when(value.is_null() | (value == "")).then(fallback).otherwise(value)


def _collect(frame: pl.DataFrame | pl.LazyFrame | None) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


# -------------------------------------------------------------------------------------------------------
# time zones


def _offset_seconds(instant: pl.Expr, zone: str) -> pl.Expr:
    local = instant.dt.convert_time_zone(zone)
    return (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds().cast(I64)


_per_zone = F.per_zone


def _local_midnights(frame: pl.DataFrame, day_column: str, zone_column: str, out: str) -> pl.DataFrame:
    """``timecalc.start_of_local_day(day, zone)`` for every row, as a UTC instant."""

    def make(zone: str) -> dict[str, pl.Expr]:
        wall = pl.col(day_column).cast(pl.Datetime("us"))
        resolved = wall.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        return {out: resolved.dt.convert_time_zone("UTC")}

    frame = _per_zone(frame, zone_column, make)
    gaps = frame.filter(pl.col(day_column).is_not_null() & pl.col(out).is_null())
    if gaps.height == 0:
        return frame
    # midnight falls in a spring-forward gap: the day starts at the transition instant
    frame = frame.with_row_index("#mid")
    gaps = frame.filter(pl.col(day_column).is_not_null() & pl.col(out).is_null())
    parts = [_gap_transitions(part, day_column, zone or "UTC")
             for (zone,), part in gaps.partition_by(zone_column, as_dict=True).items()]
    fixed = pl.concat(parts, how="vertical")
    frame = frame.join(fixed.select("#mid", "#fix"), on="#mid", how="left")
    return frame.with_columns(pl.coalesce(out, "#fix").alias(out)).drop("#mid", "#fix")


def _gap_transitions(gaps: pl.DataFrame, day_column: str, zone: str) -> pl.DataFrame:
    """For wall times (local midnights) that fall in a gap: the transition instant ending the gap, ``#fix``.

    The bisection of timecalc._resolve_local: between the wall time read with the later offset and with the
    earlier one, to the second, for the first instant whose offset differs from the start's.
    """
    wall_us = pl.col(day_column).cast(pl.Datetime("us")).cast(I64)
    offset_before = _offset_seconds((wall_us - 36 * 3_600_000_000).cast(UTC_US), zone)
    offset_after = _offset_seconds((wall_us + 36 * 3_600_000_000).cast(UTC_US), zone)
    gaps = gaps.with_columns(
        (wall_us // 1_000_000 - pl.max_horizontal(offset_before, offset_after)).alias("#lo"),
        (wall_us // 1_000_000 - pl.min_horizontal(offset_before, offset_after)).alias("#hi"))
    gaps = gaps.with_columns(_offset_seconds((pl.col("#lo") * 1_000_000).cast(UTC_US), zone).alias("#o0"))
    low, high = pl.col("#lo"), pl.col("#hi")
    for _ in range(20):
        # one step per with_columns: the two bounds each read the other, so nesting would double each step
        middle = low + (high - low) // 2
        same = _offset_seconds((middle * 1_000_000).cast(UTC_US), zone) == pl.col("#o0")
        moving = (high - low) > 1
        gaps = gaps.with_columns(pl.when(moving & same).then(middle).otherwise(low).alias("#lo"),
                                 pl.when(moving & ~same).then(middle).otherwise(high).alias("#hi"))
    return gaps.with_columns((pl.col("#hi") * 1_000_000).cast(UTC_US).alias("#fix"))


def _local_columns(
    frame: pl.DataFrame, instant: str, zone_column: str, prefix: str, *, formatted: bool = False
) -> pl.DataFrame:
    """Local date, weekday (Mon = 0), microseconds of the day and, optionally, the _fmt_local text."""

    def make(zone: str) -> dict[str, pl.Expr]:
        local = pl.col(instant).dt.convert_time_zone(zone)
        columns = {
            f"{prefix}date": local.dt.date(),
            f"{prefix}wd": (local.dt.weekday() - 1).cast(I32),
            f"{prefix}us": (
                local.dt.hour().cast(I64) * 3_600_000_000
                + local.dt.minute().cast(I64) * 60_000_000
                + local.dt.second().cast(I64) * 1_000_000
                + local.dt.microsecond().cast(I64)
            ),
        }
        if formatted:
            columns[f"{prefix}text"] = local.dt.strftime("%a %Y-%m-%d %H:%M %Z")
        return columns

    return _per_zone(frame, zone_column, make)


def _local_date(frame: pl.DataFrame, instant: str, zone_column: str, out: str) -> pl.DataFrame:
    return _per_zone(
        frame, zone_column, lambda zone: {out: pl.col(instant).dt.convert_time_zone(zone).dt.date()}
    )


def _check_zone_data(zones: set[str], start: _dt.datetime, end: _dt.datetime) -> None:
    """Refuse when Polars' time-zone data and zoneinfo disagree on a zone over the period evaluated."""
    span_days = max(1, (end - start).days)
    step = _dt.timedelta(hours=6 if span_days <= 1200 else 24)
    probes = pl.datetime_range(start, end, step, time_zone="UTC", eager=True)
    python_probes = probes.to_list()
    for name in sorted(zones):
        try:
            offsets = pl.select(_offset_seconds(pl.lit(probes), name)).to_series().to_list()
        except pl.exceptions.PolarsError:
            raise FrameUnsupported(f"Polars does not know the time zone {name!r}") from None
        zone = ZoneInfo(name)
        expected = [int(t.astimezone(zone).utcoffset().total_seconds()) for t in python_probes]  # type: ignore[union-attr]
        if offsets != expected:
            raise FrameUnsupported(f"Polars' time-zone data differs from zoneinfo's for {name!r}")


# -------------------------------------------------------------------------------------------------------
# static tables


@dataclass(frozen=True)
class _ActionRow:
    key: int
    ladder: str
    stage_index: int
    order: int
    stage: M.Stage
    action: M.Action


@dataclass
class _Compiled:
    expression: M.Expression
    compiled: FrameCompiled


class FrameProgram:
    """A policy compiled for the frame backend.

    :raises FrameUnsupported: when the policy uses what the frame backend cannot compile identically (a
        plugin's function or scorer, a field named like a standard column but typed differently).
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        self.policy = program.policy
        self.registry = program.registry
        policy = self.policy
        self._counter = 0
        self._check_fields()
        self._derive = [(d, self._compile(d.expr)) for d in policy.derive]
        self._scores = [self._compile_score(spec) for spec in policy.scores]
        self._rules = [(rule, self._compile(rule.when)) for rule in policy.segments.rules]
        cure = policy.escalation.cure_when
        self._cure = self._compile(cure) if cure is not None else None
        self._enters = {
            ladder.id: [self._compile(stage.enter) for stage in ladder.stages]
            for ladder in policy.escalation.ladders
        }
        self._block_when = {
            r.id: self._compile(r.block_when)
            for r in policy.restrictions
            if r.kind == "expression" and r.block_when is not None
        }
        self._calendars = {
            r.calendar: timecalc.HolidayCalendar(r.calendar) for r in policy.restrictions if r.calendar
        }
        self._actions = self._action_rows()
        self._locations = self._location_index()
        # champion/challenger experiments: segment → (experiment, arm id → ladder id), as Program builds it
        self._experiments: tuple[Any, ...] = tuple(getattr(policy, "experiments", ()) or ())
        ladder_ids = {ladder.id for ladder in policy.escalation.ladders}
        self._overrides: dict[str, tuple[Any, dict[str, str]]] = {}
        for experiment in self._experiments:
            for arm in experiment.arms:
                for segment, ladder_id in arm.ladders.items():
                    if ladder_id in ladder_ids:
                        self._overrides.setdefault(segment, (experiment, {}))[1][arm.id] = ladder_id

    # ---- compiling -----------------------------------------------------------------------------------

    def _compile(self, expression: M.Expression) -> _Compiled:
        self._counter += 1
        plan = Plan(prefix=f"#x{self._counter}_")
        return _Compiled(expression, compile_frame(expression.typed, self.registry.functions, plan))

    def _check_fields(self) -> None:
        for name, spec in self.policy.fields.items():
            standard = _STANDARD_KINDS.get(name)
            if standard is None:
                continue
            kind = "string" if spec.type.kind in ("string", "enum", "timezone") else spec.type.kind
            item = None
            if spec.type.item is not None:
                item = (
                    "string" if spec.type.item.kind in ("string", "enum", "timezone") else spec.type.item.kind
                )
            if (kind, item) != standard:
                raise FrameUnsupported(
                    f"field {name!r} is typed {spec.type} but the standard column {name!r} holds another type"
                )

    def _compile_score(self, spec: M.ScoreSpec) -> tuple[M.ScoreSpec, str, Any]:
        from ..builtin import scorers

        scorer = self.registry.scorers[spec.plugin]
        by_path = {e.path: e for e in self.policy.expressions}
        base = ("scores", spec.name, "params")
        if scorer.prepare is scorers._prepare_scorecard:
            characteristics = []
            values: list[Decimal] = [scorers._dec(spec.params.get("base", 0))]
            for c_index, characteristic in enumerate(spec.params["characteristics"]):
                bins = []
                for b_index, bin_ in enumerate(characteristic["bins"]):
                    when = bin_.get("when")
                    condition = (
                        self._compile(by_path[(*base, "characteristics", c_index, "bins", b_index, "when")])
                        if when is not None
                        else None
                    )
                    points = scorers._dec(bin_["points"])
                    values.append(points)
                    bins.append((condition, points))
                characteristics.append(bins)
            _check_exact_sum(values)
            return spec, "scorecard", (values[0], characteristics)
        if scorer.prepare is scorers._prepare_logistic:
            terms = [
                (self._compile(by_path[(*base, "terms", index, "value")]), scorers._dec(term["coefficient"]))
                for index, term in enumerate(spec.params["terms"])
            ]
            return spec, "logistic", (scorers._dec(spec.params["intercept"]), terms)
        raise FrameUnsupported(
            f"scorer {spec.plugin!r} (from {scorer.origin}) has only a Python implementation"
        )

    def _action_rows(self) -> list[_ActionRow]:
        rows = []
        for ladder in self.policy.escalation.ladders:
            for stage_index, stage in enumerate(ladder.stages):
                for order, action in enumerate(sorted(stage.actions, key=lambda a: a.priority)):
                    rows.append(_ActionRow(len(rows), ladder.id, stage_index, order, stage, action))
        return rows

    def _location_index(self) -> dict[str, Location]:
        index: dict[str, Location] = {}
        locations: list[Location] = [self.policy.segments.location]
        locations += [r.location for r in self.policy.segments.rules]
        locations += [e.location for e in self.policy.expressions]
        locations += [s.location for s in self.policy.scores]
        locations += [r.location for r in self.policy.restrictions]
        for ladder in self.policy.escalation.ladders:
            for stage in ladder.stages:
                locations.append(stage.location)
                locations += [a.location for a in stage.actions]
        for location in locations:
            index.setdefault(f"{location.file}:{location.line}", location)
        return index

    # ---- public API ----------------------------------------------------------------------------------

    def evaluate_frame(
        self,
        accounts: pl.DataFrame | pl.LazyFrame,
        history: pl.DataFrame | pl.LazyFrame | None = None,
        holds: pl.DataFrame | pl.LazyFrame | None = None,
        promises: pl.DataFrame | pl.LazyFrame | None = None,
        as_of: _dt.datetime | None = None,
    ) -> pl.DataFrame:
        """Decide for every account at ``as_of``: one row per account, in input order (see decision_schema).

        The inputs are frames in the layout :mod:`~collectrules.engine.frame_io` produces (the standard
        column sets, fields in the frame representation or as text for decimals). Events later than
        ``as_of`` are ignored, as in the rows backend.
        """
        if as_of is None:
            as_of = _dt.datetime.now(_dt.UTC)
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            from ..errors import DataError

            raise DataError("the as-of time must carry a time zone (e.g. 2026-11-23T15:00:00Z)", code="CR607")
        return _Run(
            self,
            as_of.astimezone(_dt.UTC),
            _collect(accounts),
            _collect(history),
            _collect(holds),
            _collect(promises),
        ).run()

    def to_decisions(self, frame: pl.DataFrame) -> Iterator[Decision]:
        """The rows of an :meth:`evaluate_frame` result as :class:`Decision` objects, in order."""
        segments = self.policy.segments
        rules = {r.id: r for r in segments.rules}
        stages = {
            (ladder.id, stage.id): stage
            for ladder in self.policy.escalation.ladders
            for stage in ladder.stages
        }
        restrictions = {r.id: r for r in self.policy.restrictions}
        locations = self._locations
        for row in frame.iter_rows(named=True):
            decision = Decision(row["account_id"], row["as_of"])
            decision.segment = row["segment"]
            decision.segment_rule = row["segment_rule"]
            if row["segment_rule"] is not None:
                decision.segment_location = rules[row["segment_rule"]].location
            elif row["segment"] is not None:
                decision.segment_location = segments.location
            decision.segments = tuple(row["segments"] or ())
            decision.ladder = row["ladder"]
            decision.stage = row["stage"]
            if row["stage"] is not None:
                decision.stage_location = stages[(row["ladder"], row["stage"])].location
            decision.stage_entered = row["stage_entered"]
            decision.day_in_stage = row["day_in_stage"]
            decision.status = row["status"]
            for item in row["due"] or ():
                decision.due.append(_action_ref(item, locations))
            for item in row["blocked"] or ():
                reasons = tuple(
                    Reason(
                        r["restriction"],
                        r["reason"],
                        restrictions[r["restriction"]].location if r["restriction"] in restrictions else None,
                        r["next_allowed"],
                        r["source"],
                    )
                    for r in item["blocked_by"]
                )
                decision.blocked.append(
                    BlockedAction(_action_ref(item, locations), reasons, item["next_allowed"])
                )
            for score in row["scores"] or ():
                decision.scores[score["name"]] = (
                    Decimal(score["value"]) if score["value"] is not None else None
                )
            for error in row["errors"] or ():
                decision.errors.append(
                    Finding(error["code"], error["message"], locations.get(error["policy"]))
                )
            for arm in row["experiments"] or ():
                decision.experiment_arms[arm["experiment"]] = arm["arm"]
            yield decision


def _action_ref(item: dict[str, Any], locations: dict[str, Location]) -> ActionRef:
    return ActionRef(
        item["channel"],
        item["template"],
        item["priority"],
        item["subject"],
        item["stage"],
        item["cadence"],
        locations.get(item["policy"]),
    )


def _check_exact_sum(values: Sequence[Decimal]) -> None:
    """A scorecard adds constants; the frame backend needs every partial sum to be exact in 28 digits."""
    exponents = [int(v.as_tuple().exponent) for v in values]  # type: ignore[arg-type]
    lowest = min(exponents)
    total = sum(abs(v) for v in values)
    digits = len(str(int(total.scaleb(-lowest)))) if total else 1
    if digits > F.PREC or any(not v.is_finite() for v in values):
        raise FrameUnsupported("a scorecard whose sums need more than 28 digits")
    for value in values:
        F.decimal_parts(value)


# -------------------------------------------------------------------------------------------------------
# one run


class _Run:
    """The state of one ``evaluate_frame`` call."""

    def __init__(
        self,
        program: FrameProgram,
        as_of: _dt.datetime,
        accounts: pl.DataFrame | None,
        history: pl.DataFrame | None,
        holds: pl.DataFrame | None,
        promises: pl.DataFrame | None,
    ) -> None:
        if accounts is None:
            raise ValueError("evaluate_frame needs an accounts frame")
        self.fp = program
        self.policy = program.policy
        self.as_of = as_of
        self.raw_accounts = accounts
        self.raw_history = history
        self.raw_holds = holds
        self.raw_promises = promises
        self.error_columns: list[str] = []
        # per zone, and per (restriction, zone): the first and last day covered, and the table
        self._transitions: dict[str, tuple[_dt.date, _dt.date, pl.DataFrame]] = {}
        self._intervals: dict[tuple[int, str], tuple[_dt.date, _dt.date, pl.DataFrame]] = {}
        self._holiday_tables: dict[str, pl.DataFrame] = {}
        self._holiday_years: dict[str, set[int]] = {}

    # ---- inputs --------------------------------------------------------------------------------------

    def run(self) -> pl.DataFrame:
        acc = self._accounts(self.raw_accounts)
        if acc.height == 0:
            return pl.DataFrame(schema=decision_schema())
        self._check_zones(acc)
        self.events = self._events(self.raw_history, acc)
        self.holds = self._holds(self.raw_holds, acc)
        acc = self._context(acc)
        acc = self._derive(acc)
        acc = self._scores(acc)
        acc = self._segments(acc)
        acc = self._stages(acc)
        acc = self._promise_state(acc)
        acc = self._decide_stage(acc)
        acc = self._block_when(acc)
        self.acc = acc
        pairs = self._due_actions(acc)
        due, blocked = self._restrict(pairs)
        return self._assemble(acc, due, blocked)

    def _accounts(self, raw: pl.DataFrame) -> pl.DataFrame:
        columns = set(raw.columns)

        def text(name: str) -> pl.Expr:
            return pl.col(name).cast(pl.String) if name in columns else pl.lit(None, pl.String)

        def text_list(name: str) -> pl.Expr:
            return _text_list(raw, name)

        if "account_id" not in columns:
            raise ValueError("the accounts frame needs an 'account_id' column")
        frame = raw.with_row_index("#row").with_columns(
            text("account_id").alias("#id"),
            text("person_id").alias("#person_id"),
            text("debt_id").alias("#debt_id"),
            text("phone").alias("#phone"),
            text("email").alias("#email"),
            text("address").alias("#address"),
            text("stage").alias("#stage"),
            (
                pl.col("stage_entered").cast(pl.Date) if "stage_entered" in columns else pl.lit(None, pl.Date)
            ).alias("#entered"),
            text_list("timezone").alias("#zones"),
            text_list("opt_out_channels").alias("#optout"),
        )
        if frame["#id"].null_count():
            raise ValueError("every account needs an 'account_id'")
        frame = frame.with_columns(
            _or_else(pl.col("#person_id"), pl.col("#id")).alias("#person"),
            _or_else(pl.col("#debt_id"), pl.col("#id")).alias("#debt"),
            pl.col("#zones").list.join(";").alias("#zkey"),
            pl.col("#zones").list.first().fill_null("UTC").alias("#primary"),
            pl.lit(self.as_of, UTC_US).alias("#as_of"),
        )
        zones = set(frame["#primary"].unique().to_list())
        today = {zone: self.as_of.astimezone(ZoneInfo(zone)).date() for zone in zones}
        frame = frame.with_columns(
            pl.col("#primary")
            .replace_strict(list(today), list(today.values()), return_dtype=pl.Date)
            .alias("#today")
        )
        fields: dict[str, pl.Expr] = {}
        for name, spec in self.policy.fields.items():
            if name in raw.columns:
                value, bad = _to_frame(pl.col(name), raw.schema[name], spec.type)
                if bad is not None and raw.select(bad.fill_null(False).any()).item():
                    raise FrameUnsupported(
                        f"field {name!r} holds a decimal beyond what the frame backend emulates"
                    )
            else:
                value = F.literal_value(None, spec.type)
            if spec.default is not None:
                value = pl.coalesce(value, F.literal_value(spec.default, spec.type))
            fields[name] = value
        return frame.with_columns(**fields) if fields else frame

    def _check_zones(self, acc: pl.DataFrame) -> None:
        zones: set[str] = set()
        for zone_list in acc["#zones"].unique().to_list():
            zones.update(zone_list or ())
        zones.update(
            r.timezone for r in self.policy.restrictions if r.kind == "window" and r.timezone != "debtor"
        )
        zones.discard("UTC")
        for zone in zones:
            try:
                ZoneInfo(zone)
            except Exception:
                raise ValueError(f"unknown time zone {zone!r}") from None
        self.zone_names = zones
        start = self.as_of - _dt.timedelta(days=60)
        end = self.as_of + _dt.timedelta(days=_HORIZON_DAYS + 2)
        _check_zone_data(zones, start, end)

    def _events(self, raw: pl.DataFrame | None, acc: pl.DataFrame) -> pl.DataFrame:
        """The union of each account's events (HistoryIndex.for_account), at or before the as-of instant.

        ``#seq`` orders events as AccountContext does: by time, ties broken on the other columns.
        """
        schema = {
            "#row": pl.UInt32,
            "#seq": pl.UInt32,
            "e_at": UTC_US,
            "e_off": I32,
            "e_account": pl.String,
            "e_person_full": pl.String,
            "e_debt_full": pl.String,
            "e_debt_ids": pl.List(pl.String),
            "e_contact": pl.String,
            "channel": pl.String,
            "direction": pl.String,
            "outcome": pl.String,
            "consent": pl.Boolean,
            "template": pl.String,
            "subject": pl.String,
            "#own": pl.Boolean,
        }
        if raw is None or raw.height == 0:
            return pl.DataFrame(schema=schema)
        columns = set(raw.columns)

        def text(name: str, default: str | None = None) -> pl.Expr:
            if name not in columns:
                return pl.lit(default, pl.String)
            value = pl.col(name).cast(pl.String)
            return value.fill_null(default) if default is not None else value

        at, off = _instant_and_offset(raw, "at")
        debt_ids = _text_list(raw, "debt_ids")
        events = raw.select(
            at.alias("e_at"),
            off.alias("e_off"),
            text("account_id").alias("e_account"),
            text("person_id").alias("e_person_raw"),
            text("debt_id").alias("e_debt_raw"),
            text("contact").alias("e_contact"),
            text("channel"),
            text("direction", "outbound"),
            text("outcome"),
            (
                pl.col("consent").cast(pl.Boolean).fill_null(False) if "consent" in columns else pl.lit(False)
            ).alias("consent"),
            text("template"),
            text("subject", "debtor"),
            debt_ids.alias("e_debt_ids"),
        )
        # _complete_events: an event without person or debt takes its account's
        owners = acc.select(
            pl.col("#id").alias("e_account"),
            pl.col("#person").alias("o_person"),
            pl.col("#debt").alias("o_debt"),
        ).unique("e_account", keep="first")
        events = events.join(owners, on="e_account", how="left", maintain_order="left")
        incomplete = pl.col("o_person").is_not_null() & (
            pl.col("e_person_raw").is_null() | pl.col("e_debt_raw").is_null()
        )
        events = events.with_columns(
            pl.when(incomplete)
            .then(_or_else(pl.col("e_person_raw"), pl.col("o_person")))
            .otherwise(pl.col("e_person_raw"))
            .alias("e_person_full"),
            pl.when(incomplete)
            .then(_or_else(pl.col("e_debt_raw"), pl.col("o_debt")))
            .otherwise(pl.col("e_debt_raw"))
            .alias("e_debt_full"),
        )
        events = events.filter(pl.col("e_at") <= pl.lit(self.as_of, UTC_US))
        # account.py's _event_order: time, then every other column (missing text as "")
        order = [
            pl.col("e_at"),
            pl.col("e_account"),
            pl.col("channel"),
            pl.col("outcome"),
            pl.col("direction"),
            pl.col("e_person_full").fill_null(""),
            pl.col("e_debt_full").fill_null(""),
            pl.col("e_contact").fill_null(""),
            pl.col("consent"),
            pl.col("template").fill_null(""),
            pl.col("subject"),
            pl.col("e_debt_ids").list.eval(pl.concat_str(pl.lit("\x01"), pl.element())).list.join(""),
        ]
        events = events.sort(order, maintain_order=True).with_row_index("#seq")
        events = events.with_columns(
            _or_else(pl.col("e_person_full"), pl.col("e_account")).alias("#g_person"),
            _or_else(pl.col("e_debt_full"), pl.col("e_account")).alias("#g_debt"),
        )
        keys = acc.select("#row", "#id", "#person", "#debt", "#phone")
        debt_keys = (
            events.select("#seq", pl.concat_list(pl.col("#g_debt"), pl.col("e_debt_ids")).alias("#k"))
            .explode("#k")
            .unique()
        )
        groups = [
            events.select("#seq", "e_account")
            .join(keys, left_on="e_account", right_on="#id")
            .select("#seq", "#row"),
            events.select("#seq", "#g_person")
            .join(keys, left_on="#g_person", right_on="#person")
            .select("#seq", "#row"),
            debt_keys.join(keys, left_on="#k", right_on="#debt").select("#seq", "#row"),
            events.filter(~_missing(pl.col("e_contact")))
            .select("#seq", "e_contact")
            .join(keys.filter(~_missing(pl.col("#phone"))), left_on="e_contact", right_on="#phone")
            .select("#seq", "#row"),
        ]
        union = pl.concat(groups, how="vertical").unique()
        union = union.join(events, on="#seq").join(acc.select("#row", "#id"), on="#row")
        union = union.with_columns((pl.col("e_account") == pl.col("#id")).alias("#own"))
        return union.sort("#row", "#seq").select(list(schema))

    def _holds(self, raw: pl.DataFrame | None, acc: pl.DataFrame) -> pl.DataFrame:
        schema = {
            "#row": pl.UInt32,
            "#hold": pl.UInt32,
            "type": pl.String,
            "start": pl.Date,
            "end": pl.Date,
            "channels": pl.List(pl.String),
        }
        if raw is None or raw.height == 0:
            return pl.DataFrame(schema=schema)
        columns = set(raw.columns)
        channels = _text_list(raw, "channels")
        holds = raw.with_row_index("#hold").select(
            "#hold",
            pl.col("account_id").cast(pl.String).alias("#id"),
            pl.col("type").cast(pl.String),
            pl.col("start").cast(pl.Date),
            (pl.col("end").cast(pl.Date) if "end" in columns else pl.lit(None, pl.Date)).alias("end"),
            channels.alias("channels"),
        )
        joined = holds.join(acc.select("#row", "#id"), on="#id", how="inner")
        return joined.sort("#row", "#hold").select(list(schema))

    # ---- context columns for history functions -------------------------------------------------------

    def _all_needs(self) -> set[tuple[Any, ...]]:
        needs: set[tuple[Any, ...]] = set()
        for compiled in self._all_compiled():
            needs |= compiled.compiled.needs
        return needs

    def _all_compiled(self) -> list[_Compiled]:
        fp = self.fp
        out = [c for _, c in fp._derive] + [c for _, c in fp._rules] + list(fp._block_when.values())
        if fp._cure is not None:
            out.append(fp._cure)
        for enters in fp._enters.values():
            out += enters
        for _, kind, params in fp._scores:
            if kind == "scorecard":
                out += [condition for bins in params[1] for condition, _ in bins if condition is not None]
            else:
                out += [compiled for compiled, _ in params[1]]
        return out

    def _context(self, acc: pl.DataFrame) -> pl.DataFrame:
        needs = self._all_needs()
        own = self.events.filter(pl.col("#own") & (pl.col("direction") == "outbound"))
        columns: dict[str, pl.Expr] = {}
        for need in needs:
            if need[0] == "attempts":
                _, channel, seconds, unit = need
                name = f"#attempts:{channel}:{seconds}:{unit}"
                events = own if channel == "any" else own.filter(pl.col("channel") == channel)
                counted = self._count_at_as_of(events, acc, seconds, calendar=unit == "d")
                acc = acc.join(counted.rename({"#n": name}), on="#row", how="left")
                columns[name] = pl.col(name).fill_null(0)
            elif need[0] == "last":
                channel = need[1]
                events = own if channel == "any" else own.filter(pl.col("channel") == channel)
                last = events.group_by("#row").agg(
                    pl.struct(pl.col("e_at").alias("at"), pl.col("e_off").alias("off"))
                    .sort_by("#seq")
                    .last()
                    .alias(f"#last:{channel}")
                )
                acc = acc.join(last, on="#row", how="left")
            elif need[0] == "hold":
                hold_type = need[1]
                active = self.holds.join(acc.select("#row", "#today"), on="#row").filter(
                    (pl.col("type") == hold_type)
                    & (pl.col("start") <= pl.col("#today"))
                    & (pl.col("end").is_null() | (pl.col("#today") <= pl.col("end")))
                )
                flags = active.group_by("#row").agg(pl.lit(True).alias(f"#hold:{hold_type}"))
                acc = acc.join(flags, on="#row", how="left")
                columns[f"#hold:{hold_type}"] = pl.col(f"#hold:{hold_type}").fill_null(False)
        return acc.with_columns(**columns) if columns else acc

    def _count_at_as_of(
        self, events: pl.DataFrame, acc: pl.DataFrame, seconds: int, *, calendar: bool
    ) -> pl.DataFrame:
        """timecalc.count_in_window at the as-of instant: calendar days (d, w) or sliding (h, m, s)."""
        as_of = pl.lit(self.as_of, UTC_US)
        if calendar:
            days = seconds // 86400
            joined = events.join(acc.select("#row", "#primary", "#today"), on="#row")
            joined = _local_date(joined, "e_at", "#primary", "#edate")
            counted = joined.filter(
                (pl.col("e_at") <= as_of)
                & (pl.col("#edate") >= pl.col("#today") - pl.duration(days=days - 1))
                & (pl.col("#edate") <= pl.col("#today"))
            )
        else:
            counted = events.filter(
                (pl.col("e_at") > as_of - pl.duration(seconds=seconds)) & (pl.col("e_at") <= as_of)
            )
        return counted.group_by("#row").agg(pl.len().cast(I64).alias("#n"))

    # ---- expressions ---------------------------------------------------------------------------------

    def _eval(self, acc: pl.DataFrame, item: _Compiled, out: str) -> pl.DataFrame:
        """Evaluate one compiled expression into ``out`` (value), ``out#err`` and ``out#msg``."""
        compiled = item.compiled
        acc = compiled.plan.apply(acc)
        value = compiled.value
        columns = {
            out: compiled.expr(),
            f"{out}#err": value.err if value.err is not None else pl.lit(False),
            f"{out}#msg": value.msg if value.msg is not None else pl.lit(None, pl.String),
        }
        if value.unsup is not None:
            columns["#unsup"] = value.unsup.fill_null(False)
        acc = acc.with_columns(**columns)
        if value.unsup is not None:
            if acc["#unsup"].any():
                raise FrameUnsupported(
                    f"values outside what the frame backend emulates in "
                    f"'{item.expression.source}' ({_where(item.expression.location)})"
                )
            acc = acc.drop("#unsup")
        return acc.drop(compiled.plan.columns())

    def _error(
        self, acc: pl.DataFrame, condition: pl.Expr, code: str, message: pl.Expr, location: Location | None
    ) -> pl.DataFrame:
        """Record a finding for the rows where ``condition`` holds, after the findings recorded before it."""
        name = f"#err{len(self.error_columns)}"
        self.error_columns.append(name)
        finding = pl.struct(
            pl.lit(code).alias("code"),
            message.alias("message"),
            pl.lit(_where(location), pl.String).alias("policy"),
        )
        return acc.with_columns(pl.when(condition.fill_null(False)).then(finding).alias(name))

    def _expr_error(
        self, acc: pl.DataFrame, out: str, item: _Compiled, gate: pl.Expr | None = None
    ) -> pl.DataFrame:
        condition = pl.col(f"{out}#err") if gate is None else (gate & pl.col(f"{out}#err"))
        message = pl.concat_str(pl.col(f"{out}#msg"), pl.lit(f" in '{item.expression.source}'"))
        return self._error(acc, condition, "CR502", message, item.expression.location)

    def _derive(self, acc: pl.DataFrame) -> pl.DataFrame:
        for derived, item in self.fp._derive:
            acc = self._eval(acc, item, derived.name)
            acc = self._expr_error(acc, derived.name, item)
        return acc

    def _scores(self, acc: pl.DataFrame) -> pl.DataFrame:
        # a score's params may read any score: one not computed yet is null, as ctx.scores.get gives
        acc = acc.with_columns(
            **{f"#score:{spec.name}": F.literal_value(None, T.DECIMAL) for spec, _, _ in self.fp._scores}
        )
        for index, (spec, kind, params) in enumerate(self.fp._scores):
            column = f"#score:{spec.name}"
            if kind == "scorecard":
                acc = self._scorecard(acc, index, spec, params, column)
            else:
                acc = self._logistic(acc, index, spec, params, column)
        return acc

    def _scorecard(
        self, acc: pl.DataFrame, index: int, spec: M.ScoreSpec, params: Any, column: str
    ) -> pl.DataFrame:
        base, characteristics = params
        c0, e0 = F.decimal_parts(base)
        total_c, total_e, negative = pl.lit(c0, I128), pl.lit(e0, I32), pl.lit(base.is_signed())
        errors: list[tuple[pl.Expr, pl.Expr]] = []
        temporary: list[str] = []
        for c_index, bins in enumerate(characteristics):
            open_ = pl.lit(True)  # no earlier bin of this characteristic matched
            chosen_c, chosen_e, chosen_neg = pl.lit(None, I128), pl.lit(None, I32), pl.lit(None, pl.Boolean)
            branches = []
            for b_index, (condition, points) in enumerate(bins):
                pc, pe = F.decimal_parts(points)
                if condition is None:
                    hit = open_
                else:
                    out = f"#sc{index}_{c_index}_{b_index}"
                    acc = self._eval(acc, condition, out)
                    temporary += [out, f"{out}#err", f"{out}#msg"]
                    errors.append((open_ & pl.col(f"{out}#err"), pl.col(f"{out}#msg")))
                    hit = open_ & (pl.col(out).fill_null(False)) & ~pl.col(f"{out}#err")
                branches.append((hit, pc, pe, points.is_signed()))
                open_ = open_ & ~hit
            chain_c: Any = None
            for hit, pc, pe, neg in branches:
                if chain_c is None:
                    chain_c = pl.when(hit).then(pl.lit(pc, I128))
                    chain_e = pl.when(hit).then(pl.lit(pe, I32))
                    chain_n = pl.when(hit).then(pl.lit(neg))
                else:
                    chain_c = chain_c.when(hit).then(pl.lit(pc, I128))
                    chain_e = chain_e.when(hit).then(pl.lit(pe, I32))
                    chain_n = chain_n.when(hit).then(pl.lit(neg))
            chosen_c = chain_c.otherwise(pl.lit(None, I128))
            chosen_e = chain_e.otherwise(pl.lit(None, I32))
            chosen_neg = chain_n.otherwise(pl.lit(None, pl.Boolean))
            # exact addition (checked at compile time): exponent is the smaller one, zero keeps a sign only
            # when both addends were negative
            aligned_e = pl.min_horizontal(total_e, chosen_e)
            summed = total_c * F.pow10(total_e - aligned_e) + chosen_c * F.pow10(chosen_e - aligned_e)
            acc = acc.with_columns(
                pl.when(chosen_c.is_null()).then(total_c).otherwise(summed).alias("#sc_c"),
                pl.when(chosen_c.is_null()).then(total_e).otherwise(aligned_e).alias("#sc_e"),
                pl.when(chosen_c.is_null())
                .then(negative)
                .otherwise(pl.when(summed != 0).then(summed < 0).otherwise(negative & chosen_neg))
                .alias("#sc_n"),
            )
            acc = acc.rename(
                {"#sc_c": f"#sc_c{c_index}", "#sc_e": f"#sc_e{c_index}", "#sc_n": f"#sc_n{c_index}"}
            )
            temporary += [f"#sc_c{c_index}", f"#sc_e{c_index}", f"#sc_n{c_index}"]
            total_c, total_e, negative = (
                pl.col(f"#sc_c{c_index}"),
                pl.col(f"#sc_e{c_index}"),
                pl.col(f"#sc_n{c_index}"),
            )
        failed, message = _first(errors)
        acc = acc.with_columns(
            pl.when(~failed).then(pl.struct(total_c.alias("c"), total_e.alias("e"))).alias(column),
            pl.when(~failed).then(F.dec_to_text(total_c, total_e, negative)).alias(f"{column}#text"),
        )
        acc = self._error(
            acc, failed, "CR502", pl.concat_str(pl.lit(f"score {spec.name!r}: "), message), spec.location
        )
        return acc.drop(temporary)

    def _logistic(
        self, acc: pl.DataFrame, index: int, spec: M.ScoreSpec, params: Any, column: str
    ) -> pl.DataFrame:
        intercept, terms = params
        plan = Plan(prefix=f"#lg{index}_")
        dec = F._Dec(plan)
        ic, ie = F.decimal_parts(intercept)
        zc, ze, level = pl.lit(ic, I128), pl.lit(ie, I32), 0
        errors: list[tuple[pl.Expr, pl.Expr]] = []
        temporary: list[str] = []
        going = pl.lit(True)  # every earlier term had a value and no error
        for t_index, (item, coefficient) in enumerate(terms):
            out = f"#lt{index}_{t_index}"
            acc = self._eval(acc, item, out)
            temporary += [out, f"{out}#err", f"{out}#msg"]
            errors.append((going & pl.col(f"{out}#err"), pl.col(f"{out}#msg")))
            vtype = item.expression.typed.type
            if vtype.kind == "int":
                vc, ve = pl.col(out).cast(I128), pl.lit(0, I32)
            else:
                vc, ve = pl.col(out).struct.field("c"), pl.col(out).struct.field("e")
            cc, ce = F.decimal_parts(coefficient)
            pc, pe, level = dec.mul(pl.lit(cc, I128), pl.lit(ce, I32), vc, ve, level)
            zc, ze, level = dec.add(zc, ze, pc, pe, level)
            going = going & pl.col(out).is_not_null() & ~pl.col(f"{out}#err")
        failed, message = _first(errors)
        present = going
        probability, level = dec.logistic(zc, ze, level)
        acc = plan.apply(acc)
        acc = acc.with_columns(probability.alias("#p"))
        acc = acc.with_columns(
            pl.when(~failed & present)
            .then(pl.struct(pl.col("#p").alias("c"), pl.lit(-9, I32).alias("e")))
            .alias(column),
            pl.when(~failed & present)
            .then(F.dec_to_text(pl.col("#p"), pl.lit(-9, I32)))
            .alias(f"{column}#text"),
        )
        acc = self._error(
            acc, failed, "CR502", pl.concat_str(pl.lit(f"score {spec.name!r}: "), message), spec.location
        )
        return acc.drop([*temporary, *plan.columns(), "#p"])

    # ---- segments, ladder, cure, stages --------------------------------------------------------------

    def _segments(self, acc: pl.DataFrame) -> pl.DataFrame:
        table = self.policy.segments
        rules = self.fp._rules
        hits: list[pl.Expr] = []
        temporary: list[str] = []
        open_ = pl.lit(True)
        for index, (_, item) in enumerate(rules):
            out = f"#rule{index}"
            acc = self._eval(acc, item, out)
            gate = open_ if table.hit_policy == "first" else pl.lit(True)
            acc = self._expr_error(acc, out, item, gate)
            hit = gate & pl.col(out).fill_null(False) & ~pl.col(f"{out}#err")
            acc = acc.with_columns(hit.alias(f"#hit{index}"))
            temporary += [out, f"{out}#err", f"{out}#msg"]
            hits.append(pl.col(f"#hit{index}"))
            if table.hit_policy == "first":
                open_ = open_ & ~pl.col(f"#hit{index}")
        ids = [rule.id for rule, _ in rules]
        count = pl.sum_horizontal([h.cast(I32) for h in hits]) if hits else pl.lit(0, I32)
        first = _first_index(hits)
        acc = acc.with_columns(count.alias("#nhits"), first.alias("#first"))
        if table.hit_policy == "unique":
            second = _first_index([h & (pl.lit(i) > pl.col("#first")) for i, h in enumerate(hits)])
            labels = [f"{r.id!r} (line {r.location.line})" for r, _ in rules]
            message = pl.concat_str(
                pl.lit("segment rules "),
                _lookup(pl.col("#first"), labels),
                pl.lit(" and "),
                _lookup(second, labels),
                pl.lit(" both match, but the hit policy is 'unique'"),
            )
            where = [_where(r.location) for r, _ in rules]
            name = f"#err{len(self.error_columns)}"
            self.error_columns.append(name)
            acc = acc.with_columns(
                pl.when(pl.col("#nhits") > 1)
                .then(
                    pl.struct(
                        pl.lit("CR501").alias("code"),
                        message.alias("message"),
                        _lookup(second, where).alias("policy"),
                    )
                )
                .alias(name)
            )
        overlap = (pl.col("#nhits") > 1) if table.hit_policy == "unique" else pl.lit(False)
        matched = pl.col("#nhits") > 0
        default = table.default
        segment = (
            pl.when(overlap)
            .then(pl.lit(None, pl.String))
            .when(matched)
            .then(_lookup(pl.col("#first"), ids))
            .otherwise(pl.lit(default, pl.String))
        )
        rule_id = pl.when(~overlap & matched).then(_lookup(pl.col("#first"), ids))
        where_rules = [_where(r.location) for r, _ in rules]
        policy = (
            pl.when(overlap)
            .then(pl.lit(None, pl.String))
            .when(matched)
            .then(_lookup(pl.col("#first"), where_rules))
            .otherwise(pl.lit(_where(table.location) if default is not None else None, pl.String))
        )
        if table.hit_policy == "collect":
            segments = (
                pl.concat_list(
                    [pl.when(h).then(pl.lit(i)) for i, h in zip(ids, hits, strict=True)]
                ).list.drop_nulls()
                if hits
                else pl.lit([], pl.List(pl.String))
            )
        else:
            segments = pl.lit([], pl.List(pl.String))
        acc = acc.with_columns(
            segment.alias("#segment"),
            rule_id.alias("#segment_rule"),
            policy.alias("#segment_policy"),
            segments.alias("#segments"),
        )
        acc = self._arms(acc)
        if table.hit_policy == "collect":
            chain: Any = None
            for i, h in zip(ids, hits, strict=True):
                ladder_i = self._ladder_of(i)
                chain = (
                    pl.when(h & ladder_i.is_not_null())
                    if chain is None
                    else chain.when(h & ladder_i.is_not_null())
                ).then(ladder_i)
            fallback = pl.when(~matched).then(
                self._ladder_of(default) if default else pl.lit(None, pl.String)
            )
            ladder = chain.otherwise(fallback) if chain is not None else fallback
        else:
            ladder = pl.lit(None, pl.String)
            for segment_id in dict.fromkeys([*ids, *([default] if default else [])]):
                ladder = (
                    pl.when(pl.col("#segment") == segment_id)
                    .then(self._ladder_of(segment_id))
                    .otherwise(ladder)
                )
        acc = acc.with_columns(ladder.cast(pl.String).alias("#ladder"))
        return acc.drop(temporary + [f"#hit{i}" for i in range(len(hits))] + ["#nhits", "#first"])

    def _arms(self, acc: pl.DataFrame) -> pl.DataFrame:
        """Each account's arm of every experiment.

        The arm is a SHA-256 hash of the experiment and account ids (Experiment.arm_for); Polars has no
        SHA-256 expression, so this is the one step computed in Python for each account.
        """
        for experiment in self.fp._experiments:
            arms = [experiment.arm_for(account_id).id for account_id in acc["#id"].to_list()]
            acc = acc.with_columns(pl.Series(f"#arm:{experiment.id}", arms, dtype=pl.String))
        return acc

    def _ladder_of(self, segment: str) -> pl.Expr:
        """Program._ladder_for: the segment's ladder, or the one the account's experiment arm names."""
        base = next((lad.id for lad in self.policy.escalation.ladders if segment in lad.segments), None)
        fallback = pl.lit(base, pl.String)
        override = self.fp._overrides.get(segment)
        if override is None:
            return fallback
        experiment, ladders = override
        arm_ladder = pl.col(f"#arm:{experiment.id}").replace_strict(
            list(ladders), list(ladders.values()), default=None, return_dtype=pl.String
        )
        return pl.coalesce(arm_ladder, fallback)

    def _stages(self, acc: pl.DataFrame) -> pl.DataFrame:
        fp = self.fp
        has_ladder = pl.col("#ladder").is_not_null()
        if fp._cure is not None:
            acc = self._eval(acc, fp._cure, "#cure")
            acc = self._expr_error(acc, "#cure", fp._cure, has_ladder)
            acc = acc.with_columns(
                (has_ladder & pl.col("#cure").fill_null(False) & ~pl.col("#cure#err")).alias("#cured")
            ).drop("#cure", "#cure#err", "#cure#msg")
        else:
            acc = acc.with_columns(pl.lit(False).alias("#cured"))
        targets = []
        for ladder in self.policy.escalation.ladders:
            in_ladder = (pl.col("#ladder") == ladder.id) & ~pl.col("#cured")
            hits = []
            for index, item in enumerate(fp._enters[ladder.id]):
                out = f"#enter{index}"
                acc = self._eval(acc, item, out)
                acc = self._expr_error(acc, out, item, in_ladder)
                acc = acc.with_columns(
                    (pl.col(out).fill_null(False) & ~pl.col(f"{out}#err")).alias(f"#hit_{index}")
                )
                acc = acc.drop(out, f"{out}#err", f"{out}#msg")
                hits.append(f"#hit_{index}")
            target = pl.max_horizontal([pl.when(pl.col(h)).then(pl.lit(i, I32)) for i, h in enumerate(hits)])
            acc = acc.with_columns(
                pl.when(pl.col("#ladder") == ladder.id).then(target).alias(f"#target_{ladder.id}")
            )
            acc = acc.drop(hits)
            targets.append(pl.col(f"#target_{ladder.id}"))
        target_expr = pl.coalesce(targets) if targets else pl.lit(None, I32)
        acc = acc.with_columns(target_expr.cast(I32).alias("#target"))
        return acc.drop([f"#target_{lad.id}" for lad in self.policy.escalation.ladders])

    def _promise_state(self, acc: pl.DataFrame) -> pl.DataFrame:
        raw = self.raw_promises
        if raw is None or raw.height == 0:
            return acc.with_columns(
                pl.lit(False).alias("#p_active"),
                pl.lit(False).alias("#p_broken"),
                pl.lit(None, pl.Date).alias("#p_due"),
                pl.lit(None, pl.String).alias("#p_note"),
            )
        columns = set(raw.columns)
        amount = _decimal_from(raw, "amount", None)
        paid = _decimal_from(raw, "paid", "0")
        promises = raw.with_row_index("#prom").select(
            "#prom",
            pl.col("account_id").cast(pl.String).alias("#id"),
            pl.col("promised_on").cast(pl.Date),
            pl.col("due").cast(pl.Date),
            amount[0].alias("#a_c"),
            amount[1].alias("#a_e"),
            amount[2].alias("#a_n"),
            paid[0].alias("#pd_c"),
            paid[1].alias("#pd_e"),
            (
                pl.col("status").cast(pl.String).fill_null("pending")
                if "status" in columns
                else pl.lit("pending")
            ).alias("#p_status"),
        )
        unsupported = promises.filter(pl.col("#a_c").is_null() | pl.col("#pd_c").is_null())
        if unsupported.height:
            raise FrameUnsupported("a promise amount outside what the frame backend emulates")
        latest = (
            promises.sort(["promised_on", "due", "#prom"], descending=[True, True, False])
            .group_by("#id", maintain_order=True)
            .first()
        )
        acc = acc.join(latest, on="#id", how="left")
        plan = Plan(prefix="#pp_")
        sign, _ = F._Dec(plan).compare(pl.col("#pd_c"), pl.col("#pd_e"), pl.col("#a_c"), pl.col("#a_e"), 0)
        acc = plan.apply(acc).with_columns(sign.alias("#p_sign")).drop(plan.columns())
        sign = pl.col("#p_sign")
        today = pl.col("#today")
        has = pl.col("#prom").is_not_null()
        active = (
            has
            & (pl.col("#p_status") == "pending")
            & (pl.col("promised_on") <= today)
            & (today <= pl.col("due"))
        )
        broken = has & (
            (pl.col("#p_status") == "broken")
            | ((pl.col("#p_status") == "pending") & (today > pl.col("due")) & (sign < 0))
        )
        note = pl.concat_str(
            pl.lit("promise to pay "),
            F.dec_to_text(pl.col("#a_c"), pl.col("#a_e"), pl.col("#a_n")),
            pl.lit(" due "),
            pl.col("due").dt.strftime("%Y-%m-%d"),
        )
        acc = acc.with_columns(
            active.fill_null(False).alias("#p_active"),
            (broken & (today > pl.col("due"))).fill_null(False).alias("#p_broken"),
            pl.col("due").alias("#p_due"),
            note.alias("#p_note"),
        )
        return acc.drop(
            "#prom", "promised_on", "due", "#a_c", "#a_e", "#a_n", "#pd_c", "#pd_e", "#p_status", "#p_sign"
        )

    def _decide_stage(self, acc: pl.DataFrame) -> pl.DataFrame:
        """ladder.decide_stage, vectorised per ladder."""
        ladders = self.policy.escalation.ladders
        stage_ids = {ladder.id: [s.id for s in ladder.stages] for ladder in ladders}
        current = pl.lit(None, I32)
        count = pl.lit(None, I32)
        for ladder in ladders:
            index = pl.col("#stage").replace_strict(
                stage_ids[ladder.id], list(range(len(ladder.stages))), default=None, return_dtype=I32
            )
            current = pl.when(pl.col("#ladder") == ladder.id).then(index).otherwise(current)
            count = (
                pl.when(pl.col("#ladder") == ladder.id).then(pl.lit(len(ladder.stages), I32)).otherwise(count)
            )
        acc = acc.with_columns(current.alias("#cur"), count.alias("#nst"))
        acc = acc.with_columns(pl.when(pl.col("#cur").is_not_null()).then(pl.col("#entered")).alias("#ent"))
        minimum = pl.lit(None, I32)
        for ladder in ladders:
            days = [s.min_days_in_stage for s in ladder.stages]
            lookup = pl.col("#cur").replace_strict(
                list(range(len(days))), days, default=None, return_dtype=I32
            )
            minimum = pl.when(pl.col("#ladder") == ladder.id).then(lookup).otherwise(minimum)
        today = pl.col("#today")
        cur, ent, target = pl.col("#cur"), pl.col("#ent"), pl.col("#target")
        base = pl.coalesce(cur, target, pl.lit(-1, I32))
        bumped = pl.min_horizontal(base + 1, pl.col("#nst") - 1)
        broken_stage = pl.when(target.is_not_null()).then(pl.max_horizontal(bumped, target)).otherwise(bumped)
        not_yet_moved = ent.is_null() | (ent <= pl.col("#p_due"))
        paused_stage = pl.coalesce(cur, target)
        days_in = (today - ent).dt.total_days() + 1
        held = (
            cur.is_not_null()
            & ent.is_not_null()
            & (target.is_null() | (target != cur))
            & (days_in <= minimum)
        )
        live = pl.col("#ladder").is_not_null() & ~pl.col("#cured")
        paused = live & pl.col("#p_active")
        bumping = live & ~paused & pl.col("#p_broken") & not_yet_moved
        # after a broken promise moved the account, the conditions alone do not move it back down
        staying = (
            live
            & ~paused
            & pl.col("#p_broken")
            & ~not_yet_moved
            & cur.is_not_null()
            & target.is_not_null()
            & (target < cur)
        )
        holding = live & ~paused & ~bumping & ~staying & held
        rest = live & ~paused & ~bumping & ~staying & ~holding
        stage = (
            pl.when(paused)
            .then(paused_stage)
            .when(bumping)
            .then(broken_stage)
            .when(staying)
            .then(cur)
            .when(holding)
            .then(cur)
            .when(rest)
            .then(target)
            .otherwise(pl.lit(None, I32))
        )
        same = stage.is_not_null() & cur.is_not_null() & (stage == cur)
        entered = (
            pl.when(paused)
            .then(
                pl.when(paused_stage.is_null())
                .then(None)
                .when(same)
                .then(pl.coalesce(ent, today))
                .otherwise(today)
            )
            .when(bumping)
            .then(pl.when(same).then(ent).otherwise(today))
            .when(staying)
            .then(pl.coalesce(ent, today))
            .when(holding)
            .then(ent)
            .when(rest)
            .then(
                pl.when(target.is_null())
                .then(None)
                .when(target == cur)
                .then(pl.coalesce(ent, today))
                .otherwise(today)
            )
            .otherwise(pl.lit(None, pl.Date))
        )
        status = (
            pl.when(pl.col("#ladder").is_null())
            .then(pl.lit("no_ladder"))
            .when(pl.col("#cured"))
            .then(pl.lit("cured"))
            .when(paused & paused_stage.is_null())
            .then(pl.lit("no_stage"))
            .when(paused)
            .then(pl.lit("paused"))
            .when(rest & target.is_null())
            .then(pl.lit("no_stage"))
            .otherwise(pl.lit("active"))
        )
        acc = acc.with_columns(
            stage.alias("#sidx"),
            entered.cast(pl.Date).alias("#sent"),
            status.alias("#status"),
            (paused & paused_stage.is_not_null()).alias("#paused"),
        )
        has_stage = pl.col("#sidx").is_not_null() & pl.col("#sent").is_not_null()
        stage_id = pl.lit(None, pl.String)
        stage_policy = pl.lit(None, pl.String)
        for ladder in ladders:
            ids = [s.id for s in ladder.stages]
            wheres = [_where(s.location) for s in ladder.stages]
            stage_id = (
                pl.when(pl.col("#ladder") == ladder.id)
                .then(_lookup(pl.col("#sidx"), ids))
                .otherwise(stage_id)
            )
            stage_policy = (
                pl.when(pl.col("#ladder") == ladder.id)
                .then(_lookup(pl.col("#sidx"), wheres))
                .otherwise(stage_policy)
            )
        acc = acc.with_columns(
            pl.when(has_stage).then(stage_id).alias("#stage_id"),
            pl.when(has_stage).then(stage_policy).alias("#stage_policy"),
            pl.when(has_stage).then(pl.col("#sent")).alias("#stage_entered"),
            pl.when(has_stage)
            .then((today - pl.col("#sent")).dt.total_days() + 1)
            .cast(I64)
            .alias("#day_in_stage"),
            has_stage.alias("#has_stage"),
        )
        return acc

    # ---- actions and cadence -------------------------------------------------------------------------

    def _action_table(self) -> pl.DataFrame:
        rows = []
        channels = self.fp.registry.channels
        for row in self.fp._actions:
            action = row.action
            cadence = action.cadence
            every_us = None
            every_days = None
            if cadence.kind == "every":
                assert cadence.every is not None
                seconds = int(cadence.every.total_seconds())
                every_us = seconds * 1_000_000
                # the unit decides, not the length: every 1d counts calendar days, every 24h is sliding
                every_days = seconds // 86400 if F._is_calendar_duration(cadence.every) else None
            channel = channels.get(action.channel)
            rows.append(
                {
                    "#akey": row.key,
                    "#ladder": row.ladder,
                    "#sidx": row.stage_index,
                    "#aorder": row.order,
                    "channel": action.channel,
                    "template": action.template,
                    "priority": action.priority,
                    "subject": action.subject,
                    "stage": row.stage.id,
                    "cadence": cadence.describe(),
                    "policy": _where(action.location),
                    "#kind": cadence.kind,
                    "#every_us": every_us,
                    "#every_days": every_days,
                    "#on_days": list(cadence.days),
                    "#needs": channel.needs if channel is not None else None,
                }
            )
        schema = {
            "#akey": I32,
            "#ladder": pl.String,
            "#sidx": I32,
            "#aorder": I32,
            "channel": pl.String,
            "template": pl.String,
            "priority": I64,
            "subject": pl.String,
            "stage": pl.String,
            "cadence": pl.String,
            "policy": pl.String,
            "#kind": pl.String,
            "#every_us": I64,
            "#every_days": I32,
            "#on_days": pl.List(I32),
            "#needs": pl.String,
        }
        return pl.DataFrame(rows, schema=schema)

    def _due_actions(self, acc: pl.DataFrame) -> pl.DataFrame:
        """Every (account, action of its stage) whose cadence makes it due now (ladder.action_due)."""
        self.actions = self._action_table()
        staged = acc.filter(pl.col("#has_stage")).select(
            "#row", "#ladder", "#sidx", "#sent", "#today", "#primary"
        )
        pairs = staged.join(self.actions, on=["#ladder", "#sidx"], how="inner")
        if pairs.height == 0:
            return pairs.with_columns(pl.lit(None, pl.UInt32).alias("#pair"))
        pairs = pairs.sort("#row", "#aorder").with_row_index("#pair")
        pairs = _local_midnights(pairs, "#sent", "#primary", "#stage_start")
        # on_days: the latest listed day reached
        day_in_stage = ((pl.col("#today") - pl.col("#sent")).dt.total_days() + 1).cast(I32)
        pairs = pairs.with_columns(day_in_stage.alias("#dis"))
        reached = (
            pairs.select("#pair", "#dis", "#on_days")
            .explode("#on_days")
            .filter(pl.col("#on_days") <= pl.col("#dis"))
            .group_by("#pair")
            .agg(pl.col("#on_days").max().alias("#latest"))
        )
        pairs = pairs.join(reached, on="#pair", how="left")
        pairs = pairs.with_columns(
            pl.when(pl.col("#latest").is_not_null())
            .then(pl.col("#sent") + pl.duration(days=pl.col("#latest") - 1))
            .alias("#latest_day")
        )
        pairs = _local_midnights(pairs, "#latest_day", "#primary", "#latest_start")
        attempts = self.events.filter(pl.col("#own") & (pl.col("direction") == "outbound")).select(
            "#row",
            "e_at",
            "#seq",
            pl.col("channel").alias("e_channel"),
            pl.col("template").alias("e_template"),
        )
        joined = pairs.select("#pair", "#row", "channel", "template", "#stage_start", "#latest_start").join(
            attempts, on="#row", how="inner"
        )
        joined = joined.filter(
            (pl.col("e_channel") == pl.col("channel"))
            & (
                pl.col("template").is_null()
                | pl.col("e_template").is_null()
                | (pl.col("e_template") == pl.col("template"))
            )
            & (pl.col("e_at") >= pl.col("#stage_start"))
        )
        summary = joined.group_by("#pair").agg(
            pl.len().alias("#n_att"),
            pl.col("e_at").sort_by("#seq").last().alias("#last_at"),
            (pl.col("e_at") >= pl.col("#latest_start")).any().alias("#done_latest"),
        )
        pairs = pairs.join(summary, on="#pair", how="left").with_columns(pl.col("#n_att").fill_null(0))
        pairs = _local_date(pairs, "#last_at", "#primary", "#last_day")
        as_of = pl.lit(self.as_of, UTC_US)
        none = pl.col("#n_att") == 0
        every_due = (
            pl.when(none)
            .then(True)
            .when(pl.col("#every_days").is_not_null())
            .then(pl.col("#today") >= pl.col("#last_day") + pl.duration(days=pl.col("#every_days")))
            .otherwise(as_of >= pl.col("#last_at") + pl.duration(microseconds=pl.col("#every_us")))
        )
        on_days_due = pl.col("#latest").is_not_null() & ~pl.col("#done_latest").fill_null(False)
        due = (
            pl.when(pl.col("#kind") == "once")
            .then(none)
            .when(pl.col("#kind") == "every")
            .then(every_due)
            .otherwise(on_days_due)
        )
        return pairs.filter(due).select("#pair", "#row", "#akey", "#aorder")

    # ---- restrictions --------------------------------------------------------------------------------

    def _restrict(self, pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        restrictions = self.policy.restrictions
        self.applies = {
            index: {
                row.key for row in self.fp._actions if r.applies_to(row.action.channel, row.action.subject)
            }
            for index, r in enumerate(restrictions)
        }
        self._prepare_restrictions()
        state = pairs.with_columns(pl.lit(self.as_of, UTC_US).alias("#at"))
        first = self._reasons(state, messages=True)
        blocked_ids = first.select("#pair").unique()
        due = pairs.join(blocked_ids, on="#pair", how="anti")
        results: list[pl.DataFrame] = []
        current = state.join(blocked_ids, on="#pair", how="semi")
        reasons = first
        for step in range(MAX_NEXT_ALLOWED_STEPS):
            if current.height == 0:
                break
            summary = reasons.group_by("#pair").agg(
                pl.col("next").is_null().any().alias("#open"), pl.col("next").max().alias("#cand")
            )
            current = current.join(summary, on="#pair", how="inner")
            stuck = current.filter(pl.col("#open") | (pl.col("#cand") <= pl.col("#at")))
            results.append(stuck.select("#pair", pl.lit(None, UTC_US).alias("#next")))
            moving = current.filter(~(pl.col("#open") | (pl.col("#cand") <= pl.col("#at"))))
            moving = moving.with_columns(pl.col("#cand").alias("#at")).drop("#open", "#cand")
            if step == MAX_NEXT_ALLOWED_STEPS - 1:
                # the rows backend computes one more set of reasons here but never reads it
                results.append(moving.select("#pair", pl.lit(None, UTC_US).alias("#next")))
                current = moving.clear()
                break
            reasons = self._reasons(moving, messages=False)
            cleared = moving.join(reasons.select("#pair").unique(), on="#pair", how="anti")
            results.append(cleared.select("#pair", pl.col("#at").alias("#next")))
            current = moving.join(reasons.select("#pair").unique(), on="#pair", how="semi")
        if current.height:
            results.append(current.select("#pair", pl.lit(None, UTC_US).alias("#next")))
        nexts = (
            pl.concat(results, how="vertical")
            if results
            else pl.DataFrame(schema={"#pair": pl.UInt32, "#next": UTC_US})
        )
        blocked = pairs.join(blocked_ids, on="#pair", how="semi").join(nexts, on="#pair", how="left")
        grouped = (
            first.sort("#pair", "#order")
            .group_by("#pair", maintain_order=True)
            .agg(
                pl.struct(
                    pl.col("restriction"),
                    pl.col("message").alias("reason"),
                    pl.col("policy"),
                    pl.col("next").alias("next_allowed"),
                    pl.col("source"),
                ).alias("blocked_by")
            )
        )
        blocked = blocked.join(grouped, on="#pair", how="left")
        return due, blocked

    def _block_when(self, acc: pl.DataFrame) -> pl.DataFrame:
        """Evaluate every block_when once; an account with a stage reports a failure as its error (CR502)."""
        for index, restriction in enumerate(self.policy.restrictions):
            if restriction.kind != "expression":
                continue
            item = self.fp._block_when[restriction.id]
            acc = self._eval(acc, item, "#bw")
            acc = self._expr_error(acc, "#bw", item, pl.col("#has_stage"))
            acc = acc.with_columns(
                (pl.col("#bw").fill_null(False) & ~pl.col("#bw#err")).alias(f"#bw{index}"),
                pl.col("#bw#err").alias(f"#bwerr{index}"),
                pl.col("#bw#msg").alias(f"#bwmsg{index}"),
            )
            acc = acc.drop("#bw", "#bw#err", "#bw#msg")
        return acc

    def _prepare_restrictions(self) -> None:
        """Per-restriction event tables that do not depend on the instant being checked."""
        acc = self.acc
        self.pair_info = acc.select(
            "#row",
            "#id",
            "#primary",
            "#zones",
            "#zkey",
            "#optout",
            "#phone",
            "#email",
            "#address",
            "#paused",
            "#p_due",
            "#p_note",
            *[c for c in acc.columns if c.startswith("#bw")],
        )
        paused = self.pair_info.filter(pl.col("#paused")).with_columns(
            (pl.col("#p_due") + pl.duration(days=1)).alias("#resume_day")
        )
        paused = _local_midnights(paused, "#resume_day", "#primary", "#resume")
        self.resume = paused.select("#row", "#resume", "#p_note")
        events = self.events.join(
            acc.select("#row", "#primary", "#id", "#person", "#debt", "#phone"), on="#row"
        )
        self.prepared: dict[int, pl.DataFrame] = {}
        for index, spec in enumerate(self.policy.restrictions):
            if spec.kind == "cap":
                assert spec.count is not None and spec.per is not None
                counted = _filter_events(events, spec.key, spec.count, spec.channels)
                self.prepared[index] = self._leave_instants(counted, spec.per)
            elif spec.kind == "cooldown":
                assert spec.after is not None and spec.block_for is not None
                triggers = _filter_events(events, spec.key, spec.after, spec.channels)
                self.prepared[index] = self._leave_instants(triggers, spec.block_for)
            elif spec.kind == "gap":
                candidates = events.filter((pl.col("direction") == "outbound") & _key_matches("person"))
                if spec.channels is not None:
                    candidates = candidates.filter(pl.col("channel").is_in(sorted(spec.channels)))
                last = candidates.sort("#row", "#seq").group_by("#row", maintain_order=True).last()
                last = _local_columns(last, "e_at", "#primary", "#l_", formatted=True)
                self.prepared[index] = last.select(
                    "#row",
                    pl.col("e_at").alias("#last_at"),
                    pl.col("channel").alias("#last_channel"),
                    pl.col("#l_text").alias("#last_text"),
                )
            elif spec.kind == "hold":
                self.prepared[index] = self.holds.filter(pl.col("type").is_in(sorted(spec.holds)))

    def _leave_instants(self, events: pl.DataFrame, window: M.Window) -> pl.DataFrame:
        events = _local_columns(events, "e_at", "#primary", "#e_", formatted=True)
        if window.calendar_days is not None:
            events = events.with_columns(
                (pl.col("#e_date") + pl.duration(days=window.calendar_days)).alias("#lday")
            )
            events = _local_midnights(events, "#lday", "#primary", "#leave")
        else:
            assert window.sliding is not None
            events = events.with_columns(
                (pl.col("e_at") + pl.duration(microseconds=F._micros(window.sliding))).alias("#leave")
            )
        return events.select("#row", "e_at", "#seq", "#e_date", "#e_text", "#leave")

    def _reasons(self, state: pl.DataFrame, *, messages: bool) -> pl.DataFrame:
        """Every blocking reason of every (pair, instant) in ``state``: restrict.blocking_reasons."""
        state = state.join(self.pair_info, on="#row", how="left").join(
            self.actions.select("#akey", "channel", "template", "subject", "#needs"), on="#akey", how="left"
        )
        state = _local_columns(state, "#at", "#primary", "#a_")
        parts = [self._pause_reasons(state), self._opt_out_reasons(state), self._contact_reasons(state)]
        for index, spec in enumerate(self.policy.restrictions):
            applicable = state.filter(pl.col("#akey").is_in(sorted(self.applies[index])))
            if applicable.height == 0:
                continue
            part = self._restriction_reasons(index, spec, applicable, messages)
            if part is not None and part.height:
                parts.append(part)
        parts = [p for p in parts if p.height]
        if not parts:
            return pl.DataFrame(schema=_REASONS_SCHEMA)
        return pl.concat(
            [p.select(list(_REASONS_SCHEMA)).cast(_REASONS_SCHEMA) for p in parts], how="vertical"
        )

    def _pause_reasons(self, state: pl.DataFrame) -> pl.DataFrame:
        joined = state.join(
            self.resume.select("#row", "#resume", pl.col("#p_note").alias("#note")), on="#row", how="inner"
        ).filter(pl.col("#at") < pl.col("#resume"))
        return joined.select(
            "#pair",
            pl.lit(0, I32).alias("#order"),
            pl.lit("promise-to-pay").alias("restriction"),
            pl.concat_str(pl.lit("ladder paused: "), pl.col("#note")).alias("message"),
            pl.lit(None, pl.String).alias("policy"),
            pl.col("#resume").alias("next"),
            pl.lit(None, pl.String).alias("source"),
        )

    def _opt_out_reasons(self, state: pl.DataFrame) -> pl.DataFrame:
        hit = state.filter(pl.col("#optout").list.contains(pl.col("channel")))
        return hit.select(
            "#pair",
            pl.lit(1, I32).alias("#order"),
            pl.lit("opt-out").alias("restriction"),
            pl.concat_str(pl.lit("the debtor opted out of "), pl.col("channel")).alias("message"),
            pl.lit(None, pl.String).alias("policy"),
            pl.lit(None, UTC_US).alias("next"),
            pl.lit(None, pl.String).alias("source"),
        )

    def _contact_reasons(self, state: pl.DataFrame) -> pl.DataFrame:
        point = (
            pl.when(pl.col("#needs") == "phone")
            .then(pl.col("#phone"))
            .when(pl.col("#needs") == "email")
            .then(pl.col("#email"))
            .when(pl.col("#needs") == "address")
            .then(pl.col("#address"))
        )
        hit = state.filter(pl.col("#needs").is_in(["phone", "email", "address"]) & _missing(point))
        return hit.select(
            "#pair",
            pl.lit(2, I32).alias("#order"),
            pl.lit("contact-data").alias("restriction"),
            pl.concat_str(pl.lit("no "), pl.col("#needs"), pl.lit(" on file for "), pl.col("channel")).alias(
                "message"
            ),
            pl.lit(None, pl.String).alias("policy"),
            pl.lit(None, UTC_US).alias("next"),
            pl.lit(None, pl.String).alias("source"),
        )

    def _restriction_reasons(
        self, index: int, spec: M.Restriction, state: pl.DataFrame, messages: bool
    ) -> pl.DataFrame | None:
        if spec.kind in ("window", "calendar"):
            found = self._window(index, spec, state, messages)
        elif spec.kind == "cap":
            found = self._cap(index, spec, state)
        elif spec.kind == "cooldown":
            found = self._cooldown(index, spec, state)
        elif spec.kind == "gap":
            found = self._gap(index, spec, state)
        elif spec.kind == "hold":
            found = self._hold(index, spec, state)
        else:
            source = spec.block_when.source if spec.block_when else ""
            # a condition that cannot be evaluated blocks rather than allow what it may forbid
            detail = (
                pl.when(pl.col(f"#bwerr{index}"))
                .then(pl.concat_str(pl.lit(f"{source} could not be evaluated: "), pl.col(f"#bwmsg{index}")))
                .otherwise(pl.lit(f"{source} is true"))
            )
            found = state.filter(pl.col(f"#bw{index}") | pl.col(f"#bwerr{index}")).select(
                "#pair", detail.alias("#detail"), pl.lit(None, UTC_US).alias("next")
            )
        if found is None or found.height == 0:
            return None
        detail = pl.col("#detail")
        message = pl.concat_str(pl.lit(f"{spec.explain} ("), detail, pl.lit(")")) if spec.explain else detail
        return found.select(
            "#pair",
            pl.lit(3 + index, I32).alias("#order"),
            pl.lit(spec.id).alias("restriction"),
            message.alias("message"),
            pl.lit(_where(spec.location), pl.String).alias("policy"),
            pl.col("next").cast(UTC_US),
            pl.lit(spec.source, pl.String).alias("source"),
        )

    # ---- windows -------------------------------------------------------------------------------------

    def _window(self, index: int, spec: M.Restriction, state: pl.DataFrame, messages: bool) -> pl.DataFrame:
        if spec.timezone == "debtor" and spec.schedule is None:
            # a holiday calendar without hours needs only a local date: without a zone it is taken in UTC
            state = state.with_columns(
                pl.when(pl.col("#zones").list.len() > 0)
                .then(pl.col("#zones"))
                .otherwise(pl.concat_list(pl.col("#primary")))
                .alias("#wz")
            )
            state = state.with_columns(pl.col("#wz").list.join(";").alias("#wkey"))
        elif spec.timezone == "debtor":
            state = state.with_columns(pl.col("#zones").alias("#wz"), pl.col("#zkey").alias("#wkey"))
        else:
            state = state.with_columns(
                pl.lit([spec.timezone], pl.List(pl.String)).alias("#wz"), pl.lit(spec.timezone).alias("#wkey")
            )
        unknown = state.filter(pl.col("#wz").list.len() == 0).select(
            "#pair",
            pl.lit("the debtor's time zone is unknown, so local hours cannot be respected").alias("#detail"),
            pl.lit(None, UTC_US).alias("next"),
        )
        known = state.filter(pl.col("#wz").list.len() > 0)
        if known.height == 0:
            return unknown
        per_zone = (
            known.select("#pair", "#at", "#wkey", "#wz")
            .with_columns(pl.int_ranges(pl.col("#wz").list.len()).alias("#zpos"))
            .explode("#wz", "#zpos")
        )
        per_zone = _local_columns(per_zone, "#at", "#wz", "#w_", formatted=messages)
        calendar = self._calendar_table(spec.calendar, per_zone["#w_date"]) if spec.calendar else None
        if calendar is not None:
            per_zone = per_zone.join(calendar, left_on="#w_date", right_on="#hday", how="left")
            per_zone = per_zone.with_columns(pl.col("#hname").is_not_null().alias("#holiday"))
        else:
            per_zone = per_zone.with_columns(
                pl.lit(False).alias("#holiday"), pl.lit(None, pl.String).alias("#hname")
            )
        per_zone = per_zone.with_columns(
            _in_schedule(spec.schedule, pl.col("#w_wd"), pl.col("#w_us")).alias("#inwin")
        )
        per_zone = per_zone.with_columns((~pl.col("#holiday") & pl.col("#inwin")).alias("#ok"))
        # the detail names the first zone (in the account's order) with a holiday, else the first one
        # outside the hours
        details = (
            [
                pl.col("#w_date").filter(pl.col("#holiday")).first().alias("#hday"),
                pl.col("#hname").filter(pl.col("#holiday")).first().alias("#hname"),
                pl.col("#w_text").filter(~pl.col("#inwin")).first().alias("#otext"),
                pl.col("#wz").filter(~pl.col("#inwin")).first().alias("#ozone"),
            ]
            if messages
            else []
        )
        blocked = (
            per_zone.sort("#pair", "#zpos")
            .group_by("#pair", maintain_order=True)
            .agg(
                pl.col("#ok").all().alias("#allowed"),
                pl.col("#at").first(),
                pl.col("#wkey").first(),
                *details,
            )
            .filter(~pl.col("#allowed"))
        )
        if blocked.height == 0:
            return unknown
        blocked = self._window_next(index, spec, blocked)
        if messages:
            code = self.fp._calendars[spec.calendar].code if spec.calendar else ""
            hours = spec.schedule_text or "the allowed hours"
            detail = (
                pl.when(pl.col("#hday").is_not_null())
                .then(
                    pl.concat_str(
                        pl.col("#hday").dt.strftime("%Y-%m-%d"),
                        pl.lit(f" is a holiday in {code} ("),
                        pl.col("#hname").fill_null("public holiday"),
                        pl.lit(")"),
                    )
                )
                .when(pl.col("#otext").is_not_null())
                .then(pl.concat_str(pl.col("#otext"), pl.lit(f" is outside {hours} in "), pl.col("#ozone")))
                .otherwise(pl.lit("outside the allowed hours"))
            )
        else:
            detail = pl.lit("")
        found = blocked.select("#pair", detail.alias("#detail"), pl.col("#wnext").alias("next"))
        return pl.concat([unknown, found], how="vertical_relaxed")

    def _calendar_table(self, code: str, days: pl.Series) -> pl.DataFrame:
        """The holidays (``#hday``, ``#hname``) of a calendar in the years of ``days`` (names as
        HolidayCalendar.holiday_name gives them); built once per calendar and year."""
        years = {d.year for d in days.drop_nulls().unique().to_list()}
        known = self._holiday_years.setdefault(code, set())
        missing = sorted(years - known)
        if missing:
            extra = F.holiday_table(code, missing).select(
                pl.col("day").alias("#hday"), pl.col("name").alias("#hname")
            )
            table = self._holiday_tables.get(code)
            self._holiday_tables[code] = extra if table is None else pl.concat([table, extra])
            known.update(missing)
        table = self._holiday_tables.get(code)
        return table if table is not None else pl.DataFrame(schema={"#hday": pl.Date, "#hname": pl.String})

    def _window_next(self, index: int, spec: M.Restriction, blocked: pl.DataFrame) -> pl.DataFrame:
        """timecalc.next_allowed for each blocked pair: the start of the first allowed interval after it."""
        if spec.schedule is not None and spec.schedule.is_never_open:
            return blocked.with_columns(pl.lit(None, UTC_US).alias("#wnext"))
        low = blocked["#at"].min()
        high = blocked["#at"].max()
        assert isinstance(low, _dt.datetime) and isinstance(high, _dt.datetime)
        first_day = low.date() - _dt.timedelta(days=2)
        last_day = high.date() + _dt.timedelta(days=_HORIZON_DAYS + 2)
        tables = []
        for key in blocked["#wkey"].unique().to_list():
            zones = key.split(";")
            per_zone = [
                self._zone_intervals(index, spec, zone, first_day, last_day) for zone in dict.fromkeys(zones)
            ]
            intervals = per_zone[0] if len(per_zone) == 1 else _intersect(per_zone)
            tables.append(intervals.with_columns(pl.lit(key).alias("#wkey")))
        intervals = pl.concat(tables, how="vertical").sort("#wkey", "#iend")
        ordered = blocked.sort("#wkey", "#at")
        joined = ordered.join_asof(
            intervals,
            left_on="#at",
            right_on="#iend",
            by="#wkey",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        limit = pl.col("#at") + pl.duration(days=_HORIZON_DAYS)
        candidate = pl.max_horizontal(pl.col("#istart"), pl.col("#at"))
        return joined.with_columns(
            pl.when(pl.col("#istart").is_not_null() & (candidate <= limit)).then(candidate).alias("#wnext")
        )

    def _zone_intervals(
        self, index: int, spec: M.Restriction, zone: str, first_day: _dt.date, last_day: _dt.date
    ) -> pl.DataFrame:
        """The UTC intervals [start, end) in which ``zone`` allows contact under the window, covering local
        days first_day..last_day (a table built for more days serves: the next opening is searched from an
        instant on, up to a horizon inside the days asked for)."""
        cached = self._intervals.get((index, zone))
        if cached is not None and cached[0] <= first_day and last_day <= cached[1]:
            return cached[2]
        if cached is not None:
            first_day, last_day = min(first_day, cached[0]), max(last_day, cached[1])
        table = self._build_zone_intervals(spec, zone, first_day, last_day)
        self._intervals[(index, zone)] = (first_day, last_day, table)
        return table

    def _build_zone_intervals(
        self, spec: M.Restriction, zone: str, first_day: _dt.date, last_day: _dt.date
    ) -> pl.DataFrame:
        """Each local window's preimage under the zone's offsets, for local days first_day..last_day,
        holidays left out."""
        days = pl.DataFrame({"#day": pl.date_range(first_day, last_day, "1d", eager=True)})
        days = days.with_columns((pl.col("#day").dt.weekday() - 1).cast(I32).alias("#wd"))
        if spec.calendar:
            holidays = self._calendar_table(spec.calendar, days["#day"])
            days = days.join(holidays, left_on="#day", right_on="#hday", how="anti")
        windows = []
        for weekday in range(7):
            if spec.schedule is None:
                windows.append({"#wd": weekday, "#s": 0, "#e": 1440})
            else:
                for window in spec.schedule.days[weekday]:
                    windows.append({"#wd": weekday, "#s": window.start_minute, "#e": window.end_minute})
        schema = {"#istart": UTC_US, "#iend": UTC_US}
        if not windows:
            return pl.DataFrame(schema=schema)
        walls = days.join(pl.DataFrame(windows, schema={"#wd": I32, "#s": I64, "#e": I64}), on="#wd")
        walls = walls.with_columns(
            (pl.col("#day").cast(pl.Datetime("us")).cast(I64) + pl.col("#s") * 60_000_000).alias("#w1"),
            (pl.col("#day").cast(pl.Datetime("us")).cast(I64) + pl.col("#e") * 60_000_000).alias("#w2"),
        )
        pieces = self._offset_pieces(
            zone, first_day - _dt.timedelta(days=2), last_day + _dt.timedelta(days=2)
        )
        crossed = walls.join(pieces, how="cross").with_columns(
            pl.max_horizontal(pl.col("#from"), pl.col("#w1") - pl.col("#off") * 1_000_000).alias("#a"),
            pl.min_horizontal(pl.col("#to"), pl.col("#w2") - pl.col("#off") * 1_000_000).alias("#b"),
        )
        crossed = crossed.filter(pl.col("#a") < pl.col("#b"))
        return crossed.select(
            pl.col("#a").cast(UTC_US).alias("#istart"), pl.col("#b").cast(UTC_US).alias("#iend")
        ).sort("#istart")

    def _offset_pieces(self, zone: str, first: _dt.date, last: _dt.date) -> pl.DataFrame:
        """Stretches [from, to) (µs) of constant UTC offset (seconds) of a zone, covering UTC days first..last
        (a table computed for a wider span is reused)."""
        cached = self._transitions.get(zone)
        if cached is not None and cached[0] <= first and last <= cached[1]:
            return cached[2]
        if cached is not None:
            first, last = min(first, cached[0]), max(last, cached[1])
        start = _dt.datetime.combine(first, _dt.time(0), tzinfo=_dt.UTC)
        end = _dt.datetime.combine(last, _dt.time(0), tzinfo=_dt.UTC)
        probes = pl.DataFrame({"#t": pl.datetime_range(start, end, "1h", time_zone="UTC", eager=True)})
        probes = probes.with_columns(_offset_seconds(pl.col("#t"), zone).alias("#o"))
        probes = probes.with_columns(
            pl.col("#o").shift(1).alias("#prev"), pl.col("#t").shift(1).alias("#tprev")
        )
        changes = probes.filter(pl.col("#prev").is_not_null() & (pl.col("#o") != pl.col("#prev")))
        if changes.height:
            low = pl.col("#tprev").cast(I64) // 1_000_000
            high = pl.col("#t").cast(I64) // 1_000_000
            changes = changes.with_columns(low.alias("#lo"), high.alias("#hi"))
            for _ in range(13):
                middle = pl.col("#lo") + (pl.col("#hi") - pl.col("#lo")) // 2
                same = _offset_seconds((middle * 1_000_000).cast(UTC_US), zone) == pl.col("#prev")
                moving = (pl.col("#hi") - pl.col("#lo")) > 1
                changes = changes.with_columns(
                    pl.when(moving & same).then(middle).otherwise(pl.col("#lo")).alias("#lo"),
                    pl.when(moving & ~same).then(middle).otherwise(pl.col("#hi")).alias("#hi"),
                )
            boundaries = changes.select(
                (pl.col("#hi") * 1_000_000).alias("#from"), pl.col("#o").alias("#off")
            )
        else:
            boundaries = pl.DataFrame(schema={"#from": I64, "#off": I64})
        first_offset = probes["#o"][0]
        start_us = int(start.timestamp()) * 1_000_000
        end_us = int(end.timestamp()) * 1_000_000
        pieces = pl.concat(
            [
                pl.DataFrame(
                    {"#from": [start_us], "#off": [first_offset]}, schema={"#from": I64, "#off": I64}
                ),
                boundaries.cast({"#from": I64, "#off": I64}),
            ]
        )
        pieces = pieces.with_columns(pl.col("#from").shift(-1).fill_null(end_us).alias("#to"))
        self._transitions[zone] = (first, last, pieces)
        return pieces

    # ---- caps, cool-downs, gaps, holds ---------------------------------------------------------------

    def _cap(self, index: int, spec: M.Restriction, state: pl.DataFrame) -> pl.DataFrame | None:
        assert spec.per is not None and spec.count is not None and spec.max_attempts is not None
        events = self.prepared[index]
        counts = _window_counts(
            state.select("#pair", "#row", "#at", "#a_date"), events, spec.per, keep=["#row"]
        )
        blocked = counts.filter(pl.col("#count") >= spec.max_attempts)
        if blocked.height == 0:
            return None
        # candidates: the instants at which an event leaves the window
        candidates = blocked.select("#pair", "#row", "#at").join(events.select("#row", "#leave"), on="#row")
        candidates = candidates.filter(pl.col("#leave") > pl.col("#at")).unique(["#pair", "#leave"])
        candidates = candidates.join(self.pair_info.select("#row", "#primary"), on="#row")
        candidates = _local_date(
            candidates.rename({"#at": "#from_at"}).with_columns(pl.col("#leave").alias("#at")),
            "#at",
            "#primary",
            "#a_date",
        )
        candidate_counts = _window_counts(
            candidates.with_row_index("#cand").select(
                pl.col("#cand").alias("#pair"), "#row", "#at", "#a_date", pl.col("#pair").alias("#orig")
            ),
            events,
            spec.per,
            keep=["#orig"],
        )
        earliest = (
            candidate_counts.filter(pl.col("#count") < spec.max_attempts)
            .group_by("#orig")
            .agg(pl.col("#at").min().alias("next"))
        )
        blocked = blocked.join(earliest.rename({"#orig": "#pair"}), on="#pair", how="left")
        what = "/".join(sorted(spec.count.channels or spec.channels or ())) or "contact"
        detail = pl.concat_str(
            pl.col("#count").cast(pl.String),
            pl.lit(
                f" counted {what} attempts per {spec.key} in {spec.per.text}; "
                f"the limit is {spec.max_attempts}"
            ),
        )
        return blocked.select("#pair", detail.alias("#detail"), "next")

    def _cooldown(self, index: int, spec: M.Restriction, state: pl.DataFrame) -> pl.DataFrame | None:
        assert spec.after is not None and spec.block_for is not None
        events = self.prepared[index]
        joined = (
            state.select("#pair", "#row", "#at")
            .join(events, on="#row")
            .filter(pl.col("#at") < pl.col("#leave"))
        )
        if joined.height == 0:
            return None
        found = (
            joined.sort("#pair", "#seq")
            .group_by("#pair", maintain_order=True)
            .agg(
                pl.col("#leave").max().alias("next"),
                pl.col("#e_text")
                .filter(pl.col("#leave") == pl.col("#leave").max())
                .first()
                .alias("#trigger"),
            )
        )
        outcomes = "/".join(sorted(spec.after.outcomes)) if spec.after.outcomes else "contact"
        detail = pl.concat_str(
            pl.lit(f"{outcomes} at "),
            pl.col("#trigger"),
            pl.lit(f" starts a {spec.block_for.text} cool-down"),
        )
        return found.select("#pair", detail.alias("#detail"), "next")

    def _gap(self, index: int, spec: M.Restriction, state: pl.DataFrame) -> pl.DataFrame | None:
        assert spec.min_gap is not None
        gap = pl.duration(microseconds=F._micros(spec.min_gap))
        joined = (
            state.select("#pair", "#row", "#at")
            .join(self.prepared[index], on="#row")
            .filter(pl.col("#at") < pl.col("#last_at") + gap)
        )
        if joined.height == 0:
            return None
        detail = pl.concat_str(
            pl.lit("last "),
            pl.col("#last_channel"),
            pl.lit(" attempt at "),
            pl.col("#last_text"),
            pl.lit(f"; the minimum gap is {M._format_duration(spec.min_gap)}"),
        )
        return joined.select("#pair", detail.alias("#detail"), (pl.col("#last_at") + gap).alias("next"))

    def _hold(self, index: int, spec: M.Restriction, state: pl.DataFrame) -> pl.DataFrame | None:
        candidates = state
        for exception in spec.exceptions:
            matches = pl.col("channel") == exception.channel
            if exception.template is not None:
                matches = matches & (pl.col("template") == exception.template).fill_null(False)
            candidates = candidates.filter(~matches.fill_null(False))
        candidates = candidates.select("#pair", "#row", "#at", "#a_date", "channel", "#primary")
        joined = candidates.join(self.prepared[index], on="#row").filter(
            (pl.col("start") <= pl.col("#a_date"))
            & (pl.col("end").is_null() | (pl.col("#a_date") <= pl.col("end")))
            & ((pl.col("channels").list.len() == 0) | pl.col("channels").list.contains(pl.col("channel")))
        )
        if joined.height == 0:
            return None
        found = (
            joined.sort("#pair", "#hold")
            .group_by("#pair", maintain_order=True)
            .agg(
                pl.col("type").first(),
                pl.col("start").first(),
                pl.col("end").first().alias("#first_end"),
                pl.col("end").is_null().any().alias("#open"),
                pl.col("end").max().alias("#last_end"),
                pl.col("#primary").first(),
            )
        )
        found = found.with_columns((pl.col("#last_end") + pl.duration(days=1)).alias("#after"))
        found = _local_midnights(found, "#after", "#primary", "#resume_at")
        until = (
            pl.when(pl.col("#first_end").is_not_null())
            .then(pl.concat_str(pl.lit(" until "), pl.col("#first_end").dt.strftime("%Y-%m-%d")))
            .otherwise(pl.lit(" with no end date"))
        )
        detail = pl.concat_str(
            pl.col("type"), pl.lit(" hold since "), pl.col("start").dt.strftime("%Y-%m-%d"), until
        )
        return found.select(
            "#pair",
            detail.alias("#detail"),
            pl.when(~pl.col("#open")).then(pl.col("#resume_at")).alias("next"),
        )

    # ---- output --------------------------------------------------------------------------------------

    def _assemble(self, acc: pl.DataFrame, due: pl.DataFrame, blocked: pl.DataFrame) -> pl.DataFrame:
        actions = self.actions
        action_fields = [pl.col(name) for name in _ACTION_FIELDS]
        due_lists = (
            due.drop("#aorder")
            .join(actions, on="#akey")
            .sort("#row", "#aorder")
            .group_by("#row", maintain_order=True)
            .agg(pl.struct(*action_fields).alias("due"))
        )
        blocked_lists = (
            blocked.join(actions.drop("#aorder"), on="#akey")
            .sort("#row", "#aorder")
            .group_by("#row", maintain_order=True)
            .agg(
                pl.struct(*action_fields, pl.col("blocked_by"), pl.col("#next").alias("next_allowed")).alias(
                    "blocked"
                )
            )
        )
        out = acc.join(due_lists, on="#row", how="left").join(blocked_lists, on="#row", how="left")
        scores = [
            pl.struct(pl.lit(spec.name).alias("name"), pl.col(f"#score:{spec.name}#text").alias("value"))
            for spec, _, _ in self.fp._scores
        ]
        errors = (
            pl.concat_list([pl.col(c) for c in self.error_columns]).list.drop_nulls()
            if self.error_columns
            else pl.lit([], pl.List(_FINDING))
        )
        arms = [
            pl.struct(pl.lit(e.id).alias("experiment"), pl.col(f"#arm:{e.id}").alias("arm"))
            for e in self.fp._experiments
        ]
        experiments = pl.concat_list(arms) if arms else pl.lit([], pl.List(_ARM))
        result = out.sort("#row").select(
            pl.col("#id").alias("account_id"),
            pl.col("#as_of").alias("as_of"),
            pl.col("#segment").alias("segment"),
            pl.col("#segment_rule").alias("segment_rule"),
            pl.col("#segment_policy").alias("segment_policy"),
            pl.col("#ladder").alias("ladder"),
            pl.col("#stage_id").alias("stage"),
            pl.col("#stage_policy").alias("stage_policy"),
            pl.col("#stage_entered").alias("stage_entered"),
            pl.col("#day_in_stage").alias("day_in_stage"),
            pl.col("#status").alias("status"),
            pl.col("due").fill_null([]),
            pl.col("blocked").fill_null([]),
            (pl.concat_list(scores) if scores else pl.lit([], pl.List(_SCORE))).alias("scores"),
            pl.lit([], pl.List(_FINDING)).alias("warnings"),
            errors.alias("errors"),
            pl.col("#segments").alias("segments"),
            experiments.alias("experiments"),
        )
        return result.cast(decision_schema())  # type: ignore[arg-type]


_REASONS_SCHEMA = {
    "#pair": pl.UInt32,
    "#order": I32,
    "restriction": pl.String,
    "message": pl.String,
    "policy": pl.String,
    "next": UTC_US,
    "source": pl.String,
}


# -------------------------------------------------------------------------------------------------------
# helpers


def _text_list(raw: pl.DataFrame, name: str) -> pl.Expr:
    """A list-of-text column (a List, or one ';'-separated text cell as in CSV), empty when missing."""
    if name not in raw.columns:
        return pl.lit([], pl.List(pl.String))
    column = pl.col(name)
    if raw.schema[name] == pl.String:
        # blank items are dropped, as the CSV reader does
        items = column.str.split(";").list.eval(pl.element().str.strip_chars())
        return items.list.eval(pl.element().filter(pl.element() != "")).fill_null([])
    return column.cast(pl.List(pl.String)).fill_null([])


def _require_fixed_zone(zone: str) -> None:
    from .frame_io import _require_fixed_zone as require

    require(zone)


def _missing(value: pl.Expr) -> pl.Expr:
    return value.is_null() | (value == "")


def _first(conditions: list[tuple[pl.Expr, pl.Expr]]) -> tuple[pl.Expr, pl.Expr]:
    if not conditions:
        return pl.lit(False), pl.lit(None, pl.String)
    failed = pl.lit(False)
    chain: Any = None
    for condition, message in conditions:
        condition = condition.fill_null(False)
        failed = failed | condition
        chain = pl.when(condition).then(message) if chain is None else chain.when(condition).then(message)
    return failed, chain.otherwise(pl.lit(None, pl.String))


def _first_index(flags: list[pl.Expr]) -> pl.Expr:
    if not flags:
        return pl.lit(None, I32)
    chain: Any = None
    for index, flag in enumerate(flags):
        chain = (pl.when(flag) if chain is None else chain.when(flag)).then(pl.lit(index, I32))
    return chain.otherwise(pl.lit(None, I32))


def _lookup(index: pl.Expr, values: Sequence[Any]) -> pl.Expr:
    return index.replace_strict(list(range(len(values))), list(values), default=None, return_dtype=pl.String)


def _in_schedule(schedule: Any, weekday: pl.Expr, micros: pl.Expr) -> pl.Expr:
    """timecalc._allowed_in_zone's window test (no calendar): local time inside a window of the weekday."""
    if schedule is None:
        return pl.lit(True)
    result = pl.lit(False)
    for day in range(7):
        inside = pl.lit(False)
        for window in schedule.days[day]:
            inside = inside | (
                (micros >= window.start_minute * 60_000_000) & (micros < window.end_minute * 60_000_000)
            )
        result = pl.when(weekday == day).then(inside).otherwise(result)
    return result


def _intersect(tables: list[pl.DataFrame]) -> pl.DataFrame:
    """Instants in every table's intervals, as intervals (a sweep over the boundaries)."""
    needed = len(tables)
    edges = pl.concat(
        [
            pl.concat(
                [
                    t.select(pl.col("#istart").alias("#t"), pl.lit(1, I32).alias("#d")),
                    t.select(pl.col("#iend").alias("#t"), pl.lit(-1, I32).alias("#d")),
                ]
            )
            for t in tables
        ]
    )
    sweep = (
        edges.group_by("#t")
        .agg(pl.col("#d").sum())
        .sort("#t")
        .with_columns(pl.col("#d").cum_sum().alias("#inside"), pl.col("#t").shift(-1).alias("#next"))
    )
    return sweep.filter((pl.col("#inside") == needed) & pl.col("#next").is_not_null()).select(
        pl.col("#t").alias("#istart"), pl.col("#next").alias("#iend")
    )


def _window_counts(
    state: pl.DataFrame, events: pl.DataFrame, window: M.Window, keep: Sequence[str] = ()
) -> pl.DataFrame:
    """timecalc.count_in_window for each (pair, instant): calendar days in the primary zone or sliding."""
    joined = state.join(events.select("#row", "e_at", "#e_date"), on="#row", how="left")
    if window.calendar_days is not None:
        inside = (
            (pl.col("e_at") <= pl.col("#at"))
            & (pl.col("#e_date") >= pl.col("#a_date") - pl.duration(days=window.calendar_days - 1))
            & (pl.col("#e_date") <= pl.col("#a_date"))
        )
    else:
        assert window.sliding is not None
        inside = (pl.col("e_at") > pl.col("#at") - pl.duration(microseconds=F._micros(window.sliding))) & (
            pl.col("e_at") <= pl.col("#at")
        )
    return joined.group_by("#pair", maintain_order=True).agg(
        inside.fill_null(False).sum().alias("#count"),
        pl.col("#at").first(),
        *[pl.col(k).first() for k in keep],
    )


def _filter_events(
    events: pl.DataFrame, key: str, spec: M.EventFilter, default_channels: frozenset[str] | None
) -> pl.DataFrame:
    """restrict._filter_events over the union of each account's events."""
    channels = spec.channels if spec.channels is not None else default_channels
    condition = pl.lit(True)
    if spec.direction != "any":
        condition = condition & (pl.col("direction") == spec.direction)
    if channels is not None:
        condition = condition & pl.col("channel").is_in(sorted(channels))
    if spec.outcomes is not None:
        condition = condition & pl.col("outcome").is_in(sorted(spec.outcomes))
    if spec.exclude_outcomes:
        condition = condition & ~pl.col("outcome").is_in(sorted(spec.exclude_outcomes)).fill_null(False)
    if spec.exclude_consented:
        condition = condition & ~pl.col("consent")
    condition = condition & _key_matches(key)
    return events.filter(condition.fill_null(False))


def _key_matches(key: str) -> pl.Expr:
    """restrict._key_matches: whether an event of the account's history counts for the key."""
    own = pl.col("e_account") == pl.col("#id")
    if key == "account":
        return own
    if key == "debt":
        # a contact about several debts counts for each; an event naming no debt concerns its own account's
        named = pl.col("e_debt_ids").list.contains(pl.col("#debt")).fill_null(False)
        debt = _or_else(
            pl.col("e_debt_full"), pl.when(own).then(pl.col("#debt")).otherwise(pl.col("e_account"))
        )
        return named | (debt == pl.col("#debt")).fill_null(False)
    if key == "phone":
        # without a number on file the account stands in; an own event without a number counts against it
        matches = (pl.col("e_contact") == pl.col("#phone")).fill_null(False) | (
            own & pl.col("e_contact").is_null()
        )
        return pl.when(pl.col("#phone").is_null()).then(own).otherwise(matches)
    person = _or_else(
        pl.col("e_person_full"), pl.when(own).then(pl.col("#person")).otherwise(pl.col("e_account"))
    )
    return (person == pl.col("#person")).fill_null(False)


def _instant_and_offset(raw: pl.DataFrame, name: str) -> tuple[pl.Expr, pl.Expr]:
    """A datetime column as (UTC instant, offset seconds): a struct {at, off} or a zone-aware Datetime."""
    dtype = raw.schema[name]
    column = pl.col(name)
    if isinstance(dtype, pl.Struct):
        return column.struct.field("at").cast(UTC_US), column.struct.field("off").cast(I32)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            raise ValueError(f"column {name!r} holds date-times without a time zone")
        _require_fixed_zone(dtype.time_zone)
        local = column.dt.convert_time_zone(dtype.time_zone)
        offset = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds().cast(I32)
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us"), offset
    raise ValueError(f"column {name!r} must hold date-times, not {dtype}")


def _decimal_from(raw: pl.DataFrame, name: str, default: str | None) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """A decimal column (text, Decimal or number) as (coefficient, exponent, negative zero)."""
    if name not in raw.columns:
        if default is None:
            raise ValueError(f"column {name!r} is required")
        return pl.lit(0, I128), pl.lit(0, I32), pl.lit(False)
    c, e, negative_zero, _ = _parse_decimal_text(_as_decimal_text(pl.col(name), raw.schema[name]))
    if default is not None:
        dc, de = F.decimal_parts(Decimal(default))
        present = pl.col(name).is_not_null()
        return (
            pl.when(present).then(c).otherwise(pl.lit(dc, I128)),
            pl.when(present).then(e).otherwise(pl.lit(de, I32)),
            negative_zero.fill_null(False),
        )
    return c, e, negative_zero


def _as_decimal_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return column
    if isinstance(dtype, pl.Decimal) or dtype.is_numeric():
        return column.cast(pl.String)
    raise ValueError(f"a decimal column cannot hold {dtype}")


_DECIMAL_PATTERN = r"^\s*([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\s*$"


def _parse_decimal_text(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Decimal text → (coefficient, exponent, negative zero, out of range), as ``Decimal(text)`` reads it."""
    groups = text.str.extract_groups(_DECIMAL_PATTERN)
    sign = groups.struct.field("1")
    whole = groups.struct.field("2").fill_null("")
    fraction = groups.struct.field("3").fill_null("")
    exponent = groups.struct.field("4").fill_null("0")
    digits = pl.concat_str(whole, fraction).str.strip_chars_start("0")
    long_ = digits.str.len_chars() > 34
    magnitude = pl.when(digits == "").then(pl.lit(0, I128)).otherwise(digits.cast(I128, strict=False))
    negative = sign == "-"
    coefficient = pl.when(negative).then(F._neg(magnitude)).otherwise(magnitude)
    exp = exponent.cast(I64, strict=False) - fraction.str.len_chars().cast(I64)
    bad = long_ | exp.is_null() | ~exp.is_between(-999_999, 999_999)
    valid = text.is_not_null() & groups.struct.field("2").is_not_null() & ~bad
    return (
        pl.when(valid).then(coefficient),
        pl.when(valid).then(exp.cast(I32)),
        negative & (magnitude == 0),
        text.is_not_null() & bad,
    )


def _to_frame(column: pl.Expr, dtype: pl.DataType, vtype: T.Type) -> tuple[pl.Expr, pl.Expr | None]:
    """An input column of a field in the frame representation of its type, and where it is out of range."""
    kind = vtype.kind
    if kind == "decimal":
        c, e, _, bad = _parse_decimal_text(_as_decimal_text(column, dtype))
        return pl.when(c.is_not_null()).then(pl.struct(c.alias("c"), e.alias("e"))), bad
    if kind == "datetime":
        if isinstance(dtype, pl.Struct):
            return column, None
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            _require_fixed_zone(dtype.time_zone)
            local = column.dt.convert_time_zone(dtype.time_zone)
            offset = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds().cast(I32)
            return pl.when(column.is_not_null()).then(
                pl.struct(
                    column.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("at"),
                    offset.alias("off"),
                )
            ), None
        raise ValueError(f"a datetime field needs zone-aware date-times, not {dtype}")
    if kind == "duration":
        if isinstance(dtype, pl.Duration):
            return column.dt.total_microseconds().cast(I64), None
        return column.cast(I64), None
    if kind == "list":
        item = vtype.item.kind if vtype.item is not None else "string"
        inner = dtype.inner if isinstance(dtype, pl.List) else None
        if item == "decimal":
            text = pl.element() if inner == pl.String else pl.element().cast(pl.String)
            c, e, _, bad = _parse_decimal_text(text)
            return column.list.eval(F.dec_key(c, e)), column.list.eval(bad).list.any()
        if item == "datetime":
            if isinstance(inner, pl.Struct):
                return column.list.eval(pl.element().struct.field("at")), None
            return column.list.eval(pl.element().dt.convert_time_zone("UTC").dt.cast_time_unit("us")), None
        if item == "duration":
            if isinstance(inner, pl.Duration):
                return column.list.eval(pl.element().dt.total_microseconds()), None
            return column.cast(pl.List(I64)), None
        return column.cast(F.frame_dtype(vtype)), None
    return column.cast(F.frame_dtype(vtype)), None
