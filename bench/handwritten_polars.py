"""The reference policy's decisions written by hand as Polars expressions: the frame backend's yardstick.

:func:`decide_frames` decides every account of a portfolio at once, the way ``bench/reference-policy.yaml``
says, with the rules of that one policy written out as Polars expressions: segment, ladder, stage (with
stage memory and ``min_days_in_stage``), the actions due, and the actions blocked with the restrictions that
block them and the earliest time every restriction allows them. The earliest time is found as the engine
finds it, by rounds: every blocked action moves to the latest of its blockers' next times until nothing
blocks it (or a blocker cannot say when it lifts).

What is worked out in Python, once per run and never per account: the as-of date in each of the portfolio's
few time zones, and the US federal holidays of the years in range. Like ``handwritten_python`` it covers
the portfolios of ``bench/generate.py``: at most one time zone per account (US zones, whose clock changes
never fall at 08:00, 21:00 or midnight) and no promises to pay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import holidays
import polars as pl
from handwritten_python import EARLY, LATE, MID, Outcome

UTC_US = pl.Datetime("us", "UTC")
QUIET_START = dt.time(8)
QUIET_END = dt.time(21)
MAX_STEPS = 64
# restrictions in the policy's order, after the opt-out and contact-data checks
RULES = ("opt-out", "contact-data", "quiet-hours", "us-holidays", "seven-in-seven", "email-weekly-cap",
         "after-conversation", "sms-gap", "bankruptcy-hold", "cease-hold", "dispute-hold", "status-block")
HOLD_RULES = (("bankruptcy-hold", "bankruptcy", None), ("cease-hold", "cease", ("letter", "cease_ack")),
              ("dispute-hold", "dispute", ("letter", "dispute_verification")))


def _actions_table() -> pl.DataFrame:
    """Every action of every stage: ladder, stage index, its place in the decision, cadence."""
    rows: list[dict[str, Any]] = []
    for ladder, stages in (("early", EARLY), ("mid", MID), ("late", LATE)):
        for index, (_, _, actions) in enumerate(stages):
            for order, (channel, template, kind, argument) in enumerate(actions):
                rows.append({"ladder": ladder, "stage_index": index, "order": order, "channel": channel,
                             "template": template, "kind": kind,
                             "every_days": argument if kind == "every" else None,
                             "on_days": list(argument) if kind == "on_days" else None})
    return pl.DataFrame(rows, schema={"ladder": pl.String, "stage_index": pl.Int32, "order": pl.Int32,
                                      "channel": pl.String, "template": pl.String, "kind": pl.String,
                                      "every_days": pl.Int32, "on_days": pl.List(pl.Int32)})


def _stages_table() -> pl.DataFrame:
    rows = [{"ladder": ladder, "stage_index": index, "stage_id": stage, "min_days": min_days}
            for ladder, stages in (("early", EARLY), ("mid", MID), ("late", LATE))
            for index, (stage, min_days, _) in enumerate(stages)]
    return pl.DataFrame(rows, schema={"ladder": pl.String, "stage_index": pl.Int32, "stage_id": pl.String,
                                      "min_days": pl.Int32})


ACTIONS = _actions_table()
STAGES = _stages_table()


class _Zones:
    """Expressions evaluated in each account's zone (UTC when it has none), one branch per zone present."""

    def __init__(self, zones: Sequence[str]) -> None:
        self.zones = tuple(zones)

    def each(self, make: Callable[[str], pl.Expr], zone: str = "zone") -> pl.Expr:
        expr = make("UTC")
        for name in self.zones:
            expr = pl.when(pl.col(zone) == name).then(make(name)).otherwise(expr)
        return expr

    def local_date(self, instant: pl.Expr) -> pl.Expr:
        return self.each(lambda z: instant.dt.convert_time_zone(z).dt.date())

    def local_time(self, instant: pl.Expr) -> pl.Expr:
        return self.each(lambda z: instant.dt.convert_time_zone(z).dt.time())

    def at_local(self, day: pl.Expr, clock: dt.time = dt.time(0)) -> pl.Expr:
        """The UTC instant of ``day`` at ``clock`` local time (a time every US day has exactly once)."""
        wall = day.cast(pl.Datetime("us")) + pl.duration(hours=clock.hour, minutes=clock.minute)
        return self.each(lambda z: wall.dt.replace_time_zone(z, ambiguous="earliest", non_existent="null")
                         .dt.convert_time_zone("UTC"))


