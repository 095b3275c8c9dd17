"""Evaluate a parsed expression as a chainrule graph, and differentiate it both ways.

Evaluating walks the nodes in post-order (operands before the operation that uses them) and
applies chainrule tensor operations, so the result is an ordinary tensor on an ordinary autograd
graph: ``backward()`` differentiates it by reverse mode, and feeding dual numbers in instead of
plain tensors differentiates it by forward mode, with no derivative code in this package.
"""

from dataclasses import dataclass

from .._dtype import float64
from ..autograd import forward_ad as fwAD
from ..autograd import grad
from ..ops.creation import ones_like, tensor
from ..tensor import Tensor
from .errors import ExprError
from .language import BINARY, FUNCTIONS, format_value
from .nodes import Call, Negate, Number, Variable, to_text
from .parser import parse_nodes


def parse(text):
    """Parse ``text`` into an :class:`Expression`; raise :class:`ExprError` if it is malformed."""
    return Expression(text, parse_nodes(text))


class Expression:
    """A parsed expression; call it with values for its variables to get a chainrule tensor.

    >>> f = parse("ln(x1) + x1*x2 - sin(x2)")
    >>> f.variables
    ('x1', 'x2')
    >>> y = f(x1=2.0, x2=5.0)        # floats become float64 leaves with requires_grad=True
    >>> y.backward()                  # or f.gradient(x1=2.0, x2=5.0)

    Values may also be given positionally, in the order of ``variables``, and may be tensors of
    any shape: tensors are used as they are, and the expression is computed elementwise. Number
    literals and constants are float64 scalars; the result's dtype follows type promotion.
    """

    def __init__(self, text, nodes):
        self.text = text
        self._nodes = nodes  # post-order: operands before operations, the root last
        self._first_column = {}
        for node in nodes:  # leaves are created as they are read, so in the order written
            if isinstance(node, Variable):
                self._first_column.setdefault(node.name, node.column)
        self.variables = tuple(self._first_column)

    def __str__(self):
        return to_text(self._nodes)

    def __repr__(self):
        return f"parse({str(self)!r})"

    def format(self, full_parentheses=False):
        """The expression as text; with ``full_parentheses``, one pair per operation."""
        return to_text(self._nodes, full_parentheses)

    def __call__(self, /, *args, **values):
        return self._evaluate(self._bind(args, values))[self._nodes[-1]]

    def gradient(self, /, *args, **values):
        """The partial derivatives by reverse mode: one backward pass gives all of them.

        Returns ``{name: tensor}``. Each partial has its variable's shape: for tensor inputs it
        is the gradient of the sum of the elementwise results (the elementwise derivative when
        all inputs have the same shape). Tensors that do not require grad are differentiated
        through a detached copy that does.
        """
        inputs = self._leaves(args, values)
        if not inputs:
            return {}
        output = self._evaluate(inputs)[self._nodes[-1]]
        partials = grad(output, list(inputs.values()), grad_outputs=ones_like(output))
        return dict(zip(inputs, partials))

    def forward_gradient(self, /, *args, **values):
        """The partial derivatives by forward mode, with dual numbers: one pass per variable.

        Each pass seeds one variable with tangent 1 and leaves the others plain (tangent 0);
        the tangent of the result is then the partial derivative with respect to that variable.
        Returns ``{name: tensor}``, each of the result's shape.
        """
        inputs = {name: value.detach() for name, value in self._bind(args, values).items()}
        partials = {}
        with fwAD.dual_level():
            for name, value in inputs.items():
                seeded = dict(inputs, **{name: fwAD.make_dual(value, ones_like(value))})
                output = self._evaluate(seeded)[self._nodes[-1]]
                partials[name] = fwAD.unpack_dual(output).tangent
        return partials

    def trace(self, /, *args, **values):
        """The evaluation as a Wengert list, with each step's value and adjoint: a :class:`Trace`.

        Inputs are numbered v(1-n) .. v0 and operations v1, v2, ... in evaluation order (the
        numbering of Griewank and Walther's *Evaluating Derivatives*); number literals and
        constants are written inline. The adjoint of a step is df/d(step), computed by the
        autograd engine in one backward pass over the same graph.
        """
        inputs = self._leaves(args, values)
        node_values = self._evaluate(inputs)
        # A variable is one step however often it occurs, so inputs are keyed by name, operations
        # by node.
        ids = {name: f"v{i + 1 - len(self.variables)}" for i, name in enumerate(self.variables)}
        steps = [Step(ids[name], "input", (name,), value) for name, value in inputs.items()]
        for node in self._nodes:
            if isinstance(node, (Number, Variable)):
                continue
            ids[node] = f"v{len(steps) + 1 - len(self.variables)}"
            operands = tuple(_operand_text(child, ids) for child in node.children)
            steps.append(Step(ids[node], _op_name(node), operands, node_values[node]))
        output = node_values[self._nodes[-1]]
        if output.requires_grad:
            differentiable = [step for step in steps if step.value.requires_grad]
            adjoints = grad(output, [step.value for step in differentiable],
                                        grad_outputs=ones_like(output))
            for step, adjoint in zip(differentiable, adjoints):
                step.adjoint = adjoint
        return Trace(steps)

    def _bind(self, args, values):
        """Check that every variable has exactly one value; return ``{name: tensor}`` in order."""
        if len(args) > len(self.variables):
            raise ExprError(f"{len(args)} values given positionally but the expression has "
                            f"{len(self.variables)} variables {self.variables}")
        for name, value in zip(self.variables, args):
            if name in values:
                raise ExprError(f"variable {name!r} is given both positionally and by name")
            values[name] = value
        for name in values:
            if name not in self._first_column:
                known = ", ".join(self.variables) or "none"
                raise ExprError(f"{name!r} is not a variable of {self.text!r} (its variables: {known})")
        for name in self.variables:
            if name not in values:
                raise ExprError(f"no value for variable {name!r}", self._first_column[name], self.text)
        return {name: _as_tensor(values[name]) for name in self.variables}

    def _leaves(self, args, values):
        """Like ``_bind``, but every input requires grad, so that it can be differentiated."""
        return {name: value if value.requires_grad else value.detach().requires_grad_()
                for name, value in self._bind(args, values).items()}

    def _evaluate(self, inputs):
        """Compute every node, operands first; return ``{node: tensor}``."""
        value = {}
        for node in self._nodes:
            if isinstance(node, Number):
                value[node] = tensor(node.value, dtype=float64)
            elif isinstance(node, Variable):
                value[node] = inputs[node.name]
            elif isinstance(node, Negate):
                value[node] = -value[node.operand]
            elif isinstance(node, Call):
                function = FUNCTIONS[node.function]
                argument = value[node.argument]
                self._check(function.check(_array(argument)), node)
                value[node] = function.apply(argument)
            else:  # BinaryOp
                operator = BINARY[node.op]
                left, right = value[node.left], value[node.right]
                if operator.check is not None:
                    self._check(operator.check(_array(left), _array(right)), node)
                value[node] = operator.apply(left, right)
        return value

    def _check(self, problem, node):
        if problem is not None:
            raise ExprError(problem, node.column, self.text)


