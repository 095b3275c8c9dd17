"""The calculator's language in one table: operators, functions and constants.

The parser and the printer read precedence from here; the evaluator reads what each symbol
computes, written as chainrule tensor operations (so reverse and forward mode both differentiate
it without any code here), and the domain each one needs. Domains are checked on the argument
values *before* computing, so that ``ln(-1)`` is an error naming ``ln`` and its column instead
of a NaN that surfaces three operations later.

``log`` is the natural logarithm, as in numpy, PyTorch and most programming languages (``ln`` is
the same function under the mathematicians' name); ``log10`` and ``log2`` are the others.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def format_value(x):
    """Write a float with 15 significant digits, the most that float64 always carries exactly.

    Every printed digit is meaningful (DBL_DIG = 15), while the noise in a 16th or 17th digit
    (0.1 + 0.2 = 0.30000000000000004) is not shown, so that forward and reverse mode, which round
    differently, print the same number. ``-0`` is written ``0``.
    """
    return f"{float(x) + 0.0:.15g}"


@dataclass(frozen=True)
class Operator:
    """A binary operator: how tightly it binds, which way it groups, what it computes."""

    symbol: str
    precedence: int
    right_associative: bool
    apply: Callable
    check: Callable | None = None  # (a, b) numpy arrays -> error message, or None if defined


@dataclass(frozen=True)
class Function:
    """A function of one argument, with the domain it is defined on (None: everywhere)."""

    name: str
    apply: Callable
    domain: Callable | None = None  # numpy array -> boolean array, True where defined
    domain_text: str = ""

    def check(self, x):
        if self.domain is None:
            return None
        outside = x[~self.domain(x)]
        if outside.size == 0:
            return None
        return f"{self.name}({format_value(outside[0])}) is undefined: {self.name} needs {self.domain_text}"


def _check_division(a, b):
    return "division by zero" if np.any(b == 0) else None


def _check_power(a, b):
    a, b = np.broadcast_arrays(a, b)
    zero_to_negative = (a == 0) & (b < 0)
    if zero_to_negative.any():
        return f"0^{format_value(b[zero_to_negative][0])} is undefined (division by zero)"
    negative_to_fraction = (a < 0) & (b != np.floor(b))
    if negative_to_fraction.any():
        base, exponent = a[negative_to_fraction][0], b[negative_to_fraction][0]
        return (f"({format_value(base)})^{format_value(exponent)} is undefined: "
                "a negative base needs an integer exponent")
    return None


# Precedence from loosest to tightest. Unary minus sits between "*" and "^", so that
# -x^2 = -(x^2) as in mathematics and Python, yet 2*-3 and 2^-1 still parse.
BINARY = {
    "+": Operator("+", 1, False, lambda a, b: a + b),
    "-": Operator("-", 1, False, lambda a, b: a - b),
    "*": Operator("*", 2, False, lambda a, b: a * b),
    "/": Operator("/", 2, False, lambda a, b: a / b, _check_division),
    "^": Operator("^", 4, True, lambda a, b: a**b, _check_power),
}
BINARY["**"] = BINARY["^"]  # Python's spelling of the same operator; printed as "^"

UNARY_MINUS_PRECEDENCE = 3


def _positive(x):
    return x > 0


_LN10, _LN2 = math.log(10.0), math.log(2.0)

FUNCTIONS = {
    f.name: f
    for f in [
        Function("sin", lambda x: x.sin()),
        Function("cos", lambda x: x.cos()),
        Function("tan", lambda x: x.tan()),
        Function("exp", lambda x: x.exp()),
        Function("ln", lambda x: x.log(), _positive, "x > 0"),
        Function("log", lambda x: x.log(), _positive, "x > 0"),
        Function("log10", lambda x: x.log() / _LN10, _positive, "x > 0"),
        Function("log2", lambda x: x.log() / _LN2, _positive, "x > 0"),
        Function("sqrt", lambda x: x.sqrt(), lambda x: x >= 0, "x >= 0"),
        Function("tanh", lambda x: x.tanh()),
        Function("sigmoid", lambda x: x.sigmoid()),
        Function("relu", lambda x: x.relu()),
        Function("abs", lambda x: x.abs()),
    ]
}

CONSTANTS = {"pi": math.pi, "e": math.e}