def _holiday_table(start: dt.date, end: dt.date) -> pl.DataFrame:
    """US federal holidays (observed days included) from ``start`` to ``end``, each with the first day
    after it that is not a holiday."""
    days: set[dt.date] = set()
    for year in range(start.year, end.year + 2):
        days |= set(holidays.country_holidays("US", years=year))
    rows = []
    for day in sorted(days):
        after = day + dt.timedelta(days=1)
        while after in days:
            after += dt.timedelta(days=1)
        rows.append({"holiday": day, "reopens": after})
    return pl.DataFrame(rows, schema={"holiday": pl.Date, "reopens": pl.Date})


def decide_frames(accounts: pl.DataFrame, history: pl.DataFrame, holds: pl.DataFrame,
                  as_of: dt.datetime) -> pl.DataFrame:
    """Decide every account at ``as_of``: one row per account, in input order, with ``segment``, ``ladder``,
    ``stage``, ``due`` (list of ``{channel, template}``) and ``blocked`` (list of ``{channel, template,
    restrictions, next_allowed}``). The frames have the columns of ``bench/generate.py``'s Parquet files."""
    as_of = as_of.astimezone(dt.UTC)
    now = pl.lit(as_of, dtype=UTC_US)
    acc = accounts.with_row_index("row").with_columns(zone=pl.col("timezone").list.first())
    zones = _Zones(sorted(z for z in acc["zone"].unique().to_list() if z is not None))
    today_by_zone = pl.DataFrame({"zone": [None, *zones.zones]}, schema={"zone": pl.String}).with_columns(
        today=zones.local_date(now))
    acc = acc.join(today_by_zone, on="zone", how="left", nulls_equal=True)
    acc = _stage(acc)
    pairs = _due_pairs(acc, history, zones, as_of)
    holiday_table = _holiday_table(as_of.date() - dt.timedelta(days=1), as_of.date() + dt.timedelta(days=400))
    judged = _judge(pairs, acc, history, holds, zones, holiday_table, as_of)
    due = (judged.filter(pl.col("restrictions").list.len() == 0).sort("row", "order")
           .group_by("row", maintain_order=True)
           .agg(due=pl.struct("channel", "template")))
    blocked = (judged.filter(pl.col("restrictions").list.len() > 0).sort("row", "order")
               .group_by("row", maintain_order=True)
               .agg(blocked=pl.struct("channel", "template", "restrictions", "next_allowed")))
    return (acc.select("row", "account_id", "segment", "ladder", pl.col("stage_id").alias("stage"))
            .join(due, on="row", how="left").join(blocked, on="row", how="left")
            .sort("row").drop("row"))