@dataclass
class Step:
    """One line of a :class:`Trace`: ``id = op(inputs)``, its value, and df/d(id)."""

    id: str
    op: str  # "input" for the variables, else an operator symbol, "neg" or a function name
    inputs: tuple  # ids of earlier steps, a variable name for inputs, constants as written
    value: object  # tensor
    adjoint: object = None  # tensor; None for a step that no input reaches (sin(2)): backward skips it


@dataclass
class Trace:
    """The forward evaluation trace and the backward adjoints of an expression (see ``trace``)."""

    steps: list

    def __str__(self):
        forward = [("id", "op", "inputs", "value")] + [
            (s.id, s.op, ", ".join(s.inputs), _show(s.value)) for s in self.steps]
        backward = [("id", "adjoint")] + [
            (s.id, "-" if s.adjoint is None else _show(s.adjoint)) for s in reversed(self.steps)]
        return "\n".join(
            ["forward trace (Wengert list, evaluation order):", *_table(forward),
             "backward trace (adjoints df/dv, reverse order; '-': a constant, which backward skips):",
             *_table(backward)])


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def _op_name(node):
    if isinstance(node, Negate):
        return "neg"
    return node.function if isinstance(node, Call) else node.op


def _operand_text(node, ids):
    if isinstance(node, Number):
        return node.text
    return ids[node.name] if isinstance(node, Variable) else ids[node]


def _as_tensor(value):
    return value if isinstance(value, Tensor) else tensor(value, dtype=float64, requires_grad=True)


def _array(tensor):
    return tensor.detach().numpy()


def _show(tensor):
    array = _array(tensor)
    return format_value(array.item()) if array.size == 1 else str(array)
