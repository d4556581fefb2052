"""Reading an input data table (CSV, JSON Lines or Parquet) into typed rows.

A table is described by its :class:`ColumnSpec` list. :func:`iter_table` streams the file and yields one
:class:`RowResult` per data row: the typed values, or the row's problems when any cell does not fit.
:func:`read_table` collects them. A bad cell never stops the read: its row is rejected, counted and
explained with file, row number and column, and the other rows go on. Only a file that cannot be read as a
table at all (missing, not UTF-8, a required column absent, no JSON object on any line) raises
:class:`~collectrules.errors.DataError`.

Row numbers are the ones a user finds in the file: for CSV the line on which the row starts (the header is
line 1), for JSON Lines the line number, for Parquet the 1-based row index.

The standard column sets at the bottom are the engine's documented input formats.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError, Location
from .values import ValueKind, describe, parse_value

if TYPE_CHECKING:
    import _csv

    import pyarrow.parquet as pq

__all__ = [
    "ACCOUNT_STANDARD_COLUMNS",
    "HISTORY_COLUMNS",
    "HOLD_COLUMNS",
    "PROMISE_COLUMNS",
    "ColumnSpec",
    "RowProblem",
    "RowResult",
    "TableRead",
    "iter_table",
    "read_table",
]

#: a required column is absent from the header (or the first JSON object)
CODE_MISSING_COLUMN = "CR601"
#: the file does not exist, cannot be opened, or is not a readable Parquet file
CODE_UNREADABLE = "CR602"
#: the file is not valid UTF-8
CODE_ENCODING = "CR603"
#: the file name's extension is not one of the supported formats
CODE_FORMAT = "CR604"
#: the header names a column twice
CODE_HEADER = "CR605"
#: no line of a JSON Lines file holds a JSON object
CODE_NOT_JSON_LINES = "CR606"

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_PARQUET_BATCH_ROWS = 65_536
_REQUIRED_MISSING = "required value is missing"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column a table is expected to have."""

    #: the column's name in the header (CSV), key (JSON Lines) or schema (Parquet)
    name: str
    kind: ValueKind
    #: when true, a missing column is a file error and an empty value is a row error
    required: bool = False
    #: the value used when the cell is empty and the column is not required
    default: object | None = None
    #: allowed values of an ``ENUM`` column, or of the items of a ``LIST`` of ``ENUM``
    enum_values: tuple[str, ...] = ()
    #: the kind of a ``LIST`` column's items (text when not given)
    item_kind: ValueKind | None = None

    def __post_init__(self) -> None:
        if self.item_kind is not None and self.kind is not ValueKind.LIST:
            raise ValueError(f"column {self.name!r}: item_kind is only meaningful for a list column")
        if self.item_kind is ValueKind.LIST:
            raise ValueError(f"column {self.name!r}: list items cannot themselves be lists")
        holds_enum = self.kind is ValueKind.ENUM or self.item_kind is ValueKind.ENUM
        if holds_enum and not self.enum_values:
            raise ValueError(f"column {self.name!r}: an enum column needs enum_values")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A cell or row that could not be read."""

    file: str
    #: the row as the user counts it (see the module docstring)
    row: int
    #: ``None`` when the problem concerns the whole row
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"column {self.column!r}: " if self.column is not None else ""
        return f"{self.file}:{self.row}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class RowResult:
    """One data row of a table: its typed values, or the problems that rejected it."""

    row: int
    #: typed values by column name, extra columns as raw text; ``None`` when the row is rejected
    values: dict[str, object] | None
    problems: tuple[RowProblem, ...] = ()


@dataclass
class TableRead:
    """The outcome of reading a whole table."""

    #: ``(row number, values)`` of every accepted row, in file order
    rows: list[tuple[int, dict[str, object]]]
    #: problems of the rejected rows, at most ``max_problems`` of them plus a closing note when more occurred
    problems: list[RowProblem]
    rejected_rows: int
    #: data rows seen, accepted or rejected
    total_rows: int
    #: problems counted but not stored because of ``max_problems``
    omitted_problems: int = field(default=0)


def read_table(path: str | Path, columns: Sequence[ColumnSpec], *, keep_extra: bool = True,
               max_problems: int = 1000) -> TableRead:
    """Read a CSV, JSON Lines (``.jsonl``, ``.ndjson``) or Parquet file into typed rows.

    :param path: the file; its extension selects the format.
    :param columns: the expected columns. Each is typed by its spec; a column not in the file takes its
        default (or makes the file unreadable when required).
    :param keep_extra: keep the file's other columns in each row as raw text (``None`` for a JSON null).
    :param max_problems: how many row problems to store; further ones are only counted, and a last
        problem without a column says how many were left out.
    :raises DataError: when the file cannot be read as a table at all.
    """
    file = str(path)
    rows: list[tuple[int, dict[str, object]]] = []
    problems: list[RowProblem] = []
    rejected = total = omitted = 0
    first_omitted_row = 0
    for result in iter_table(path, columns, keep_extra=keep_extra):
        total += 1
        if result.values is not None:
            rows.append((result.row, result.values))
            continue
        rejected += 1
        for problem in result.problems:
            if len(problems) < max_problems:
                problems.append(problem)
            else:
                omitted += 1
                first_omitted_row = first_omitted_row or problem.row
    if omitted:
        problems.append(RowProblem(
            file, first_omitted_row, None,
            f"{omitted} more problem{'s' if omitted != 1 else ''} from this row on were not listed "
            f"(max_problems={max_problems}); {rejected} of {total} rows were rejected in all"))
    return TableRead(rows, problems, rejected, total, omitted)


def iter_table(path: str | Path, columns: Sequence[ColumnSpec], *,
               keep_extra: bool = True) -> Iterator[RowResult]:
    """Stream a table row by row; the arguments and errors are those of :func:`read_table`.

    A :class:`~collectrules.errors.DataError` about the whole file may come after some rows were yielded
    (an undecodable byte deep in the file is only found when it is reached).
    """
    path = Path(path)
    file = str(path)
    names = [spec.name for spec in columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"column specs name {', '.join(map(repr, duplicates))} more than once")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot read {file}: unsupported file type {path.suffix or '(no extension)'!r}",
            code=CODE_FORMAT,
            hint="use .csv, .jsonl (or .ndjson) for JSON Lines, or .parquet")
    if not path.is_file():
        reason = "it is a directory" if path.is_dir() else "no such file"
        raise DataError(f"cannot read {file}: {reason}", code=CODE_UNREADABLE)
    table = _Table(file, tuple(columns), keep_extra)
    if fmt == "csv":
        return _read_csv(path, table)
    if fmt == "jsonl":
        return _read_jsonl(path, table)
    return _read_parquet(path, table)


# ---------------------------------------------------------------------------------------------------------
# shared row typing


class _Table:
    """What every format's reader needs to know about the table being read."""

    __slots__ = ("file", "specs", "keep_extra", "names")

    def __init__(self, file: str, specs: tuple[ColumnSpec, ...], keep_extra: bool) -> None:
        self.file = file
        self.specs = specs
        self.keep_extra = keep_extra
        self.names = frozenset(spec.name for spec in specs)

    def check_columns(self, present: Sequence[str], location: Location, *,
                      what: str = "the file's columns") -> None:
        """Raise the one ``CR601`` error when required columns are not among ``present``."""
        missing = [spec.name for spec in self.specs if spec.required and spec.name not in present]
        if not missing:
            return
        noun = "column" if len(missing) == 1 else "columns"
        verb = "is" if len(missing) == 1 else "are"
        message = f"required {noun} {', '.join(map(repr, missing))} {verb} missing"
        if present:
            shown = ", ".join(map(repr, present[:30])) + (", …" if len(present) > 30 else "")
            message += f"; {what} are {shown}"
        else:
            message += "; the file has no header line"
        hints = []
        if len(present) == 1 and any(sep in present[0] for sep in (";", "\t", "|")):
            hints.append("the header looks like one column: columns must be separated by ','")
        else:
            # only columns the specs do not already claim can be misspellings, each of one missing name
            unclaimed = [name for name in present if name not in self.names]
            for name in missing:
                close = difflib.get_close_matches(name, unclaimed, n=1, cutoff=0.6)
                if close:
                    hints.append(f"did you mean {close[0]!r} for {name!r}?")
                    unclaimed.remove(close[0])
        raise DataError(message, code=CODE_MISSING_COLUMN, location=location,
                        hint=" ".join(hints) or None)

    def type_row(self, row: int, record: Mapping[str, object], to_text: Callable[[object], str | None],
                 extra_problems: Iterable[RowProblem] = ()) -> RowResult:
        """Type one record's cells; a record lacking a column is read as having it empty."""
        values: dict[str, object] = {}
        problems = list(extra_problems)
        for spec in self.specs:
            try:
                value = parse_value(record.get(spec.name), spec.kind, enum_values=spec.enum_values,
                                    item_kind=spec.item_kind)
            except ValueError as exc:
                problems.append(RowProblem(self.file, row, spec.name, str(exc)))
                continue
            if value is None:
                if spec.required:
                    problems.append(RowProblem(self.file, row, spec.name, _REQUIRED_MISSING))
                    continue
                value = spec.default
            values[spec.name] = value
        if problems:
            return RowResult(row, None, tuple(problems))
        if self.keep_extra:
            for name, raw in record.items():
                if name not in self.names:
                    values[name] = to_text(raw)
        return RowResult(row, values)


