"""The compressed spec's syntax: `{key:value,...}`, `[a,b]` and bare values, parsed to a tree.

A hand-written single-pass parser: every character is looked at a bounded number of times, so
decoding is linear in the input, and depth and length are capped before any work is done. No
`eval`, no regular-expression rewriting into JSON (that is how the SDK's own decoder breaks on
values such as `>=20`). Meaning is given to the tree by `codec`, by position.

Grammar (whitespace between tokens is skipped):

    value  := object | array | scalar
    object := '{' [ key ':' value { ',' key ':' value } ] '}'
    array  := '[' [ value { ',' value } ] ']'
    key    := one or more of A-Z a-z 0-9 _
    scalar := the characters up to the next ',' '}' ']' (possibly none), trailing spaces trimmed;
              it may not contain '{' '[' or non-printable characters other than whitespace
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from gpu_provider.market.errors import OrderSpecError
from gpu_provider.market.spec import MAX_DEPTH, MAX_SPEC_CHARS

_KEY_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_MAX_KEY_CHARS: Final = 64
_SCALAR_END: Final = frozenset(",}]")


@dataclass(frozen=True, slots=True)
class Scalar:
    """A bare value, as written (numbers and booleans are interpreted by position later)."""

    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class Array:
    items: tuple[Node, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Object:
    """An object; keys are unique (a repeated key is a syntax error, not a silent overwrite)."""

    fields: dict[str, Node]
    offset: int


Node = Scalar | Array | Object


def describe(node: Node) -> str:
    """A short name for a node's kind, for error messages."""
    if isinstance(node, Object):
        return "an object {...}"
    if isinstance(node, Array):
        return "a list [...]"
    return f"the value {node.text!r}"


def parse(text: str) -> Node:
    """Parse a whole compressed spec; raise OrderSpecError with the offset of the problem."""
    if not isinstance(text, str):
        raise OrderSpecError(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_SPEC_CHARS:
        raise OrderSpecError(f"is {len(text)} characters long; the limit is {MAX_SPEC_CHARS}")
    parser = _Parser(text)
    node = parser.value(depth=0, path="")
    parser.skip_space()
    if parser.pos != len(text):
        parser.fail("unexpected text after the end of the spec", "")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str, path: str) -> NoReturn:
        raise OrderSpecError(reason, path=path, offset=self.pos)

    def skip_space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        self.pos = pos

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, depth: int, path: str) -> Node:
        self.skip_space()
        char = self.peek()
        if char in ("{", "["):
            if depth >= MAX_DEPTH:
                self.fail(f"nested deeper than {MAX_DEPTH} levels", path)
            return self.object(depth + 1, path) if char == "{" else self.array(depth + 1, path)
        return self.scalar(path)

    def object(self, depth: int, path: str) -> Object:
        start = self.pos
        self.pos += 1
        fields: dict[str, Node] = {}
        self.skip_space()
        if self.peek() == "}":
            self.pos += 1
            return Object(fields, start)
        while True:
            self.skip_space()
            key_at = self.pos
            key = self.key(path)
            child = f"{path}.{key}" if path else key
            if key in fields:
                self.pos = key_at
                self.fail(f"key {key!r} appears twice in the same object", child)
            fields[key] = self.value(depth, child)
            self.skip_space()
            char = self.peek()
            self.pos += 1
            if char == "}":
                return Object(fields, start)
            if char != ",":
                self.pos -= 1
                self.fail(self._expected("',' or '}'", "object"), path)

    def array(self, depth: int, path: str) -> Array:
        start = self.pos
        self.pos += 1
        items: list[Node] = []
        self.skip_space()
        if self.peek() == "]":
            self.pos += 1
            return Array(tuple(items), start)
        while True:
            items.append(self.value(depth, f"{path}[{len(items)}]"))
            self.skip_space()
            char = self.peek()
            self.pos += 1
            if char == "]":
                return Array(tuple(items), start)
            if char != ",":
                self.pos -= 1
                self.fail(self._expected("',' or ']'", "list"), f"{path}[{len(items) - 1}]")

    def key(self, path: str) -> str:
        text, start = self.text, self.pos
        pos = start
        while pos < len(text) and text[pos] in _KEY_CHARS:
            pos += 1
        if pos == start:
            self.fail(self._expected("a key (letters, digits, '_')", "object"), path)
        if pos - start > _MAX_KEY_CHARS:
            self.fail(f"a key is longer than {_MAX_KEY_CHARS} characters", path)
        key = text[start:pos]
        self.pos = pos
        self.skip_space()
        if self.peek() != ":":
            self.fail(self._expected(f"':' after the key {key!r}", "object"), path)
        self.pos += 1
        return key

    def scalar(self, path: str) -> Scalar:
        text, start = self.text, self.pos
        pos = start
        while pos < len(text):
            char = text[pos]
            if char in _SCALAR_END:
                break
            if char in ("{", "["):
                self.pos = pos
                self.fail(f"unexpected {char!r} inside a value", path)
            if not char.isprintable() and not char.isspace():
                self.pos = pos
                self.fail(f"a value contains the non-printable character {char!r}", path)
            pos += 1
        self.pos = pos
        return Scalar(text[start:pos].rstrip(), start)

    def _expected(self, what: str, inside: str) -> str:
        char = self.peek()
        found = f"found {char!r}" if char else "the spec ends"
        return f"expected {what} in this {inside}, {found}"
