"""The pre-commit hooks: the manifest at the repository root, and the hooks at work in a policy repository.

The sample repository uses ``repo: local`` hooks with ``language: system`` whose entries mirror the
manifest but point at this virtualenv's ``collectrules``, so pre-commit installs nothing and needs no
network; the manifest itself is checked with pre-commit's own validator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent

HOOKS = {
    "collectrules-validate": "collectrules validate",
    "collectrules-lint": "collectrules lint",
    "collectrules-test": "collectrules test",
    "collectrules-fmt": "collectrules fmt",
}

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (BIN / "pre-commit").exists(),
                                reason="needs git and pre-commit (the dev extra)")

POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata:
  name: sample
  version: "1"
fields:
  dpd: int
segments:
  rules:
    - id: early
      when: dpd between 1 and 30
  default: other
"""

SUITE = """\
apiVersion: collectrules/v1
kind: PolicyTest
policy: sample.yaml
cases:
  - name: ten days late is early
    as_of: "2026-11-23T15:00:00Z"
    account: {account_id: A-1, dpd: 10}
    expect:
      segment: early
"""


def test_manifest_lists_the_four_hooks() -> None:
    hooks = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))

    assert {hook["id"]: hook["entry"] for hook in hooks} == HOOKS
    for hook in hooks:
        assert hook["language"] == "python"
        assert hook["files"] == r"\.ya?ml$"


def test_manifest_is_valid_for_pre_commit() -> None:
    completed = subprocess.run([str(BIN / "pre-commit"), "validate-manifest", str(MANIFEST)],
                               capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stdout + completed.stderr


def _config() -> str:
    """A local mirror of the manifest, narrowed to the policies folder."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    hooks = []
    for hook in manifest:
        entry = str(BIN / hook["entry"].split()[0]) + " " + " ".join(hook["entry"].split()[1:])
        local = {"id": hook["id"], "name": hook["name"], "entry": entry, "language": "system",
                 "files": r"^policies/.*\.ya?ml$"}
        for key in ("exclude", "pass_filenames"):
            if key in hook:
                local[key] = hook[key]
        hooks.append(local)
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}, sort_keys=False)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60, env=_env(repo))


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env["PRE_COMMIT_HOME"] = str(repo.parent / "pre-commit-home")
    env["HOME"] = str(repo.parent)
    return env


@pytest.fixture
def policy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "policies").mkdir(parents=True)
    (repo / "policies" / "sample.yaml").write_text(POLICY, encoding="utf-8")
    (repo / "policies" / "sample.test.yaml").write_text(SUITE, encoding="utf-8")
    (repo / ".pre-commit-config.yaml").write_text(_config(), encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    return repo


def pre_commit(repo: Path, *hook: str) -> subprocess.CompletedProcess[str]:
    """``pre-commit run`` over every file, for all hooks or the one named."""
    _git(repo, "add", "-A")
    command = [str(BIN / "pre-commit"), "run", *hook, "--all-files", "--color", "never"]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120, env=_env(repo))


def test_a_clean_policy_passes_every_hook(policy_repo: Path) -> None:
    completed = pre_commit(policy_repo)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for name in HOOKS.values():
        assert name in completed.stdout
    assert completed.stdout.count("Passed") == 4


def test_a_broken_policy_fails_with_its_located_error(policy_repo: Path) -> None:
    broken = POLICY.replace("when: dpd between 1 and 30", "when: dpd between 1 and 30 and balnce > 0")
    (policy_repo / "policies" / "sample.yaml").write_text(broken, encoding="utf-8")

    completed = pre_commit(policy_repo, "collectrules-validate")

    assert completed.returncode == 1
    assert "policies/sample.yaml:11:38: error[CR351]: unknown name 'balnce'" in completed.stdout
    assert "collectrules validate" in completed.stdout and "Failed" in completed.stdout


def test_the_fmt_hook_rewrites_and_fails_the_commit(policy_repo: Path) -> None:
    (policy_repo / "policies" / "sample.yaml").write_text(POLICY.replace("  dpd: int", "    dpd: int"),
                                                          encoding="utf-8")

    first = pre_commit(policy_repo, "collectrules-fmt")
    second = pre_commit(policy_repo, "collectrules-fmt")

    assert first.returncode == 1
    assert "reformatted policies/sample.yaml" in first.stdout
    assert "files were modified by this hook" in first.stdout
    assert (policy_repo / "policies" / "sample.yaml").read_text(encoding="utf-8") == POLICY
    assert second.returncode == 0, second.stdout