def _typed_to_text(raw: object) -> str | None:
    """Extra columns of JSON Lines and Parquet, kept as the text a CSV file would have held."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | Decimal):
        return str(raw)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", errors="backslashreplace")
    if hasattr(raw, "isoformat"):
        return str(raw.isoformat())
    if isinstance(raw, list | tuple | dict):
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(raw)


def _csv_to_text(raw: object) -> str | None:
    return raw if isinstance(raw, str) else None


def _decoding_error(path: Path, file: str) -> DataError:
    """Locate the first byte that is not UTF-8; the streaming reader only knows that one was met."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
        return DataError(
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
            code=CODE_ENCODING, location=Location(file, line, column),
            hint=("the file is UTF-16; save it as UTF-8" if utf16
                  else "save the file as UTF-8 (it may be in a legacy encoding such as Windows-1252)"))
    # the bytes changed between the two reads; report what the reader met
    return DataError("the file is not valid UTF-8", code=CODE_ENCODING, location=Location(file, 1, 1))


# ---------------------------------------------------------------------------------------------------------
# CSV


def _read_csv(path: Path, table: _Table) -> Iterator[RowResult]:
    file = table.file
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {file}: {exc.strerror or exc}", code=CODE_UNREADABLE) from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            yield from _csv_rows(reader, table)
        except UnicodeDecodeError:
            raise _decoding_error(path, file) from None


