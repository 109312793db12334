"""The PQL syntax tree: frozen dataclasses, one per construct of spec/pql.md §6.

Design notes
- Nodes are immutable and compare by value; ``span`` (``(start, end)`` character offsets into the
  parsed text, end exclusive) is carried for error messages but ignored by ``==`` and ``hash``.
  Nodes built by ``from_json`` or by hand have ``span=None``. ``pql.errors.position`` turns an
  offset into a 1-based (line, column).
- A path is a chain of ``Field`` nodes. ``Field(name, obj=None)`` looks ``name`` up in the
  *implicit context*: the profile at the top level, the current item inside a filter ``A[P]``, an
  item-context method argument (``.exists(P)``, ``.sum(e)``, ``.groupBy(e)``, … see
  ``pql.functions.Function.item_args``) and a chain step's ``WHAT``/``WHEN``/``WHERE``.
  ``xEvent`` is an ordinary ``Field("xEvent")``; the evaluator gives that name its meaning.
- ``$1.x`` at the top level is the same as ``x`` and is parsed as ``Field("x")``; ``$n`` elsewhere
  is ``Param(n)``. Names bound by ``select``/``exists``/``forall``/``sum … over``/``let``/lambdas
  are ``Var`` nodes, not fields.
- Method calls keep the receiver apart from the arguments: ``a.contains("x", false)`` is
  ``Method("contains", Field("a"), (Literal("x"), Literal(False)))``. The infix form
  ``a matches "re"`` is parsed as ``Method("matches", a, (re,))``; ``!(P)`` and ``not P`` are both
  ``Not(P)``.
- Time units are stored lower-cased as written (``"days"``, ``"millenium"``); normalise them with
  ``pql.tokens.TIME_UNITS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import ClassVar

Span = tuple[int, int]
LiteralValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every syntax-tree node."""

    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    _child_fields: ClassVar[dict[type, tuple[str, ...]]] = {}

    def children(self) -> Iterator[Node]:
        """The direct child nodes, in source order."""
        cls = type(self)
        names = Node._child_fields.get(cls)
        if names is None:
            names = tuple(f.name for f in fields(cls) if f.name != "span")
            Node._child_fields[cls] = names
        for name in names:
            yield from _nodes_in(getattr(self, name))

    def walk(self) -> Iterator[Node]:
        """This node and all its descendants, depth first, parents before children."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children())))


def _nodes_in(value: object) -> Iterator[Node]:
    if isinstance(value, Node):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _nodes_in(item)


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all its descendants, depth first."""
    return node.walk()


# --- literals ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant: string, integer, double or boolean. ``literal_type`` is the pql/json name
    (``"String"``, ``"Integer"``, ``"Number"``, ``"Boolean"``) and keeps ``1``, ``1.0`` and
    ``true`` apart under ``==``."""

    value: LiteralValue
    literal_type: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "literal_type", literal_type_of(self.value))


def literal_type_of(value: LiteralValue) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    raise TypeError(f"not a PQL literal value: {value!r}")


@dataclass(frozen=True, slots=True)
class ListLiteral(Node):
    """``[v1, v2, …]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ObjectLiteral(Node):
    """``{"key": expr, …}`` (computed-attribute examples). Keys keep their order."""

    entries: tuple[tuple[str, Node], ...]


# --- references --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field(Node):
    """``obj.name``; with ``obj=None`` the field of the implicit context (see module notes)."""

    name: str
    obj: Node | None = None


@dataclass(frozen=True, slots=True)
class Param(Node):
    """``$n``: the n-th parameter of the query (``$1`` = the profile)."""

    position: int


@dataclass(frozen=True, slots=True)
class Var(Node):
    """A reference to a variable bound by select/exists/forall/aggregation/let or a lambda."""

    name: str


@dataclass(frozen=True, slots=True)
class Up(Node):
    """``^`` (levels=1), ``^^`` (levels=2): the context that many filter levels up; always the
    ``obj`` of a ``Field`` (``^^.person.gender``)."""

    levels: int


