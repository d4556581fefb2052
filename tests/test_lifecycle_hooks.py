"""The evaluation lifecycle hooks: collectrules_before_evaluate and collectrules_after_decision.

A plugin file in a ``plugins/`` folder beside the policy records what ``collectrules evaluate`` hands it;
the test checks the order, the arguments and that every decision reaches the hook before it is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from collectrules.cli import _attach, cli

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
import json
import os

from collectrules import hookimpl

LOG = os.environ["LIFECYCLE_LOG"]


def _write(entry):
    with open(LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\\n")


@hookimpl
def collectrules_before_evaluate(policy, as_of):
    _write({"hook": "before_evaluate", "policy": policy.metadata.name, "as_of": as_of.isoformat()})


@hookimpl
def collectrules_after_decision(decision):
    _write({"hook": "after_decision", "account": decision.account_id, "segment": decision.segment})
'''


def test_evaluate_calls_the_lifecycle_hooks_for_every_decision(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(REPO / "tests" / "engine" / "policies" / "segments-first.yaml", tmp_path / "policy.yaml")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "lifecycle_recorder.py").write_text(PLUGIN, encoding="utf-8")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,dpd,balance,timezone\nA1,5,100.00,America/New_York\n"
                        "A2,45,9000.00,America/New_York\nA3,200,20000.00,America/New_York\n", encoding="utf-8")
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("LIFECYCLE_LOG", str(log))
    monkeypatch.setenv("COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD", "1")
    _attach()
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "policy.yaml"), "--accounts", str(accounts),
                                      "--as-of", "2026-11-23T15:00:00Z", "--engine", "rows", "-o", str(out)])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert entries[0]["hook"] == "before_evaluate"
    assert entries[0]["as_of"] == "2026-11-23T15:00:00+00:00"
    after = entries[1:]
    assert [e["hook"] for e in after] == ["after_decision"] * 3
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # every written decision went through the hook first, in input order, with the same content
    assert [e["account"] for e in after] == [d["account_id"] for d in written] == ["A1", "A2", "A3"]
    assert [e["segment"] for e in after] == [d["segment"] for d in written]
