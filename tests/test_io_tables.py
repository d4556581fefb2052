"""Input data readers: cell parsing per kind, and whole tables in CSV, JSON Lines and Parquet."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from collectrules.errors import DataError
from collectrules.io.tables import (
    ACCOUNT_STANDARD_COLUMNS,
    HISTORY_COLUMNS,
    HOLD_COLUMNS,
    PROMISE_COLUMNS,
    ColumnSpec,
    RowProblem,
    iter_table,
    read_table,
)
from collectrules.io.values import ValueKind, parse_duration, parse_value

K = ValueKind
UTC = dt.UTC
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))

# ---------------------------------------------------------------------------------------------------------
# parse_value

GOOD_VALUES = [
    # (kind, raw, expected, keyword arguments)
    (K.BOOL, "true", True, {}),
    (K.BOOL, "No", False, {}),
    (K.BOOL, "YES", True, {}),
    (K.BOOL, "0", False, {}),
    (K.BOOL, False, False, {}),
    (K.BOOL, 1, True, {}),
    (K.INT, "42", 42, {}),
    (K.INT, " -7 ", -7, {}),
    (K.INT, 42, 42, {}),
    (K.INT, 42.0, 42, {}),
    (K.INT, Decimal("30"), 30, {}),
    (K.DECIMAL, "5000.50", Decimal("5000.50"), {}),
    (K.DECIMAL, "-0.01", Decimal("-0.01"), {}),
    (K.DECIMAL, ".5", Decimal("0.5"), {}),
    (K.DECIMAL, 0.1, Decimal("0.1"), {}),
    (K.DECIMAL, 7, Decimal("7"), {}),
    (K.DECIMAL, Decimal("1.10"), Decimal("1.10"), {}),
    (K.STRING, "  card  ", "card", {}),
    (K.STRING, 5551234567, "5551234567", {}),
    (K.ENUM, "kept", "kept", {"enum_values": ("pending", "kept", "broken")}),
    (K.DATE, "2025-03-04", dt.date(2025, 3, 4), {}),
    (K.DATE, dt.date(2024, 2, 29), dt.date(2024, 2, 29), {}),
    (K.DATETIME, "2025-03-04T09:30:00Z", dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC), {}),
    (K.DATETIME, "2025-03-04 09:30:00+01:00", dt.datetime(2025, 3, 4, 9, 30, tzinfo=PLUS_ONE), {}),
    (K.DATETIME, dt.datetime(2025, 3, 4, tzinfo=UTC), dt.datetime(2025, 3, 4, tzinfo=UTC), {}),
    (K.DURATION, "7d", dt.timedelta(days=7), {}),
    (K.DURATION, "12h", dt.timedelta(hours=12), {}),
    (K.DURATION, "30m", dt.timedelta(minutes=30), {}),
    (K.DURATION, "2w", dt.timedelta(weeks=2), {}),
    (K.DURATION, "45s", dt.timedelta(seconds=45), {}),
    (K.DURATION, dt.timedelta(hours=3), dt.timedelta(hours=3), {}),
    (K.TIMEZONE, "America/New_York", "America/New_York", {}),
    (K.TIMEZONE, "UTC", "UTC", {}),
    (K.LIST, "sms; email;", ("sms", "email"), {}),
    (K.LIST, ["sms", "email"], ("sms", "email"), {}),
    (K.LIST, [], (), {}),
    (K.LIST, "1;7;15", (1, 7, 15), {"item_kind": K.INT}),
    (K.LIST, "Asia/Shanghai;Europe/Paris", ("Asia/Shanghai", "Europe/Paris"), {"item_kind": K.TIMEZONE}),
    (K.LIST, ["sms"], ("sms",), {"item_kind": K.ENUM, "enum_values": ("sms", "phone")}),
]


@pytest.mark.parametrize(("kind", "raw", "expected", "options"), GOOD_VALUES,
                         ids=[f"{kind.value}-{raw!r}" for kind, raw, _, _ in GOOD_VALUES])
def test_parse_value_accepts(kind: ValueKind, raw: object, expected: object,
                             options: dict[str, object]) -> None:
    value = parse_value(raw, kind, **options)  # type: ignore[arg-type]
    assert value == expected
    assert type(value) is type(expected)


def test_decimal_from_a_float_keeps_the_written_digits() -> None:
    # binary arithmetic would give 0.1000000000000000055511151231257827...
    assert str(parse_value(0.1, K.DECIMAL)) == "0.1"


@pytest.mark.parametrize("kind", list(ValueKind))
@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_cells_are_null_for_every_kind(kind: ValueKind, raw: object) -> None:
    assert parse_value(raw, kind, enum_values=("a",)) is None


BAD_VALUES = [
    # (kind, raw, exact message, keyword arguments)
    (K.BOOL, "maybe", "expected true or false (also yes/no, 1/0), got 'maybe'", {}),
    (K.BOOL, 2, "expected true or false (also yes/no, 1/0), got 2", {}),
    (K.INT, "4.2", "expected a whole number, got '4.2'", {}),
    (K.INT, 4.2, "expected a whole number, got 4.2", {}),
    (K.INT, True, "expected a whole number, got true", {}),
    (K.INT, "1_000", "expected a whole number, got '1_000'", {}),
    (K.DECIMAL, "abc", "expected a decimal number, got 'abc'", {}),
    (K.DECIMAL, "1,234.50",
     "expected a decimal number, got '1,234.50' (remove the thousands separators: '1234.50')", {}),
    (K.DECIMAL, "12,5", "expected a decimal number, got '12,5' (use '.' as the decimal point)", {}),
    (K.DECIMAL, "-Infinity",
     "expected a decimal number, got '-Infinity' (not-a-number and infinity are not amounts)", {}),
    (K.DECIMAL, float("inf"),
     "expected a decimal number, got inf (not-a-number and infinity are not amounts)", {}),
    (K.DECIMAL, Decimal("NaN"),
     "expected a decimal number, got NaN (not-a-number and infinity are not amounts)", {}),
    (K.DECIMAL, False, "expected a decimal number, got false", {}),
    (K.STRING, ["a"], "expected text, got a list", {}),
    (K.STRING, 1.5, "expected text, got 1.5", {}),
    (K.ENUM, "kep", "expected one of 'pending', 'kept', 'broken', got 'kep'; did you mean 'kept'?",
     {"enum_values": ("pending", "kept", "broken")}),
    (K.ENUM, "Broken", "expected one of 'pending', 'kept', 'broken', got 'Broken'; did you mean 'broken'?",
     {"enum_values": ("pending", "kept", "broken")}),
    (K.ENUM, "xyz", "expected one of 'pending', 'kept', 'broken', got 'xyz'",
     {"enum_values": ("pending", "kept", "broken")}),
    (K.DATE, "04/03/2025", "expected a date like 2025-03-04, got '04/03/2025'", {}),
    (K.DATE, "2025-02-30",
     "expected a date like 2025-03-04, got '2025-02-30' (day is out of range for month)", {}),
    (K.DATE, dt.datetime(2025, 3, 4, tzinfo=UTC),
     "expected a date like 2025-03-04, got the date-time 2025-03-04T00:00:00+00:00", {}),
    (K.DATETIME, "2025-03-04T09:30:00",
     "expected a date-time with a time zone like 2025-03-04T09:30:00+01:00, got '2025-03-04T09:30:00', "
     "which has no time zone (add an offset such as '+01:00', or 'Z' for UTC)", {}),
    (K.DATETIME, "2025-03-04",
     "expected a date-time with a time zone like 2025-03-04T09:30:00+01:00, got '2025-03-04'", {}),
    (K.DATETIME, dt.datetime(2025, 3, 4),
     "expected a date-time with a time zone like 2025-03-04T09:30:00+01:00, got the date-time "
     "2025-03-04T00:00:00, which has no time zone (add an offset such as '+01:00', or 'Z' for UTC)", {}),
    (K.DURATION, "7 days", "expected a duration like 7d, 12h, 30m, 2w or 45s, got '7 days'", {}),
    (K.DURATION, "7D", "expected a duration like 7d, 12h, 30m, 2w or 45s, got '7D'", {}),
    (K.DURATION, 7, "expected a duration like 7d, 12h, 30m, 2w or 45s, got 7", {}),
    (K.TIMEZONE, "Europe/Londn",
     "expected an IANA time zone name like 'Europe/London', got 'Europe/Londn'; "
     "did you mean 'Europe/London'?", {}),
    (K.TIMEZONE, "EST+5", "expected an IANA time zone name like 'Europe/London', got 'EST+5'", {}),
    (K.TIMEZONE, "../etc/passwd",
     "expected an IANA time zone name like 'Europe/London', got '../etc/passwd'", {}),
    (K.LIST, "1;x;3", "item 2: expected a whole number, got 'x'", {"item_kind": K.INT}),
    (K.LIST, ["sms", None], "item 2: expected a value, got null", {}),
    (K.LIST, 5, "expected a list (';'-separated in CSV), got 5", {}),
]


@pytest.mark.parametrize(("kind", "raw", "message", "options"), BAD_VALUES,
                         ids=[f"{kind.value}-{raw!r}" for kind, raw, _, _ in BAD_VALUES])
def test_parse_value_rejects(kind: ValueKind, raw: object, message: str, options: dict[str, object]) -> None:
    with pytest.raises(ValueError) as caught:
        parse_value(raw, kind, **options)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_parse_duration_rejects_overflow() -> None:
    with pytest.raises(ValueError, match=r"got '99999999999w' \(too large\)"):
        parse_duration("99999999999w")


def test_column_spec_rejects_inconsistent_declarations() -> None:
    with pytest.raises(ValueError, match="needs enum_values"):
        ColumnSpec("status", K.ENUM)
    with pytest.raises(ValueError, match="only meaningful for a list"):
        ColumnSpec("amount", K.DECIMAL, item_kind=K.INT)
    with pytest.raises(ValueError, match="cannot themselves be lists"):
        ColumnSpec("nested", K.LIST, item_kind=K.LIST)


# ---------------------------------------------------------------------------------------------------------
# read_table: CSV


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_jsonl(tmp_path: Path, name: str, lines: list[object]) -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return write(tmp_path, name, text)


PROMISES_CSV = (
    "account_id,promised_on,due,amount,paid,status,agent\n"
    "A1,2025-03-01,2025-03-10,1234567890.123456789,,pending,kim\n"
    "A2,2025-03-02,2025-03-12,150.00,150.00,kept,lee\n"
    "A3,2025-03-02,2025-03-12,abc,0,broken,lee\n"
    "A4,2025-03-03,2025-03-15,80,,,ng\n"
)


def test_csv_good_rows_are_typed_and_a_bad_decimal_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "promises.csv", PROMISES_CSV)
    read = read_table(path, PROMISE_COLUMNS)

    assert [row for row, _ in read.rows] == [2, 3, 5]
    first = read.rows[0][1]
    assert first == {
        "account_id": "A1", "promised_on": dt.date(2025, 3, 1), "due": dt.date(2025, 3, 10),
        "amount": Decimal("1234567890.123456789"), "paid": Decimal("0"), "status": "pending", "agent": "kim",
    }
    assert str(first["amount"]) == "1234567890.123456789"
    assert read.rows[2][1]["status"] == "pending"  # empty enum cell takes the default

    assert read.problems == [RowProblem(str(path), 4, "amount", "expected a decimal number, got 'abc'")]
    assert str(read.problems[0]) == f"{path}:4: column 'amount': expected a decimal number, got 'abc'"
    assert (read.rejected_rows, read.total_rows) == (1, 4)


def test_every_bad_cell_of_a_row_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "promises.csv", "account_id,promised_on,due,amount\n,2025-13-01,2025-03-10,1e\n")
    read = read_table(path, PROMISE_COLUMNS)
    assert read.rows == []
    assert [(p.row, p.column) for p in read.problems] == [
        (2, "account_id"), (2, "promised_on"), (2, "amount")]
    assert read.problems[0].message == "required value is missing"


def test_missing_required_column_is_one_file_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "promises.csv", "acount_id,promised_on,due,total\nA1,2025-03-01,2025-03-10,5\n")
    with pytest.raises(DataError) as caught:
        read_table(path, PROMISE_COLUMNS)
    error = caught.value
    assert error.code == "CR601"
    assert error.location is not None and (error.location.file, error.location.line) == (str(path), 1)
    diagnostic = error.diagnostics[0]
    assert diagnostic.message == ("required columns 'account_id', 'amount' are missing; "
                                  "the file's columns are 'acount_id', 'promised_on', 'due', 'total'")
    assert diagnostic.hint == "did you mean 'acount_id' for 'account_id'?"


def test_semicolon_separated_file_gets_a_separator_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv", "account_id;type;start\nA1;dispute;2025-01-01\n")
    with pytest.raises(DataError) as caught:
        read_table(path, HOLD_COLUMNS)
    hint = caught.value.diagnostics[0].hint
    assert hint == "the header looks like one column: columns must be separated by ','"


def test_unknown_enum_value_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "history.csv",
                 "account_id,channel,direction,outcome,at\n"
                 "A1,phone,outbund,no_answer,2025-03-04T09:30:00Z\n")
    read = read_table(path, HISTORY_COLUMNS)
    assert [str(p) for p in read.problems] == [
        f"{path}:2: column 'direction': expected one of 'outbound', 'inbound', got 'outbund'; "
        "did you mean 'outbound'?"]


def test_history_rejects_naive_datetimes_and_fills_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "history.csv",
                 "account_id,channel,outcome,at,consent\n"
                 "A1,phone,no_answer,2025-03-04T09:30:00-05:00,\n"
                 "A1,sms,delivered,2025-03-04T10:00:00,yes\n")
    read = read_table(path, HISTORY_COLUMNS)
    (row, values), = read.rows
    assert row == 2
    assert values["at"] == dt.datetime(2025, 3, 4, 14, 30, tzinfo=UTC)
    assert (values["direction"], values["consent"], values["subject"]) == ("outbound", False, "debtor")
    (problem,) = read.problems
    assert (problem.row, problem.column) == (3, "at")
    assert problem.message.startswith("expected a date-time with a time zone")
    assert "'2025-03-04T10:00:00', which has no time zone" in problem.message


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv", "\ufeffaccount_id,type,start\r\nA1,dispute,2025-01-01\r\n")
    read = read_table(path, HOLD_COLUMNS)
    assert read.problems == []
    assert read.rows == [(2, {"account_id": "A1", "type": "dispute", "start": dt.date(2025, 1, 1),
                              "end": None, "channels": (), "note": None})]


def test_header_only_file_gives_zero_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv", "account_id,type,start\n")
    read = read_table(path, HOLD_COLUMNS)
    assert (read.rows, read.problems, read.rejected_rows, read.total_rows) == ([], [], 0, 0)


def test_file_without_a_header_is_missing_its_required_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv", "")
    with pytest.raises(DataError, match="the file has no header line") as caught:
        read_table(path, HOLD_COLUMNS)
    assert caught.value.code == "CR601"


def test_csv_row_numbers_are_the_line_on_which_the_row_starts(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv",
                 'account_id,type,start,note\n'
                 'A1,dispute,2025-01-01,"first line\nsecond line"\n'
                 '\n'
                 'A2,cease,2025-13-01,\n'
                 ',,,\n'
                 'A3,cease,2025-01-02\n'
                 'A4,cease,2025-01-02,x,surplus\n'
                 'A5,cease,2025-01-02,"unclosed\n'
                 'A6,cease,2025-01-02,\n')
    read = read_table(path, HOLD_COLUMNS)
    assert read.rows[0] == (2, read.rows[0][1])
    assert read.rows[0][1]["note"] == "first line\nsecond line"
    assert [(p.row, p.column, p.message) for p in read.problems] == [
        (5, "start", "expected a date like 2025-03-04, got '2025-13-01' (month must be in 1..12)"),
        (7, None, "expected 4 values (one per header column), found 3"),
        (8, None, "expected 4 values (one per header column), found 5"),
        (9, None, "malformed CSV row (on line 10): unexpected end of data; a quoted value that starts on "
                  "this row is never closed"),
    ]
    # the separators-only line 6 holds no data and is not a row
    assert (read.rejected_rows, read.total_rows) == (4, 5)


def test_strict_quoting_error_is_a_row_problem_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv",
                 'account_id,type,start\nA1,"dis"pute,2025-01-01\nA2,cease,2025-01-02\n')
    read = read_table(path, HOLD_COLUMNS)
    assert [row for row, _ in read.rows] == [3]
    assert [(p.row, p.message) for p in read.problems] == [
        (2, "malformed CSV row: ',' expected after '\"'")]


def test_trailing_empty_and_unnamed_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv",
                 "account_id,type,start,\nA1,cease,2025-01-02,,\nA2,cease,2025-01-02,x\n")
    read = read_table(path, HOLD_COLUMNS)
    assert [row for row, _ in read.rows] == [2]
    assert [str(p) for p in read.problems] == [
        f"{path}:3: value 'x' stands in column 4, which has no header name"]


def test_duplicate_header_column_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, "holds.csv", "account_id,type,start,type\n")
    with pytest.raises(DataError, match="column 'type' appears more than once") as caught:
        read_table(path, HOLD_COLUMNS)
    assert caught.value.code == "CR605"


def test_extra_columns_are_raw_text_or_dropped_on_request(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "account_id,balance,dpd\nA1,100.50,12\n")
    kept = read_table(path, ACCOUNT_STANDARD_COLUMNS)
    assert (kept.rows[0][1]["balance"], kept.rows[0][1]["dpd"]) == ("100.50", "12")
    dropped = read_table(path, ACCOUNT_STANDARD_COLUMNS, keep_extra=False)
    assert "balance" not in dropped.rows[0][1]


def test_problems_beyond_the_limit_are_counted_not_stored(tmp_path: Path) -> None:
    rows = "".join(f"A{n},2025-03-01,2025-03-10,bad{n}\n" for n in range(5))
    path = write(tmp_path, "promises.csv", "account_id,promised_on,due,amount\n" + rows)
    read = read_table(path, PROMISE_COLUMNS, max_problems=2)
    assert [p.row for p in read.problems[:2]] == [2, 3]
    assert len(read.problems) == 3 and read.omitted_problems == 3
    assert str(read.problems[2]) == (f"{path}:4: 3 more problems from this row on were not listed "
                                     "(max_problems=2); 5 of 5 rows were rejected in all")


def test_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "holds.csv"
    path.write_bytes("account_id,type,start,note\nA1,cease,2025-01-02,caf\u00e9\n".encode("cp1252"))
    with pytest.raises(DataError) as caught:
        read_table(path, HOLD_COLUMNS)
    error = caught.value
    assert error.code == "CR603"
    assert error.location is not None and (error.location.line, error.location.column) == (2, 24)
    assert error.diagnostics[0].message == "the file is not valid UTF-8: byte 0xe9 cannot be decoded"


@pytest.mark.parametrize(("name", "message"), [
    ("missing.csv", "cannot read {path}: no such file"),
    ("accounts.xlsx", "cannot read {path}: unsupported file type '.xlsx'"),
])
def test_unreadable_files(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    with pytest.raises(DataError) as caught:
        read_table(path, HOLD_COLUMNS)
    assert caught.value.diagnostics[0].message == message.format(path=path)


# ---------------------------------------------------------------------------------------------------------
# read_table: JSON Lines


def test_jsonl_rows_keep_decimal_precision_and_real_types(tmp_path: Path) -> None:
    path = write(tmp_path, "promises.jsonl",
                 '{"account_id": "A1", "promised_on": "2025-03-01", "due": "2025-03-10", '
                 '"amount": 1234567890.123456789, "paid": 0.1, "meta": {"src": "crm"}, "flag": true}\n')
    read = read_table(path, PROMISE_COLUMNS)
    values = read.rows[0][1]
    assert str(values["amount"]) == "1234567890.123456789"
    assert values["paid"] == Decimal("0.1")
    assert (values["meta"], values["flag"]) == ('{"src":"crm"}', "true")


def test_jsonl_non_object_line_is_a_row_problem(tmp_path: Path) -> None:
    hold = {"account_id": "A1", "type": "dispute", "start": "2025-01-01"}
    path = write_jsonl(tmp_path, "holds.ndjson", [hold, "[1, 2]", "", "{\"account_id\": ", hold,
                                                  '{"account_id": "A3", "account_id": "A4"}'])
    read = read_table(path, HOLD_COLUMNS)
    assert [row for row, _ in read.rows] == [1, 5]
    assert [(p.row, p.column, p.message) for p in read.problems] == [
        (2, None, "expected a JSON object on the line, got a list"),
        (4, None, "the line is not valid JSON: Expecting value (column 15)"),
        (6, None, "key 'account_id' appears more than once in the object"),
    ]
    assert (read.rejected_rows, read.total_rows) == (3, 5)


def test_jsonl_without_any_object_is_a_file_error(tmp_path: Path) -> None:
    # an indented JSON document: no single line is an object
    path = write(tmp_path, "holds.jsonl", '{\n  "account_id": "A1",\n  "type": "cease"\n}\n')
    with pytest.raises(DataError) as caught:
        read_table(path, HOLD_COLUMNS)
    error = caught.value
    assert error.code == "CR606"
    assert error.location is not None and error.location.line == 1
    assert error.diagnostics[0].message == (
        "no line holds a JSON object; line 1: the line is not valid JSON: "
        "Expecting property name enclosed in double quotes (column 2)")


def test_jsonl_first_object_stands_for_the_header(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, "holds.jsonl",
                       ["not json", {"account": "A1", "type": "x", "start": "2025-01-01"}])
    with pytest.raises(DataError) as caught:
        read_table(path, HOLD_COLUMNS)
    error = caught.value
    assert error.code == "CR601"
    assert error.location is not None and error.location.line == 2
    assert "the first object's keys are 'account', 'type', 'start'" in error.diagnostics[0].message


def test_jsonl_object_lacking_a_required_key_later_is_a_row_problem(tmp_path: Path) -> None:
    hold = {"account_id": "A1", "type": "dispute", "start": "2025-01-01"}
    path = write_jsonl(tmp_path, "holds.jsonl", [hold, {"account_id": "A2", "start": "2025-01-01"}])
    read = read_table(path, HOLD_COLUMNS)
    assert [str(p) for p in read.problems] == [f"{path}:2: column 'type': required value is missing"]


def test_list_columns_in_csv_and_jsonl_read_alike(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "accounts.csv",
                     "account_id,timezone,opt_out_channels\n"
                     'A1,America/New_York;America/Chicago,"sms; email"\n'
                     "A2,,\n"
                     "A3,America/New_Yrok,\n")
    jsonl_path = write_jsonl(tmp_path, "accounts.jsonl", [
        {"account_id": "A1", "timezone": ["America/New_York", "America/Chicago"],
         "opt_out_channels": ["sms", "email"]},
        {"account_id": "A2", "timezone": None},
        {"account_id": "A3", "timezone": ["America/New_Yrok"], "opt_out_channels": []},
    ])
    reads = [read_table(csv_path, ACCOUNT_STANDARD_COLUMNS), read_table(jsonl_path, ACCOUNT_STANDARD_COLUMNS)]
    for read in reads:
        (_, first), (_, second) = read.rows
        assert first["timezone"] == ("America/New_York", "America/Chicago")
        assert first["opt_out_channels"] == ("sms", "email")
        assert (second["timezone"], second["opt_out_channels"]) == (None, ())
        (problem,) = read.problems
        assert problem.column == "timezone"
        assert problem.message == ("item 1: expected an IANA time zone name like 'Europe/London', got "
                                   "'America/New_Yrok'; did you mean 'America/New_York'?")


def test_iter_table_streams_the_same_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "promises.csv", PROMISES_CSV)
    results = list(iter_table(path, PROMISE_COLUMNS))
    assert [(r.row, r.values is not None) for r in results] == [(2, True), (3, True), (4, False), (5, True)]


# ---------------------------------------------------------------------------------------------------------
# read_table: Parquet


def test_parquet_rows_are_typed_and_numbered_from_one(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "history.parquet"
    table = pa.table({
        "account_id": ["A1", "A2", "A3"],
        "channel": ["phone", "sms", "phone"],
        "outcome": ["no_answer", "delivered", "conversation"],
        "at": pa.array([dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC)] * 3, type=pa.timestamp("us", tz="UTC")),
        "consent": [None, True, False],
        "direction": ["outbound", "inbound", "sideways"],
        "contact": pa.array([5551234567, None, 5557654321], type=pa.int64()),
        "cost": pa.array([Decimal("0.123456789012345678"), None, Decimal("1")], type=pa.decimal128(38, 18)),
    })
    pq.write_table(table, path)
    read = read_table(path, HISTORY_COLUMNS)
    assert [row for row, _ in read.rows] == [1, 2]
    first = read.rows[0][1]
    assert first["at"] == dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    assert (first["consent"], first["contact"]) == (False, "5551234567")
    assert first["cost"] == "0.123456789012345678"  # an extra column: kept as its exact text
    assert read.rows[1][1]["direction"] == "inbound"
    assert [str(p) for p in read.problems] == [
        f"{path}:3: column 'direction': expected one of 'outbound', 'inbound', got 'sideways'"]


def test_parquet_decimal_column_and_naive_timestamps(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    promises = tmp_path / "promises.parquet"
    pq.write_table(pa.table({
        "account_id": ["A1"], "promised_on": [dt.date(2025, 3, 1)], "due": ["2025-03-10"],
        "amount": pa.array([Decimal("1234567890.123456789")], type=pa.decimal128(30, 9)),
        "paid": pa.array([0.1], type=pa.float64()),
    }), promises)
    (_, values), = read_table(promises, PROMISE_COLUMNS).rows
    assert str(values["amount"]) == "1234567890.123456789"
    assert values["paid"] == Decimal("0.1")
    assert values["promised_on"] == dt.date(2025, 3, 1)

    history = tmp_path / "history.parquet"
    pq.write_table(pa.table({"account_id": ["A1"], "channel": ["sms"], "outcome": ["sent"],
                             "at": pa.array([dt.datetime(2025, 3, 4, 9, 30)], type=pa.timestamp("us"))}),
                   history)
    read = read_table(history, HISTORY_COLUMNS)
    assert read.rows == []
    assert "which has no time zone" in read.problems[0].message


def test_parquet_missing_column_and_unreadable_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "holds.parquet"
    pq.write_table(pa.table({"account_id": ["A1"], "kind": ["cease"], "start": [dt.date(2025, 1, 1)]}), path)
    with pytest.raises(DataError, match="required column 'type' is missing") as caught:
        read_table(path, HOLD_COLUMNS)
    assert caught.value.code == "CR601"

    garbage = write(tmp_path, "broken.parquet", "account_id,type\n")
    with pytest.raises(DataError, match="as Parquet") as unreadable:
        read_table(garbage, HOLD_COLUMNS)
    assert unreadable.value.code == "CR602"
