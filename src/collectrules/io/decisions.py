"""Writers for decisions: JSON Lines (full detail), CSV (one flat row per account) and Parquet.

JSON Lines keeps every field of a decision. CSV and Parquet flatten it to one row per account with the
due and blocked actions summarised in text columns and the full due/blocked lists as JSON text, so no
information is lost in any format.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

from ..engine.decision import Decision, iso_utc, plain_value

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")

FLAT_COLUMNS = ("account_id", "as_of", "segment", "segment_rule", "ladder", "stage", "stage_entered",
                "day_in_stage", "status", "due", "blocked", "next_allowed", "errors", "due_json", "blocked_json",
                "scores_json")


#: ``json.dumps(..., separators=(",", ":"))`` without building an encoder per call
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def flat_row(decision: Decision) -> dict[str, Any]:
    """One row per account: the fields of :meth:`Decision.to_dict` that are not lists, the due and blocked
    actions summarised as text, and the full lists as JSON text."""
    due = decision.due
    blocked = decision.blocked
    return {
        "account_id": decision.account_id, "as_of": iso_utc(decision.as_of), "segment": decision.segment,
        "segment_rule": decision.segment_rule, "ladder": decision.ladder, "stage": decision.stage,
        "stage_entered": decision.stage_entered.isoformat() if decision.stage_entered else None,
        "day_in_stage": decision.day_in_stage, "status": decision.status,
        "due": ";".join([a.channel + (f":{a.template}" if a.template else "") for a in due]),
        "blocked": ";".join([f"{b.action.channel}[" + ",".join([r.restriction for r in b.reasons]) + "]"
                             for b in blocked]),
        "next_allowed": ";".join([f"{b.action.channel}={iso_utc(b.next_allowed) or 'unknown'}"
                                  for b in blocked]),
        "errors": ";".join([f"{e.code}: {e.message}" for e in decision.errors]),
        "due_json": _ENCODE([a.to_dict() for a in due]) if due else "[]",
        "blocked_json": _ENCODE([b.to_dict() for b in blocked]) if blocked else "[]",
        "scores_json": _ENCODE({k: plain_value(v) for k, v in decision.scores.items()}),
    }


class DecisionWriter:
    """Streams decisions to a file (or a text stream for jsonl/csv) in one of OUTPUT_FORMATS."""

    def __init__(self, fmt: str, path: str | Path | None = None, stream: IO[str] | None = None) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        self.fmt = fmt
        self.count = 0
        self._owned: IO[str] | None = None
        self._batch: list[dict[str, Any]] = []
        self._parquet: Any = None
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            if self.path is None:
                raise ValueError("parquet output needs a file (-o)")
            return
        if stream is None:
            assert self.path is not None
            self._owned = stream = self.path.open("w", encoding="utf-8", newline="")
        self.stream = stream
        self._csv = csv.DictWriter(stream, FLAT_COLUMNS) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, decision: Decision) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self.stream.write(decision.to_json() + "\n")
        elif self._csv is not None:
            self._csv.writerow(flat_row(decision))
        else:
            self._batch.append(flat_row(decision))
            if len(self._batch) >= 50_000:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, pa.int64() if name == "day_in_stage" else pa.string()) for name in FLAT_COLUMNS])
        table = pa.Table.from_pylist(self._batch, schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self.path), schema)
        self._parquet.write_table(table)
        self._batch = []

    def close(self) -> None:
        if self.fmt == "parquet":
            if self._batch or self._parquet is None:
                self._flush_parquet()
            self._parquet.close()
        elif self._owned is not None:
            self._owned.close()
