"""What the API accepts as text, checked before anything reads it.

- No NUL character (``\\u0000``) anywhere a request speaks: the path, query parameters, headers,
  form fields, JSON strings (keys and values) and the strings of a PQL expression. PostgreSQL
  cannot store NUL in text (the request would end in a 500), and SQLite would keep a value that
  no other system takes. No unpaired surrogate either (``"\\ud800"`` is valid JSON, but not
  text a database or a file can hold).
- JSON nested at most ``MAX_JSON_DEPTH`` levels, measured on the raw text before it is parsed,
  so no parser or walker ever recurses deeper. A pql/json expression (a JSON tree inside a
  string) has its own limit, ``MAX_PQL_JSON_DEPTH``: its nodes nest two JSON levels each, and
  the language allows ``pql.parser.MAX_DEPTH`` of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pql.parser import MAX_DEPTH as PQL_MAX_DEPTH

NUL = "\x00"
MAX_JSON_DEPTH = 64
# fnApply → params → node: two JSON levels per PQL level, and a little room for the rest
MAX_PQL_JSON_DEPTH = 2 * PQL_MAX_DEPTH + 8

# The characters that matter to nesting: brackets, and quotes and backslashes for strings.
_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD = re.compile("[\x00\ud800-\udfff]")


def json_depth_over(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects deeper than ``limit`` (brackets inside
    strings do not count). Linear, and stops at the first bracket over the limit."""
    depth = 0
    in_string = False
    escaped_at = -1  # the position a backslash escapes, inside a string
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def bad_character(text: str) -> str | None:
    """What makes ``text`` unacceptable — ``"NUL"`` or ``"surrogate"`` — or None."""
    if NUL in text:
        return "NUL"
    if not text.isascii() and _SURROGATE.search(text):
        return "surrogate"
    return None


def escaped(text: str) -> str:
    """``text`` with NULs and unpaired surrogates written as ``\\uXXXX`` escapes."""
    return _BAD.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every key and string value of parsed JSON ``value``."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            yield inner, str(key)
            yield from strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def first_bad_string(value: Any) -> tuple[str, str] | None:
    """(path, "NUL" or "surrogate") of the first string of ``value`` that is not acceptable."""
    for path, text in strings(value):
        kind = bad_character(text)
        if kind is not None:
            return path, kind
    return None


def loads(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` once ``text`` is known to nest at most ``limit`` levels; ValueError as
    json's (``DepthError`` when too deep)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if json_depth_over(text, limit):
        raise DepthError(limit)
    return json.loads(text)


class DepthError(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit
