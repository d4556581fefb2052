"""Deterministic benchmark portfolios for ``bench/reference-policy.yaml``.

Writes accounts, contact history and holds, each as CSV and as Parquet, into ``build/bench/``:
``accounts-<N>.csv``, ``accounts-<N>.parquet``, ``history-<N>.*`` and ``holds-<N>.*``. The data are drawn
with a fixed seed, account by account (each account's history and holds right after it), accounts and
holds from one random stream and history from another: a smaller portfolio is exactly the first accounts
of a larger one, portfolios with more or fewer events per account hold the same accounts, and every run
writes the same bytes. About five history events per account on average, over the 14 days before the
as-of time.

Every value is invented: phone numbers use area code 555, which is not assigned to any region, e-mail
addresses use the ``example.com`` domain reserved for documentation, and addresses name no real street.

    python bench/generate.py --accounts 100000              # writes build/bench/*-100000.{csv,parquet}
    python bench/generate.py --accounts 10000 --events 20   # about 20 events each: *-10000-e20.*
    python bench/generate.py --accounts 1000 --out DIR
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import math
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

SEED = 20261125
#: the instant the benchmarks decide at: Wednesday before Thanksgiving (a US federal holiday on Thursday),
#: 10:00 in New York and 07:00 in Los Angeles, so quiet hours, holidays and cool-downs all come into play
AS_OF = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
HISTORY_DAYS = 14
EVENTS_PER_ACCOUNT = 5
#: share of the accounts 20 to 90 days past due whose history has a dialler burst
BURST_SHARE = 0.12
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
#: accounts generated and written per chunk (bounds the memory a large portfolio needs)
CHUNK = 50_000

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "bench"
POLICY = Path(__file__).resolve().parent / "reference-policy.yaml"

ACCOUNT_COLUMNS = ("account_id", "person_id", "debt_id", "first_name", "product", "status", "dpd", "balance",
                   "broken_promises", "last_payment_date", "timezone", "phone", "email", "address",
                   "opt_out_channels", "stage", "stage_entered")
HISTORY_COLUMNS = ("account_id", "person_id", "debt_id", "contact", "channel", "direction", "outcome", "at",
                   "consent", "template", "subject")
HOLD_COLUMNS = ("account_id", "type", "start", "end", "channels", "note")

# (zone, weight): where US customers live, roughly by population; a few accounts have no zone on file
ZONES: tuple[tuple[str | None, float], ...] = (
    ("America/New_York", 40.0), ("America/Chicago", 25.0), ("America/Denver", 6.0), ("America/Phoenix", 3.0),
    ("America/Los_Angeles", 22.0), ("America/Anchorage", 1.5), ("Pacific/Honolulu", 1.5), (None, 1.0),
)
FIRST_NAMES = ("Maria", "James", "Wei", "Aisha", "Carlos", "Olga", "Liam", "Priya", "Kofi", "Sofia", "Noah",
               "Hana", "Mateo", "Fatima", "Lucas", "Emma", "Omar", "Grace", "Ivan", "Zoe")
# (low, high, weight) bands of days past due: skewed to the early buckets, a few just cured
DPD_BANDS = ((-3, 0, 4.0), (1, 30, 43.0), (31, 60, 19.0), (61, 90, 12.0), (91, 180, 14.0), (181, 400, 8.0))
PRODUCTS = (("card", 60.0), ("personal_loan", 28.0), ("auto_loan", 12.0))
STATUSES = (("active", 96.0), ("disputed", 1.5), ("bankrupt", 1.5), ("deceased", 1.0))

# the ladders' stages with the least days past due at which their `enter` holds for most accounts; the
# stage an account was left in by the previous run is drawn from the stages it had reached
LADDER_STAGES: dict[str, tuple[tuple[str, int], ...]] = {
    "early": (("reminder", 1), ("second_reminder", 6), ("call", 10), ("daily_call", 20), ("pre_letter", 27)),
    "mid": (("demand_letter", 31), ("calls", 40), ("settlement_offer", 50), ("intensive", 60),
            ("final_notice", 75), ("pre_charge_off", 85)),
    "late": (("field_visit", 91), ("agency_calls", 105), ("lawyer_letter", 121), ("pre_litigation", 150),
             ("litigation", 181), ("judgment", 270), ("write_off_review", 360)),
}
# channel mix of the history by ladder: (channel, weight)
CHANNEL_MIX: dict[str, tuple[tuple[str, float], ...]] = {
    "early": (("phone", 45.0), ("sms", 30.0), ("email", 20.0), ("letter", 5.0)),
    "mid": (("phone", 60.0), ("sms", 15.0), ("email", 12.0), ("letter", 13.0)),
    "late": (("phone", 50.0), ("letter", 20.0), ("field_visit", 10.0), ("lawyer_letter", 8.0),
             ("email", 12.0)),
}
OUTCOMES: dict[str, tuple[tuple[str, float], ...]] = {
    "phone": (("no_answer", 38.0), ("voicemail", 20.0), ("busy", 8.0), ("not_in_service", 2.0),
              ("conversation", 14.0), ("right_party_contact", 9.0), ("wrong_party", 4.0), ("refused", 5.0)),
    "sms": (("delivered", 90.0), ("failed", 10.0)),
    "email": (("delivered", 70.0), ("opened", 22.0), ("bounced", 8.0)),
    "letter": (("sent", 100.0),),
    "field_visit": (("conversation", 35.0), ("no_answer", 65.0)),
    "lawyer_letter": (("sent", 100.0),),
}
TEMPLATES: dict[str, tuple[str | None, ...]] = {
    "sms": ("reminder_sms", "payment_link_sms", "payment_link_sms", None),
    "email": ("reminder_email", "reminder_email", "settlement_email", None),
    "letter": ("demand_letter", "demand_letter", "final_notice", "judgment_notice"),
    "lawyer_letter": ("lawyer_demand",),
}
HOLD_TYPES = (("dispute", 45.0), ("bankruptcy", 25.0), ("cease", 20.0), ("litigation", 10.0))


def _cumulative(table: Sequence[tuple[Any, float]]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    total = sum(weight for _, weight in table)
    running, bounds = 0.0, []
    for _, weight in table:
        running += weight / total
        bounds.append(running)
    bounds[-1] = 1.0
    return tuple(value for value, _ in table), tuple(bounds)


class _Pick:
    """A weighted choice by one uniform draw (the same draws on every platform)."""

    __slots__ = ("values", "bounds")

    def __init__(self, table: Sequence[tuple[Any, float]]) -> None:
        self.values, self.bounds = _cumulative(table)

    def __call__(self, rng: random.Random) -> Any:
        u = rng.random()
        for value, bound in zip(self.values, self.bounds, strict=True):
            if u < bound:
                return value
        return self.values[-1]


_ZONE = _Pick(ZONES)
_BAND = _Pick(tuple(((lo, hi), w) for lo, hi, w in DPD_BANDS))
_STATUS = _Pick(STATUSES)
_PRODUCT = _Pick(PRODUCTS)
_HOLD = _Pick(HOLD_TYPES)
_MIX = {ladder: _Pick(mix) for ladder, mix in CHANNEL_MIX.items()}
_OUTCOME = {channel: _Pick(table) for channel, table in OUTCOMES.items()}


@dataclass
class Chunk:
    """Rows of consecutive accounts with their history and holds, column by column."""

    accounts: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in ACCOUNT_COLUMNS})
    history: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in HISTORY_COLUMNS})
    holds: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in HOLD_COLUMNS})


def _ladder_of(dpd: int) -> str:
    if dpd <= 30:
        return "early"
    if dpd <= 90:
        return "mid"
    return "late"


def _balance_cents(rng: random.Random, product: str) -> int:
    median = {"card": 1800.0, "personal_loan": 6500.0, "auto_loan": 11000.0}[product]
    return max(2500, int(rng.lognormvariate(math.log(median), 0.7) * 100))


def _remembered_stage(rng: random.Random, ladder: str, dpd: int,
                      today: dt.date) -> tuple[str | None, dt.date | None]:
    """The stage the previous run left the account in, or none (a new account, or one never placed)."""
    u = rng.random()
    if u < 0.45:
        return None, None
    reached = [stage for stage, threshold in LADDER_STAGES[ladder] if dpd >= threshold]
    if u < 0.48 or not reached:
        # the account changed segment since the previous run: its stage belongs to another ladder
        other = "late" if ladder != "late" else "mid"
        stage = LADDER_STAGES[other][rng.randrange(len(LADDER_STAGES[other]))][0]
    else:
        # usually the most severe stage reached, sometimes an earlier one it is still held in
        stage = reached[-1] if rng.random() < 0.8 or len(reached) == 1 else reached[-2]
    return stage, today - dt.timedelta(days=rng.randrange(0, 21))


def generate(count: int, *, events: int = EVENTS_PER_ACCOUNT, seed: int = SEED,
             as_of: dt.datetime = AS_OF) -> Iterator[Chunk]:
    """The portfolio of ``count`` accounts with about ``events`` history events each, in chunks of
    :data:`CHUNK` accounts. Accounts and holds come from one random stream and the history from another,
    so portfolios that differ only in ``events`` hold the same accounts."""
    rng = random.Random(seed)
    history_rng = random.Random(seed + 1)
    today = as_of.date()
    as_of_us = int(as_of.timestamp()) * 1_000_000
    day_us = int(dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC).timestamp()) * 1_000_000
    chunk = Chunk()
    person = 0
    shares_person = False
    for index in range(1, count + 1):
        # about one customer in twelve holds two accounts (a card and a loan): the second reuses the person
        if not shares_person:
            person += 1
            zone = _ZONE(rng)
            first_name = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
            phone = f"+1555{person:07d}" if rng.random() < 0.97 else None
            email = f"customer{person}@example.com" if rng.random() < 0.88 else None
            street = rng.randrange(1, 9999)
            address = f"{street} Example Street, Springfield" if rng.random() < 0.995 else None
            opt_u = rng.random()
            opt_out = ("sms",) if opt_u < 0.03 else ("email",) if opt_u < 0.05 else \
                ("sms", "email") if opt_u < 0.06 else ()
        account_id = f"A{index:08d}"
        person_id = f"P{person:08d}"
        product = _PRODUCT(rng)
        low, high = _BAND(rng)
        dpd = rng.randint(low, high)
        cents = _balance_cents(rng, product)
        status = _STATUS(rng)
        broken = 0 if rng.random() < 0.85 else rng.randint(1, 3)
        paid_days_ago = max(dpd, 0) + rng.randrange(0, 40)
        last_payment = None if rng.random() < 0.07 else today - dt.timedelta(days=paid_days_ago)
        ladder = _ladder_of(dpd)
        stage, entered = _remembered_stage(rng, ladder, dpd, today) if dpd > 0 else (None, None)

        a = chunk.accounts
        a["account_id"].append(account_id)
        a["person_id"].append(person_id)
        a["debt_id"].append(f"D{index:08d}")
        a["first_name"].append(first_name)
        a["product"].append(product)
        a["status"].append(status)
        a["dpd"].append(dpd)
        a["balance"].append(Decimal(cents).scaleb(-2))
        a["broken_promises"].append(broken)
        a["last_payment_date"].append(last_payment)
        a["timezone"].append((zone,) if zone else ())
        a["phone"].append(phone)
        a["email"].append(email)
        a["address"].append(address)
        a["opt_out_channels"].append(opt_out)
        a["stage"].append(stage)
        a["stage_entered"].append(entered)

        # history: 0 to 2 * events - 1 events over the last 14 days, and for a few accounts in the intensive
        # stages a dialler burst of 6 to 9 calls in the last 6 days, which the 7-in-7 limit stops
        hr = history_rng
        own = 0
        burst = 0
        if events > 0:
            own = hr.randint(0, 2 * events - 1) if dpd > 0 else hr.randint(0, min(2, 2 * events - 1))
            burst = hr.randint(6, 9) if 20 <= dpd <= 90 and hr.random() < BURST_SHARE else 0
        h = chunk.history
        for number in range(own + burst):
            if number < own:
                channel = _MIX[ladder](hr)
                outcome = _OUTCOME[channel](hr)
            else:
                channel = "phone"
                outcome = "no_answer" if hr.random() < 0.7 else "voicemail"
            inbound = channel == "phone" and outcome == "conversation" and hr.random() < 0.3
            # contact happens in US business hours: 13:00 to 01:00 UTC on one of the last 14 days
            days_back = hr.randrange(HISTORY_DAYS if number < own else 6)
            at_us = day_us - days_back * DAY_US + 13 * HOUR_US + hr.randrange(12 * 3600) * 1_000_000
            if at_us >= as_of_us - MINUTE_US:
                at_us -= DAY_US
            templates = TEMPLATES.get(channel)
            template = templates[hr.randrange(len(templates))] if templates else None
            contact = email if channel == "email" else phone if channel in ("phone", "sms") else address
            h["account_id"].append(account_id)
            h["person_id"].append(person_id)
            h["debt_id"].append(f"D{index:08d}")
            h["contact"].append(contact)
            h["channel"].append(channel)
            h["direction"].append("inbound" if inbound else "outbound")
            h["outcome"].append(outcome)
            h["at"].append(at_us)
            h["consent"].append(channel == "phone" and hr.random() < 0.03)
            h["template"].append(template)
            h["subject"].append("debtor")

        # holds: about 2.5% of accounts; some ended already, a few only for calls
        if rng.random() < 0.025:
            kind = _HOLD(rng)
            start = today - dt.timedelta(days=rng.randrange(0, 90))
            end = None if kind in ("bankruptcy", "cease") or rng.random() < 0.4 else \
                start + dt.timedelta(days=rng.randrange(5, 60))
            hc = chunk.holds
            hc["account_id"].append(account_id)
            hc["type"].append(kind)
            hc["start"].append(start)
            hc["end"].append(end)
            hc["channels"].append(("phone",) if kind == "dispute" and rng.random() < 0.2 else ())
            hc["note"].append(f"{kind} recorded by servicing")

        shares_person = not shares_person and rng.random() < 0.08
        if index % CHUNK == 0:
            yield chunk
            chunk = Chunk()
    if chunk.accounts["account_id"]:
        yield chunk


# ---------------------------------------------------------------------------------------------------------
# writing


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _at_text(micros: int) -> str:
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Writers:
    """One CSV and one Parquet writer per table, writing under temporary names until :meth:`close`."""

    def __init__(self, files: dict[str, Path]) -> None:
        import pyarrow as pa

        self.pa = pa
        self.final = files
        for path in files.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        text, day, ts = pa.string(), pa.date32(), pa.timestamp("us", tz="UTC")
        texts = pa.list_(pa.string())
        self.schemas = {
            "accounts": pa.schema([
                ("account_id", text), ("person_id", text), ("debt_id", text), ("first_name", text),
                ("product", text), ("status", text), ("dpd", pa.int64()), ("balance", pa.decimal128(12, 2)),
                ("broken_promises", pa.int64()), ("last_payment_date", day), ("timezone", texts),
                ("phone", text), ("email", text), ("address", text), ("opt_out_channels", texts),
                ("stage", text), ("stage_entered", day)]),
            "history": pa.schema([
                ("account_id", text), ("person_id", text), ("debt_id", text), ("contact", text),
                ("channel", text), ("direction", text), ("outcome", text), ("at", ts),
                ("consent", pa.bool_()), ("template", text), ("subject", text)]),
            "holds": pa.schema([("account_id", text), ("type", text), ("start", day), ("end", day),
                                ("channels", texts), ("note", text)]),
        }
        self.files: dict[str, Any] = {}
        self.csv: dict[str, Any] = {}
        self.parquet: dict[str, Any] = {}

    def _partial(self, table: str, suffix: str) -> Path:
        path = self.final[f"{table}.{suffix}"]
        return path.with_name(path.name + ".partial")

    def write(self, table: str, columns: dict[str, list[Any]]) -> None:
        import pyarrow.parquet as pq

        if table not in self.csv:
            handle = self._partial(table, "csv").open("w", encoding="utf-8", newline="")
            self.files[table] = handle
            self.csv[table] = csv.writer(handle, lineterminator="\n")
            self.csv[table].writerow(columns)
            self.parquet[table] = pq.ParquetWriter(str(self._partial(table, "parquet")), self.schemas[table])
        names = list(columns)
        as_text = [[_at_text(v) for v in columns[n]] if n == "at" else [_text(v) for v in columns[n]]
                   for n in names]
        self.csv[table].writerows(zip(*as_text, strict=True))
        schema = self.schemas[table]
        arrays = []
        for name in names:
            values = columns[name]
            if isinstance(schema.field(name).type, self.pa.ListType):
                values = [list(v) if v else None for v in values]
            arrays.append(self.pa.array(values, type=schema.field(name).type))
        self.parquet[table].write_table(self.pa.Table.from_arrays(arrays, schema=schema))

    def close(self, complete: bool) -> None:
        """Close every file; move them to their names when the portfolio was written in full."""
        for handle in self.files.values():
            handle.close()
        for writer in self.parquet.values():
            writer.close()
        for name in self.final:
            table, suffix = name.split(".")
            partial = self._partial(table, suffix)
            if complete:
                partial.replace(self.final[name])
            else:
                partial.unlink(missing_ok=True)


def paths(count: int, out: Path = DEFAULT_OUT, *, events: int = EVENTS_PER_ACCOUNT,
          seed: int = SEED) -> dict[str, Path]:
    """Where :func:`write_portfolio` writes a portfolio: ``accounts.csv`` → ``out/accounts-<count>.csv``
    (with ``-e<events>`` and ``-s<seed>`` when they are not the defaults)."""
    stem = f"{count}" + (f"-e{events}" if events != EVENTS_PER_ACCOUNT else "") \
        + (f"-s{seed}" if seed != SEED else "")
    return {f"{table}.{suffix}": out / f"{table}-{stem}.{suffix}"
            for table in ("accounts", "history", "holds") for suffix in ("csv", "parquet")}


def write_portfolio(count: int, out: Path = DEFAULT_OUT, *, events: int = EVENTS_PER_ACCOUNT,
                    seed: int = SEED) -> dict[str, Path]:
    """Write the portfolio of ``count`` accounts; returns the CSV and Parquet paths by table and format."""
    files = paths(count, out, events=events, seed=seed)
    writers = _Writers(files)
    complete = False
    try:
        for chunk in generate(count, events=events, seed=seed):
            writers.write("accounts", chunk.accounts)
            writers.write("history", chunk.history)
            writers.write("holds", chunk.holds)
        complete = True
    finally:
        writers.close(complete)
    return files


def _generator_digest() -> str:
    """Identifies this generator's code: a portfolio written by another version is written again."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def ensure_portfolio(count: int, out: Path = DEFAULT_OUT, *,
                     events: int = EVENTS_PER_ACCOUNT) -> dict[str, Path]:
    """The portfolio's paths, writing it first unless this version of the generator already wrote it (the
    same arguments always write the same bytes)."""
    expected = paths(count, out, events=events)
    accounts = expected["accounts.csv"]
    stamp = accounts.with_name(accounts.name.replace("accounts-", "generated-"))
    digest = _generator_digest()
    if all(p.exists() for p in expected.values()) and stamp.exists() \
            and stamp.read_text(encoding="utf-8").strip() == digest:
        return expected
    written = write_portfolio(count, out, events=events)
    stamp.write_text(digest + "\n", encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, required=True, help="number of accounts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default build/bench)")
    parser.add_argument("--events", type=int, default=EVENTS_PER_ACCOUNT,
                        help=f"history events per account, about (default {EVENTS_PER_ACCOUNT})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args(argv)
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.events < 0:
        parser.error("--events must be 0 or more")
    written = write_portfolio(args.accounts, args.out, events=args.events, seed=args.seed)
    for name, path in written.items():
        print(f"{name:18} {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
