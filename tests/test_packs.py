"""Restriction packs and ``imports:``: resolving and loading packs, where their problems are reported,
merging fields and templates, the precedence of a policy's restrictions over a pack's (tighten, or
override with a reason), parameters, template checks, and what ``validate`` and ``explain`` show."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.errors import Diagnostic
from collectrules.policy import model as M
from collectrules.policy.build import build_policy
from collectrules.policy.check import CheckResult, check_policy_file
from collectrules.policy.load import load_yaml_text
from collectrules.policy.packs import shipped_packs_dir
from collectrules.policy.tighten import loosenings
from collectrules.registry import Registry

REPO = Path(__file__).resolve().parents[1]
CONSUMER = REPO / "policies" / "consumer-lending.yaml"
REG_F = shipped_packs_dir() / "us-reg-f.yaml"

HEAD = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: t, version: "1"}
"""

# a ladder with one action on every channel, so that every restriction applies to something
BODY = """\
fields: {dpd: int}
segments: {rules: [{id: all, when: dpd > 0}]}
escalation:
  ladders:
    main:
      segments: [all]
      stages:
        - id: s
          enter: dpd > 0
          actions:
            - {channel: phone, every: 1d}
            - {channel: letter, every: 1d}
"""

PACK_HEAD = """\
apiVersion: collectrules/v1
kind: RestrictionPack
metadata: {name: house, version: "3", jurisdiction: GB}
"""


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pack(head: str, body: str) -> str:
    return head + textwrap.dedent(body)


def policy(folder: Path, imports: str, extra: str = "", *, fields: str = "{dpd: int}") -> CheckResult:
    body = BODY.replace("fields: {dpd: int}", f"fields: {fields}")
    path = write(folder, "policy.yaml", HEAD + f"imports: {imports}\n" + body + textwrap.dedent(extra))
    return check_policy_file(path)


def only(result: CheckResult, severity: str = "error") -> Diagnostic:
    found = [d for d in result.diagnostics if d.severity == severity]
    assert len(found) == 1, "\n".join(d.render() for d in result.diagnostics)
    return found[0]


def restriction(result: CheckResult, ident: str) -> M.Restriction:
    assert result.policy is not None, "\n".join(d.render() for d in result.diagnostics)
    return next(r for r in result.policy.restrictions if r.id == ident)


def line_of(path: Path, fragment: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in text:
            return number
    raise AssertionError(fragment)


# ---- resolving and loading ------------------------------------------------------------------------------


def test_a_shipped_pack_puts_its_rules_in_force_each_pointing_at_its_line(tmp_path: Path) -> None:
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]")

    assert result.ok, "\n".join(d.render() for d in result.diagnostics)
    assert result.policy is not None
    [pack] = result.policy.imports
    assert (pack.name, pack.version, pack.jurisdiction) == ("us-reg-f", "2026.11.1", "US")
    assert pack.in_force == ("reg-f-inconvenient-times", "reg-f-call-frequency", "reg-f-after-conversation",
                             "reg-f-cease-communication", "reg-f-dispute", "reg-f-time-barred-legal",
                             "reg-f-validation-period")
    assert (pack.tightened, pack.overridden) == ((), ())
    assert str(pack.location) == f"{tmp_path / 'policy.yaml'}:4:11"
    calls = restriction(result, "reg-f-call-frequency")
    assert (calls.pack, calls.source, calls.max_attempts) == ("us-reg-f", "12 CFR 1006.14(b)(2)(i)(A)", 7)
    assert calls.location.file == str(REG_F)
    assert calls.location.line == line_of(REG_F, "- id: reg-f-call-frequency")
    # the pack's fields and templates are the policy's too
    assert result.policy.fields["time_barred"].default is False
    assert result.policy.templates["dispute_verification"].location.file == str(REG_F)