def _csv_rows(reader: _csv._reader, table: _Table) -> Iterator[RowResult]:
    file = table.file
    header: list[str] = []
    header_line = 1
    try:
        for fields in reader:
            if any(value.strip() for value in fields):
                header = [name.strip() for name in fields]
                header_line = reader.line_num
                break
    except csv.Error as exc:
        raise DataError(f"the header line is not valid CSV: {exc}", code=CODE_HEADER,
                        location=Location(file, reader.line_num, 1)) from None
    named = [name for name in header if name]
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name and name in seen:
            raise DataError(f"column {name!r} appears more than once in the header (again as column "
                            f"{position})", code=CODE_HEADER, location=Location(file, header_line, 1))
        seen.add(name)
    table.check_columns(named, Location(file, header_line, 1))
    width = len(header)
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            where = f" (on line {last_line})" if last_line != start else ""
            message = f"malformed CSV row{where}: {exc}"
            if "unexpected end of data" in str(exc):
                message += "; a quoted value that starts on this row is never closed"
            yield RowResult(start, None, (RowProblem(file, start, None, message),))
            continue
        last_line = reader.line_num
        # a line of nothing but separators (common in spreadsheet exports) holds no data
        if not any(value.strip() for value in fields):
            continue
        yield _csv_record(start, fields, header, width, table)


def _csv_record(row: int, fields: list[str], header: list[str], width: int, table: _Table) -> RowResult:
    # trailing empty cells beyond the header are an export artefact, not data
    if len(fields) < width or any(value.strip() for value in fields[width:]):
        # with the count off, no value can be trusted to stand under its column: typing them would mislead
        message = f"expected {width} values (one per header column), found {len(fields)}"
        return RowResult(row, None, (RowProblem(table.file, row, None, message),))
    problems: list[RowProblem] = []
    record: dict[str, object] = {}
    for position, (name, value) in enumerate(zip(header, fields, strict=False), start=1):
        if name:
            record[name] = value
        elif value.strip():
            message = f"value {describe(value.strip())} stands in column {position}, which has no header name"
            problems.append(RowProblem(table.file, row, None, message))
    return table.type_row(row, record, _csv_to_text, problems)


# ---------------------------------------------------------------------------------------------------------
# JSON Lines


class _DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears more than once in the object")
        result[key] = value
    return result


def _parse_json_line(text: str) -> dict[str, object] | str:
    """The line's object, or the reason it is not one."""
    try:
        # parse_float=Decimal keeps 1234567890.123456789 exact; a float would round it
        value = json.loads(text, parse_float=Decimal, object_pairs_hook=_object_without_duplicates)
    except _DuplicateKeyError as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"the line is not valid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return "the line is not valid JSON: nested too deeply"
    if not isinstance(value, dict):
        return f"expected a JSON object on the line, got {describe(value)}"
    return value


def _read_jsonl(path: Path, table: _Table) -> Iterator[RowResult]:
    file = table.file
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read {file}: {exc.strerror or exc}", code=CODE_UNREADABLE) from None
    with handle:
        try:
            yield from _jsonl_rows(handle, table)
        except UnicodeDecodeError:
            raise _decoding_error(path, file) from None


