"""Regular expressions as the engine runs them (pql/regex.py): the checker refuses what RE2 —
DuckDB's regex library — cannot run, at the pattern's span and naming the construct; what it
accepts, the compiler writes into SQL (never leaving it to the evaluator's backtracking re);
and RE2's verdicts here are DuckDB's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pql import check, evaluate, parse
from pql.regex import re2_error
from pql.schema import (
    REGEX_GROUP_NOT_WRITTEN,
    REGEX_NO_GROUP,
    REGEX_NOT_RUNNABLE,
    REGEX_NOT_SUPPORTED,
    REGEX_NOT_WRITTEN,
    Schema,
)
from pql.sql import compile_segment

SCHEMA = Schema.from_dict({"personalEmail.address": "string", "person.name.firstName": "string",
                           "loyalty.points": "integer"})
NOW = datetime(2026, 11, 1, tzinfo=UTC)
# The pattern of issue 15: a lookahead RE2 cannot run; Python's re took 122 s on 3,000 profiles
CATASTROPHIC = "^(?=.)(.?){20}.{20}!"

# (pattern as PQL text writes it, the construct the message names)
REFUSED = [
    (CATASTROPHIC, "a lookahead (?=…)"),
    ("a(?!b)", "a negative lookahead (?!…)"),
    ("(?<=@)gmail", "a lookbehind (?<=…)"),
    ("(?<!x)y", "a negative lookbehind (?<!…)"),
    ("(a)\\\\1", "a backreference \\1"),
    ("(?P<n>a)(?P=n)", "a named backreference (?P=name)"),
    ("(?>ab|a)c", "an atomic group (?>…)"),
    ("a++b", "a possessive quantifier ++"),
    ("x{1001}", "a repetition count above 1000 ({1001})"),
    ("(?:a{100}){100}", "repetitions that multiply to more than 1000 ({100} inside another)"),
    ("(?x) a b", "the inline flag (?x…)"),
    ("end\\\\Z", "the escape \\Z"),
]
ACCEPTED = ["(?i)^John", "@(\\\\w+)", "n$", "^[A-C]", "\\\\++", "[*+]x", "\\\\\\\\1",
            "(?P<user>[^@]+)@", "\\\\d{3}-\\\\d{4}", "(?s)a.b", "x{1000}"]


def errors(text: str) -> list[tuple[str, int | None, int | None]]:
    return [(problem.message, problem.column, problem.end_column)
            for problem in check(parse(text), SCHEMA, source=text)
            if problem.severity == "error"]


@pytest.mark.parametrize(("pattern", "construct"), REFUSED)
def test_a_pattern_re2_cannot_run_is_refused_at_its_span_naming_the_construct(
        pattern: str, construct: str) -> None:
    text = f"personalEmail.address.matches(\"{pattern}\")"
    start = text.index('"') + 1
    written = parse(text).args[0].value  # type: ignore[attr-defined]
    message = REGEX_NOT_SUPPORTED.format(pattern=written, construct=construct)
    assert errors(text) == [(message, start, len(text))]


def test_the_catastrophic_pattern_is_refused_in_words() -> None:
    text = f'personalEmail.address.matches("{CATASTROPHIC}")'
    assert errors(text)[0][0] == (
        'The regular expression "^(?=.)(.?){20}.{20}!" uses a lookahead (?=…), which the '
        "engine's regular expressions (RE2) do not support.")


def test_regex_group_is_judged_alike() -> None:
    text = 'personalEmail.address.regexGroup("(?<=@)(\\\\w+)", 1) = "gmail"'
    construct = "a lookbehind (?<=…)"
    assert [message for message, _, _ in errors(text)] == [
        REGEX_NOT_SUPPORTED.format(pattern="(?<=@)(\\w+)", construct=construct)]


def test_a_long_refused_pattern_is_shortened_in_the_message() -> None:
    pattern = "(?=x)" + "a" * 200
    (message, _, _), = errors(f'personalEmail.address.matches("{pattern}")')
    assert message == REGEX_NOT_SUPPORTED.format(pattern=pattern[:79] + "…",
                                                 construct="a lookahead (?=…)")


def test_a_pattern_too_large_for_re2_is_refused_with_re2s_reason() -> None:
    pattern = ".{1000}" * 100  # Python's re compiles it
    (message, _, _), = errors(f'personalEmail.address.matches("{pattern}")')
    assert message == REGEX_NOT_RUNNABLE.format(
        pattern=pattern[:79] + "…", error="pattern too large - compile failed")


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_a_pattern_re2_runs_is_accepted_and_compiled_into_sql(pattern: str) -> None:
    text = f'personalEmail.address.matches("{pattern}") or ' \
           f'personalEmail.address.regexGroup("{pattern}(x)", 1) = "x"'
    assert errors(text) == []
    compiled = compile_segment(parse(text), now=NOW, schema=SCHEMA)
    assert compiled.exact, compiled.fallbacks


def test_a_computed_pattern_is_refused() -> None:
    text = "personalEmail.address.matches(person.name.firstName)"
    assert [message for message, _, _ in errors(text)] == [REGEX_NOT_WRITTEN.format(
        what="matches", text="person.name.firstName")]


def test_regex_group_needs_a_written_group_the_pattern_has() -> None:
    assert [m for m, _, _ in errors('personalEmail.address.regexGroup("@(.+)", 2) = "x"')] == [
        REGEX_NO_GROUP.format(pattern="@(.+)", groups=1, what="regexGroup", group=2)]
    assert [m for m, _, _ in errors(
        'personalEmail.address.regexGroup("@(.+)", loyalty.points) = "x"')] == [
        REGEX_GROUP_NOT_WRITTEN.format(what="regexGroup", text="loyalty.points")]
    assert errors('personalEmail.address.regexGroup("@(.+)", 0) = "x"') == []


def duckdb_accepts(con: duckdb.DuckDBPyConnection, pattern: str) -> bool:
    try:
        con.execute("SELECT regexp_matches('x', ?)", [pattern]).fetchall()
    except duckdb.Error:
        return False
    return True


def test_re2_verdicts_are_duckdbs() -> None:
    con = duckdb.connect()
    patterns = [parse(f'a.matches("{p}")').args[0].value  # type: ignore[attr-defined]
                for p, _ in REFUSED] + [
        parse(f'a.matches("{p}")').args[0].value for p in ACCEPTED]  # type: ignore[attr-defined]
    patterns += ["(", "[a", "a{2,1}", "\\pN+", "\\Q.*\\E", "(?U)a+", "a\\z", "[[:alpha:]]", "\\C"]
    assert [re2_error(p) is None for p in patterns] == [
        duckdb_accepts(con, p) for p in patterns]


# Regex-like text: brackets, quantifiers, escapes, the starts of Perl's groups.
REGEX_TEXT = st.text(alphabet=list("()[]{}?*+.|^$\\ab1=!<>:P,kZx2"), max_size=10)


@settings(max_examples=300, deadline=None)
@given(REGEX_TEXT)
def test_whatever_the_checker_passes_runs_in_duckdb_and_compiles_exactly(pattern: str) -> None:
    text = 'personalEmail.address.matches("' + pattern.replace("\\", "\\\\") + '")'
    if errors(text):
        return
    assert re2_error(pattern) is None
    assert duckdb_accepts(duckdb.connect(), pattern)
    compiled = compile_segment(parse(text), now=NOW, schema=SCHEMA)
    assert compiled.exact, (pattern, compiled.fallbacks)


@pytest.mark.parametrize(("pattern", "text"), [
    (r"^\d+$", "٣٤"),  # Arabic-Indic digits: \d is ASCII in RE2, Unicode in Python's re
    (r"^\w$", "é"),
    (r"\bb", "ab"),
    ("^a.c$", "a\nc"),  # . does not match a newline in either
])
def test_the_evaluator_reads_a_pattern_as_the_engines_sql_does(pattern: str, text: str) -> None:
    """The oracle runs patterns on RE2 like DuckDB, so a member set never depends on which of
    the two decided (and a pattern is linear in its input there too)."""
    [(in_sql,)] = duckdb.sql("SELECT regexp_matches($text, $pattern)",
                             params={"text": text, "pattern": pattern}).fetchall()
    node = parse(f"a.matches({json.dumps(pattern)})")
    assert evaluate(node, {"a": text}, [], now=NOW) is in_sql