# --- operators ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """``left op right`` for ``= != < <= > >=``, ``like``, ``in``, ``notIn``, ``+ - * / %``
    (``op`` spelled as in ``pql.tokens.BINARY_OPS``, e.g. ``"notIn"``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Negate(Node):
    """Unary minus on a non-literal (``-x``); ``-3`` is ``Literal(-3)``."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``not(P)`` / ``!(P)`` / ``not P``."""

    operand: Node


@dataclass(frozen=True, slots=True)
class And(Node):
    """``a and b and …`` (n-ary, at least two operands)."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    """``a or b or …`` (n-ary, at least two operands)."""

    operands: tuple[Node, ...]


# --- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call ``name(args)``: ``if``, ``date``, ``currentMonth``, ``inSegment``,
    ``mapEntry``, … (``pql.functions.FUNCTIONS`` with kind ``"function"``)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Method(Node):
    """A method call ``receiver.name(args)``: string, array, map, aggregation and date methods
    (``pql.functions.FUNCTIONS`` with kind ``"method"``)."""

    name: str
    receiver: Node
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Filter(Node):
    """``source[predicate]``: the items of ``source`` for which ``predicate`` holds, the item
    being the implicit context inside ``predicate``."""

    source: Node
    predicate: Node


@dataclass(frozen=True, slots=True)
class Lambda(Node):
    """``(A, B) => body``; also the whole query in ``(Profile) => …`` form."""

    params: tuple[str, ...]
    body: Node


# --- time --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeWord(Node):
    """``now``, ``today``, ``yesterday`` or ``tomorrow`` (only inside occurs/WHEN tails)."""

    word: str


@dataclass(frozen=True, slots=True)
class TimePeriod(Node):
    """``this|last|next <unit>``: a calendar period (only inside occurs/WHEN tails)."""

    relative: str
    unit: str


@dataclass(frozen=True, slots=True)
class TimeWindow(Node):
    """The tail of ``occurs`` and the content of ``WHEN(…)``. ``relation`` is one of:

    - ``"on"``: ``[on] anchor``
    - ``"before"``/``"after"``/``"from"`` without ``op``: ``before anchor``
    - ``"before"``/``"after"``/``"from"`` with ``op``, ``amount``, ``unit``:
      ``< 7 days before anchor``
    - ``"between"``: ``between anchor and end``

    ``anchor``/``end`` are ``TimeWord``, ``TimePeriod`` or any expression (``date(…)``,
    ``Y.timestamp``)."""

    relation: str
    anchor: Node
    end: Node | None = None
    op: str | None = None
    amount: int | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Occurs(Node):
    """``subject occurs <window>``."""

    subject: Node
    window: TimeWindow


# --- variables and quantifiers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VarDecl(Node):
    """One ``Name from source [where condition]`` clause (``:`` is the same as ``where``)."""

    name: str
    source: Node
    where: Node | None = None


@dataclass(frozen=True, slots=True)
class Select(Node):
    """``select V1 from A1 [where P1], V2 from A2 …``."""

    variables: tuple[VarDecl, ...]


@dataclass(frozen=True, slots=True)
class Quantified(Node):
    """``exists V from A where P, …`` or ``forall …``; ``quantifier`` is ``"exists"`` or
    ``"forall"``."""

    quantifier: str
    variables: tuple[VarDecl, ...]


@dataclass(frozen=True, slots=True)
class Aggregate(Node):
    """Keyword-form aggregation: ``sum <expr> over V from A where P, …`` (``function`` is
    ``sum``/``average``/``min``/``max``); ``expr=None`` for ``sum X from ints where X > 0``."""

    function: str
    expr: Node | None
    variables: tuple[VarDecl, ...]


@dataclass(frozen=True, slots=True)
class Let(Node):
    """``let name = value in body``."""

    name: str
    value: Node
    body: Node


# --- chain -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainStep(Node):
    """``Label: WHAT(P) [WHEN(window)] [COUNT(n)] [WHERE(Q)]``; the event is the implicit
    context inside ``what``, ``when`` and ``where``."""

    label: str
    what: Node
    when: TimeWindow | None = None
    count: int | None = None
    where: Node | None = None


@dataclass(frozen=True, slots=True)
class Chain(Node):
    """``chain(events, order_by, [steps…])``: ordered events (``chain(xEvent, timestamp, […])``)."""

    events: Node
    order_by: str
    steps: tuple[ChainStep, ...]
