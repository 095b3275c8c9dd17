"""The syntax tree of an expression, and how to write it back as text.

Every node keeps the column of the token it came from, so that errors found while evaluating
(division by zero, ``ln(-1)``) point at the operator or function that failed.
Nodes compare by identity: two occurrences of ``x`` are two nodes, one variable.
"""

from dataclasses import dataclass

from chainrule.expr.language import BINARY, UNARY_MINUS_PRECEDENCE


@dataclass(eq=False)
class Number:
    """A literal (``2.5``) or a named constant (``pi``); ``text`` is how it is printed."""

    text: str
    value: float
    column: int
    children = ()


@dataclass(eq=False)
class Variable:
    name: str
    column: int
    children = ()


@dataclass(eq=False)
class Negate:
    operand: object
    column: int

    @property
    def children(self):
        return (self.operand,)


@dataclass(eq=False)
class BinaryOp:
    op: str  # a key of language.BINARY, "**" already spelled "^"
    left: object
    right: object
    column: int

    @property
    def children(self):
        return (self.left, self.right)


@dataclass(eq=False)
class Call:
    function: str  # a key of language.FUNCTIONS
    argument: object
    column: int

    @property
    def children(self):
        return (self.argument,)


_ATOM = float("inf")  # numbers, names and calls never need parentheses around them


def _precedence(node):
    if isinstance(node, BinaryOp):
        return BINARY[node.op].precedence
    if isinstance(node, Negate):
        return UNARY_MINUS_PRECEDENCE
    return _ATOM


def to_text(postorder, full_parentheses=False):
    """Write the expression whose nodes are ``postorder`` (children before parents, root last).

    By default only the parentheses that the precedence rules need are written, so the text
    parses back to the same tree; with ``full_parentheses`` every operation is wrapped, which
    shows how the precedence rules grouped the input (``-x^2`` is ``(-(x^2))``).
    Iterative over the post-order list, so a very long sum does not hit Python's recursion limit.
    """
    text = {}
    for node in postorder:
        if isinstance(node, Number):
            text[node] = node.text
        elif isinstance(node, Variable):
            text[node] = node.name
        elif isinstance(node, Call):
            already_wrapped = full_parentheses and isinstance(node.argument, (Negate, BinaryOp))
            argument = text[node.argument]
            text[node] = f"{node.function}{argument}" if already_wrapped else f"{node.function}({argument})"
        elif isinstance(node, Negate):
            if full_parentheses:
                text[node] = f"(-{text[node.operand]})"
            else:
                needed = _precedence(node.operand) < UNARY_MINUS_PRECEDENCE  # -(a+b), -(a*b)
                text[node] = f"-{_wrap(node.operand, text, needed)}"
        elif full_parentheses:
            text[node] = f"({_join(node, text[node.left], text[node.right])})"
        else:
            text[node] = _binary_text(node, text)
    return text[postorder[-1]]


def _wrap(node, text, needed):
    return f"({text[node]})" if needed else text[node]


def _join(node, left, right):
    return f"{left}^{right}" if node.op == "^" else f"{left} {node.op} {right}"


def _binary_text(node, text):
    """Write a binary operation with the parentheses its children need, and no others."""
    operator = BINARY[node.op]
    # A child binding more loosely than its parent needs parentheses; so does one binding as
    # tightly but on the side the operator does not group towards: (a-b)-c is a-b-c, a-(b-c)
    # is not; a^(b^c) is a^b^c, (a^b)^c is not.
    left_precedence, right_precedence = _precedence(node.left), _precedence(node.right)
    left = _wrap(node.left, text, left_precedence < operator.precedence or (
        left_precedence == operator.precedence and operator.right_associative))
    # A unary minus on the right never needs them: the parser reads 2*-3 and 2^-1 as meant.
    right = _wrap(node.right, text, not isinstance(node.right, Negate) and (
        right_precedence < operator.precedence
        or (right_precedence == operator.precedence and not operator.right_associative)))
    return _join(node, left, right)
