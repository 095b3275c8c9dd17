"""Dijkstra's shunting-yard algorithm: from infix tokens to a syntax tree, with two stacks.

Tokens are read once, left to right. Operands (numbers, names, finished subtrees) go on the
*operand stack*. An operator cannot be applied when it is read, because its right operand has not
been read yet, so it waits on the *operator stack*. It is applied ("reduced": popped with its
operands, its subtree pushed back as one operand) as soon as its right operand is known to be
complete, which happens when

* an operator arrives that binds more loosely (in ``a*b+c``, ``+`` completes ``a*b``), or that
  binds equally and groups to the left (in ``a-b-c``, the second ``-`` completes ``a-b``; ``^``
  groups to the right, so in ``a^b^c`` the first ``^`` waits for ``b^c``);
* a ``)`` arrives: everything back to the matching ``(`` is complete;
* the input ends: everything is complete.

Hence the operator stack always holds operators in order of increasing binding strength between
parentheses, and the tightest-binding operators are applied first.

The parser is always in one of two states, which is how it tells a unary minus from a binary one
and how it catches most mistakes, each at the column of the token where the state is violated:

* expecting an operand (at the start, after an operator or ``(``): a number, a name, a function
  call ``f(``, a ``(``, or a prefix ``-``/``+``;
* expecting an operator (after an operand or ``)``): a binary operator, ``)`` or the end.

A number or name where an operator is expected is implicit multiplication (``2x``, ``2 (x)``),
which is an error: it is ambiguous in general (``sin x y``, ``1/2x``) and a calculator that
guesses hides typos. A unary minus waits on the operator stack like a binary operator, with a
precedence between ``*`` and ``^`` (``-x^2`` is ``-(x^2)``; ``2^-1`` is ``2^(-1)``), but when it
arrives it reduces nothing, since it has no left operand.

Each node is created when its operator is reduced, that is after its operands: the list of nodes
in creation order is the post-order (reverse Polish) form of the expression, which is also the
order in which it can be evaluated.
"""

from dataclasses import dataclass

from chainrule.expr.errors import ExprError
from chainrule.expr.language import BINARY, CONSTANTS, FUNCTIONS, UNARY_MINUS_PRECEDENCE
from chainrule.expr.lexer import END, LPAREN, NAME, NUMBER, OPERATOR, RPAREN, Token, tokenize
from chainrule.expr.nodes import BinaryOp, Call, Negate, Number, Variable

_BINARY, _NEGATE, _PAREN, _CALL = "binary", "negate", "paren", "call"


@dataclass
class _Pending:
    """An operator-stack entry: an operator waiting for its right operand, or an open ``(``."""

    kind: str  # _BINARY, _NEGATE, _PAREN, or _CALL (the "(" of a function call)
    token: Token  # the operator or the "("
    function: Token | None = None  # for _CALL: the function name

    def binds_before(self, incoming):
        """Whether this entry must be reduced before the ``incoming`` binary operator is pushed."""
        if self.kind in (_PAREN, _CALL):  # only ")" or the end closes a parenthesis
            return False
        precedence = UNARY_MINUS_PRECEDENCE if self.kind == _NEGATE else BINARY[self.token.text].precedence
        return precedence > incoming.precedence or (
            precedence == incoming.precedence and not incoming.right_associative
        )


def parse_nodes(text):
    """Parse ``text`` and return all its syntax-tree nodes in post-order, the root last."""
    return _ShuntingYard(text).run()


class _ShuntingYard:
    def __init__(self, text):
        self.text = text
        self.operands = []  # finished subtrees
        self.operators = []  # _Pending entries, binding more tightly towards the top
        self.postorder = []  # every node, in creation order

    def run(self):
        tokens = tokenize(self.text)
        if tokens[0].kind == END:
            raise ExprError("empty expression", 1, self.text)
        expect_operand = True
        i = 0
        while True:
            token = tokens[i]
            i += 1
            if expect_operand:
                if token.kind == NAME and tokens[i].kind == LPAREN:
                    self.open_call(token, tokens[i])
                    i += 1
                elif token.kind in (NUMBER, NAME):
                    self.push(self.leaf(token))
                    expect_operand = False
                elif token.kind == LPAREN:
                    self.operators.append(_Pending(_PAREN, token))
                elif token.text == "-":
                    self.operators.append(_Pending(_NEGATE, token))
                elif token.text == "+":
                    pass  # a unary plus changes nothing, so it leaves no node
                else:
                    raise self.missing_operand(token, previous=tokens[i - 2] if i >= 2 else None)
            elif token.kind == OPERATOR:
                self.push_binary(token)
                expect_operand = True
            elif token.kind == RPAREN:
                self.close_parenthesis(token)
            elif token.kind == END:
                return self.finish()
            else:
                raise self.error(
                    f"missing operator before {token.text!r} "
                    "(implicit multiplication is not allowed: write '*')", token)

    def leaf(self, token):
        if token.kind == NUMBER:
            return Number(_literal_text(token.value), token.value, token.column)
        if token.text in CONSTANTS:
            return Number(token.text, CONSTANTS[token.text], token.column)
        if token.text in FUNCTIONS:
            raise self.error(f"function {token.text!r} needs its argument in parentheses", token)
        return Variable(token.text, token.column)

    def open_call(self, name, parenthesis):
        if name.text in CONSTANTS:
            raise self.error(f"{name.text!r} is a constant, not a function", name)
        if name.text not in FUNCTIONS:
            raise self.error(f"unknown function {name.text!r}", name)
        self.operators.append(_Pending(_CALL, parenthesis, function=name))

    def push_binary(self, token):
        incoming = BINARY[token.text]
        while self.operators and self.operators[-1].binds_before(incoming):
            self.reduce()
        self.operators.append(_Pending(_BINARY, token))

    def close_parenthesis(self, token):
        while self.operators and self.operators[-1].kind not in (_PAREN, _CALL):
            self.reduce()
        if not self.operators:
            raise self.error("unmatched ')'", token)
        opening = self.operators.pop()
        if opening.kind == _CALL:
            self.push(Call(opening.function.text, self.operands.pop(), opening.function.column))

    def finish(self):
        while self.operators:
            if self.operators[-1].kind in (_PAREN, _CALL):
                raise self.error("unclosed '('", self.operators[-1].token)
            self.reduce()
        return self.postorder

    def reduce(self):
        """Apply the operator on top of the stack to the operands on top of the operand stack."""
        pending = self.operators.pop()
        column = pending.token.column
        if pending.kind == _NEGATE:
            node = Negate(self.operands.pop(), column)
        else:
            right = self.operands.pop()
            left = self.operands.pop()
            node = BinaryOp(BINARY[pending.token.text].symbol, left, right, column)
        self.push(node)

    def push(self, node):
        self.operands.append(node)
        self.postorder.append(node)

    def missing_operand(self, token, previous):
        if token.kind == OPERATOR:
            return self.error(f"operator {token.text!r} is missing its left operand", token)
        if token.kind == END and previous is not None and previous.kind == OPERATOR:
            return self.error(f"operator {previous.text!r} is missing its right operand", previous)
        where = "the end" if token.kind == END else repr(token.text)
        return self.error(f"expected a number, a name or '(' before {where}", token)

    def error(self, message, token):
        return ExprError(message, token.column, self.text)


def _literal_text(value):
    """The shortest text that reads back as ``value``: ``2`` for ``2.0``, ``0.5`` for ``.5``."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