def _stage(acc: pl.DataFrame) -> pl.DataFrame:
    """Segment, ladder and stage: the most severe stage whose condition holds, unless the account is held
    in its remembered stage by ``min_days_in_stage``; none when cured (``dpd <= 0``)."""
    dpd = pl.col("dpd")
    high = pl.col("balance") >= 2500
    never_paid = pl.col("last_payment_date").is_null()
    broken = pl.col("broken_promises").fill_null(0)
    segment = (pl.when((dpd <= 30) & ~high).then(pl.lit("early_low"))
               .when(dpd <= 30).then(pl.lit("early_high"))
               .when(dpd.is_between(31, 90)).then(pl.lit("mid"))
               .when(dpd.is_between(91, 180)).then(pl.lit("late"))
               .when((dpd > 180) & high).then(pl.lit("legal"))
               .otherwise(pl.lit("writeoff_review")))
    ladder = pl.when(dpd <= 30).then(pl.lit("early")).when(dpd <= 90).then(pl.lit("mid")) \
        .otherwise(pl.lit("late"))
    early = (pl.when(dpd >= 27).then(4).when(dpd >= 20).then(3)
             .when((dpd >= 10) | ((dpd >= 5) & high) | ((dpd >= 3) & never_paid) | (broken >= 1)).then(2)
             .when(dpd >= 6).then(1).when(dpd >= 1).then(0))
    mid = (pl.when(dpd >= 85).then(5).when(dpd >= 75).then(4).when(dpd >= 60).then(3).when(dpd >= 50).then(2)
           .when(dpd >= 40).then(1).when(dpd >= 31).then(0))
    late = (pl.when(((dpd >= 181) & ~high) | (dpd >= 360)).then(6).when((dpd >= 270) & high).then(5)
            .when((dpd >= 181) & high).then(4).when(dpd >= 150).then(3).when(dpd >= 121).then(2)
            .when(dpd >= 105).then(1).when(dpd >= 91).then(0))
    acc = acc.with_columns(segment=segment, ladder=ladder).with_columns(
        target=pl.when(pl.col("ladder") == "early").then(early).when(pl.col("ladder") == "mid").then(mid)
        .otherwise(late).cast(pl.Int32))
    remembered = STAGES.select("ladder", pl.col("stage_id").alias("stage"),
                               pl.col("stage_index").alias("current"),
                               pl.col("min_days").alias("current_min_days"))
    acc = acc.join(remembered, on=["ladder", "stage"], how="left")
    entered = pl.when(pl.col("current").is_not_null()).then(pl.col("stage_entered"))
    held = (pl.col("current").is_not_null() & entered.is_not_null()
            & (pl.col("target").is_null() | (pl.col("target") != pl.col("current")))
            & (((pl.col("today") - entered).dt.total_days() + 1) <= pl.col("current_min_days")))
    cured = dpd <= 0
    acc = acc.with_columns(
        stage_index=pl.when(cured).then(None).when(held).then(pl.col("current")).otherwise(pl.col("target")),
        entered=pl.when(cured).then(None).when(held).then(entered)
        .when(pl.col("target").is_null()).then(None)
        .when(pl.col("target") == pl.col("current")).then(pl.coalesce(entered, pl.col("today")))
        .otherwise(pl.col("today")))
    return acc.join(STAGES.select("ladder", "stage_index", "stage_id"), on=["ladder", "stage_index"],
                    how="left")


def _due_pairs(acc: pl.DataFrame, history: pl.DataFrame, zones: _Zones, as_of: dt.datetime) -> pl.DataFrame:
    """(account, action) pairs whose cadence makes the action due: attempts are the account's own outbound
    contacts on the channel (with the template, or none recorded) since the local midnight of entry."""
    pairs = (acc.filter(pl.col("stage_index").is_not_null())
             .select("row", "account_id", "zone", "today", "ladder", "stage_index", "entered")
             .join(ACTIONS, on=["ladder", "stage_index"], how="inner")
             .with_row_index("pair")
             .with_columns(stage_start=zones.at_local(pl.col("entered")),
                           day_in_stage=(pl.col("today") - pl.col("entered")).dt.total_days() + 1))
    # the latest listed day reached (on_days are written in increasing order in this policy)
    on_days = (pairs.filter(pl.col("kind") == "on_days").select("pair", "on_days", "day_in_stage")
               .explode("on_days").filter(pl.col("on_days") <= pl.col("day_in_stage"))
               .group_by("pair").agg(latest=pl.col("on_days").max()))
    pairs = pairs.join(on_days, on="pair", how="left").with_columns(
        latest_start=zones.at_local(pl.col("entered") + pl.duration(days=pl.col("latest") - 1)))
    attempts = (history.filter((pl.col("at") <= as_of) & (pl.col("direction") == "outbound"))
                .select("account_id", "channel", pl.col("template").alias("sent"), "at"))
    last = (pairs.select("pair", "account_id", "channel", "template", "stage_start")
            .join(attempts, on=["account_id", "channel"], how="inner")
            .filter((pl.col("template").is_null() | pl.col("sent").is_null()
                     | (pl.col("sent") == pl.col("template")))
                    & (pl.col("at") >= pl.col("stage_start")))
            .group_by("pair").agg(last_at=pl.col("at").max()))
    pairs = pairs.join(last, on="pair", how="left").with_columns(last_day=zones.local_date(pl.col("last_at")))
    last_at = pl.col("last_at")
    due = (pl.when(pl.col("kind") == "once").then(last_at.is_null())
           .when(pl.col("kind") == "every")
           .then(last_at.is_null()
                 | (pl.col("today") >= pl.col("last_day") + pl.duration(days=pl.col("every_days"))))
           .otherwise(pl.col("latest").is_not_null()
                      & (last_at.is_null() | (last_at < pl.col("latest_start")))))
    return pairs.filter(due).select("pair", "row", "account_id", "order", "channel", "template")


