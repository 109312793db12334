"""Regular expressions as the engine runs them: RE2, the library inside DuckDB.

``matches`` and ``regexGroup`` run in the engine's compiled SQL as DuckDB's ``regexp_matches``
and ``regexp_extract``, which are RE2: linear time, and no lookaround, backreferences, atomic
groups or possessive quantifiers (https://github.com/google/re2/wiki/Syntax). A pattern RE2
refuses cannot run in SQL at all, and the Python ``re`` it used to fall back to backtracks: one
short pattern took minutes a profile. So the checker refuses such a pattern, and the compiler
asks the same question here before it writes a pattern into SQL.

RE2's own parser judges (PyPI ``google-re2``, the bindings Google publishes with RE2), not
rules of ours. DuckDB bundles an older RE2 than the bindings; the one construct found where
they differ, the ``(?<name>…)`` spelling of a named group, Python's ``re`` refuses as well, so
the checker's verdict (both accept) is the same. ``tests/pql/test_regex_re2.py`` holds this
module to DuckDB's own verdicts.
"""

from __future__ import annotations

from functools import lru_cache

import re2

__all__ = ["re2_error", "unsupported_construct"]

# What RE2's error names (the text after "invalid perl operator: " and the like), as words a
# marketer can look up. Longest prefixes first.
CONSTRUCTS: tuple[tuple[str, str], ...] = (
    ("(?<=", "a lookbehind (?<=…)"),
    ("(?<!", "a negative lookbehind (?<!…)"),
    ("(?=", "a lookahead (?=…)"),
    ("(?!", "a negative lookahead (?!…)"),
    ("(?>", "an atomic group (?>…)"),
    ("(?(", "a conditional group (?(…)…)"),
    ("(?#", "a comment group (?#…)"),
    ("(?P=", "a named backreference (?P=name)"),
    ("(?P>", "a recursive call (?P>name)"),
)
BACKREFERENCE = "a backreference {escape}"
POSSESSIVE = "a possessive quantifier {operator}"
ESCAPE = "the escape {escape}"
FLAG = "the inline flag {flag}"
REPETITION = "a repetition count above 1000 ({count})"
NESTED_REPETITION = "repetitions that multiply to more than 1000 ({count} inside another)"


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def re2_error(pattern: str) -> str | None:
    """RE2's reason for refusing ``pattern`` (``"invalid perl operator: (?="``), or None when
    RE2 compiles it."""
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else str(error)
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return None


def unsupported_construct(pattern: str, error: str) -> str | None:
    """The construct of ``pattern`` that RE2's ``error`` is about, in words; None when the
    error is not about a construct RE2 lacks (a pattern that is simply malformed)."""
    kind, _, fragment = error.partition(": ")
    if kind == "invalid perl operator":
        # RE2 names only the start of the group ("(?P" for "(?P=name)"): read the pattern
        # where it is written (the first "(?P" may well be a valid "(?P<name>")
        places = [pattern[at:at + 4] for at in _occurrences(pattern, fragment)] or [fragment]
        for written in places:
            for prefix, words in CONSTRUCTS:
                if written.startswith(prefix):
                    return words
        written = places[0]
        if len(written) > 2 and written[2].isalpha():
            return FLAG.format(flag=f"(?{written[2]}…)")
        return None
    if kind == "invalid escape sequence" and len(fragment) == 2:
        if fragment[1] in "123456789":
            return BACKREFERENCE.format(escape=fragment)
        return ESCAPE.format(escape=fragment)
    if kind == "bad repetition operator" and fragment.endswith("+") and len(fragment) > 1:
        return POSSESSIVE.format(operator=fragment)
    if kind == "invalid repetition size":
        bounds = [int(part) for part in fragment.strip("{}").split(",") if part.isdigit()]
        if any(bound > 1000 for bound in bounds):
            return REPETITION.format(count=fragment)
        if bounds == sorted(bounds):  # well formed: too many once multiplied by an outer one
            return NESTED_REPETITION.format(count=fragment)
    return None


def _occurrences(text: str, fragment: str) -> list[int]:
    found: list[int] = []
    at = text.find(fragment)
    while at >= 0 and fragment:
        found.append(at)
        at = text.find(fragment, at + 1)
    return found
