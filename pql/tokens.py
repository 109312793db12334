"""The PQL tokenizer: one compiled regular expression, tokens with character offsets.

Keywords are not told apart here: every word is an ``ident`` token and the parser decides, by
position, whether ``last`` is a field or a time word (spec/pql.md §12).
"""

from __future__ import annotations

import math
import re

from pql.errors import PQLSyntaxError

# Words that can never be a field at the start of a path (case-insensitive).
RESERVED = frozenset(
    {
        "and", "or", "not", "in", "notin", "like", "matches", "occurs", "select", "exists",
        "forall", "from", "where", "let", "over", "chain", "true", "false",
    }
)  # fmt: skip

AGGREGATE_WORDS = frozenset({"sum", "average", "min", "max"})
QUANTIFIER_WORDS = frozenset({"select", "exists", "forall"})
TIME_WORDS = frozenset({"now", "today", "yesterday", "tomorrow"})
PERIOD_WORDS = frozenset({"this", "last", "next"})
DIRECTIONS = frozenset({"before", "after", "from"})
# Words with a meaning right after ``occurs`` / inside ``WHEN(``; a field whose name is one of
# them must be parenthesised there.
TAIL_WORDS = TIME_WORDS | PERIOD_WORDS | DIRECTIONS | {"on", "between"}
CHAIN_CLAUSES = ("WHAT", "WHEN", "COUNT", "WHERE")

# Every spelling of a time unit (§3.1) → its canonical singular.
TIME_UNITS: dict[str, str] = {
    "millisecond": "millisecond", "milliseconds": "millisecond",
    "second": "second", "seconds": "second",
    "minute": "minute", "minutes": "minute",
    "hour": "hour", "hours": "hour",
    "day": "day", "days": "day",
    "week": "week", "weeks": "week",
    "month": "month", "months": "month",
    "year": "year", "years": "year",
    "decade": "decade", "decades": "decade",
    "century": "century", "centuries": "century",
    "millennium": "millennium", "millenium": "millennium", "millennia": "millennium",
    "millenniums": "millennium",
}  # fmt: skip

COMPARISON_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
# Infix operators and their spelling in the tree (``notin`` is written ``notIn``).
WORD_OPS = {"like": "like", "in": "in", "notin": "notIn"}
BINARY_OPS = frozenset(COMPARISON_OPS | {"like", "in", "notIn", "+", "-", "*", "/", "%"})

MAX_DIGITS = 300  # integers longer than this are typos, and Python refuses > 4300 digits
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# One match = optional whitespace + one token; `bad` catches any other character, so that
# `finditer` never skips text silently.
_TOKEN_RE = re.compile(
    r"""
    \s*(?:
        (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>=>|!=|<=|>=|[=<>!+\-*/%.,:()\[\]{}^])
      | (?P<string>"[^"\\]*(?:\\.[^"\\]*)*")
      | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
      | (?P<param>\$[0-9]+)
      | (?P<bad>\S)
    )
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

UNTERMINATED_STRING = "this text has no closing '\"'"
SINGLE_QUOTES = 'write text in double quotes ("…"), not single quotes'
UNKNOWN_ESCAPE = "unknown escape '\\{char}' in text; write '\\\\{char}' for a backslash"
BAD_UNICODE_ESCAPE = "'\\u' must be followed by four hexadecimal digits"
UNEXPECTED_CHARACTER = "unexpected character '{char}'"
USE_AND = "write 'and' instead of '&&'"
USE_OR = "write 'or' instead of '||'"
NUMBER_TOO_LARGE = "this number is too large"
BAD_PARAM_NUMBER = "parameters are numbered from $1 (the profile)"
MISSING_PARAM_NUMBER = "'$' must be followed by a parameter number, as in $1"


class Token:
    """One token: ``kind`` is ``number``, ``string``, ``ident``, ``param``, ``eof`` or the
    punctuation itself (``"("``, ``"=>"``, …); ``value`` is the decoded literal, the
    parameter number or the word; ``low`` is the lower-cased word for idents."""

    __slots__ = ("end", "kind", "low", "start", "text", "value")

    def __init__(self, kind: str, text: str, start: int, end: int, value: object = None) -> None:
        self.kind = kind
        self.text = text
        self.start = start
        self.end = end
        self.value = value
        self.low = text.lower() if kind == "ident" else text

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.start})"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``eof`` token; raise ``PQLSyntaxError``."""
    tokens: list[Token] = []
    append = tokens.append
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        chunk = m[kind]  # type: ignore[index]
        end = m.end()
        start = end - len(chunk)
        if kind == "ident":
            append(Token("ident", chunk, start, end, chunk))
        elif kind == "op":
            append(Token(chunk, chunk, start, end))
        elif kind == "string":
            body = chunk[1:-1]
            value = _unescape(text, start + 1, body) if "\\" in body else body
            append(Token("string", chunk, start, end, value))
        elif kind == "number":
            append(Token("number", chunk, start, end, _number(text, chunk, start, end)))
        elif kind == "param":
            if len(chunk) > 4 or chunk == "$0" or chunk[1] == "0":
                raise PQLSyntaxError.at(BAD_PARAM_NUMBER, text, start, end)
            append(Token("param", chunk, start, end, int(chunk[1:])))
        else:
            raise _bad_character(text, start)
    size = len(text)
    append(Token("eof", "", size, size))
    return tokens


def _number(text: str, chunk: str, start: int, end: int) -> int | float:
    if "." in chunk or "e" in chunk or "E" in chunk:
        value = float(chunk)
        if math.isfinite(value):
            return value
    elif len(chunk) <= MAX_DIGITS:
        return int(chunk)
    raise PQLSyntaxError.at(NUMBER_TOO_LARGE, text, start, end)


def _bad_character(text: str, pos: int) -> PQLSyntaxError:
    char = text[pos]
    if char == '"':
        line_end = text.find("\n", pos)
        return PQLSyntaxError.at(
            UNTERMINATED_STRING, text, pos, len(text) if line_end == -1 else line_end
        )
    if char == "'":
        return PQLSyntaxError.at(SINGLE_QUOTES, text, pos, pos + 1)
    if text.startswith("&&", pos):
        return PQLSyntaxError.at(USE_AND, text, pos, pos + 2)
    if text.startswith("||", pos):
        return PQLSyntaxError.at(USE_OR, text, pos, pos + 2)
    if char == "$":
        return PQLSyntaxError.at(MISSING_PARAM_NUMBER, text, pos, pos + 1)
    return PQLSyntaxError.at(UNEXPECTED_CHARACTER.format(char=char), text, pos, pos + 1)


def _unescape(text: str, offset: int, body: str) -> str:
    """Decode the JSON-style escapes of a string body starting at ``offset`` in ``text``."""
    out: list[str] = []
    i = 0
    size = len(body)
    while i < size:
        j = body.find("\\", i)
        if j == -1:
            out.append(body[i:])
            break
        out.append(body[i:j])
        char = body[j + 1]
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
            i = j + 2
        elif char == "u":
            digits = body[j + 2 : j + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                start = offset + j
                raise PQLSyntaxError.at(BAD_UNICODE_ESCAPE, text, start, start + 2 + len(digits))
            out.append(chr(int(digits, 16)))
            i = j + 6
        else:
            start = offset + j
            raise PQLSyntaxError.at(UNKNOWN_ESCAPE.format(char=char), text, start, start + 2)
    decoded = "".join(out)
    if any("\ud800" <= c <= "\udfff" for c in decoded):
        # join \uD83D\uDE00 surrogate pairs the way JSON does
        decoded = decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return decoded