def test_packs_import_packs_by_paths_relative_to_each_file(tmp_path: Path) -> None:
    write(tmp_path, "packs/base.yaml", pack(PACK_HEAD.replace("house", "base"), """\
        contact:
          restrictions:
            - {id: base-gap, source: "house rule 1", explain: "One call a day.", channels: phone,
               min_gap: 24h}
        """))
    write(tmp_path, "packs/more/house.yaml", pack(PACK_HEAD, """\
        imports: [../base.yaml]
        contact:
          restrictions:
            - {id: house-letters, source: "house rule 2", explain: "No letters.", channels: letter,
               holds: [quiet]}
        """))
    write(tmp_path, "policies/policy.yaml", HEAD + "imports: [../packs/more/house.yaml]\n" + BODY)

    result = check_policy_file(tmp_path / "policies" / "policy.yaml")

    assert result.policy is not None, "\n".join(d.render() for d in result.diagnostics)
    assert [p.name for p in result.policy.imports] == ["base", "house"]
    assert [(r.id, r.pack) for r in result.policy.restrictions] == [("base-gap", "base"),
                                                                    ("house-letters", "house")]


def test_a_missing_pack_is_reported_at_the_import_with_the_shipped_packs(tmp_path: Path) -> None:
    result = policy(tmp_path, "[compliance/us-reg-g.yaml]")

    assert only(result).render() == (
        f"{tmp_path / 'policy.yaml'}:4:11: error[CR430]: imported pack not found: compliance/us-reg-g.yaml "
        f"(looked for {shipped_packs_dir() / 'us-reg-g.yaml'})\n"
        "    imports: [compliance/us-reg-g.yaml]\n"
        "              ^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  hint: packs shipped with collectrules: compliance/cn-collection.yaml, compliance/uk-conc.yaml, "
        "compliance/us-reg-f.yaml")


def test_an_import_cycle_is_named_where_it_closes(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PACK_HEAD.replace("house", "a") + "imports: [b.yaml]\n")
    write(tmp_path, "b.yaml", PACK_HEAD.replace("house", "b") + "imports: [a.yaml]\n")

    error = only(policy(tmp_path, "[a.yaml]"))

    assert error.code == "CR431"
    assert error.location is not None and error.location.file == str(tmp_path / "b.yaml")
    assert (error.location.line, error.location.column) == (4, 11)
    assert error.message == f"imports form a cycle: {tmp_path / 'a.yaml'} → {tmp_path / 'b.yaml'} → " \
                            f"{tmp_path / 'a.yaml'}"


def test_a_policy_cannot_be_imported(tmp_path: Path) -> None:
    write(tmp_path, "other.yaml", HEAD + BODY)

    error = only(policy(tmp_path, "[other.yaml]"))

    assert (error.code, error.message) == ("CR437", "other.yaml is a policy, not a restriction pack")


def test_a_pack_that_breaks_its_schema_is_reported_in_the_pack(tmp_path: Path) -> None:
    house = write(tmp_path, "house.yaml", pack(PACK_HEAD, """\
        contact:
          restrictions:
            - {id: no-source, explain: "x", min_gap: 1h}
        """))

    error = only(policy(tmp_path, "[house.yaml]"))

    # in a pack every restriction names its source
    assert (str(error.location), error.code) == (f"{house}:6:7", "CR202")
    assert error.message == "missing required key 'source' in contact/restrictions/0"


def test_problems_inside_a_pack_are_reported_in_the_pack(tmp_path: Path) -> None:
    house = write(tmp_path, "house.yaml", pack(PACK_HEAD, """\
        parameters:
          limit: {type: int, default: 3, description: A limit., tightens: down}
        contact:
          restrictions:
            - {id: typo, source: "s", explain: "x", block_when: "dpd > ${limit} and dpdd > 1"}
            - {id: unknown, source: "s", explain: "x", channels: phone, min_gap: "${gap}"}
        """))

    result = policy(tmp_path, "[house.yaml]")

    rendered = [(d.location.file, d.location.line, d.location.column, d.code) for d in result.diagnostics
                if d.location is not None]
    assert rendered == [# the column is the file's, although ${limit} became 3 before the check
                        (str(house), 8, 77, "CR351"),
                        (str(house), 9, 74, "CR435"),
                        (str(house), 9, 74, "CR205")]
    assert "'gap' is not a parameter of the pack" in result.diagnostics[1].message


