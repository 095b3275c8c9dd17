"""``chainrule expr``: evaluate a formula and print its partial derivatives."""

import argparse
import sys

import numpy as np

import chainrule as cr
from chainrule.expr.calculator import parse
from chainrule.expr.errors import ExprError
from chainrule.expr.language import format_value

_DESCRIPTION = """\
Evaluate a formula as a chainrule graph and print its partial derivatives.

The formula may use + - * / and ^ (or **, right-associative), unary minus (-x^2 is -(x^2)),
parentheses, the constants pi and e, and the functions sin cos tan exp ln log log10 log2 sqrt
tanh sigmoid relu abs; log is the natural logarithm, as in numpy and PyTorch. Any other name is
a variable. Implicit multiplication (2x) is an error: write 2*x.
"""

_EPILOG = """\
output:
  f = VALUE                  the value, then one line per variable, in order of appearance:
  df/dNAME = VALUE           the partial derivative, by reverse mode (one backward pass)
  Values have 15 significant digits (all that float64 always carries exactly).
  --forward adds a block with the same partials by forward mode and checks that they agree.

values:
  --at takes NAME=VALUE pairs; a VALUE may be any formula without variables: x=-1.5 y=pi/4.

exit status:
  0 ok; 1 forward and reverse mode disagree; 2 bad expression or values (one "error:" line
  on stderr, then the expression with a ^ under the column at fault).

An expression may start with a minus: chainrule expr "-x^2" --at x=3 (any argument that starts
with "-" and is not one of the options above is the expression).

example:
  chainrule expr "ln(x1) + x1*x2 - sin(x2)" --at x1=2 x2=5
"""

# Forward and reverse mode add the same terms in different orders, so they may differ in the
# last bits; anything beyond this is a bug in a derivative rule.
_AGREE_RTOL, _AGREE_ATOL = 1e-9, 1e-12
_SHORT_OPTIONS = ("-h",)
_LONG_OPTIONS = ("--help", "--at", "--forward", "--trace", "--graph")


def register(subparsers):
    parser = subparsers.add_parser(
        "expr",
        help="evaluate a formula and its partial derivatives",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("expression", metavar="EXPR", help='the formula, e.g. "ln(x1) + x1*x2 - sin(x2)"')
    parser.add_argument("--at", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="the value of each variable")
    parser.add_argument("--forward", action="store_true",
                        help="also compute the partials by forward mode (dual numbers) and compare")
    parser.add_argument("--trace", action="store_true",
                        help="print the forward evaluation trace and the backward adjoints")
    parser.add_argument("--graph", metavar="FILE",
                        help="draw the graph with values and gradients (FILE.svg, .png, .pdf or .dot)")
    parser.set_defaults(func=run)


def prepare_argv(argv):
    """argparse reads an expression such as ``-x^2`` as an unknown option; move it after ``--``.

    The first argument that starts with a minus and is neither an option of ``expr`` nor an
    abbreviation of one is the expression. After an explicit ``--`` nothing is rewritten.
    """
    if "--" in argv:
        return argv
    for i, arg in enumerate(argv):
        if arg.startswith("-") and not _is_option(arg):
            return [*argv[:i], *argv[i + 1:], "--", arg]
    return argv


def _is_option(arg):
    name = arg.split("=", 1)[0]
    return name in _SHORT_OPTIONS or (name.startswith("--") and any(o.startswith(name) for o in _LONG_OPTIONS))


def run(args):
    """Run the command; bad input is reported in one line plus a caret, never a traceback."""
    try:
        return _run(args)
    except ExprError as error:
        print(f"error: {error}", file=sys.stderr)
        if error.column is not None:
            print(error.caret(), file=sys.stderr)
        return 2


def _run(args):
    expression = parse(args.expression)
    values = _values(args.at)
    inputs = {name: cr.tensor(value, dtype=cr.float64, requires_grad=True) for name, value in values.items()}
    output = expression(**inputs)
    if output.requires_grad:
        output.backward(retain_graph=bool(args.graph))  # the picture shows every node's gradient
    print(f"f = {format_value(output.item())}")
    reverse = {name: inputs[name].grad.item() for name in expression.variables}
    for name, partial in reverse.items():
        print(f"df/d{name} = {format_value(partial)}")

    status = _compare_forward(expression, values, reverse) if args.forward else 0
    if args.trace:
        print(f"parsed as: {expression.format(full_parentheses=True)}")
        print(expression.trace(**values))
    if args.graph:
        try:
            cr.viz.save(output, args.graph, params={**inputs, "f": output}, adjoints=True)
        except (ImportError, cr.viz.GraphvizNotFoundError) as exc:
            print(f"error: cannot draw the graph: {exc}", file=sys.stderr)
            return 2
        print(f"graph written to {args.graph}")
    return status


def _values(assignments):
    """Read ``--at NAME=VALUE ...`` into ``{name: float}``."""
    values = {}
    for item in assignments:
        name, equals, text = item.partition("=")
        if not equals or not name.isidentifier():
            raise ExprError(f"--at expects NAME=VALUE, got {item!r}")
        if name in values:
            raise ExprError(f"--at gives a value for {name!r} twice")
        values[name] = _constant(name, text, item)
    return values


def _constant(name, text, item):
    """Evaluate VALUE, which may be any formula without variables (2, -1.5, pi/4, sqrt(2))."""
    offset = len(name) + 1  # errors point into "NAME=VALUE"
    try:
        return parse(text)().item()  # a variable in VALUE is reported as one without a value
    except ExprError as error:
        column = None if error.column is None else error.column + offset
        raise ExprError(f"bad value for {name}: {error.message}", column, item) from None


def _compare_forward(expression, values, reverse):
    """Print the partials by forward mode; return 1 if any disagrees with reverse mode."""
    forward = {name: tangent.item() for name, tangent in expression.forward_gradient(**values).items()}
    print("forward mode (dual numbers, one pass per variable):")
    for name, partial in forward.items():
        print(f"df/d{name} = {format_value(partial)}")
    disagree = [name for name in forward if not np.isclose(
        forward[name], reverse[name], rtol=_AGREE_RTOL, atol=_AGREE_ATOL, equal_nan=True)]
    for name in disagree:
        print(f"MISMATCH df/d{name}: forward mode {format_value(forward[name])}, "
              f"reverse mode {format_value(reverse[name])}")
    if disagree:
        return 1
    print("forward and reverse mode agree")
    return 0
