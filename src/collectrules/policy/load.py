"""YAML loading that keeps positions.

The file is read as UTF-8 under a size limit, composed into PyYAML's node graph with the safe loader, and
converted to plain Python data. While converting, every node's position is recorded under its path
(``("segments", "rules", 2, "when")``), so that the schema validator, the semantic checks and the
expression parser can point at the user's line and column. Duplicate keys and alias expansion beyond a
bound are rejected here, where the positions are known.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import Diagnostic, Location, PolicyLoadError

#: policies are hand-written documents; anything larger is almost certainly not one
MAX_FILE_BYTES = 2 * 1024 * 1024
#: total nodes after expanding aliases; protects against "billion laughs" documents
MAX_EXPANDED_NODES = 200_000
#: nesting depth of mappings and sequences
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class NodePos:
    """Where one node of the document stands."""

    line: int  # 1-based
    column: int  # 1-based
    index: int  # 0-based character offset of the node's first character
    end_index: int
    style: str | None  # YAML scalar style: None (plain), "'", '"', "|", ">"
    key_line: int | None = None  # for mapping values: where their key stands
    key_column: int | None = None


@dataclass(frozen=True)
class SourceDoc:
    """A loaded YAML document: its data, the position of every node, and its text."""

    file: str
    text: str
    data: Any
    positions: dict[Path_, NodePos]

    def location(self, path: Path_, *, key: bool = False) -> Location:
        """The location of the node at ``path`` (or of its key), falling back to the nearest ancestor."""
        probe = tuple(path)
        while probe not in self.positions and probe:
            probe = probe[:-1]
        pos = self.positions.get(probe)
        if pos is None:
            return Location(self.file, 1, 1)
        if key and pos.key_line is not None and pos.key_column is not None:
            end = pos.key_column + len(str(probe[-1])) if probe else None
            return Location(self.file, pos.key_line, pos.key_column, end)
        end_column = None
        if pos.end_index > pos.index and "\n" not in self.text[pos.index:pos.end_index]:
            end_column = pos.column + (pos.end_index - pos.index)
        return Location(self.file, pos.line, pos.column, end_column)

    def line_text(self, line: int) -> str | None:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None

    def diagnostic(self, code: str, message: str, path: Path_, *, key: bool = False, hint: str | None = None,
                   severity: str = "error") -> Diagnostic:
        loc = self.location(path, key=key)
        return Diagnostic(code, message, loc, hint, severity, self.line_text(loc.line))  # type: ignore[arg-type]

    def scalar_offset_location(self, path: Path_, offset: int, length: int = 1) -> Location:
        """Map a character offset inside the scalar string at ``path`` to a file location.

        The scalar's value differs from its source text by quotes, escapes, folding and indentation, so
        the value is aligned against the raw text character by character; whitespace in the value may
        stand for a line break and indentation in the source.
        """
        pos = self.positions.get(tuple(path))
        if pos is None:
            return self.location(path)
        raw = self.text[pos.index:pos.end_index]
        value = _value_at(self.data, path)
        if not isinstance(value, str):
            return self.location(path)
        raw_offset = _align(value, raw, pos.style, offset)
        absolute = pos.index + raw_offset
        line = self.text.count("\n", 0, absolute) + 1
        line_start = self.text.rfind("\n", 0, absolute) + 1
        column = absolute - line_start + 1
        return Location(self.file, line, column, column + max(1, length))


def _value_at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}


def _align(value: str, raw: str, style: str | None, offset: int) -> int:
    """Index in ``raw`` of the character ``value[offset]`` (one past the last one for the end).

    Walks both texts together: equal characters pair up; a space in the value may stand for a folded line
    break in the source (whose next line's indentation is skipped); indentation and quotes in the source
    stand for nothing; an escape sequence in a double-quoted scalar stands for one value character, and a
    backslash at the end of a line for none.
    """
    j = 0
    if style in ("'", '"'):
        j = 1
    elif style in ("|", ">"):
        newline = raw.find("\n")
        j = newline + 1 if newline >= 0 else len(raw)
    positions: list[int] = []
    for char in value[: offset + 1]:
        while j < len(raw):
            current = raw[j]
            if style == '"' and current == "\\" and j + 1 < len(raw):
                following = raw[j + 1]
                if following in "\r\n":
                    j += 2
                    while j < len(raw) and raw[j] in " \t\r\n":
                        j += 1
                    continue
                positions.append(j)
                j += _ESCAPE_LENGTHS.get(following, 2)
                break
            if current == char:
                positions.append(j)
                j += 2 if style == "'" and char == "'" and raw[j + 1:j + 2] == "'" else 1
                break
            if current == "\n" and char == " ":
                positions.append(j)
                j += 1
                while j < len(raw) and raw[j] in " \t":
                    j += 1
                break
            j += 1
        else:
            break
    if offset < len(positions):
        return positions[offset]
    # past the end of the value: just after its last character
    return positions[-1] + 1 if positions else j


def _mark_pos(node: yaml.Node) -> NodePos:
    start, end = node.start_mark, node.end_mark
    style = getattr(node, "style", None) if isinstance(node, yaml.ScalarNode) else None
    return NodePos(start.line + 1, start.column + 1, start.index, end.index, style or None)


class _Converter:
    """Turns a composed node graph into data plus a position index."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.positions: dict[Path_, NodePos] = {}
        self.expanded = 0
        self.alias_stack: list[yaml.Node] = []
        self.constructor = yaml.SafeLoader("")  # used only to construct scalars with the safe resolver

    def fail(self, code: str, message: str, node: yaml.Node, hint: str | None = None) -> PolicyLoadError:
        mark = node.start_mark
        loc = Location(self.file, mark.line + 1, mark.column + 1)
        lines = self.text.splitlines()
        source = lines[mark.line] if mark.line < len(lines) else None
        return PolicyLoadError(diagnostics=[Diagnostic(code, message, loc, hint, source_line=source)])

    def convert(self, node: yaml.Node, path: Path_, depth: int, key_pos: tuple[int, int] | None = None) -> Any:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED_NODES:
            # blame the outermost alias being expanded, which is where the author can act
            culprit = self.alias_stack[0] if self.alias_stack else node
            raise self.fail("CR106", f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes",
                            culprit, "YAML aliases (*name) copy whole subtrees; write the values out instead")
        if getattr(node, "is_alias", False):
            self.alias_stack.append(node)
            try:
                return self._convert(node, path, depth, key_pos)
            finally:
                self.alias_stack.pop()
        return self._convert(node, path, depth, key_pos)

    def _convert(self, node: yaml.Node, path: Path_, depth: int, key_pos: tuple[int, int] | None) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail("CR107", f"nesting deeper than {MAX_DEPTH} levels", node,
                            "a policy never needs this depth; check the indentation")
        pos = _mark_pos(node)
        if key_pos is not None:
            pos = NodePos(pos.line, pos.column, pos.index, pos.end_index, pos.style, key_pos[0], key_pos[1])
        if path not in self.positions:
            self.positions[path] = pos
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            seen: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail("CR108", "YAML merge keys (<<) are not supported in policies", key_node,
                                    "write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail("CR109", "a mapping key must be a plain value", key_node)
                try:
                    key = self.constructor.construct_object(key_node)
                except yaml.constructor.ConstructorError as exc:
                    raise self.fail("CR109", f"unsupported YAML key: {exc.problem or exc}", key_node) from None
                if not isinstance(key, str | int | bool) or key is None:
                    key = str(key)
                if isinstance(key, bool):
                    # YAML 1.1 reads `on:`/`yes:` as booleans; policies mean the word
                    key = key_node.value
                if key in seen:
                    first = seen[key].start_mark
                    raise self.fail("CR105", f"duplicate key {key!r} (first defined on line {first.line + 1})",
                                    key_node, "each key may appear once in a mapping; remove or merge one")
                seen[key] = key_node
                kp = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.convert(value_node, (*path, key), depth + 1, kp)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            value = self.constructor.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            raise self.fail("CR109", f"unsupported YAML value: {exc.problem or exc}", node,
                            "policies use plain YAML: no tags such as !include or !!binary") from None
        if isinstance(value, _dt.date | _dt.datetime):
            # dates stay text: the schema and the expression language decide what they mean
            return node.value
        if isinstance(value, bytes | set):
            raise self.fail("CR109", f"unsupported YAML type {node.tag}", node)
        return value


class _PositionedLoader(yaml.SafeLoader):
    """A safe loader whose aliases carry the alias's own position.

    PyYAML hands back the anchored node itself for ``*alias``, so errors found while expanding one would
    point at the anchor. A shallow copy with the alias's marks keeps expansion linear (children are shared)
    and lets the converter point at the alias that went over a limit.
    """

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            alias = copy.copy(node)
            alias.start_mark, alias.end_mark = event.start_mark, event.end_mark
            alias.is_alias = True  # type: ignore[attr-defined]
            return alias
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def load_yaml(path: str | Path, *, display_name: str | None = None) -> SourceDoc:
    """Read one policy file with positions. Raises :class:`PolicyLoadError` with a located diagnostic."""
    file = display_name or str(path)
    try:
        raw = Path(path).read_bytes() if Path(path).stat().st_size <= MAX_FILE_BYTES else None
    except FileNotFoundError:
        raise PolicyLoadError(f"file not found: {file}", code="CR101",
                              location=Location(file, 1, 1), hint="check the path") from None
    except IsADirectoryError:
        raise PolicyLoadError(f"{file} is a directory", code="CR101", location=Location(file, 1, 1)) from None
    except OSError as exc:
        raise PolicyLoadError(f"cannot read {file}: {exc.strerror}", code="CR101",
                              location=Location(file, 1, 1)) from None
    if raw is None:
        raise PolicyLoadError(f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", code="CR103",
                              location=Location(file, 1, 1),
                              hint="check that this is the right file")
    return load_yaml_text(raw, file)


def load_yaml_text(raw: bytes | str, file: str = "<string>") -> SourceDoc:
    """Like :func:`load_yaml` for text already in memory."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_FILE_BYTES:
            raise PolicyLoadError(f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", code="CR103",
                                  location=Location(file, 1, 1))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise PolicyLoadError(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", code="CR102",
                                  location=Location(file, line, column),
                                  hint="save the file as UTF-8") from None
    else:
        text = raw
    text = text.removeprefix("\ufeff")
    try:
        loader = _PositionedLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark and "end of stream" in (exc.problem or ""):
            # an unclosed quote or bracket: the place it was opened is what the author needs
            mark = exc.context_mark
            problem = f"{exc.context} that is never closed"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        source = lines[line - 1] if 0 < line <= len(lines) else None
        hint = "check indentation, colons and quotes around this point"
        if "expected a single document" in str(exc):
            hint = "a policy file holds one YAML document; remove the extra '---'"
        raise PolicyLoadError(diagnostics=[Diagnostic("CR104", f"invalid YAML: {problem}",
                                                      Location(file, line, column), hint,
                                                      source_line=source)]) from None
    except yaml.YAMLError as exc:
        raise PolicyLoadError(f"invalid YAML: {exc}", code="CR104", location=Location(file, 1, 1)) from None
    except RecursionError:
        raise PolicyLoadError("the document nests too deeply to read", code="CR107",
                              location=Location(file, 1, 1)) from None
    if node is None:
        raise PolicyLoadError("the file is empty", code="CR110", location=Location(file, 1, 1),
                              hint="a policy starts with 'apiVersion: collectrules/v1'")
    converter = _Converter(file, text)
    data = converter.convert(node, (), 0)
    return SourceDoc(file, text, data, converter.positions)