def test_a_pack_checked_on_its_own_reports_into_itself(tmp_path: Path) -> None:
    house = write(tmp_path, "house.yaml", pack(PACK_HEAD, """\
        contact:
          restrictions:
            - {id: gap, source: "s", explain: "x", channels: fax, min_gap: 1h}
        """))

    error = only(check_policy_file(house))

    assert (str(error.location), error.code) == (f"{house}:6:54", "CR402")
    assert error.message == "unknown channel 'fax'"
    for shipped in sorted(shipped_packs_dir().glob("*.yaml")):
        assert check_policy_file(shipped).ok, shipped.name


# ---- merging fields and templates -----------------------------------------------------------------------


def test_a_field_with_another_type_than_the_packs_names_both_places(tmp_path: Path) -> None:
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]", fields="{dpd: int, time_barred: string}")
    assert result.policy is None
    error = only(result)
    assert error.code == "CR432"
    # a field written in the long form stands where its mapping starts, the line after its name
    assert error.message == (f"field 'time_barred' is string here but bool in pack 'us-reg-f' "
                             f"({REG_F}:{line_of(REG_F, '  time_barred:') + 1})")


def test_a_policy_may_reword_a_pack_template_for_the_same_channel_only(tmp_path: Path) -> None:
    reworded = policy(tmp_path, "[compliance/us-reg-f.yaml]",
                      "templates:\n  dispute_verification: {channel: letter, body: \"Our own words.\"}\n")
    assert reworded.policy is not None
    assert reworded.policy.templates["dispute_verification"].body == "Our own words."

    moved = policy(tmp_path, "[compliance/us-reg-f.yaml]",
                   "templates:\n  dispute_verification: {channel: email, body: \"Our own words.\"}\n")
    assert only(moved).message.startswith("template 'dispute_verification' is for channel email here but for "
                                          "letter in pack 'us-reg-f'")


# ---- precedence: tighten, or override with a reason --------------------------------------------------------

CAP = """\
contact:
  restrictions:
    - id: reg-f-call-frequency
      channels: [phone]
      max_attempts: {attempts}
      per: 7d
      key: debt
      count: {{exclude_outcomes: [busy, not_in_service]}}
{override}"""


def test_a_stricter_restriction_with_a_pack_rules_id_replaces_it(tmp_path: Path) -> None:
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]", CAP.format(attempts=5, override=""))

    assert result.ok and result.policy is not None
    rule = restriction(result, "reg-f-call-frequency")
    # the policy's rule, in the pack rule's place, still citing the regulation it implements
    assert (rule.max_attempts, rule.pack, rule.source) == (5, "us-reg-f", "12 CFR 1006.14(b)(2)(i)(A)")
    assert rule.location.file == str(tmp_path / "policy.yaml")
    assert [r.id for r in result.policy.restrictions][1] == "reg-f-call-frequency"
    [pack] = result.policy.imports
    assert pack.tightened == ("reg-f-call-frequency",) and "reg-f-call-frequency" not in pack.in_force


def test_loosening_a_pack_rule_is_an_error(tmp_path: Path) -> None:
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]", CAP.format(attempts=9, override=""))

    error = only(result)
    path = tmp_path / "policy.yaml"
    assert (error.code, str(error.location)) == ("CR433", f"{path}:{line_of(path, '- id: reg-f-call')}:11")
    assert error.message == ("restriction 'reg-f-call-frequency' would loosen the rule of pack 'us-reg-f' "
                             "(12 CFR 1006.14(b)(2)(i)(A)) it replaces: it allows 9 attempts where the pack "
                             "allows 7")
    assert error.hint is not None and error.hint.startswith(f"the pack's rule is at {REG_F}:")