def _jsonl_rows(lines: Iterable[str], table: _Table) -> Iterator[RowResult]:
    file = table.file
    # Bad lines before the first object are held back: if no line holds an object, the file is not
    # JSON Lines at all (a JSON array, say) and one file error says so better than a problem per line.
    held: list[RowResult] = []
    seen_object = False
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        parsed = _parse_json_line(text)
        if isinstance(parsed, str):
            result = RowResult(number, None, (RowProblem(file, number, None, parsed),))
            if seen_object:
                yield result
            else:
                held.append(result)
            continue
        if not seen_object:
            # the first object stands in for a header: its keys are the file's columns
            table.check_columns(list(parsed), Location(file, number, 1), what="the first object's keys")
            seen_object = True
            yield from held
            held.clear()
        yield table.type_row(number, parsed, _typed_to_text)
    if held:
        first = held[0].problems[0]
        raise DataError(f"no line holds a JSON object; line {first.row}: {first.message}",
                        code=CODE_NOT_JSON_LINES, location=Location(file, first.row, 1),
                        hint="JSON Lines holds one JSON object per line, not a JSON array or an indented "
                             "document")


# ---------------------------------------------------------------------------------------------------------
# Parquet


def _read_parquet(path: Path, table: _Table) -> Iterator[RowResult]:
    # pyarrow is heavy to import and only Parquet input needs it
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = table.file
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read {file} as Parquet: {exc}", code=CODE_UNREADABLE) from None
    names = list(parquet.schema_arrow.names)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"the schema names {', '.join(map(repr, repeated))} more than once",
                        code=CODE_HEADER, location=Location(file, 1, 1))
    # Parquet has no lines; the error points at the file's start, which stands for its schema
    table.check_columns(names, Location(file, 1, 1))
    wanted = names if table.keep_extra else [name for name in names if name in table.names]
    return _parquet_rows(parquet, wanted, table, pa.ArrowException)


def _parquet_rows(parquet: pq.ParquetFile, wanted: list[str], table: _Table,
                  arrow_error: type[Exception]) -> Iterator[RowResult]:
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=wanted):
            for record in batch.to_pylist():
                row += 1
                yield table.type_row(row, record, _typed_to_text)
    except (arrow_error, OSError) as exc:
        raise DataError(f"cannot read {table.file} as Parquet after row {row}: {exc}",
                        code=CODE_UNREADABLE, location=Location(table.file, max(row, 1), 1)) from None


# ---------------------------------------------------------------------------------------------------------
# standard column sets: the engine's documented input formats

_S = ValueKind.STRING

ACCOUNT_STANDARD_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("person_id", _S),
    ColumnSpec("debt_id", _S),
    # one zone, or several for a debtor reachable in more than one (all must allow a contact)
    ColumnSpec("timezone", ValueKind.LIST, item_kind=ValueKind.TIMEZONE),
    ColumnSpec("phone", _S),
    ColumnSpec("email", _S),
    ColumnSpec("address", _S),
    ColumnSpec("opt_out_channels", ValueKind.LIST, default=(), item_kind=_S),
    ColumnSpec("stage", _S),
    ColumnSpec("stage_entered", ValueKind.DATE),
)

HISTORY_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("person_id", _S),
    ColumnSpec("debt_id", _S),
    # the phone number, e-mail or address the attempt used
    ColumnSpec("contact", _S),
    ColumnSpec("channel", _S, required=True),
    ColumnSpec("direction", ValueKind.ENUM, default="outbound", enum_values=("outbound", "inbound")),
    ColumnSpec("outcome", _S, required=True),
    ColumnSpec("at", ValueKind.DATETIME, required=True),
    ColumnSpec("consent", ValueKind.BOOL, default=False),
    ColumnSpec("template", _S),
    ColumnSpec("subject", ValueKind.ENUM, default="debtor",
               enum_values=("debtor", "co_obligor", "third_party")),
    # a contact about several debts (a call covering two loans): every debt it was about, ';'-separated
    ColumnSpec("debt_ids", ValueKind.LIST, default=(), item_kind=_S),
)

HOLD_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("type", _S, required=True),
    ColumnSpec("start", ValueKind.DATE, required=True),
    # no end: the hold lasts until it is lifted
    ColumnSpec("end", ValueKind.DATE),
    # empty: the hold covers every channel
    ColumnSpec("channels", ValueKind.LIST, default=(), item_kind=_S),
    ColumnSpec("note", _S),
)

PROMISE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("promised_on", ValueKind.DATE, required=True),
    ColumnSpec("due", ValueKind.DATE, required=True),
    ColumnSpec("amount", ValueKind.DECIMAL, required=True),
    ColumnSpec("paid", ValueKind.DECIMAL, default=Decimal("0")),
    ColumnSpec("status", ValueKind.ENUM, default="pending", enum_values=("pending", "kept", "broken")),
)
