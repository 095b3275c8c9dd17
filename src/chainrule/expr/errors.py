"""The one exception the expression calculator raises for bad input."""


class ExprError(ValueError):
    """A bad expression or bad values, with the 1-based column where the problem is.

    ``message`` says what is wrong, ``column`` where (``None`` when no single place in the
    expression is to blame, e.g. a value given for a name the expression does not use), ``text``
    is the expression itself, so that :meth:`caret` can point at the column.
    """

    def __init__(self, message, column=None, text=None):
        self.message = message
        self.column = column
        self.text = text
        super().__init__(message if column is None else f"{message} at column {column}")

    def caret(self):
        """Return the expression and, below it, a ``^`` under the column (two lines).

        Tabs before the column are copied so that the caret lines up in a terminal.
        """
        if self.column is None or self.text is None:
            return ""
        indent = "".join(c if c == "\t" else " " for c in self.text[: self.column - 1])
        return f"{self.text}\n{indent}^"
