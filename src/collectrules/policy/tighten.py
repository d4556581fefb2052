"""Does one restriction block at least whatever another blocks? The precedence rule for pack restrictions.

A policy (or a pack importing another pack) may replace an imported restriction by declaring one with the
same id. Without ``override`` the replacement may only tighten: :func:`loosenings` compares the two and
lists, in words, every way in which the replacement would allow a contact the original blocks. An empty
list means it tightens (or changes nothing).

The comparison is by kind, and conservative: a difference whose effect cannot be shown to be stricter (a
changed ``block_when``, another counting key) counts as a loosening.

- every kind: the replacement applies to at least the original's channels and subjects;
- window: the same time zone; every allowed window lies inside one of the original's on the same weekday;
  the original's holiday calendar is kept (a subdivision of its country keeps it too);
- calendar: the original's calendar is kept, as for windows;
- cap: the same key; no more attempts; a period at least as long; at least the contacts the original counts;
- cooldown: the same key; a block at least as long; at least the original's triggering contacts;
- gap: a gap at least as long;
- hold: at least the original's hold types, and only exceptions the original allows;
- expression: the same condition.
"""

from __future__ import annotations

import datetime as _dt
import re

from . import model as M

_DAY = _dt.timedelta(days=1)


def loosenings(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    """Every way ``replacement`` allows a contact that ``original`` blocks; empty when it only tightens."""
    if replacement.kind != original.kind:
        return [f"it is a {replacement.kind} restriction where the pack's is a {original.kind} restriction"]
    found = _coverage("channels", original.channels, replacement.channels)
    found += _coverage("subjects", original.subjects, replacement.subjects)
    check = _BY_KIND.get(original.kind)
    if check is not None:
        found += check(original, replacement)
    return found


def _coverage(what: str, original: frozenset[str] | None, replacement: frozenset[str] | None) -> list[str]:
    """None means "all": the replacement must cover at least what the original covers."""
    if replacement is None:
        return []
    if original is None:
        return [f"it applies to the {what} {_list(replacement)} only, where the pack's applies to all"]
    missing = original - replacement
    return [f"it no longer applies to the {what} {_list(missing)}"] if missing else []


def _list(items: frozenset[str] | set[str]) -> str:
    return ", ".join(sorted(items))


def _covers_calendar(original: str | None, replacement: str | None) -> bool:
    if original is None:
        return True
    if replacement is None:
        return False
    # a subdivision's calendar holds its country's holidays and its own
    return replacement == original or ("-" not in original and replacement.startswith(original + "-"))


def _window(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    found = []
    if replacement.timezone != original.timezone:
        found.append(f"it uses the time zone {replacement.timezone!r} where the pack's uses "
                     f"{original.timezone!r}")
    if original.schedule is not None and replacement.schedule is not None:
        from ..engine.timecalc import WEEKDAY_KEYS

        # (window, the pack's hours that day) → the weekdays on which the window goes beyond them
        outside: dict[tuple[str, str], list[str]] = {}
        for weekday, windows in enumerate(replacement.schedule.days):
            allowed = original.schedule.days[weekday]
            for window in windows:
                if not any(a.start_minute <= window.start_minute and window.end_minute <= a.end_minute
                           for a in allowed):
                    hours = ", ".join(str(a) for a in allowed) or "closed"
                    outside.setdefault((str(window), hours), []).append(WEEKDAY_KEYS[weekday])
        for (window, hours), days in outside.items():
            when = "every day" if len(days) == 7 else "on " + ", ".join(days)
            found.append(f"it allows {window} {when}, outside the pack's hours ({hours})")
    found += _calendar(original, replacement)
    return found


def _calendar(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    if _covers_calendar(original.calendar, replacement.calendar):
        return []
    if replacement.calendar is None:
        return [f"it drops the pack's holiday calendar {original.calendar}"]
    return [f"its holiday calendar {replacement.calendar} does not hold the pack's {original.calendar}"]


def _at_least_as_long(longer: M.Window, shorter: M.Window) -> bool:
    """Whether a ``longer`` counting or blocking period always spans the ``shorter`` one.

    N calendar days last between N - 1 days (counted from late on the first day) and N days, so a sliding
    period covers them when it is at least N days long, and they cover a sliding period of N - 1 days.
    """
    if longer.calendar_days is not None and shorter.calendar_days is not None:
        return longer.calendar_days >= shorter.calendar_days
    if longer.sliding is not None and shorter.sliding is not None:
        return longer.sliding >= shorter.sliding
    if longer.sliding is not None and shorter.calendar_days is not None:
        return longer.sliding >= shorter.calendar_days * _DAY
    assert longer.calendar_days is not None and shorter.sliding is not None
    return (longer.calendar_days - 1) * _DAY >= shorter.sliding


def _events(what: str, original: M.EventFilter, replacement: M.EventFilter,
            original_channels: frozenset[str] | None,
            replacement_channels: frozenset[str] | None) -> list[str]:
    """The replacement must match at least the contacts the original matches."""
    found = []
    channels_o = original.channels if original.channels is not None else original_channels
    channels_r = replacement.channels if replacement.channels is not None else replacement_channels
    found += [f"{what}: {text}" for text in _coverage("channels", channels_o, channels_r)]
    if replacement.outcomes is not None:
        if original.outcomes is None:
            found.append(f"{what}: only the outcomes {_list(replacement.outcomes)}, where the pack's takes "
                         "every outcome")
        elif original.outcomes - replacement.outcomes:
            found.append(f"{what}: no longer the outcomes {_list(original.outcomes - replacement.outcomes)}")
    extra = replacement.exclude_outcomes - original.exclude_outcomes
    if extra:
        found.append(f"{what}: it also leaves out the outcomes {_list(extra)}")
    if replacement.direction != "any" and replacement.direction != original.direction:
        found.append(f"{what}: only {replacement.direction} contacts, where the pack's takes "
                     f"{original.direction}")
    if replacement.exclude_consented and not original.exclude_consented:
        found.append(f"{what}: it leaves out contacts made with the consumer's consent")
    return found


def _cap(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    assert original.per is not None and replacement.per is not None
    assert original.count is not None and replacement.count is not None
    assert original.max_attempts is not None and replacement.max_attempts is not None
    found = []
    if replacement.key != original.key:
        found.append(f"it counts per {replacement.key} where the pack counts per {original.key}")
    if replacement.max_attempts > original.max_attempts:
        found.append(f"it allows {replacement.max_attempts} attempts where the pack allows "
                     f"{original.max_attempts}")
    if not _at_least_as_long(replacement.per, original.per):
        found.append(f"it counts over {replacement.per.text} where the pack counts over {original.per.text}")
    found += _events("counted contacts", original.count, replacement.count, original.channels,
                     replacement.channels)
    return found


def _cooldown(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    assert original.block_for is not None and replacement.block_for is not None
    assert original.after is not None and replacement.after is not None
    found = []
    if replacement.key != original.key:
        found.append(f"it is kept per {replacement.key} where the pack keeps it per {original.key}")
    if not _at_least_as_long(replacement.block_for, original.block_for):
        found.append(f"it blocks for {replacement.block_for.text} where the pack blocks for "
                     f"{original.block_for.text}")
    found += _events("triggering contacts", original.after, replacement.after, original.channels,
                     replacement.channels)
    return found


def _gap(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    assert original.min_gap is not None and replacement.min_gap is not None
    if replacement.min_gap >= original.min_gap:
        return []
    return [f"its gap of {M._format_duration(replacement.min_gap)} is shorter than the pack's "
            f"{M._format_duration(original.min_gap)}"]


def _hold(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    found = []
    missing = original.holds - replacement.holds
    if missing:
        found.append(f"it no longer holds on {_list(missing)}")
    for exception in replacement.exceptions:
        allowed = any(o.channel == exception.channel and o.template in (None, exception.template)
                      for o in original.exceptions)
        if not allowed:
            what = exception.channel + (f" with template {exception.template}" if exception.template else "")
            found.append(f"it lets {what} through, which the pack's exceptions do not")
    return found


def _expression(original: M.Restriction, replacement: M.Restriction) -> list[str]:
    assert original.block_when is not None and replacement.block_when is not None
    if _normal(original.block_when.source) == _normal(replacement.block_when.source):
        return []
    return ["its block_when differs from the pack's, and a changed condition cannot be shown to block as "
            "much; to add a condition, give the restriction its own id"]


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_BY_KIND = {"window": _window, "calendar": _calendar, "cap": _cap, "cooldown": _cooldown, "gap": _gap,
            "hold": _hold, "expression": _expression}