def test_an_override_loosens_a_pack_rule_and_is_reported(tmp_path: Path) -> None:
    override = "      override: {reason: \"call centre pilot approved by compliance\"}\n"
    path = tmp_path / "policy.yaml"
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]", CAP.format(attempts=9, override=override))

    warning = only(result, "warning")
    assert result.ok
    assert (warning.code, str(warning.location)) == ("CR434", f"{path}:{line_of(path, 'override:')}:7")
    assert warning.message == ("restriction 'reg-f-call-frequency' overrides the rule of pack 'us-reg-f' "
                               "(12 CFR 1006.14(b)(2)(i)(A)): it allows 9 attempts where the pack allows 7; "
                               "reason given: call centre pilot approved by compliance")
    rule = restriction(result, "reg-f-call-frequency")
    assert rule.override_reason == "call centre pilot approved by compliance"

    text = run("validate", str(path))
    assert text.exit_code == 0
    assert "warning[CR434]" in text.output
    assert "  pack us-reg-f 2026.11.1 (US): 6 in force (reg-f-inconvenient-times, " \
           "reg-f-after-conversation, reg-f-cease-communication, reg-f-dispute, reg-f-time-barred-legal, " \
           "reg-f-validation-period), 0 tightened, 1 overridden (reg-f-call-frequency)\n" in text.output
    report = json.loads(run("validate", "--format", "json", str(path)).output)
    [entry] = report["files"]
    assert [d["code"] for d in entry["diagnostics"]] == ["CR434"]
    [pack] = entry["imports"]
    assert (pack["name"], pack["overridden"], pack["parameters"]["calls_per_debt"]) == \
        ("us-reg-f", ["reg-f-call-frequency"], 7)


def test_an_override_needs_a_pack_rule_to_override(tmp_path: Path) -> None:
    extra = "contact:\n  restrictions:\n    - {id: own, min_gap: 1h, override: {reason: x}}\n"
    error = only(policy(tmp_path, "[compliance/us-reg-f.yaml]", extra))
    assert (error.code, error.message) == (
        "CR402", "restriction 'own' has an override, but no imported pack has a restriction 'own'")


