"""Reading input tables into Polars frames for the frame backend, and writing decision frames.

:func:`scan_table` reads a CSV, JSON Lines or Parquet file with the validation of
:func:`collectrules.io.tables.read_table`: a cell that does not fit its column's kind rejects its row, and
each rejection is a :class:`~collectrules.io.tables.RowProblem` with the same file, row number, column and
message; file-level problems raise the same :class:`~collectrules.errors.DataError`. :func:`load_frames`
reads a whole portfolio (accounts typed by the policy's fields, history, holds, promises) the way
:func:`~collectrules.engine.portfolio.load_portfolio` does, duplicate account ids included.

How files are read:

* **CSV** is scanned with ``pl.scan_csv`` (every column as text) and validated with vectorised checks that
  mirror :mod:`collectrules.io.values` rule for rule (the same patterns, Python's ``str.strip`` whitespace,
  the same words for booleans). The fast path applies to well-formed files: one record per line, quotes
  only around whole fields, as many fields per line as header names, no blank line before the header. A
  file outside that shape (a quoted line break, a ragged row, a stray quote) is read by the Python reader,
  whose handling of malformed CSV the fast path does not attempt to imitate.
* **Parquet** is scanned with ``pl.scan_parquet``; typed columns (text, integers, booleans, dates,
  zone-aware timestamps, decimals, lists of text) are validated by their type as the Python reader does.
  A column of another type sends the file to the Python reader.
* **JSON Lines** carry JSON's own types (``5`` and ``"5"`` and ``5.0`` are accepted or refused differently,
  and decimals must be read from their text to stay exact), which ``pl.scan_ndjson`` does not keep: these
  files go through the Python reader (one JSON parse per line), then into a frame.

Values a pattern alone cannot settle are decided by the Python parser once per distinct value: time-zone
names, and date-times or durations in a spelling other than the canonical one. The message of a rejected
cell is the Python parser's own, computed for that cell only (rejected rows are rare, and their message must
be the Python reader's, word for word). Date-times in a named zone other than UTC (a Parquet timestamp column
in ``Europe/Paris``) raise :class:`~collectrules.backends.frame.FrameUnsupported`: Python moves and compares
them by wall clock.

:func:`write_decision_frame` writes an :meth:`~collectrules.engine.frame_program.FrameProgram.evaluate_frame`
result as nested Parquet (``sink_parquet``) or JSON Lines; the CLI writes decisions through
:class:`~collectrules.io.decisions.DecisionWriter` instead, so that both backends produce the same bytes.
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import DataError
from ..io.tables import (
    ACCOUNT_STANDARD_COLUMNS,
    CODE_FORMAT,
    CODE_UNREADABLE,
    HISTORY_COLUMNS,
    HOLD_COLUMNS,
    PROMISE_COLUMNS,
    ColumnSpec,
    RowProblem,
    iter_table,
    read_table,
)
from ..io.values import ValueKind, parse_value
from .portfolio import InputReport, field_columns

__all__ = ["FramePortfolio", "TableFrame", "load_frames", "scan_table", "write_decision_frame"]

UTC_US = pl.Datetime("us", "UTC")
DATETIME_STRUCT = pl.Struct({"at": UTC_US, "off": pl.Int32})
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
#: the characters Python's str.strip() removes (str.isspace), which Polars' default strip does not all remove
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_INT_RE = r"^[+-]?[0-9]+$"
_DECIMAL_RE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DURATION_RE = r"^([0-9]{1,9})([smhdw])$"
_CANONICAL_DATETIME_RE = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_TRUE_WORDS = ["true", "yes", "1"]
_FALSE_WORDS = ["false", "no", "0"]
_FIELD = r'(?:[^",\r\n]*|"(?:[^"]|"")*")'
_WELL_FORMED_LINE = re.compile(rf"^{_FIELD}(?:,{_FIELD})*$")
_MISSING = "required value is missing"


class _Irregular(Exception):
    """The file is outside the shape the vectorised reader handles; the Python reader takes it."""


@dataclass
class TableFrame:
    """A table read into a frame: the accepted rows (with ``#line``, their row numbers) and the problems."""

    frame: pl.DataFrame
    problems: list[RowProblem]
    rejected_rows: int
    total_rows: int
    omitted_problems: int = 0


@dataclass
class FramePortfolio:
    """The frames of a portfolio and what was read from each input file."""

    accounts: pl.DataFrame
    history: pl.DataFrame | None
    holds: pl.DataFrame | None
    promises: pl.DataFrame | None
    inputs: list[InputReport] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return sum(i.rejected_rows for i in self.inputs)


def load_frames(
    program: Any,
    accounts: str | Path,
    history: str | Path | None = None,
    holds: str | Path | None = None,
    promises: str | Path | None = None,
) -> FramePortfolio:
    """Read the input files into frames, typed by the policy's fields and the standard column sets."""
    inputs: list[InputReport] = []

    def read(path: str | Path, columns: Sequence[ColumnSpec]) -> pl.DataFrame:
        table = scan_table(path, columns)
        inputs.append(
            InputReport(
                str(path), table.total_rows, table.rejected_rows, table.problems, table.omitted_problems
            )
        )
        return table.frame

    account_frame = read(accounts, [*ACCOUNT_STANDARD_COLUMNS, *field_columns(program.policy)])
    # a later row with an account id seen before is rejected (load_portfolio's rule)
    first_seen = account_frame.group_by("account_id").agg(pl.col("#line").min().alias("#first"))
    marked = (
        account_frame.join(first_seen, on="account_id", how="left")
        .with_columns((pl.col("#line") != pl.col("#first")).alias("#dup"))
        .sort("#line")
    )
    duplicates = marked.filter(pl.col("#dup"))
    if duplicates.height:
        report = inputs[0]
        for account_id, line, first in duplicates.select("account_id", "#line", "#first").iter_rows():
            report.problems.append(
                RowProblem(
                    str(accounts),
                    line,
                    "account_id",
                    f"account {account_id!r} already appears on row {first}",
                )
            )
        report.rejected_rows += duplicates.height
    account_frame = marked.filter(~pl.col("#dup")).drop("#dup", "#first")
    history_frame = read(history, HISTORY_COLUMNS) if history is not None else None
    hold_frame = read(holds, HOLD_COLUMNS) if holds is not None else None
    promise_frame = read(promises, PROMISE_COLUMNS) if promises is not None else None
    return FramePortfolio(
        account_frame.drop("#line"),
        _drop_line(history_frame),
        _drop_line(hold_frame),
        _drop_line(promise_frame),
        inputs,
    )


def _drop_line(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    return frame.drop("#line") if frame is not None else None


def scan_table(path: str | Path, columns: Sequence[ColumnSpec], *, max_problems: int = 1000) -> TableFrame:
    """Read one table into a frame (see the module notes); raises DataError like read_table."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    # the Python reader raises every file-level error (missing file, bad header, missing required columns);
    # starting it reads no more than the header and the first row
    rows = iter_table(path, columns, keep_extra=False)
    try:
        next(rows)
    except StopIteration:
        pass
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    if fmt == "csv":
        try:
            return _finish(path, columns, _scan_csv(path, columns), max_problems)
        except _Irregular:
            pass
    elif fmt == "parquet":
        try:
            return _finish(path, columns, _scan_parquet(path, columns), max_problems)
        except _Irregular:
            pass
    elif fmt is None:
        raise DataError(f"cannot read {path}: unsupported file type {path.suffix!r}", code=CODE_FORMAT)
    return _python_read(path, columns, max_problems)


# -------------------------------------------------------------------------------------------------------
# the Python reader, for what the vectorised path does not take


def _python_read(path: Path, columns: Sequence[ColumnSpec], max_problems: int) -> TableFrame:
    table = read_table(path, columns, keep_extra=False, max_problems=max_problems)
    records = [{**_frame_values(values, columns), "#line": row} for row, values in table.rows]
    schema = {spec.name: _frame_dtype(spec) for spec in columns}
    schema["#line"] = pl.Int64()
    frame = pl.DataFrame(records, schema=schema, orient="row") if records else pl.DataFrame(schema=schema)
    return TableFrame(frame, table.problems, table.rejected_rows, table.total_rows, table.omitted_problems)


def _frame_values(values: dict[str, object], columns: Sequence[ColumnSpec]) -> dict[str, object]:
    out: dict[str, object] = {}
    for spec in columns:
        out[spec.name] = _frame_value(values.get(spec.name), spec.kind, spec.item_kind)
    return out


def _frame_value(value: object, kind: ValueKind, item_kind: ValueKind | None = None) -> object:
    if value is None:
        return None
    if kind is ValueKind.DECIMAL:
        return str(value)
    if kind is ValueKind.DATETIME:
        assert isinstance(value, _dt.datetime)
        if not isinstance(value.tzinfo, _dt.timezone):
            _require_fixed_zone(str(getattr(value.tzinfo, "key", value.tzinfo)))
        offset = value.utcoffset()
        return {"at": value.astimezone(_dt.UTC), "off": int(offset.total_seconds()) if offset else 0}
    if kind is ValueKind.DURATION:
        assert isinstance(value, _dt.timedelta)
        return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if kind is ValueKind.LIST:
        assert isinstance(value, tuple)
        return [_frame_value(item, item_kind or ValueKind.STRING) for item in value]
    return value


def _frame_dtype(spec: ColumnSpec) -> pl.DataType:
    if spec.kind is ValueKind.LIST:
        return pl.List(_scalar_dtype(spec.item_kind or ValueKind.STRING))
    return _scalar_dtype(spec.kind)


def _scalar_dtype(kind: ValueKind) -> pl.DataType:
    return {
        ValueKind.BOOL: pl.Boolean(),
        ValueKind.INT: pl.Int64(),
        ValueKind.DECIMAL: pl.String(),
        ValueKind.STRING: pl.String(),
        ValueKind.ENUM: pl.String(),
        ValueKind.DATE: pl.Date(),
        ValueKind.DATETIME: DATETIME_STRUCT,
        ValueKind.DURATION: pl.Int64(),
        ValueKind.TIMEZONE: pl.String(),
    }[kind]


# -------------------------------------------------------------------------------------------------------
# CSV


def _scan_csv(path: Path, columns: Sequence[ColumnSpec]) -> tuple[pl.DataFrame, dict[str, pl.DataType]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (UnicodeDecodeError, OSError):
        raise _Irregular from None
    if "\r" in text.replace("\r\n", ""):
        raise _Irregular
    lines = pl.Series("line", text.replace("\r\n", "\n").split("\n"), dtype=pl.String)
    if lines.len() and lines[-1] == "":
        lines = lines.head(lines.len() - 1)
    if lines.len() == 0:
        raise _Irregular
    if not pl.select(lines.str.contains(_WELL_FORMED_LINE.pattern).all()).item():
        raise _Irregular
    header = [name for name in _split_line(str(lines[0]))]
    if any(name != name.strip() or not name for name in header) or len(set(header)) != len(header):
        raise _Irregular
    width = len(header)
    body = lines.slice(1)
    unquoted = body.str.replace_all(r'"(?:[^"]|"")*"', "")
    counts = unquoted.str.count_matches(",") + 1
    if body.len() and not pl.select((counts == width).all()).item():
        raise _Irregular
    try:
        frame = pl.scan_csv(
            path,
            infer_schema=False,
            has_header=True,
            quote_char='"',
            encoding="utf8",
            raise_if_empty=False,
            truncate_ragged_lines=False,
        ).collect()
    except pl.exceptions.PolarsError:
        raise _Irregular from None
    if frame.height != body.len() or frame.columns != header:
        raise _Irregular
    # the line each row stands on (the header is line 1); rows of nothing but blanks hold no data
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias("#line"))
    blank = pl.lit(True)
    for name in header:
        blank = blank & _strip(pl.col(name)).fill_null("").eq("")
    frame = frame.filter(~blank)
    return frame, {name: pl.String() for name in header}


def _split_line(line: str) -> list[str]:
    import csv

    return next(csv.reader([line]))


# -------------------------------------------------------------------------------------------------------
# Parquet


def _scan_parquet(path: Path, columns: Sequence[ColumnSpec]) -> tuple[pl.DataFrame, dict[str, pl.DataType]]:
    try:
        lazy = pl.scan_parquet(path)
        schema = dict(lazy.collect_schema())
    except pl.exceptions.PolarsError:
        raise _Irregular from None
    wanted = [spec.name for spec in columns if spec.name in schema]
    for name in wanted:
        if not _parquet_dtype_supported(schema[name]):
            raise _Irregular
    frame = lazy.select(wanted).collect()
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("#line"))
    return frame, {name: schema[name] for name in wanted}


def _parquet_dtype_supported(dtype: pl.DataType) -> bool:
    if dtype == pl.String or dtype == pl.Boolean or dtype == pl.Date or dtype.is_integer():
        return True
    if isinstance(dtype, pl.Datetime):
        return dtype.time_zone is not None
    if isinstance(dtype, pl.Decimal) or dtype.is_float():
        return True
    if isinstance(dtype, pl.List):
        return dtype.inner == pl.String
    return False


# -------------------------------------------------------------------------------------------------------
# validation


def _strip(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars(PYTHON_WHITESPACE)


@dataclass
class _Checked:
    value: pl.Expr
    bad: pl.Expr


def _finish(
    path: Path,
    columns: Sequence[ColumnSpec],
    scanned: tuple[pl.DataFrame, dict[str, pl.DataType]],
    max_problems: int,
) -> TableFrame:
    frame, dtypes = scanned
    file = str(path)
    checked: dict[str, _Checked] = {}
    for spec in columns:
        if spec.name in dtypes:
            checked[spec.name] = _check(frame, spec, dtypes[spec.name])
        else:
            default = _frame_value(spec.default, spec.kind, spec.item_kind)
            checked[spec.name] = _Checked(
                pl.lit(default, _frame_dtype(spec))
                if default is not None
                else pl.lit(None, _frame_dtype(spec)),
                pl.lit(False),
            )
    frame = frame.with_columns(**{f"#bad:{name}": c.bad.fill_null(True) for name, c in checked.items()})
    flags = [pl.col(f"#bad:{name}") for name in checked]
    any_bad = pl.any_horizontal(flags) if flags else pl.lit(False)
    frame = frame.with_columns(any_bad.alias("#rejected"))
    rejected = frame.filter(pl.col("#rejected"))
    problems: list[RowProblem] = []
    omitted = 0
    first_omitted = 0
    for record in rejected.iter_rows(named=True):
        for spec in columns:
            if not record.get(f"#bad:{spec.name}"):
                continue
            message = _problem_message(record.get(spec.name), spec, dtypes.get(spec.name))
            problem = RowProblem(file, record["#line"], spec.name, message)
            if len(problems) < max_problems:
                problems.append(problem)
            else:
                omitted += 1
                first_omitted = first_omitted or problem.row
    total = frame.height
    if omitted:
        problems.append(
            RowProblem(
                file,
                first_omitted,
                None,
                f"{omitted} more problem{'s' if omitted != 1 else ''} from this row on were not listed "
                f"(max_problems={max_problems}); {rejected.height} of {total} rows were rejected in all",
            )
        )
    accepted = frame.filter(~pl.col("#rejected"))
    values = accepted.select(*[c.value.alias(name) for name, c in checked.items()], pl.col("#line"))
    return TableFrame(values, problems, rejected.height, total, omitted)


def _problem_message(raw: object, spec: ColumnSpec, dtype: pl.DataType | None) -> str:
    """The Python reader's message for a rejected cell (computed by the Python parser itself)."""
    python_raw = _python_raw(raw, dtype)
    try:
        value = parse_value(python_raw, spec.kind, enum_values=spec.enum_values, item_kind=spec.item_kind)
    except ValueError as exc:
        return str(exc)
    if value is None and spec.required:
        return _MISSING
    raise AssertionError(f"cell {raw!r} of column {spec.name!r} was flagged but parses")


def _python_raw(raw: object, dtype: pl.DataType | None) -> object:
    """A frame cell as the Python reader would have received it."""
    if isinstance(dtype, pl.Decimal) and raw is not None:
        return Decimal(str(raw))
    if isinstance(raw, list):
        return list(raw)
    return raw


def _check(frame: pl.DataFrame, spec: ColumnSpec, dtype: pl.DataType) -> _Checked:
    column = pl.col(spec.name)
    if dtype == pl.String:
        text = _strip(column)
        present = text.is_not_null() & (text != "")
        checked = _check_text(frame, text, spec)
    else:
        present = column.is_not_null()
        checked = _check_typed(column, spec, dtype)
    missing = ~present & pl.lit(spec.required)
    default = _frame_value(spec.default, spec.kind, spec.item_kind)
    fallback = (
        pl.lit(default, _frame_dtype(spec)) if default is not None else pl.lit(None, _frame_dtype(spec))
    )
    value = pl.when(present).then(checked.value).otherwise(fallback)
    return _Checked(value, (present & checked.bad.fill_null(True)) | missing)


def _check_text(frame: pl.DataFrame, text: pl.Expr, spec: ColumnSpec) -> _Checked:
    """Validate stripped text as io.values.parse_value does."""
    if spec.kind is ValueKind.LIST:
        item_kind = spec.item_kind or ValueKind.STRING
        items = text.str.split(";").list.eval(_strip(pl.element()))
        kept = items.list.eval(pl.element().filter(pl.element() != ""))
        if item_kind in (ValueKind.DATETIME, ValueKind.DURATION):
            # item spellings the patterns cannot settle go to the Python reader with the whole file
            element = _check_scalar_text(frame, pl.element(), item_kind, spec.enum_values, None)
            unsettled = frame.select(
                kept.list.eval(element.value.is_null()).list.any().fill_null(False).any()
            ).item()
            if unsettled:
                raise _Irregular
        element = _check_scalar_text(
            frame,
            pl.element(),
            item_kind,
            spec.enum_values,
            _exploded_texts(frame, kept) if item_kind is ValueKind.TIMEZONE else None,
        )
        values = kept.list.eval(element.value)
        bad = kept.list.eval(element.bad.fill_null(True)).list.any()
        # an item that passes the pattern but has no value here (a whole number beyond 64 bits)
        if frame.select(
            (~bad & values.list.eval(pl.element().is_null()).list.any()).fill_null(False).any()
        ).item():
            raise _Irregular
        return _Checked(values, bad)
    texts = frame.select(text.alias("t")).to_series() if spec.kind in _PER_VALUE_KINDS else None
    return _check_scalar_text(frame, text, spec.kind, spec.enum_values, texts)


_PER_VALUE_KINDS = (ValueKind.TIMEZONE, ValueKind.DATETIME, ValueKind.DURATION, ValueKind.INT)


def _exploded_texts(frame: pl.DataFrame, lists: pl.Expr) -> pl.Series:
    return frame.select(lists.alias("t")).to_series().explode().drop_nulls()


def _check_scalar_text(
    frame: pl.DataFrame, text: pl.Expr, kind: ValueKind, enum_values: tuple[str, ...], texts: pl.Series | None
) -> _Checked:
    """One text value; ``texts`` holds the column's values for the kinds settled per distinct value."""
    if kind is ValueKind.STRING:
        return _Checked(text, pl.lit(False))
    if kind is ValueKind.ENUM:
        return _Checked(text, ~text.is_in(list(enum_values)))
    if kind is ValueKind.BOOL:
        word = text.str.to_lowercase()
        value = pl.when(word.is_in(_TRUE_WORDS)).then(True).when(word.is_in(_FALSE_WORDS)).then(False)
        return _Checked(value, value.is_null())
    if kind is ValueKind.INT:
        shaped = text.str.contains(_INT_RE)
        value = text.str.strip_prefix("+").cast(pl.Int64, strict=False)
        if texts is not None and frame.select((text.str.contains(_INT_RE) & value.is_null()).any()).item():
            from ..backends.frame import FrameUnsupported

            raise FrameUnsupported("a whole number beyond 64 bits in the data")
        return _Checked(pl.when(shaped).then(value), ~shaped)
    if kind is ValueKind.DECIMAL:
        return _Checked(text, ~text.str.contains(_DECIMAL_RE))
    if kind is ValueKind.DATE:
        shaped = text.str.contains(_DATE_RE)
        value = text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        return _Checked(pl.when(shaped).then(value), ~shaped | value.is_null())
    if kind is ValueKind.TIMEZONE:
        known = [t for t in (texts.unique().to_list() if texts is not None else []) if t and _zone_known(t)]
        return _Checked(text, ~text.is_in(known))
    if kind is ValueKind.DURATION:
        groups = text.str.extract_groups(_DURATION_RE)
        amount = groups.struct.field("1").cast(pl.Int64, strict=False)
        scale = groups.struct.field("2").replace_strict(
            ["s", "m", "h", "d", "w"],
            [1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000, 604_800_000_000],
            default=None,
            return_dtype=pl.Int64,
        )
        value = amount * scale
        return _settle_per_value(frame, text, value, ValueKind.DURATION, texts)
    if kind is ValueKind.DATETIME:
        return _settle_per_value(frame, text, _canonical_datetime(text), ValueKind.DATETIME, texts)
    raise AssertionError(f"unhandled kind {kind}")


def _settle_per_value(
    frame: pl.DataFrame, text: pl.Expr, fast: pl.Expr, kind: ValueKind, texts: pl.Series | None
) -> _Checked:
    """Values the pattern did not settle are parsed by the Python parser, once per distinct text."""
    if texts is None:
        return _Checked(fast, fast.is_null())
    fast_values = frame.select(fast.alias("v")).to_series()
    open_texts = texts.filter(fast_values.is_null() & texts.is_not_null() & (texts != "")).unique().to_list()
    parsed: dict[str, object] = {}
    for item in open_texts:
        try:
            parsed[item] = _frame_value(parse_value(item, kind), kind)
        except ValueError:
            continue
    if not parsed:
        return _Checked(fast, fast.is_null())
    dtype = _scalar_dtype(kind)
    slow = text.replace_strict(
        list(parsed), pl.Series(list(parsed.values()), dtype=dtype), default=None, return_dtype=dtype
    )
    value = pl.coalesce(fast, slow)
    return _Checked(value, value.is_null())


def _canonical_datetime(text: pl.Expr) -> pl.Expr:
    """``2026-11-14T15:04:05Z`` and like spellings (offset ±HH:MM), parsed without Python."""
    groups = text.str.extract_groups(_CANONICAL_DATETIME_RE)
    day, clock, zone = groups.struct.field("1"), groups.struct.field("2"), groups.struct.field("3")
    clock_full = (
        pl.when(clock.str.len_chars() == 5).then(pl.concat_str(clock, pl.lit(":00"))).otherwise(clock)
    )
    wall = pl.concat_str(day, pl.lit(" "), clock_full).str.strptime(
        pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False
    )
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    hours = zone.str.slice(1, 2).cast(pl.Int32, strict=False)
    minutes = zone.str.slice(4, 2).cast(pl.Int32, strict=False)
    offset = pl.when(zone == "Z").then(0).otherwise(sign * (hours * 3600 + minutes * 60)).cast(pl.Int32)
    # Python accepts offsets below 24 hours; anything else is left to its parser
    offset_ok = (zone == "Z") | ((hours < 24) & (minutes < 60))
    instant = (wall.cast(pl.Int64) - offset.cast(pl.Int64) * 1_000_000).cast(UTC_US)
    return pl.when(wall.is_not_null() & offset_ok).then(pl.struct(instant.alias("at"), offset.alias("off")))


def _check_typed(column: pl.Expr, spec: ColumnSpec, dtype: pl.DataType) -> _Checked:
    """Validate a typed Parquet column as parse_value treats the Python values pyarrow gives for it."""
    kind = spec.kind
    never, always, nothing = pl.lit(False), pl.lit(True), pl.lit(None)
    if isinstance(dtype, pl.List):
        if kind is ValueKind.LIST and (spec.item_kind or ValueKind.STRING) is ValueKind.STRING:
            # items of a real list are parsed one by one: an empty or null item is an error
            items = column.cast(pl.List(pl.String)).list.eval(_strip(pl.element()))
            bad = items.list.eval(pl.element().is_null() | (pl.element() == "")).list.any()
            return _Checked(items, bad)
        raise _Irregular
    if kind is ValueKind.LIST:
        return _Checked(nothing, always)
    if dtype.is_integer():
        if kind is ValueKind.INT:
            wide = column.cast(pl.Int64, strict=False)
            return _Checked(wide, never)
        if kind in (ValueKind.STRING, ValueKind.DECIMAL):
            return _Checked(column.cast(pl.String), never)
        if kind is ValueKind.BOOL:
            return _Checked(pl.when(column.is_in([0, 1])).then(column == 1), ~column.is_in([0, 1]))
        return _Checked(nothing, always)
    if dtype == pl.Boolean:
        return _Checked(column, never) if kind is ValueKind.BOOL else _Checked(nothing, always)
    if dtype.is_float():
        finite = column.is_finite()
        if kind is ValueKind.DECIMAL:
            return _Checked(pl.when(finite).then(column.cast(pl.String)), ~finite)
        if kind is ValueKind.INT:
            whole = finite & (column == column.floor())
            return _Checked(pl.when(whole).then(column.cast(pl.Int64, strict=False)), ~whole)
        return _Checked(nothing, always)
    if isinstance(dtype, pl.Decimal):
        text = column.cast(pl.String)
        if kind in (ValueKind.DECIMAL, ValueKind.STRING):
            return _Checked(text, never)
        if kind is ValueKind.INT:
            whole = text.str.contains(r"^[+-]?[0-9]+(?:\.0*)?$")
            return _Checked(
                pl.when(whole).then(text.str.extract(r"^([+-]?[0-9]+)").cast(pl.Int64, strict=False)), ~whole
            )
        return _Checked(nothing, always)
    if dtype == pl.Date:
        return _Checked(column, never) if kind is ValueKind.DATE else _Checked(nothing, always)
    if isinstance(dtype, pl.Datetime) and kind is ValueKind.DATETIME:
        assert dtype.time_zone is not None
        _require_fixed_zone(dtype.time_zone)
        local = column.dt.convert_time_zone(dtype.time_zone)
        offset = (local.dt.base_utc_offset() + local.dt.dst_offset()).dt.total_seconds().cast(pl.Int32)
        instant = column.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return _Checked(pl.struct(instant.alias("at"), offset.alias("off")), never)
    if isinstance(dtype, pl.Datetime):
        return _Checked(nothing, always)
    raise _Irregular


def _require_fixed_zone(zone: str) -> None:
    """Date-times read with a named zone (Europe/Paris) move and compare by wall clock in Python when they
    share the zone; the frame backend keeps instants and offsets, so it takes only UTC columns."""
    if zone not in UTC_NAMES:
        from ..backends.frame import FrameUnsupported

        raise FrameUnsupported(f"date-times in the time zone {zone!r} (frames take UTC date-times only)")


UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Zulu", "Zulu",
                       "Etc/Universal", "Universal"})


def _zone_known(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# -------------------------------------------------------------------------------------------------------
# writing


def write_decision_frame(frame: pl.DataFrame | pl.LazyFrame, path: str | Path) -> None:
    """Write an evaluate_frame result, nested as it is: Parquet (``.parquet``) or JSON Lines (``.jsonl``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        lazy.sink_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        lazy.sink_ndjson(path)
    else:
        raise DataError(f"cannot write {path}: use .parquet or .jsonl", code=CODE_UNREADABLE)