def _judge(pairs: pl.DataFrame, acc: pl.DataFrame, history: pl.DataFrame, holds: pl.DataFrame, zones: _Zones,
           holiday_table: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """For every due pair: the restrictions that block it now (empty: due) and its next allowed time."""
    people = acc.select("account_id", "person_id", "debt_id", "zone", "phone", "email", "address",
                        "opt_out_channels", "status")
    state = pairs.join(people, on="account_id", how="left")
    events = _history_views(state, history, zones, as_of)
    hold_rows = holds.select("account_id", pl.col("type").alias("hold_type"), "start", "end",
                             pl.col("channels").alias("hold_channels"))
    at = pl.lit(as_of, dtype=UTC_US)
    current = state.with_columns(at=at)
    first = _blockers(current, events, hold_rows, zones, holiday_table)
    results = [first.filter(pl.col("restrictions").list.len() == 0).select(
        "pair", "restrictions", pl.lit(None, dtype=UTC_US).alias("next_allowed"))]
    reasons = first.select("pair", "restrictions")
    blocked = first.filter(pl.col("restrictions").list.len() > 0)
    # the engine checks the blockers of at most MAX_STEPS instants, as_of included
    for _ in range(MAX_STEPS - 1):
        if blocked.height == 0:
            break
        settled = blocked.filter(pl.col("unforeseeable") | (pl.col("candidate") <= pl.col("at")))
        results.append(settled.select("pair", pl.lit(None, dtype=UTC_US).alias("next_allowed")))
        moving = blocked.filter(~pl.col("unforeseeable") & (pl.col("candidate") > pl.col("at")))
        if moving.height == 0:
            blocked = moving
            break
        nxt = _blockers(moving.select(*state.columns, pl.col("candidate").alias("at")), events, hold_rows,
                        zones, holiday_table)
        results.append(nxt.filter(pl.col("restrictions").list.len() == 0).select(
            "pair", pl.col("at").alias("next_allowed")))
        blocked = nxt.filter(pl.col("restrictions").list.len() > 0)
    if blocked.height:
        results.append(blocked.select("pair", pl.lit(None, dtype=UTC_US).alias("next_allowed")))
    times = pl.concat([r.select("pair", "next_allowed") for r in results])
    return (pairs.join(reasons, on="pair", how="left").join(times, on="pair", how="left")
            .with_columns(next_allowed=pl.when(pl.col("restrictions").list.len() > 0)
                          .then(pl.col("next_allowed"))))


def _history_views(state: pl.DataFrame, history: pl.DataFrame, zones: _Zones,
                   as_of: dt.datetime) -> dict[str, pl.DataFrame]:
    """What the restrictions count, per account with a due action: the calls about its debt that the
    7-in-7 cap counts, the e-mails to its person, the end of every conversation's cool-down, the person's
    last text. Local dates are the account's."""
    accounts = state.select("account_id", "person_id", "debt_id", "zone").unique("account_id")
    past = history.filter(pl.col("at") <= as_of)
    calls = (accounts.join(past.filter((pl.col("channel") == "phone") & (pl.col("direction") == "outbound")
                                       & ~pl.col("outcome").is_in(["busy", "not_in_service"])
                                       & ~pl.col("consent").fill_null(False))
                           .select(pl.col("debt_id"), pl.col("at").alias("event_at")), on="debt_id")
             .with_columns(day=zones.local_date(pl.col("event_at"))))
    emails = (accounts.join(past.filter((pl.col("channel") == "email") & (pl.col("direction") == "outbound"))
                            .select(pl.col("person_id"), pl.col("at").alias("event_at")), on="person_id")
              .with_columns(day=zones.local_date(pl.col("event_at"))))
    talks = past.filter((pl.col("channel") == "phone")
                        & pl.col("outcome").is_in(["conversation", "right_party_contact"]))
    conversations = (accounts.join(talks.select(pl.col("debt_id"), pl.col("at").alias("event_at")),
                                   on="debt_id")
                     .with_columns(end=zones.at_local(zones.local_date(pl.col("event_at"))
                                                      + pl.duration(days=7)))
                     .select("account_id", "end"))
    texts = (accounts.join(past.filter((pl.col("channel") == "sms") & (pl.col("direction") == "outbound"))
                           .select(pl.col("person_id"), pl.col("at").alias("event_at")), on="person_id")
             .group_by("account_id").agg(last_sms=pl.col("event_at").max()))
    return {"calls": calls.select("account_id", "zone", "event_at", "day"),
            "emails": emails.select("account_id", "zone", "event_at", "day"),
            "conversations": conversations, "texts": texts}


def _cap(state: pl.DataFrame, counted: pl.DataFrame, channel: str, limit: int, zones: _Zones) -> pl.DataFrame:
    """Pairs on ``channel`` with ``limit`` counted events today and the 6 days before (at their ``at``), and
    the first local midnight after ``at`` at which enough events have left the period."""
    on = state.filter(pl.col("channel") == channel).select("pair", "account_id", "zone", "at").with_columns(
        today=zones.local_date(pl.col("at")))
    counts = (on.join(counted.select("account_id", "event_at", "day"), on="account_id")
              .filter((pl.col("event_at") <= pl.col("at")) & (pl.col("day") <= pl.col("today"))
                      & (pl.col("day") >= pl.col("today") - pl.duration(days=6)))
              .group_by("pair").agg(count=pl.len()).filter(pl.col("count") >= limit))
    if counts.height == 0:
        return pl.DataFrame(schema={"pair": pl.UInt32, "next": UTC_US})
    capped = on.join(counts.select("pair"), on="pair")
    leaves = (capped.join(counted.select("account_id", pl.col("day").alias("left_day")), on="account_id")
              .with_columns(leave_day=pl.col("left_day") + pl.duration(days=7))
              .with_columns(leave=zones.at_local(pl.col("leave_day")))
              .filter(pl.col("leave") > pl.col("at")).unique(["pair", "leave"]))
    remaining = (leaves.join(counted.select("account_id", "event_at", "day"), on="account_id", how="left")
                 .with_columns(inside=(pl.col("event_at") <= pl.col("leave"))
                               & (pl.col("day") <= pl.col("leave_day"))
                               & (pl.col("day") >= pl.col("leave_day") - pl.duration(days=6)))
                 .group_by("pair", "leave").agg(count=pl.col("inside").sum())
                 .filter(pl.col("count") < limit).group_by("pair").agg(next=pl.col("leave").min()))
    return remaining


def _blockers(state: pl.DataFrame, events: dict[str, pl.DataFrame], holds: pl.DataFrame, zones: _Zones,
              holiday_table: pl.DataFrame) -> pl.DataFrame:
    """Every restriction that blocks each pair at its ``at``: ``restrictions`` (ids in the policy's order),
    ``unforeseeable`` (one of them cannot say when it lifts) and ``candidate`` (the latest next time)."""
    channel = pl.col("channel")
    at = pl.col("at")
    frame = state.with_columns(local_day=zones.local_date(at), local_time=zones.local_time(at))
    frame = frame.join(holiday_table, left_on="local_day", right_on="holiday", how="left")
    # (blocked, next time) of each check; a null next time with blocked means not foreseeable
    checks: dict[str, tuple[pl.Expr, pl.Expr]] = {}
    checks["opt-out"] = (pl.col("opt_out_channels").list.contains(channel), pl.lit(None, UTC_US))
    contact = (pl.when(channel.is_in(["phone", "sms"])).then(pl.col("phone"))
               .when(channel == "email").then(pl.col("email"))
               .when(channel.is_in(["letter", "field_visit", "lawyer_letter"])).then(pl.col("address"))
               .otherwise(pl.lit("not needed")))
    checks["contact-data"] = (contact.is_null() | (contact == ""), pl.lit(None, UTC_US))
    inside = (pl.col("local_time") >= QUIET_START) & (pl.col("local_time") < QUIET_END)
    opening_day = pl.when(pl.col("local_time") < QUIET_START).then(pl.col("local_day")) \
        .otherwise(pl.col("local_day") + pl.duration(days=1))
    checks["quiet-hours"] = (channel.is_in(["phone", "sms", "email", "field_visit"])
                             & (pl.col("zone").is_null() | ~inside),
                             pl.when(pl.col("zone").is_not_null())
                             .then(zones.at_local(opening_day, QUIET_START)))
    checks["us-holidays"] = (channel.is_in(["phone", "sms", "field_visit"]) & pl.col("reopens").is_not_null(),
                             zones.at_local(pl.col("reopens")))
    for rule, name, counted_channel, limit in (("seven-in-seven", "calls", "phone", 7),
                                               ("email-weekly-cap", "emails", "email", 3)):
        capped = _cap(frame, events[name], counted_channel, limit, zones).rename({"next": f"{rule}:next"})
        frame = frame.join(capped, on="pair", how="left")
        checks[rule] = (pl.col(f"{rule}:next").is_not_null(), pl.col(f"{rule}:next"))
    cooling = (frame.filter(channel == "phone").select("pair", "account_id", "at")
               .join(events["conversations"], on="account_id").filter(pl.col("at") < pl.col("end"))
               .group_by("pair").agg(pl.col("end").max().alias("after-conversation:next")))
    frame = frame.join(cooling, on="pair", how="left").join(events["texts"], on="account_id", how="left")
    checks["after-conversation"] = (pl.col("after-conversation:next").is_not_null(),
                                    pl.col("after-conversation:next"))
    gap_end = pl.col("last_sms") + pl.duration(hours=24)
    checks["sms-gap"] = ((channel == "sms") & pl.col("last_sms").is_not_null() & (at < gap_end), gap_end)
    held = (frame.select("pair", "account_id", "channel", "template", "local_day")
            .join(holds, on="account_id")
            .filter((pl.col("start") <= pl.col("local_day"))
                    & (pl.col("end").is_null() | (pl.col("local_day") <= pl.col("end")))
                    & (pl.col("hold_channels").is_null() | (pl.col("hold_channels").list.len() == 0)
                       | pl.col("hold_channels").list.contains(pl.col("channel")))))
    for rule, kind, allowed in HOLD_RULES:
        rows = held.filter(pl.col("hold_type") == kind)
        if allowed is not None:
            rows = rows.filter(~((pl.col("channel") == allowed[0]) & (pl.col("template") == allowed[1]))
                               .fill_null(True))
        lifted = rows.group_by("pair").agg(
            open_ended=pl.col("end").is_null().any(), last_end=pl.col("end").max()).with_columns(
            blocked=pl.lit(True))
        frame = frame.join(lifted.select("pair", pl.col("blocked").alias(f"{rule}:on"),
                                         pl.col("open_ended").alias(f"{rule}:open"),
                                         pl.col("last_end").alias(f"{rule}:end")), on="pair", how="left")
        checks[rule] = (pl.col(f"{rule}:on").fill_null(False),
                        pl.when(~pl.col(f"{rule}:open")).then(
                            zones.at_local(pl.col(f"{rule}:end") + pl.duration(days=1))))
    checks["status-block"] = (pl.col("status").is_in(["bankrupt", "deceased"]), pl.lit(None, UTC_US))
    frame = frame.with_columns(**{f"{rule}:blocked": checks[rule][0].fill_null(False) for rule in RULES},
                               **{f"{rule}:time": checks[rule][1].cast(UTC_US) for rule in RULES})
    restrictions = pl.concat_list([pl.when(pl.col(f"{rule}:blocked")).then(pl.lit(rule)) for rule in RULES]) \
        .list.drop_nulls()
    unforeseeable = pl.any_horizontal([pl.col(f"{rule}:blocked") & pl.col(f"{rule}:time").is_null()
                                       for rule in RULES])
    candidate = pl.max_horizontal([pl.when(pl.col(f"{rule}:blocked")).then(pl.col(f"{rule}:time"))
                                   for rule in RULES])
    return frame.with_columns(restrictions=restrictions, unforeseeable=unforeseeable, candidate=candidate)


def outcomes(frame: pl.DataFrame) -> list[Outcome]:
    """The rows of a :func:`decide_frames` result as the outcomes ``handwritten_python`` compares."""
    out = []
    for row in frame.iter_rows(named=True):
        due = tuple((d["channel"], d["template"]) for d in row["due"] or ())
        blocked = tuple((b["channel"], b["template"], tuple(b["restrictions"]), b["next_allowed"])
                        for b in row["blocked"] or ())
        out.append(Outcome(row["account_id"], row["segment"], row["ladder"], row["stage"], due, blocked))
    return out


def read_portfolio(accounts: str, history: str,
                   holds: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The generator's Parquet files as frames."""
    return pl.read_parquet(accounts), pl.read_parquet(history), pl.read_parquet(holds)
