"""A calculator for formulas, evaluated as chainrule graphs and differentiated both ways.

>>> import chainrule.expr
>>> f = chainrule.expr.parse("ln(x1) + x1*x2 - sin(x2)")
>>> f.variables
('x1', 'x2')
>>> f(x1=2.0, x2=5.0).item()
11.652071455223084

The language: numbers (``1``, ``1.5``, ``.5``, ``5.``, ``1e-3``, ``2.5E+4``, ``1_000``), the
constants ``pi`` and ``e``, variables (any other name), ``+ - * /``, powers ``^`` or ``**``
(right-associative: ``2^3^2`` is 512), unary minus (binding looser than powers: ``-x^2`` is
``-(x^2)``, and ``2^-1`` is 0.5), parentheses, and the functions ``sin cos tan exp ln log log10
log2 sqrt tanh sigmoid relu abs``. ``log`` is the natural logarithm, as in numpy and PyTorch.
Implicit multiplication (``2x``) is an error. The command line is ``chainrule expr``.
"""

from chainrule.expr.calculator import Expression, Step, Trace, parse
from chainrule.expr.errors import ExprError
from chainrule.expr.language import CONSTANTS, FUNCTIONS

__all__ = ["parse", "Expression", "ExprError", "Trace", "Step", "FUNCTIONS", "CONSTANTS"]
