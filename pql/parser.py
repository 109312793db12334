"""A hand-written recursive-descent parser for PQL text (spec/pql.md §4 precedence, §12 grammar).

Loosest to tightest: ``let``/``select``/``exists``/``forall``/``sum … over``/lambdas,
``or``, ``and``, ``not``/``!``, one comparison (``= != < <= > >= like matches in notIn occurs``),
``+ -``, ``* / %``, unary ``-``, postfix (``.field``, ``.method(…)``, ``[filter]``), primary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pql import ast
from pql.errors import PQLSyntaxError, position
from pql.functions import FUNCTIONS, Function, suggest, unknown_function_message
from pql.tokens import (
    AGGREGATE_WORDS,
    COMPARISON_OPS,
    DIRECTIONS,
    PERIOD_WORDS,
    QUANTIFIER_WORDS,
    RESERVED,
    TIME_UNITS,
    TIME_WORDS,
    WORD_OPS,
    Token,
    tokenize,
)

# Bracket/operator nesting the parser follows before giving up (each level costs ~12 frames).
MAX_NESTING = 40
# Depth of the resulting tree (long paths and operator chains count too).
MAX_DEPTH = 100
# Characters of a definition, refused before it is read: reading costs ~1.5 µs a character
# (a 680 KB chain of ORs took a second to parse, and 37 s of a worker's time to run). The
# longest example programs have ~200 characters; 64 KB also holds a list of thousands of
# postcodes. pql.schema.MAX_NODES bounds the parts of a definition (pql/json too).
MAX_TEXT_LENGTH = 64 * 1024

EXPECTED_VALUE = "expected a value"
EXPECTED_VALUE_AFTER = "expected a value after '{after}'"
EMPTY_DEFINITION = "the definition is empty"
UNEXPECTED_AFTER_END = "unexpected '{text}' after a complete condition — missing 'and' or 'or'?"
UNEXPECTED_CLOSING = "unexpected '{text}' — there is no matching '{opening}'"
UNCLOSED = "this '{opening}' is never closed — add '{closing}'"
EXPECTED_CLOSING = "expected '{closing}' to close the '{opening}' on line {line}, column {column}"
DOUBLE_EQUALS = "compare with a single '=', not '=='"
CHAINED_COMPARISON = "comparisons cannot be chained — join them with 'and'"
EXPECTED_FIELD_NAME = "expected a field or method name after '.'"
NOT_A_METHOD = "'{name}' is a function, not a method: write {name}(…)"
NOT_A_FUNCTION = "'{name}' is a method: write it after a value, as in orders.{name}(…)"
WRONG_ARITY = "'{name}' takes {expected}, not {got}"
WRAP_IN_PARENS = "put '{word} …' in parentheses when it is part of a larger condition"
NOT_NEEDS_PARENS = "write not(…) with parentheses here"
NO_NULL = "PQL has no null: test a value with .isNull() or .isNotNull()"
NO_PARENTHESES = "write {word} without parentheses"
UNKNOWN_AGGREGATE = "unknown aggregation '{name}'"
SUGGESTED_AGGREGATES = {"avg": "average", "mean": "average", "total": "sum", "count": "sum"}
RESERVED_WORD = "'{word}' is a keyword and cannot start a value here"
TOO_DEEP = "the definition nests too deeply (more than {limit} levels)"
TOO_LONG = (
    "the definition is {length:,} characters long; a definition may have at most {limit:,}"
)
UP_OUTSIDE_FILTER = "'{carets}' needs {levels} enclosing filter(s) [ … ] but has {depth}"
EXPECTED_DOT_AFTER_UP = "expected '.' and a field name after '{carets}'"
EXPECTED_NAME = "expected a variable name after '{after}'"
EXPECTED_KEYWORD = "expected '{keyword}' after '{after}'"
EXPECTED_OVER = "expected 'over' after the expression of '{word}' (as in {word} X.a over X from …)"
RESERVED_VARIABLE = "'_' cannot be used as a variable name"
EXPECTED_TIME_AMOUNT = "expected a whole number of time units after '{op}'"
UNKNOWN_TIME_UNIT = "unknown time unit '{word}'"
EXPECTED_TIME_UNIT = "expected a time unit (days, hours, months, …) after '{after}'"
EXPECTED_DIRECTION = "expected 'before', 'after' or 'from' after '{after}'"
EXPECTED_CHAIN_STEP = 'expected a chain step such as A: WHAT(eventType = "x")'
EXPECTED_WHAT = "expected WHAT(…) after the step label '{label}:'"
EXPECTED_COUNT = "expected a whole number inside COUNT(…)"
EXPECTED_STRING_KEY = 'expected a quoted key ("name") in the object'
EXPECTED_ORDER_FIELD = "expected the field that orders the events (timestamp) after the events"

_N = TypeVar("_N", bound=ast.Node)

_CLOSING = {"(": ")", "[": "]", "{": "}"}
_OPENING = {")": "(", "]": "[", "}": "{"}
# Tokens after ``sum``/``average``/``min``/``max`` that make it the keyword form of aggregation.
_OPERAND_START = frozenset({"ident", "number", "string", "param", "(", "[", "-", "^", "{"})
_BINARY_WORDS = frozenset({"and", "or", "in", "notin", "like", "matches", "occurs", "over"})
# Tokens that end an arithmetic expression at bracket depth 0.
_ENDS_ADDITIVE = (
    _BINARY_WORDS
    | COMPARISON_OPS
    | {",", ":", "=>", "where", "from", "select", "exists", "forall", "let"}
)


def parse(text: str) -> ast.Node:
    """Parse PQL text into a syntax tree; raise ``PQLSyntaxError`` with the offending span."""
    if not isinstance(text, str):
        raise TypeError("parse() takes the PQL text as a str")
    if len(text) > MAX_TEXT_LENGTH:  # from the first character past the limit
        raise PQLSyntaxError.at(TOO_LONG.format(length=len(text), limit=MAX_TEXT_LENGTH), text,
                                MAX_TEXT_LENGTH, len(text))
    return Parser(text).parse()


class Parser:
    """One parse of one text. ``_parse_<construct>`` methods mirror the grammar of §12."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.scope: list[str] = []  # variables visible here, innermost last
        self.item_depth = 0  # filters/item contexts around the current position
        self.nesting = 0
        self.no_in = False  # inside `let X = …` before its `in`

    # --- entry -----------------------------------------------------------------------------

    def parse(self) -> ast.Node:
        if self.tokens[0].kind == "eof":
            raise PQLSyntaxError.at(EMPTY_DEFINITION, self.text, 0, 0)
        node = self._parse_expr()
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            raise self._trailing_error(tok)
        if len(self.tokens) > MAX_DEPTH:
            self._check_depth(node)
        return node

    # --- helpers -----------------------------------------------------------------------------

    def _error(self, message: str, tok: Token) -> PQLSyntaxError:
        return PQLSyntaxError.at(message, self.text, tok.start, tok.end)

    def _span(self, start: int) -> tuple[int, int]:
        return (start, self.tokens[self.pos - 1].end)

    def _peek(self, ahead: int = 0) -> Token:
        tokens = self.tokens
        index = self.pos + ahead
        return tokens[index] if index < len(tokens) else tokens[-1]

    def _advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def _at_word(self, word: str) -> bool:
        tok = self.tokens[self.pos]
        return tok.kind == "ident" and tok.low == word

    def _expect_word(self, word: str) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind == "ident" and tok.low == word:
            self.pos += 1
            return tok
        after = self.tokens[self.pos - 1].text if self.pos else ""
        raise self._error(EXPECTED_KEYWORD.format(keyword=word, after=after), tok)

    def _expect(self, kind: str, message: str) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != kind:
            raise self._error(message, tok)
        self.pos += 1
        return tok

    def _close(self, opening: Token) -> Token:
        """Consume the bracket closing ``opening`` or explain what is wrong."""
        closing = _CLOSING[opening.kind]
        tok = self.tokens[self.pos]
        if tok.kind == closing:
            self.pos += 1
            return tok
        if tok.kind == "eof":
            raise self._error(UNCLOSED.format(opening=opening.kind, closing=closing), opening)
        hint = self._unknown_aggregate()
        if hint is not None:
            raise hint
        line, column = position(self.text, opening.start)
        message = EXPECTED_CLOSING.format(
            closing=closing, opening=opening.kind, line=line, column=column
        )
        if tok.kind == "ident" or tok.kind in ("number", "string", "param"):
            message += " — missing ',' or an operator?"
        raise self._error(message, tok)

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self._error(TOO_DEEP.format(limit=MAX_NESTING), self.tokens[self.pos])

    def _unknown_aggregate(self) -> PQLSyntaxError | None:
        """``avg X.a over X from …`` reads as a field ``avg`` followed by junk: say why."""
        prev = self.tokens[self.pos - 1] if self.pos else None
        if prev is None or prev.kind != "ident" or self._find_over(self.pos) is None:
            return None
        if self.pos >= 2 and self.tokens[self.pos - 2].kind == ".":
            return None
        message = UNKNOWN_AGGREGATE.format(name=prev.text)
        close = suggest(prev.text, AGGREGATE_WORDS) or SUGGESTED_AGGREGATES.get(prev.text.lower())
        if close:
            message += f" — did you mean '{close}'?"
        return self._error(message, prev)

    def _trailing_error(self, tok: Token) -> PQLSyntaxError:
        hint = self._unknown_aggregate()
        if hint is not None:
            return hint
        if tok.kind in _OPENING:
            return self._error(
                UNEXPECTED_CLOSING.format(text=tok.kind, opening=_OPENING[tok.kind]), tok
            )
        if tok.kind == "=" and self.pos and self.tokens[self.pos - 1].kind == "=":
            return self._error(DOUBLE_EQUALS, tok)
        return self._error(UNEXPECTED_AFTER_END.format(text=tok.text), tok)

    def _check_depth(self, root: ast.Node) -> None:
        stack: list[tuple[ast.Node, int]] = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                start, end = node.span or (0, 0)
                raise PQLSyntaxError.at(TOO_DEEP.format(limit=MAX_DEPTH), self.text, start, end)
            stack.extend((child, depth + 1) for child in node.children())

    # --- expressions, loosest first ----------------------------------------------------------

    def _parse_expr(self) -> ast.Node:
        self._enter()
        tok = self.tokens[self.pos]
        node: ast.Node
        if tok.kind == "ident" and (
            tok.low in QUANTIFIER_WORDS or tok.low == "let" or tok.low in AGGREGATE_WORDS
        ):
            if tok.low == "let":
                node = self._parse_let()
            elif tok.low in QUANTIFIER_WORDS:
                node = self._parse_quantifier()
            elif self._starts_aggregate():
                node = self._parse_aggregate()
            else:
                node = self._parse_or()
        else:
            node = self._parse_or()
        self.nesting -= 1
        return node

    def _parse_let(self) -> ast.Let:
        start = self._advance().start
        name = self._parse_variable_name("let")
        self._expect("=", EXPECTED_KEYWORD.format(keyword="=", after=name))
        saved, self.no_in = self.no_in, True
        value = self._parse_expr()
        self.no_in = saved
        self._expect_word("in")
        self.scope.append(name)
        body = self._parse_expr()
        self.scope.pop()
        return ast.Let(name, value, body, span=self._span(start))

    def _parse_quantifier(self) -> ast.Node:
        tok = self._advance()
        mark = len(self.scope)
        variables = self._parse_var_decls(tok.text)
        del self.scope[mark:]
        if tok.low == "select":
            return ast.Select(variables, span=self._span(tok.start))
        return ast.Quantified(tok.low, variables, span=self._span(tok.start))

    def _parse_variable_name(self, after: str) -> str:
        tok = self.tokens[self.pos]
        if tok.kind != "ident" or tok.low in RESERVED:
            raise self._error(EXPECTED_NAME.format(after=after), tok)
        if tok.text == "_":
            raise self._error(RESERVED_VARIABLE, tok)
        self.pos += 1
        return tok.text

    def _parse_var_decls(self, after: str) -> tuple[ast.VarDecl, ...]:
        """``V from A [where P], W from B …``; binds each name for what follows it."""
        decls: list[ast.VarDecl] = []
        while True:
            start = self.tokens[self.pos].start
            name = self._parse_variable_name(after)
            self._expect_word("from")
            source = self._parse_additive()
            self.scope.append(name)
            where = None
            tok = self.tokens[self.pos]
            if tok.kind == ":" or (tok.kind == "ident" and tok.low == "where"):
                self.pos += 1
                where = self._parse_or()
            decls.append(ast.VarDecl(name, source, where, span=self._span(start)))
            if (
                self.tokens[self.pos].kind == ","
                and self._peek(1).kind == "ident"
                and self._peek(2).kind == "ident"
                and self._peek(2).low == "from"
            ):
                self.pos += 1
                after = ","
                continue
            return tuple(decls)

    def _starts_aggregate(self) -> bool:
        """``sum``/``average``/``min``/``max`` start the keyword form only when an operand and
        then ``over`` (or ``X from``) follow; otherwise they are field names (``max - min``)."""
        nxt = self._peek(1)
        if nxt.kind not in _OPERAND_START or (nxt.kind == "ident" and nxt.low in _BINARY_WORDS):
            return False
        if nxt.kind not in ("(", "[", "-"):
            return True  # `sum X…`: nothing else can follow a field name directly
        return self._find_over(self.pos + 1) is not None

    def _parse_aggregate(self) -> ast.Aggregate:
        tok = self._advance()
        mark = len(self.scope)
        if (
            self._peek().kind == "ident"
            and self._peek(1).kind == "ident"
            and (self._peek(1).low == "from")
        ):
            variables = self._parse_var_decls(tok.text)
            del self.scope[mark:]
            return ast.Aggregate(tok.low, None, variables, span=self._span(tok.start))
        # The expression comes before the variables it uses: parse the variables first.
        expr_start = self.pos
        over = self._find_over(self.pos)
        if over is None:
            raise self._error(EXPECTED_OVER.format(word=tok.text), tok)
        self.pos = over + 1
        variables = self._parse_var_decls("over")
        end = self.pos
        self.pos = expr_start
        expr = self._parse_additive()
        if self.pos != over:
            raise self._error(
                EXPECTED_KEYWORD.format(keyword="over", after=tok.text), self.tokens[self.pos]
            )
        self.pos = end
        del self.scope[mark:]
        return ast.Aggregate(tok.low, expr, variables, span=self._span(tok.start))

    def _find_over(self, start: int) -> int | None:
        """The index of the ``over`` closing an aggregation expression that starts at
        ``start``, or None when the expression would end first."""
        depth = 0
        tokens = self.tokens
        for index in range(start, len(tokens)):
            tok = tokens[index]
            kind = tok.kind
            if kind in _CLOSING:
                depth += 1
            elif kind in _OPENING:
                if depth == 0:
                    return None
                depth -= 1
            elif depth == 0:
                if kind == "ident" and tokens[index - 1].kind != ".":
                    if tok.low == "over":
                        return index
                    if tok.low in _ENDS_ADDITIVE:
                        return None
                elif kind != "ident" and (kind in _ENDS_ADDITIVE or kind == "eof"):
                    return None
        return None

    def _parse_or(self) -> ast.Node:
        start = self.tokens[self.pos].start
        node = self._parse_and()
        if not self._at_word("or"):
            return node
        operands = [node]
        while self._at_word("or"):
            self.pos += 1
            operands.append(self._parse_and())
        return ast.Or(tuple(operands), span=self._span(start))

    def _parse_and(self) -> ast.Node:
        start = self.tokens[self.pos].start
        node = self._parse_not()
        if not self._at_word("and"):
            return node
        operands = [node]
        while self._at_word("and"):
            self.pos += 1
            operands.append(self._parse_not())
        return ast.And(tuple(operands), span=self._span(start))

    def _parse_not(self) -> ast.Node:
        tok = self.tokens[self.pos]
        if tok.kind == "!" or (tok.kind == "ident" and tok.low == "not"):
            self.pos += 1
            self._enter()
            operand = self._parse_not()
            self.nesting -= 1
            return ast.Not(operand, span=self._span(tok.start))
        return self._parse_predicate()

    def _parse_predicate(self) -> ast.Node:
        start = self.tokens[self.pos].start
        left = self._parse_additive()
        node = self._parse_comparison_rest(left, start)
        if node is left:
            return node
        tok = self.tokens[self.pos]
        if tok.kind in COMPARISON_OPS or (
            tok.kind == "ident"
            and (tok.low in WORD_OPS or tok.low in ("matches", "occurs"))
            and not (tok.low == "in" and self.no_in)
        ):
            raise self._error(CHAINED_COMPARISON, tok)
        return node

    def _parse_comparison_rest(self, left: ast.Node, start: int) -> ast.Node:
        tok = self.tokens[self.pos]
        kind = tok.kind
        if kind in COMPARISON_OPS:
            self.pos += 1
            if self.tokens[self.pos].kind == "=" and kind == "=":
                raise self._error(DOUBLE_EQUALS, self.tokens[self.pos])
            right = self._parse_additive()
            return ast.Binary(kind, left, right, span=self._span(start))
        if kind != "ident":
            return left
        low = tok.low
        if low in WORD_OPS and not (low == "in" and self.no_in):
            self.pos += 1
            right = self._parse_additive()
            return ast.Binary(WORD_OPS[low], left, right, span=self._span(start))
        if low == "matches":
            self.pos += 1
            pattern = self._parse_additive()
            return ast.Method("matches", left, (pattern,), span=self._span(start))
        if low == "occurs":
            self.pos += 1
            window = self._parse_time_window("occurs")
            return ast.Occurs(left, window, span=self._span(start))
        return left

    def _parse_additive(self) -> ast.Node:
        start = self.tokens[self.pos].start
        node = self._parse_multiplicative()
        while self.tokens[self.pos].kind in ("+", "-"):
            op = self._advance().kind
            right = self._parse_multiplicative()
            node = ast.Binary(op, node, right, span=self._span(start))
        return node

    def _parse_multiplicative(self) -> ast.Node:
        start = self.tokens[self.pos].start
        node = self._parse_unary()
        while self.tokens[self.pos].kind in ("*", "/", "%"):
            op = self._advance().kind
            right = self._parse_unary()
            node = ast.Binary(op, node, right, span=self._span(start))
        return node

    def _parse_unary(self) -> ast.Node:
        tok = self.tokens[self.pos]
        if tok.kind != "-":
            return self._parse_postfix()
        self.pos += 1
        self._enter()
        if self.tokens[self.pos].kind == "number":
            operand = self._parse_postfix()
            self.nesting -= 1
            if isinstance(operand, ast.Literal):  # a bare number: -3 is a literal
                return ast.Literal(-operand.value, span=self._span(tok.start))  # type: ignore[operator]
            return ast.Negate(operand, span=self._span(tok.start))
        operand = self._parse_unary()
        self.nesting -= 1
        return ast.Negate(operand, span=self._span(tok.start))

    # --- postfix and primary -----------------------------------------------------------------

    def _parse_postfix(self) -> ast.Node:
        start = self.tokens[self.pos].start
        node = self._parse_primary()
        tokens = self.tokens
        while True:
            kind = tokens[self.pos].kind
            if kind == ".":
                self.pos += 1
                name_tok = tokens[self.pos]
                if name_tok.kind != "ident":
                    raise self._error(EXPECTED_FIELD_NAME, name_tok)
                self.pos += 1
                if tokens[self.pos].kind == "(":
                    node = self._parse_method(node, name_tok, start)
                else:
                    node = ast.Field(name_tok.text, node, span=self._span(start))
            elif kind == "[":
                opening = self._advance()
                self.item_depth += 1
                saved, self.no_in = self.no_in, False
                predicate = self._parse_expr()
                self.no_in = saved
                self.item_depth -= 1
                self._close(opening)
                node = ast.Filter(node, predicate, span=self._span(start))
            else:
                return node

    def _parse_method(self, receiver: ast.Node, name_tok: Token, start: int) -> ast.Method:
        fn = FUNCTIONS.get(name_tok.text)
        if fn is None:
            raise self._error(unknown_function_message(name_tok.text, "method"), name_tok)
        if fn.kind != "method":
            raise self._error(NOT_A_METHOD.format(name=fn.name), name_tok)
        args = self._parse_args(fn, name_tok)
        return ast.Method(fn.name, receiver, args, span=self._span(start))

    def _parse_args(self, fn: Function, name_tok: Token) -> tuple[ast.Node, ...]:
        opening = self._advance()  # "("
        saved, self.no_in = self.no_in, False
        args: list[ast.Node] = []
        if self.tokens[self.pos].kind != ")":
            while True:
                item = len(args) in fn.item_args
                if item:
                    self.item_depth += 1
                args.append(self._parse_expr())
                if item:
                    self.item_depth -= 1
                if self.tokens[self.pos].kind != ",":
                    break
                self.pos += 1
        self._close(opening)
        self.no_in = saved
        got = len(args)
        if got < fn.min_args or (fn.max_args is not None and got > fn.max_args):
            message = WRONG_ARITY.format(name=fn.name, expected=fn.arity_text(), got=got)
            end = self.tokens[self.pos - 1].end
            raise PQLSyntaxError.at(message, self.text, name_tok.start, end)
        return tuple(args)

    def _parse_primary(self) -> ast.Node:
        tok = self.tokens[self.pos]
        kind = tok.kind
        if kind == "ident":
            return self._parse_word(tok)
        if kind == "number":
            self.pos += 1
            return ast.Literal(tok.value, span=(tok.start, tok.end))  # type: ignore[arg-type]
        if kind == "string":
            self.pos += 1
            return ast.Literal(tok.value, span=(tok.start, tok.end))  # type: ignore[arg-type]
        if kind == "(":
            return self._parse_paren()
        if kind == "[":
            return self._parse_list()
        if kind == "{":
            return self._parse_object()
        if kind == "param":
            return self._parse_param()
        if kind == "^":
            return self._parse_up()
        if kind == "." and self._peek(1).kind == "number" and self._peek(1).start == tok.end:
            number = self._peek(1)
            if number.text.isdigit() or "." not in number.text:
                self.pos += 2
                value = float("." + number.text)
                return ast.Literal(value, span=(tok.start, number.end))
        raise self._expected_value(tok)

    def _expected_value(self, tok: Token) -> PQLSyntaxError:
        if tok.kind in _OPENING and self.nesting <= 1 and not self._open_before(tok):
            return self._error(
                UNEXPECTED_CLOSING.format(text=tok.kind, opening=_OPENING[tok.kind]), tok
            )
        if self.pos == 0:
            return self._error(EXPECTED_VALUE, tok)
        prev = self.tokens[self.pos - 1]
        if tok.kind == "=" and prev.kind == "=":
            return self._error(DOUBLE_EQUALS, tok)
        return self._error(EXPECTED_VALUE_AFTER.format(after=prev.text), tok)

    def _open_before(self, tok: Token) -> bool:
        depth = 0
        for before in self.tokens[: self.pos]:
            if before.kind in _CLOSING:
                depth += 1
            elif before.kind in _OPENING:
                depth -= 1
        return depth > 0

    def _parse_word(self, tok: Token) -> ast.Node:
        low = tok.low
        nxt = self.tokens[self.pos + 1]  # tok is not eof, so a next token exists
        if low == "true" or low == "false":
            self.pos += 1
            return ast.Literal(low == "true", span=(tok.start, tok.end))
        if nxt.kind == "(":
            if low == "chain":
                return self._parse_chain()
            if low == "not":
                self.pos += 1
                self._enter()
                operand = self._parse_paren()
                self.nesting -= 1
                return ast.Not(operand, span=self._span(tok.start))
            return self._parse_call(tok)
        if tok.text in self.scope:
            self.pos += 1
            return ast.Var(tok.text, span=(tok.start, tok.end))
        if low == "null" and nxt.kind != ".":
            raise self._error(NO_NULL, tok)
        if low in RESERVED:
            if self.pos and low in _BINARY_WORDS:
                raise self._expected_value(tok)
            if low in QUANTIFIER_WORDS or low == "let":
                raise self._error(WRAP_IN_PARENS.format(word=tok.text), tok)
            if low == "not":
                raise self._error(NOT_NEEDS_PARENS, tok)
            raise self._error(RESERVED_WORD.format(word=tok.text), tok)
        self.pos += 1
        return ast.Field(tok.text, None, span=(tok.start, tok.end))

    def _parse_call(self, tok: Token) -> ast.Call:
        fn = FUNCTIONS.get(tok.text)
        if fn is None:
            raise self._error(unknown_function_message(tok.text, "function"), tok)
        if fn.kind != "function":
            raise self._error(NOT_A_FUNCTION.format(name=fn.name), tok)
        self.pos += 1
        args = self._parse_args(fn, tok)
        return ast.Call(fn.name, args, span=self._span(tok.start))

    def _parse_param(self) -> ast.Node:
        tok = self._advance()
        position = tok.value
        tokens = self.tokens
        if (
            position == 1
            and self.item_depth == 0
            and tokens[self.pos].kind == "."
            and tokens[self.pos + 1].kind == "ident"
            and tokens[self.pos + 2].kind != "("
        ):
            # At the top level `$1.x` is just `x`: the profile is the implicit context.
            name_tok = tokens[self.pos + 1]
            self.pos += 2
            return ast.Field(name_tok.text, None, span=(tok.start, name_tok.end))
        return ast.Param(position, span=(tok.start, tok.end))  # type: ignore[arg-type]

    def _parse_up(self) -> ast.Field:
        start = self.tokens[self.pos].start
        levels = 0
        while self.tokens[self.pos].kind == "^":
            self.pos += 1
            levels += 1
        carets = "^" * levels
        if self.tokens[self.pos].kind != "." or self._peek(1).kind != "ident":
            raise self._error(EXPECTED_DOT_AFTER_UP.format(carets=carets), self.tokens[self.pos])
        if levels > self.item_depth:
            raise PQLSyntaxError.at(
                UP_OUTSIDE_FILTER.format(carets=carets, levels=levels, depth=self.item_depth),
                self.text,
                start,
                start + levels,
            )
        self.pos += 1
        name_tok = self._advance()
        up = ast.Up(levels, span=(start, start + levels))
        return ast.Field(name_tok.text, up, span=(start, name_tok.end))

    def _parse_paren(self) -> ast.Node:
        opening = self.tokens[self.pos]
        if self._at_lambda():
            return self._parse_lambda()
        self.pos += 1
        saved, self.no_in = self.no_in, False
        node = self._parse_expr()
        self.no_in = saved
        self._close(opening)
        return node

    def _at_lambda(self) -> bool:
        tokens = self.tokens
        index = self.pos + 1
        if tokens[index].kind == ")":
            return self._peek(2).kind == "=>"
        while tokens[index].kind == "ident":
            index += 1
            if tokens[index].kind == ",":
                index += 1
            elif tokens[index].kind == ")":
                return tokens[index + 1].kind == "=>"
            else:
                return False
        return False

    def _parse_lambda(self) -> ast.Lambda:
        start = self._advance().start  # "("
        params: list[str] = []
        while self.tokens[self.pos].kind != ")":
            params.append(self._parse_variable_name("("))
            if self.tokens[self.pos].kind == ",":
                self.pos += 1
        self.pos += 2  # ")" "=>"
        mark = len(self.scope)
        self.scope.extend(params)
        body = self._parse_expr()
        del self.scope[mark:]
        return ast.Lambda(tuple(params), body, span=self._span(start))

    def _parse_list(self) -> ast.ListLiteral:
        opening = self._advance()
        saved, self.no_in = self.no_in, False
        items: list[ast.Node] = []
        if self.tokens[self.pos].kind != "]":
            while True:
                items.append(self._parse_expr())
                if self.tokens[self.pos].kind != ",":
                    break
                self.pos += 1
        self._close(opening)
        self.no_in = saved
        return ast.ListLiteral(tuple(items), span=self._span(opening.start))

    def _parse_object(self) -> ast.ObjectLiteral:
        opening = self._advance()
        saved, self.no_in = self.no_in, False
        entries: list[tuple[str, ast.Node]] = []
        if self.tokens[self.pos].kind != "}":
            while True:
                key = self._expect("string", EXPECTED_STRING_KEY)
                self._expect(":", EXPECTED_KEYWORD.format(keyword=":", after=key.text))
                entries.append((key.value, self._parse_expr()))  # type: ignore[arg-type]
                if self.tokens[self.pos].kind != ",":
                    break
                self.pos += 1
        self._close(opening)
        self.no_in = saved
        return ast.ObjectLiteral(tuple(entries), span=self._span(opening.start))

    # --- time --------------------------------------------------------------------------------

    def _parse_time_window(self, after: str) -> ast.TimeWindow:
        """The tail of ``occurs`` and the content of ``WHEN(…)`` (§6.9 forms)."""
        tok = self.tokens[self.pos]
        start = tok.start
        if tok.kind in COMPARISON_OPS:
            self.pos += 1
            amount_tok = self.tokens[self.pos]
            if amount_tok.kind != "number" or not isinstance(amount_tok.value, int):
                raise self._error(EXPECTED_TIME_AMOUNT.format(op=tok.kind), amount_tok)
            self.pos += 1
            unit = self._parse_time_unit(amount_tok.text)
            direction = self.tokens[self.pos]
            if direction.kind != "ident" or direction.low not in DIRECTIONS:
                raise self._error(EXPECTED_DIRECTION.format(after=unit), direction)
            self.pos += 1
            anchor = self._parse_time_ref()
            return ast.TimeWindow(
                direction.low, anchor, None, tok.kind, amount_tok.value, unit,
                span=self._span(start),
            )  # fmt: skip
        if tok.kind == "ident":
            low = tok.low
            if low in DIRECTIONS:
                self.pos += 1
                anchor = self._parse_time_ref()
                return ast.TimeWindow(low, anchor, span=self._span(start))
            if low == "between":
                self.pos += 1
                first = self._parse_time_ref()
                self._expect_word("and")
                second = self._parse_time_ref()
                return ast.TimeWindow("between", first, second, span=self._span(start))
            if low == "on":
                self.pos += 1
        if self.tokens[self.pos].kind == "eof" or self.tokens[self.pos].kind == ")":
            raise self._error(EXPECTED_VALUE_AFTER.format(after=after), self.tokens[self.pos])
        anchor = self._parse_time_ref()
        return ast.TimeWindow("on", anchor, span=self._span(start))

    def _parse_time_unit(self, after: str) -> str:
        tok = self.tokens[self.pos]
        if tok.kind != "ident":
            raise self._error(EXPECTED_TIME_UNIT.format(after=after), tok)
        if tok.low not in TIME_UNITS:
            message = UNKNOWN_TIME_UNIT.format(word=tok.text)
            close = suggest(tok.low, TIME_UNITS)
            raise self._error(f"{message} — did you mean '{close}'?" if close else message, tok)
        self.pos += 1
        return tok.low

    def _parse_time_ref(self) -> ast.Node:
        tok = self.tokens[self.pos]
        if tok.kind == "ident":
            low = tok.low
            if low in TIME_WORDS:
                self.pos += 1
                if self.tokens[self.pos].kind == "(":
                    raise self._error(NO_PARENTHESES.format(word=low), self.tokens[self.pos])
                return ast.TimeWord(low, span=(tok.start, tok.end))
            nxt = self._peek(1)
            if low in PERIOD_WORDS and nxt.kind == "ident" and nxt.low in TIME_UNITS:
                self.pos += 2
                return ast.TimePeriod(low, nxt.low, span=(tok.start, nxt.end))
        return self._parse_additive()

    # --- chain -------------------------------------------------------------------------------

    def _parse_chain(self) -> ast.Chain:
        chain_tok = self._advance()
        opening = self._advance()  # "("
        saved, self.no_in = self.no_in, False
        events = self._parse_expr()
        self._expect(",", EXPECTED_KEYWORD.format(keyword=",", after="the events"))
        order_tok = self._expect("ident", EXPECTED_ORDER_FIELD)
        self._expect(",", EXPECTED_KEYWORD.format(keyword=",", after=order_tok.text))
        bracket = self._expect("[", EXPECTED_KEYWORD.format(keyword="[", after=","))
        steps = [self._parse_chain_step()]
        while self.tokens[self.pos].kind == ",":
            self.pos += 1
            steps.append(self._parse_chain_step())
        self._close(bracket)
        self._close(opening)
        self.no_in = saved
        return ast.Chain(events, order_tok.text, tuple(steps), span=self._span(chain_tok.start))

    def _parse_chain_step(self) -> ast.ChainStep:
        label_tok = self.tokens[self.pos]
        if label_tok.kind != "ident" or self._peek(1).kind != ":":
            raise self._error(EXPECTED_CHAIN_STEP, label_tok)
        self.pos += 2
        if not self._at_word("what") or self._peek(1).kind != "(":
            raise self._error(EXPECTED_WHAT.format(label=label_tok.text), self.tokens[self.pos])
        self.item_depth += 1
        what = self._parse_clause(self._parse_expr)
        when: ast.TimeWindow | None = None
        count: int | None = None
        where: ast.Node | None = None
        if self._at_word("when") and self._peek(1).kind == "(":
            when = self._parse_clause(lambda: self._parse_time_window("WHEN("))
        if self._at_word("count") and self._peek(1).kind == "(":
            self.pos += 1
            opening = self._advance()
            number = self.tokens[self.pos]
            if number.kind != "number" or not isinstance(number.value, int):
                raise self._error(EXPECTED_COUNT, number)
            self.pos += 1
            self._close(opening)
            count = number.value  # type: ignore[assignment]
        if self._at_word("where") and self._peek(1).kind == "(":
            where = self._parse_clause(self._parse_expr)
        self.item_depth -= 1
        return ast.ChainStep(
            label_tok.text, what, when, count, where, span=self._span(label_tok.start)
        )

    def _parse_clause(self, parse: Callable[[], _N]) -> _N:
        """``WORD( … )`` of a chain step, the inside read by ``parse``."""
        self.pos += 1  # the clause word
        opening = self._advance()
        node = parse()
        self._close(opening)
        return node
