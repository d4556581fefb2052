"""The canonical layout of policy files, keeping every comment.

Canonical means: top-level keys in schema order (:data:`TOP_LEVEL_ORDER`, then unknown keys as they
stand), two-space indentation, sequences indented under their key (``rules:`` then ``  - id: …``), no
trailing spaces, line feeds only, exactly one final newline, quotes as written, ``null`` written out for an
empty value, and full-line comments indented like the line they precede. Flow collections
(``{id: x, when: …}``) stay flow collections, on one line; long lines are never re-wrapped.

The layout is done by ruamel.yaml in round-trip mode, because it keeps comments, quoting and block
scalars; PyYAML, which the policy loader uses, drops comments. ruamel is imported only here, and only when
a file is formatted. Moving a top-level section is done on the text, so that the comments written above a
section move with it. Every result is checked before it is returned: read back with the policy loader, it
must hold exactly the data of the original, or the file is refused with ``CR111`` rather than changed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import CollectRulesError, Location
from .load import SourceDoc, load_yaml, load_yaml_text

#: top-level keys in the order the format reference presents them
TOP_LEVEL_ORDER: tuple[str, ...] = ("apiVersion", "kind", "metadata", "imports", "fields", "derive", "scores",
                                    "templates", "segments", "escalation", "contact", "channels", "kpis",
                                    "experiments")

#: wider than any line, so that the emitter never folds a long value onto a second line
_NEVER_WRAP = 1_000_000


class FormatError(CollectRulesError):
    """The file cannot be laid out without changing what it says."""

    default_code = "CR111"


@dataclass(frozen=True)
class FormatResult:
    """One file: its text as read and in canonical layout."""

    file: str
    original: str
    formatted: str

    @property
    def changed(self) -> bool:
        return self.original != self.formatted


def format_policy_file(path: str | Path) -> FormatResult:
    """Read one policy file and lay it out canonically (nothing is written). Raises
    :class:`CollectRulesError` with a located diagnostic for a file the policy loader cannot read."""
    doc = load_yaml(path)
    original = Path(path).read_bytes().decode("utf-8")
    return FormatResult(doc.file, original, _format(original, doc))


def format_policy_text(text: str, file: str = "<string>") -> str:
    """``text`` in canonical layout. Raises :class:`CollectRulesError` for YAML the policy loader rejects
    and :class:`FormatError` when no layout would keep the data intact."""
    return _format(text, load_yaml_text(text, file))


def _format(text: str, doc: SourceDoc) -> str:
    source = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    reordered = _reorder_sections(source, doc)
    dumped = _round_trip(reordered if reordered is not None else source, doc.file,
                         reorder_in_model=reordered is None)
    for candidate in (_tidy(dumped), dumped.rstrip("\n") + "\n"):
        if _same_data(candidate, doc):
            return candidate
    raise FormatError("formatting would change the data of this file, so it is left as it is",
                      location=Location(doc.file, 1, 1),
                      hint="the file uses a YAML construct the formatter cannot keep")


def _same_data(text: str, doc: SourceDoc) -> bool:
    try:
        return load_yaml_text(text, doc.file).data == doc.data
    except CollectRulesError:
        return False


# ---- moving top-level sections -----------------------------------------------------------------------


def _canonical_keys(keys: list[Any]) -> list[Any]:
    known = [k for k in TOP_LEVEL_ORDER if k in keys]
    return known + [k for k in keys if k not in TOP_LEVEL_ORDER]


def _is_comment(line: str) -> bool:
    return line.startswith("#")


def _reorder_sections(text: str, doc: SourceDoc) -> str | None:
    """The text with its top-level sections in canonical order; None when that cannot be done on the text
    (a flow-style top level), in which case the model is reordered instead.

    A section is its key line, everything up to the next section, and the full-line comments written
    directly above the key (no blank line between). The comments above the first key stay at the top of
    the file, as does a comment block after the last section's content.
    """
    if not isinstance(doc.data, dict) or not doc.data:
        return text
    keys = list(doc.data)
    lines = text.split("\n")
    starts: list[int] = []
    for key in keys:
        pos = doc.positions.get((key,))
        if pos is None or pos.key_line is None or pos.key_column != 1:
            return None
        starts.append(pos.key_line - 1)
    if starts != sorted(set(starts)) or len(starts) != len(keys):
        return None
    if _canonical_keys(keys) == keys:
        return text
    # each section begins at the comments directly above its key; the first section's comments stay put
    begins = [starts[0]]
    for start in starts[1:]:
        begin = start
        while begin > 0 and _is_comment(lines[begin - 1]):
            begin -= 1
        begins.append(begin)
    end = len(lines)
    last_content = end
    while last_content > starts[-1] + 1 and (not lines[last_content - 1].strip()
                                             or _is_comment(lines[last_content - 1])):
        last_content -= 1
    header, footer = lines[:begins[0]], lines[last_content:end]
    sections: dict[Any, list[str]] = {}
    for index, key in enumerate(keys):
        stop = begins[index + 1] if index + 1 < len(keys) else last_content
        sections[key] = lines[begins[index]:stop]
    ordered = [line for key in _canonical_keys(keys) for line in sections[key]]
    return "\n".join([*header, *ordered, *footer])


# ---- the round trip ----------------------------------------------------------------------------------


def _round_trip(text: str, file: str, *, reorder_in_model: bool) -> str:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    handler = YAML(typ="rt")
    handler.preserve_quotes = True
    handler.indent(mapping=2, sequence=4, offset=2)
    handler.width = _NEVER_WRAP
    handler.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null"))
    try:
        data = handler.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file, 1, 1)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(f"the formatter cannot read this file: {problem}", location=where) from None
    if reorder_in_model and isinstance(data, CommentedMap):
        for key in _canonical_keys(list(data)):
            data.move_to_end(key)
    out = io.StringIO()
    handler.dump(data, out)
    return out.getvalue()


def _multiline_scalar_lines(text: str) -> set[int]:
    """0-based numbers of the lines that continue a scalar spanning several lines (block scalars above
    all), whose spaces and ``#`` characters are content."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return set(range(text.count("\n") + 1))
    protected: set[int] = set()
    stack: list[yaml.Node] = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            first, last = node.start_mark.line, node.end_mark.line
            if node.end_mark.column == 0:
                last -= 1
            protected.update(range(first + 1, last + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return protected


def _tidy(text: str) -> str:
    """No trailing spaces, comments indented like the line they precede, one final newline."""
    lines = text.split("\n")
    protected = _multiline_scalar_lines(text)
    for index, line in enumerate(lines):
        if index not in protected:
            lines[index] = line.rstrip()
    next_indent = 0
    for index in range(len(lines) - 1, -1, -1):
        if index in protected:
            continue
        line = lines[index]
        stripped = line.lstrip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            lines[index] = " " * next_indent + stripped
        else:
            next_indent = len(line) - len(stripped)
    return "\n".join(lines).strip("\n") + "\n"