def test_policies_without_imports_report_no_packs(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", HEAD + BODY)
    report = json.loads(run("validate", "--format", "json", str(path)).output)
    assert report["files"] == [{"file": str(path), "valid": True, "diagnostics": []}]


# ---- parameters ------------------------------------------------------------------------------------------


def test_parameters_set_by_the_policy_shape_the_pack_rules(tmp_path: Path) -> None:
    result = policy(tmp_path, "[{path: compliance/us-reg-f.yaml, parameters: {quiet_start: \"09:00\", "
                              "calls_per_debt: 5, conversation_pause: 10d}}]")

    assert result.ok, "\n".join(d.render() for d in result.diagnostics)
    assert restriction(result, "reg-f-inconvenient-times").schedule_text == "09:00-21:00"
    assert restriction(result, "reg-f-call-frequency").max_attempts == 5
    pause = restriction(result, "reg-f-after-conversation").block_for
    assert pause is not None and pause.calendar_days == 10
    assert result.policy is not None and result.policy.imports[0].parameters["quiet_start"] == "09:00"


@pytest.mark.parametrize(("parameters", "code", "message"), [
    ("{quiet_start: \"07:00\"}", "CR433",
     "parameter 'quiet_start' = '07:00' would loosen rule 'reg-f-inconvenient-times' of pack 'us-reg-f' "
     "(12 CFR 1006.6(b)(1)(i)): it allows 07:00-21:00 every day, outside the pack's hours (08:00-21:00)"),
    ("{calls_per_debt: 8}", "CR433",
     "parameter 'calls_per_debt' = 8 would loosen rule 'reg-f-call-frequency' of pack 'us-reg-f' "
     "(12 CFR 1006.14(b)(2)(i)(A)): it allows 8 attempts where the pack allows 7"),
    ("{call_period: 144h}", "CR433",
     "parameter 'call_period' = '144h' would loosen rule 'reg-f-call-frequency' of pack 'us-reg-f' "
     "(12 CFR 1006.14(b)(2)(i)(A)): it counts over 144h where the pack counts over 7d"),
    ("{calls_per_debt: \"7\"}", "CR435", "parameter 'calls_per_debt' of pack 'us-reg-f': expected a whole "
                                         "number, got '7'"),
    ("{quiet_end: \"21:60\"}", "CR435", "parameter 'quiet_end' of pack 'us-reg-f': '21:60' is not a time of "
                                        "day in HH:MM form (00:00 to 24:00)"),
    ("{quiet_hours: \"08:00\"}", "CR435", "pack 'us-reg-f' has no parameter 'quiet_hours'"),
])
def test_parameter_values_that_loosen_or_do_not_fit_are_errors_at_the_value(
        tmp_path: Path, parameters: str, code: str, message: str) -> None:
    error = only(policy(tmp_path, f"[{{path: compliance/us-reg-f.yaml, parameters: {parameters}}}]"))

    assert (error.code, error.message) == (code, message)
    assert error.location is not None and error.location.line == 4 and error.location.column > 50


def test_a_parameter_inside_a_condition_is_checked_by_its_declared_direction(tmp_path: Path) -> None:
    stricter = policy(tmp_path, "[{path: compliance/cn-collection.yaml, parameters: {min_field_staff: 3}}]")
    assert stricter.ok
    rule = restriction(stricter, "cn-field-visit-staff")
    assert rule.block_when is not None and rule.block_when.source == "field_staff_count < 3"
    # the explanation quotes the value in force
    assert rule.explain == "China collection rules: a field visit needs at least 3 collection staff."

    looser = only(policy(tmp_path, "[{path: compliance/cn-collection.yaml, "
                                   "parameters: {min_field_staff: 1}}]"))
    assert (looser.code, looser.message) == (
        "CR433", "parameter 'min_field_staff' = 1 would loosen the rules of pack 'cn-collection': only a "
                 "value larger than its 2 tightens them")


def test_one_pack_imported_twice_must_get_the_same_parameters(tmp_path: Path) -> None:
    write(tmp_path, "house.yaml", PACK_HEAD + "imports: [{path: compliance/us-reg-f.yaml, parameters: "
                                              "{calls_per_debt: 5}}]\n")

    error = only(policy(tmp_path, "[house.yaml, compliance/us-reg-f.yaml]"))

    assert error.code == "CR432"
    assert error.message.startswith("pack 'us-reg-f' is imported with other parameter values at ")


# ---- what counts as tightening -------------------------------------------------------------------------


def built(spec: str) -> M.Restriction:
    """One restriction, built from its YAML flow mapping inside a minimal policy."""
    templates = "templates: {a: {channel: letter, body: x}, b: {channel: letter, body: y}}\n"
    doc = load_yaml_text(HEAD + BODY + templates + f"contact:\n  restrictions:\n    - {spec}\n", "r.yaml")
    result, diagnostics = build_policy(doc, Registry.builtin_only())
    assert result is not None, "\n".join(d.render() for d in diagnostics)
    return result.restrictions[0]


@pytest.mark.parametrize(("original", "replacement", "loosens"), [
    # windows: inside the pack's hours, the same zone, the pack's holidays kept
    ("{id: w, allowed_hours: '08:00-21:00'}",
     "{id: w, allowed_hours: {default: '09:00-17:00', sun: closed}}", ""),
    ("{id: w, allowed_hours: '08:00-21:00'}",
     "{id: w, allowed_hours: {default: '08:00-21:00', sat: '07:30-12:00'}}",
     "it allows 07:30-12:00 on sat, outside the pack's hours (08:00-21:00)"),
    ("{id: w, allowed_hours: '08:00-21:00'}", "{id: w, allowed_hours: '08:00-21:00', timezone: Europe/Paris}",
     "it uses the time zone 'Europe/Paris' where the pack's uses 'debtor'"),
    ("{id: w, allowed_hours: '08:00-21:00', calendar: US}",
     "{id: w, allowed_hours: '08:00-21:00', calendar: US-CA}", ""),
    ("{id: w, allowed_hours: '08:00-21:00', calendar: US}", "{id: w, allowed_hours: '08:00-21:00'}",
     "it drops the pack's holiday calendar US"),
    ("{id: c, calendar: US-CA}", "{id: c, calendar: US}",
     "its holiday calendar US does not hold the pack's US-CA"),
    # caps: no more attempts, at least as long a period, at least the contacts the pack counts
    ("{id: c, max_attempts: 7, per: 7d}", "{id: c, max_attempts: 7, per: 8d}", ""),
    ("{id: c, max_attempts: 7, per: 7d}", "{id: c, max_attempts: 7, per: 168h}", ""),
    ("{id: c, max_attempts: 7, per: 7d}", "{id: c, max_attempts: 7, per: 167h}",
     "it counts over 167h where the pack counts over 7d"),
    ("{id: c, max_attempts: 7, per: 144h}", "{id: c, max_attempts: 7, per: 7d}", ""),
    ("{id: c, max_attempts: 7, per: 145h}", "{id: c, max_attempts: 7, per: 7d}",
     "it counts over 7d where the pack counts over 145h"),
    ("{id: c, max_attempts: 7, per: 7d}", "{id: c, max_attempts: 7, per: 7d, key: debt}",
     "it counts per debt where the pack counts per person"),
    ("{id: c, max_attempts: 7, per: 7d, count: {exclude_outcomes: busy}}",
     "{id: c, max_attempts: 7, per: 7d, count: {exclude_outcomes: [busy, voicemail], direction: any}}",
     "counted contacts: it also leaves out the outcomes voicemail"),
    ("{id: c, max_attempts: 7, per: 7d}",
     "{id: c, max_attempts: 7, per: 7d, count: {outcomes: conversation}}",
     "counted contacts: only the outcomes conversation, where the pack's takes every outcome"),
    ("{id: c, channels: [phone, sms], max_attempts: 3, per: 1d}",
     "{id: c, channels: phone, max_attempts: 3, per: 1d}",
     "it no longer applies to the channels sms; counted contacts: it no longer applies to the channels sms"),
    # cooldowns and gaps: at least as long, after at least the same contacts
    ("{id: d, block_for: 7d, after: {outcomes: conversation}}", "{id: d, block_for: 10d, after: {}}", ""),
    ("{id: d, block_for: 7d, after: {}}", "{id: d, block_for: 6d, after: {direction: inbound}}",
     "it blocks for 6d where the pack blocks for 7d; triggering contacts: only inbound contacts, where the "
     "pack's takes any"),
    ("{id: g, min_gap: 24h}", "{id: g, min_gap: 2d}", ""),
    ("{id: g, min_gap: 24h}", "{id: g, min_gap: 23h}", "its gap of 23h is shorter than the pack's 24h"),
    # holds: the pack's hold types, and only exceptions the pack allows
    ("{id: h, holds: cease, except: [{channel: letter}]}",
     "{id: h, holds: [cease, dispute], except: [{channel: letter, template: a}]}", ""),
    ("{id: h, holds: [cease, dispute], except: [{channel: letter, template: a}]}",
     "{id: h, holds: cease, except: [{channel: letter}]}",
     "it no longer holds on dispute; it lets letter through, which the pack's exceptions do not"),
    # conditions can only be kept as they are; another subject set or kind is never a tightening
    ("{id: e, block_when: dpd > 90}", "{id: e, block_when: 'dpd  >  90'}", ""),
    ("{id: e, block_when: dpd > 90}", "{id: e, block_when: dpd > 90 or dpd < 0}",
     "its block_when differs from the pack's, and a changed condition cannot be shown to block as much; to "
     "add a condition, give the restriction its own id"),
    ("{id: g, subjects: third_party, min_gap: 1h}",
     "{id: g, subjects: [debtor, third_party], min_gap: 1h}", ""),
    ("{id: g, min_gap: 1h}", "{id: g, subjects: debtor, min_gap: 1h}",
     "it applies to the subjects debtor only, where the pack's applies to all"),
    ("{id: g, min_gap: 1h}", "{id: g, holds: cease}",
     "it is a hold restriction where the pack's is a gap restriction"),
])
def test_what_tightens_and_what_loosens(original: str, replacement: str, loosens: str) -> None:
    assert "; ".join(loosenings(built(original), built(replacement))) == loosens


# ---- template checks -------------------------------------------------------------------------------------


def test_electronic_templates_without_an_opt_out_notice_are_reported(tmp_path: Path) -> None:
    extra = """\
        templates:
          nudge: {channel: sms, body: "Please pay today."}
          polite: {channel: sms, body: "Please pay today. Reply STOP to opt out."}
          notice: {body: "Your statement."}
        """
    result = policy(tmp_path, "[compliance/us-reg-f.yaml]", extra)

    warning = only(result, "warning")
    assert result.ok
    path = tmp_path / "policy.yaml"
    assert (warning.code, str(warning.location)) == ("CR436", f"{path}:{line_of(path, 'nudge:')}:31")
    assert warning.message == (
        "template 'nudge' (sms) does not meet rule 'reg-f-electronic-opt-out' of pack 'us-reg-f' "
        "(12 CFR 1006.6(e)): Every e-mail and text message about a debt must tell the consumer how to opt "
        "out of further electronic messages to that address or number.")


# ---- business days in expressions ------------------------------------------------------------------------


def test_the_calendar_of_a_business_day_function_is_checked_when_the_policy_loads(tmp_path: Path) -> None:
    extra = "derive:\n  ends: add_business_days(date(\"2026-11-20\"), 5, \"XX\")\n"
    error = only(policy(tmp_path, "[]", extra))
    assert (error.code, error.message) == (
        "CR361", "unknown holiday calendar 'XX': no calendar for country 'XX'")
    path = tmp_path / "policy.yaml"
    assert error.location is not None
    assert (error.location.line, error.location.column) == (line_of(path, "ends:"), 50)


# ---- the example policy ----------------------------------------------------------------------------------


def test_explain_names_the_regulation_behind_a_blocked_call(tmp_path: Path) -> None:
    accounts = write(tmp_path, "accounts.csv", """\
        account_id,person_id,debt_id,timezone,phone,email,address,dpd,balance,product,first_name
        A1,P1,D1,America/New_York,+12025550100,a@example.com,1 Main St,45,3000.00,card,Dana
        """)
    # seven calls in the seven days to Monday 23 November, none of them today
    calls = "".join(f"A1,phone,no_answer,2026-11-{day}T{hour}:00:00Z\n"
                    for day, hour in ((17, 14), (17, 19), (18, 15), (19, 15), (20, 15), (21, 15), (22, 15)))
    history = write(tmp_path, "history.csv", "account_id,channel,outcome,at\n" + calls)

    result = run("explain", str(CONSUMER), "--accounts", str(accounts), "--history", str(history),
                 "--as-of", "2026-11-23T18:00:00Z", "--account", "A1")

    assert result.exit_code == 0, result.output
    line = line_of(REG_F, "- id: reg-f-call-frequency")
    assert ("          by reg-f-call-frequency: Regulation F: no more than 7 calls about one debt in 7 days. "
            "(7 counted phone attempts per debt in 7d; the limit is 7) — 12 CFR 1006.14(b)(2)(i)(A)  "
            f"[{REG_F}:{line}]") in result.output.splitlines()


def test_the_example_policy_lists_the_regulation_f_rules_it_puts_in_force() -> None:
    result = run("validate", str(CONSUMER))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        "  pack us-reg-f 2026.11.1 (US): 7 in force (reg-f-inconvenient-times, reg-f-call-frequency, "
        "reg-f-after-conversation, reg-f-cease-communication, reg-f-dispute, reg-f-time-barred-legal, "
        "reg-f-validation-period), 0 tightened, 0 overridden")
