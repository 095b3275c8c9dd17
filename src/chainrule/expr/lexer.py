"""Split an expression into tokens, remembering the column of each one.

The parser never looks at characters, only at tokens, so every error about characters (an
unknown symbol, a malformed number) is raised here, and every token carries its 1-based column
so that later errors, even those found while evaluating, can point into the source text.
"""

import math
import re
from dataclasses import dataclass

from chainrule.expr.errors import ExprError

NUMBER, NAME, OPERATOR, LPAREN, RPAREN, END = "number", "name", "operator", "(", ")", "end"

OPERATORS = ("**", "+", "-", "*", "/", "^")  # "**" first: the longest symbol must win

# A decimal literal as Python writes it: digits may be grouped by single underscores (1_000),
# either side of the point may be empty but not both (5. and .5), then an optional exponent.
_DIGITS = r"\d(?:_?\d)*"
_NUMBER = re.compile(rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?", re.ASCII)
# What the lexer takes as one number before checking it: every character that could continue a
# literal, so that "1.2.3" or "1e" is reported whole instead of as "1.2" followed by ".3".
_NUMBER_LIKE = re.compile(r"[\d.][\w.]*(?:(?<=[eE])[+-][\d_.]*)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_]\w*", re.ASCII)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int
    value: float | None = None  # the number, for NUMBER tokens


def tokenize(text):
    """Return the list of tokens of ``text``, ending with an END token one column past the end."""
    tokens = []
    i = 0
    while i < len(text):
        char, column = text[i], i + 1
        if char.isspace():
            i += 1
        elif char in "0123456789.":
            literal = _number(text, i)
            if math.isinf(float(literal)):
                raise ExprError(f"number {literal!r} is too large for float64", column, text)
            tokens.append(Token(NUMBER, literal, column, float(literal)))
            i += len(literal)
        elif match := _NAME.match(text, i):
            tokens.append(Token(NAME, match.group(), column))
            i = match.end()
        elif char in "()":
            tokens.append(Token(LPAREN if char == "(" else RPAREN, char, column))
            i += 1
        else:
            symbol = next((op for op in OPERATORS if text.startswith(op, i)), None)
            if symbol is None:
                raise ExprError(f"unexpected character {char!r}", column, text)
            tokens.append(Token(OPERATOR, symbol, column))
            i += len(symbol)
    tokens.append(Token(END, "end of expression", len(text) + 1))
    return tokens


def _number(text, start):
    """Return the number literal at ``start``, or raise if the characters there are not one.

    A valid number directly followed by a name ("2x", "2pi") is returned alone: the parser then
    reports the missing operator, as it does for "2 x".
    """
    candidate = _NUMBER_LIKE.match(text, start).group()
    number = _NUMBER.match(candidate)
    if number:
        rest = candidate[number.end():]
        if not rest or (rest[0].isalpha() and rest[0] not in "eE"):
            return number.group()
    raise ExprError(f"malformed number {candidate!r}", start + 1, text)
