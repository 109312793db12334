"""Errors of the PQL package. Errors are data: the editor underlines ``line``/``column`` spans."""

from __future__ import annotations


class PQLError(Exception):
    """Base class of everything the ``pql`` package raises about a definition."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PQLSyntaxError(PQLError):
    """A definition that cannot be read, with the position of the offending text.

    ``line`` and ``column`` are 1-based and count characters (code points), ``end_column`` is
    **exclusive** and on the same line: the span ``column <= c < end_column`` of line ``line``
    (a span reaching past the end of its line is cut at the line end; at the end of the text,
    ``end_column == column + 1`` points just after the last character). ``str(error)`` is
    ``"<message> (line L, column C)"``; ``highlighted`` repeats the line with carets.
    """

    def __init__(
        self,
        message: str,
        line: int,
        column: int,
        end_column: int | None = None,
        *,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        if end_column is None or end_column <= column:
            end_column = column + 1
        self.end_column = end_column
        self.source = source

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (
            _rebuild_syntax_error,
            (self.message, self.line, self.column, self.end_column, self.source),
        )

    @property
    def highlighted(self) -> str:
        """The offending line followed by a line of carets under the span."""
        if self.source is None:
            return str(self)
        lines = self.source.split("\n")
        text = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        carets = " " * (self.column - 1) + "^" * (self.end_column - self.column)
        return f"{text}\n{carets}"

    @classmethod
    def at(cls, message: str, source: str, start: int, end: int | None = None) -> PQLSyntaxError:
        """An error for the character offsets ``[start, end)`` of ``source``."""
        line, column = position(source, start)
        if end is None or end <= start:
            end_column = column + 1
        else:
            line_end = source.find("\n", start)
            if line_end != -1 and end > line_end:
                end = max(line_end, start + 1)
            end_column = column + (end - start)
        return cls(message, line, column, end_column, source=source)


def _rebuild_syntax_error(
    message: str, line: int, column: int, end_column: int, source: str | None
) -> PQLSyntaxError:
    return PQLSyntaxError(message, line, column, end_column, source=source)


class PQLJSONError(PQLError):
    """A pql/json tree that is not valid; ``path`` is a JSON pointer to the offending node."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path or "/"

    def __str__(self) -> str:
        return f"{self.message} (at {self.path})"


def position(source: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of character ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column
