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

from ..engine.decision import Decision

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")

FLAT_COLUMNS = ("account_id", "as_of", "segment", "segment_rule", "ladder", "stage", "stage_entered",
                "day_in_stage", "status", "due", "blocked", "next_allowed", "errors", "due_json", "blocked_json",
                "scores_json")


def flat_row(decision: Decision) -> dict[str, Any]:
    data = decision.to_dict()
    due = ";".join(f"{a['channel']}" + (f":{a['template']}" if a["template"] else "") for a in data["due"])
    blocked = ";".join(f"{b['channel']}[" + ",".join(r["restriction"] for r in b["blocked_by"]) + "]"
                       for b in data["blocked"])
    next_allowed = ";".join(f"{b['channel']}={b['next_allowed'] or 'unknown'}" for b in data["blocked"])
    return {
        "account_id": data["account_id"], "as_of": data["as_of"], "segment": data["segment"],
        "segment_rule": data["segment_rule"], "ladder": data["ladder"], "stage": data["stage"],
        "stage_entered": data["stage_entered"], "day_in_stage": data["day_in_stage"], "status": data["status"],
        "due": due, "blocked": blocked, "next_allowed": next_allowed,
        "errors": ";".join(f"{e['code']}: {e['message']}" for e in data["errors"]),
        "due_json": json.dumps(data["due"], separators=(",", ":")),
        "blocked_json": json.dumps(data["blocked"], separators=(",", ":")),
        "scores_json": json.dumps(data["scores"], separators=(",", ":")),
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
