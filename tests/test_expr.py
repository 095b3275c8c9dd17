"""Tests of the expression calculator: chainrule.expr and ``chainrule expr``."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.expr
from chainrule.__main__ import main
from chainrule.expr import ExprError, parse

SRC = Path(__file__).resolve().parents[1] / "src"

EXAMPLE = "ln(x1)+x1*x2-sin(x2)"
IMPLICIT = " (implicit multiplication is not allowed: write '*')"


def value(text, **values):
    return parse(text)(**values).item()


# --- the worked example: f(x1, x2) = ln(x1) + x1*x2 - sin(x2) at (2, 5) -------------------------

X1, X2 = 2.0, 5.0
F = math.log(X1) + X1 * X2 - math.sin(X2)
DF_DX1 = 1 / X1 + X2
DF_DX2 = X1 - math.cos(X2)


def test_example_through_the_documented_api():
    f = cr.expr.parse(EXAMPLE)
    assert f.variables == ("x1", "x2")
    x1 = cr.tensor(X1, dtype=cr.float64, requires_grad=True)
    x2 = cr.tensor(X2, dtype=cr.float64, requires_grad=True)
    y = f(x1=x1, x2=x2)
    assert y.dtype == cr.float64
    assert y.item() == pytest.approx(F, rel=1e-15)
    y.backward()
    assert x1.grad.item() == pytest.approx(DF_DX1, rel=1e-15)
    assert x2.grad.item() == pytest.approx(DF_DX2, rel=1e-15)


def test_example_floats_become_leaves_that_backward_reaches():
    y = parse(EXAMPLE)(x1=X1, x2=X2)
    assert y.requires_grad and y.grad_fn is not None
    assert y.item() == pytest.approx(F, rel=1e-15)
    y.backward()


@pytest.mark.parametrize("mode", ["gradient", "forward_gradient"])
def test_example_partials_by_reverse_and_forward_mode(mode):
    partials = getattr(parse(EXAMPLE), mode)(x1=X1, x2=X2)
    assert list(partials) == ["x1", "x2"]
    assert partials["x1"].item() == pytest.approx(DF_DX1, rel=1e-14)
    assert partials["x2"].item() == pytest.approx(DF_DX2, rel=1e-14)


def test_positional_values_follow_the_order_of_variables():
    assert parse("a - b")(5.0, 2.0).item() == 3.0
    assert parse("a - b")(5.0, b=2.0).item() == 3.0


def test_variables_in_order_of_first_appearance():
    assert parse("b + a*b + c^a").variables == ("b", "a", "c")
    assert parse("sin(pi) + e").variables == ()


def test_expression_without_variables():
    f = parse("2*pi")
    assert f().item() == pytest.approx(2 * math.pi)
    assert f.gradient() == {}


def test_tensor_inputs_are_used_as_is_and_computed_elementwise():
    xs = [0.5, 1.0, 3.0]
    x = cr.tensor(xs, dtype=cr.float64, requires_grad=True)
    y = parse("x^2 * ln(x) + 1")(x=x)
    y.sum().backward()
    tx = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ty = tx**2 * torch.log(tx) + 1
    ty.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-14)
    forward = parse("x^2 * ln(x) + 1").forward_gradient(x=cr.tensor(xs, dtype=cr.float64))
    np.testing.assert_allclose(forward["x"].numpy(), tx.grad.numpy(), rtol=1e-14)


# --- precedence and associativity ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2^3^2", 512.0),           # ^ is right-associative
    ("2**3**2", 512.0),         # ** is the same operator
    ("(2^3)^2", 64.0),
    ("-2^2", -4.0),             # unary minus binds looser than ^
    ("(-2)^2", 4.0),
    ("2^-1", 0.5),              # ... but still parses as an exponent
    ("2^-3^2", 2.0**-9),        # 2^(-(3^2)), as in Python
    ("2*-3", -6.0),
    ("-2*3", -6.0),
    ("2--3", 5.0),
    ("--2", 2.0),
    ("+2", 2.0),
    ("2*+3", 6.0),
    ("1-2-3", -4.0),            # left-associative
    ("8/4/2", 1.0),
    ("2/4*2", 1.0),
    ("10-2+3", 11.0),
    ("2+3*4", 14.0),
    ("(2+3)*4", 20.0),
    ("2*3^2", 18.0),
    ("-sin(pi/2)", -1.0),       # unary minus outside and inside functions
    ("sin(-pi/2)", -1.0),
    ("exp(-1^2)", math.exp(-1.0)),
    ("sqrt(-(-4))", 2.0),
    ("abs(-3)^2", 9.0),
    ("((((1))))", 1.0),
    (" 1 +\t2 ", 3.0),
])
def test_precedence_and_associativity(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("text, minimal, full", [
    (EXAMPLE, "ln(x1) + x1 * x2 - sin(x2)", "((ln(x1) + (x1 * x2)) - sin(x2))"),
    ("-x^2", "-x^2", "(-(x^2))"),
    ("2^-1", "2^-1", "(2^(-1))"),
    ("2**3**2", "2^3^2", "(2^(3^2))"),
    ("(2^3)^2", "(2^3)^2", "((2^3)^2)"),
    ("1-(2-3)", "1 - (2 - 3)", "(1 - (2 - 3))"),
    ("(1-2)-3", "1 - 2 - 3", "((1 - 2) - 3)"),
    ("-(a+b)*c", "-(a + b) * c", "((-(a + b)) * c)"),
    ("(-a)^b", "(-a)^b", "((-a)^b)"),
    ("+x", "x", "x"),
    ("sin(-x)", "sin(-x)", "sin(-x)"),
    ("1_000 + .5 + 5. + 2.5E+4", "1000 + 0.5 + 5 + 25000", "(((1000 + 0.5) + 5) + 25000)"),
])
def test_printing(text, minimal, full):
    f = parse(text)
    assert str(f) == minimal
    assert f.format(full_parentheses=True) == full
    assert repr(f) == f"parse({minimal!r})"


@pytest.mark.parametrize("text", [
    EXAMPLE, "a^-b^c", "-a*-b", "a - -b*c", "(a*-b)^c", "a^(-b*c)", "-(a^-b)", "(a^b)^(c^d)",
    "a/(b/c)", "a/b/c", "-(-a)", "2^(-(1+x))", "sin(x)^cos(x)^2",
])
def test_minimal_printing_parses_back_to_the_same_tree(text):
    f = parse(text)
    assert parse(str(f)).format(full_parentheses=True) == f.format(full_parentheses=True)


def test_long_expression_needs_no_recursion():
    f = parse("+".join(["x"] * 5000))
    assert f(x=1.0).item() == 5000.0
    assert f.gradient(x=1.0)["x"].item() == 5000.0


# --- literals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1", 1.0), ("1.5", 1.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 1e-3), ("2.5E+4", 2.5e4),
    ("1E3", 1000.0), ("1_000", 1000.0), ("1_000.000_5", 1000.0005), ("1e1_0", 1e10),
    ("0", 0.0), ("0.0", 0.0), ("pi", math.pi), ("e", math.e),
    ("1.7976931348623157e308", 1.7976931348623157e308),
])
def test_literal_forms(text, expected):
    assert value(text) == expected


# --- functions against torch ---------------------------------------------------------------------

TORCH_FUNCTIONS = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp,
    "ln": torch.log, "log": torch.log, "log10": torch.log10, "log2": torch.log2,
    "sqrt": torch.sqrt, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "abs": torch.abs,
}
POSITIVE_ONLY = {"ln", "log", "log10", "log2", "sqrt"}


def test_every_function_is_tested():
    assert set(TORCH_FUNCTIONS) == set(chainrule.expr.FUNCTIONS)


@pytest.mark.parametrize("name", sorted(TORCH_FUNCTIONS))
def test_function_value_and_derivative_against_torch(name):
    points = [0.3, 1.7, 4.2] if name in POSITIVE_ONLY else [-2.1, -0.4, 0.7, 3.0]
    f = parse(f"{name}(x)")
    for point in points:
        tx = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        ty = TORCH_FUNCTIONS[name](tx)
        (expected_derivative,) = torch.autograd.grad(ty, tx)
        assert f(x=point).item() == pytest.approx(ty.item(), rel=1e-14, abs=1e-300), point
        for mode in (f.gradient, f.forward_gradient):
            assert mode(x=point)["x"].item() == pytest.approx(expected_derivative.item(), rel=1e-12), point


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "^", "**"])
def test_binary_operator_partials_against_torch(op):
    torch_ops = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div,
                 "^": torch.pow, "**": torch.pow}
    f = parse(f"a {op} b")
    for a, b in [(1.5, -0.7), (2.0, 3.0), (0.4, 2.5)]:
        ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        out = torch_ops[op](ta, tb)
        grads = torch.autograd.grad(out, [ta, tb])
        assert f(a=a, b=b).item() == pytest.approx(out.item(), rel=1e-14)
        for mode in (f.gradient, f.forward_gradient):
            partials = mode(a=a, b=b)
            assert partials["a"].item() == pytest.approx(grads[0].item(), rel=1e-12)
            assert partials["b"].item() == pytest.approx(grads[1].item(), rel=1e-12)


def test_negative_base_with_integer_exponent_is_defined():
    assert value("(-2)^3") == -8.0
    assert value("x^2", x=-3.0) == 9.0


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message, column", [
    ("", "empty expression", 1),
    ("   ", "empty expression", 1),
    ("(1+2", "unclosed '('", 1),
    ("sin(x", "unclosed '('", 4),
    ("((1+2)", "unclosed '('", 1),
    ("1+2)", "unmatched ')'", 4),
    (")", "expected a number, a name or '(' before ')'", 1),
    ("()", "expected a number, a name or '(' before ')'", 2),
    ("sin()", "expected a number, a name or '(' before ')'", 5),
    ("sinn(x)", "unknown function 'sinn'", 1),
    ("1 + foo(2)", "unknown function 'foo'", 5),
    ("pi(2)", "'pi' is a constant, not a function", 1),
    ("sin x", "function 'sin' needs its argument in parentheses", 1),
    ("2 + ln", "function 'ln' needs its argument in parentheses", 5),
    ("2*/3", "operator '/' is missing its left operand", 3),
    ("1 + * 2", "operator '*' is missing its left operand", 5),
    ("*3", "operator '*' is missing its left operand", 1),
    ("2^^3", "operator '^' is missing its left operand", 3),
    ("2***3", "operator '*' is missing its left operand", 4),
    ("1+", "operator '+' is missing its right operand", 2),
    ("x^-", "operator '-' is missing its right operand", 3),
    ("(", "expected a number, a name or '(' before the end", 2),
    ("1.2.3", "malformed number '1.2.3'", 1),
    ("x + 1..2", "malformed number '1..2'", 5),
    (".", "malformed number '.'", 1),
    ("1e", "malformed number '1e'", 1),
    ("2e+x", "malformed number '2e+'", 1),
    ("1__0", "malformed number '1__0'", 1),
    ("1_", "malformed number '1_'", 1),
    ("1e999", "number '1e999' is too large for float64", 1),
    ("2x", "missing operator before 'x'" + IMPLICIT, 2),
    ("2 x", "missing operator before 'x'" + IMPLICIT, 3),
    ("2pi", "missing operator before 'pi'" + IMPLICIT, 2),
    ("2(x)", "missing operator before '('" + IMPLICIT, 2),
    ("(x)(y)", "missing operator before '('" + IMPLICIT, 4),
    ("x sin(y)", "missing operator before 'sin'" + IMPLICIT, 3),
    ("x # 2", "unexpected character '#'", 3),
    ("x, y", "unexpected character ','", 2),
    ("2 \u00d7 3", "unexpected character '\u00d7'", 3),
])
def test_malformed_expressions(text, message, column):
    with pytest.raises(ExprError) as info:
        parse(text)
    assert info.value.message == message
    assert info.value.column == column
    assert str(info.value) == f"{message} at column {column}"


@pytest.mark.parametrize("text, values, message, column", [
    ("1/(x-2)", {"x": 2.0}, "division by zero", 2),
    ("x / 0", {"x": 1.0}, "division by zero", 3),
    ("1 + ln(x)", {"x": -1.0}, "ln(-1) is undefined: ln needs x > 0", 5),
    ("log(x)", {"x": 0.0}, "log(0) is undefined: log needs x > 0", 1),
    ("log10(x)", {"x": -2.0}, "log10(-2) is undefined: log10 needs x > 0", 1),
    ("log2(0)", {}, "log2(0) is undefined: log2 needs x > 0", 1),
    ("2*sqrt(x-3)", {"x": 2.0}, "sqrt(-1) is undefined: sqrt needs x >= 0", 3),
    ("0^x", {"x": -1.0}, "0^-1 is undefined (division by zero)", 2),
    ("(-8)^(1/3)", {}, "(-8)^0.333333333333333 is undefined: a negative base needs an integer exponent", 5),
])
def test_evaluation_errors_point_at_the_operation(text, values, message, column):
    with pytest.raises(ExprError) as info:
        parse(text)(**values)
    assert (info.value.message, info.value.column) == (message, column)


def test_domain_errors_are_checked_elementwise():
    with pytest.raises(ExprError, match=r"ln\(-1\) is undefined"):
        parse("ln(x)")(x=cr.tensor([1.0, -1.0, 2.0], dtype=cr.float64))


def test_values_must_match_the_variables():
    f = parse("x + 2*y")
    with pytest.raises(ExprError) as info:
        f(x=1.0)
    assert (info.value.message, info.value.column) == ("no value for variable 'y'", 7)
    with pytest.raises(ExprError, match=r"'z' is not a variable of 'x \+ 2\*y' \(its variables: x, y\)"):
        f(x=1.0, y=2.0, z=3.0)
    with pytest.raises(ExprError, match="given both positionally and by name"):
        f(1.0, x=2.0)
    with pytest.raises(ExprError, match="3 values given positionally"):
        f(1.0, 2.0, 3.0)


def test_expr_error_is_a_value_error_with_a_caret():
    with pytest.raises(ValueError) as info:
        parse("1 + sinn(2)")
    assert isinstance(info.value, ExprError)
    assert info.value.caret() == "1 + sinn(2)\n    ^"


# --- the Wengert list ----------------------------------------------------------------------------

def test_trace_steps_values_and_adjoints():
    trace = parse(EXAMPLE).trace(x1=X1, x2=X2)
    rows = [(s.id, s.op, s.inputs) for s in trace.steps]
    assert rows == [
        ("v-1", "input", ("x1",)), ("v0", "input", ("x2",)),
        ("v1", "ln", ("v-1",)), ("v2", "*", ("v-1", "v0")), ("v3", "+", ("v1", "v2")),
        ("v4", "sin", ("v0",)), ("v5", "-", ("v3", "v4")),
    ]
    values = [s.value.item() for s in trace.steps]
    assert values == pytest.approx([X1, X2, math.log(X1), X1 * X2, math.log(X1) + X1 * X2, math.sin(X2), F])
    adjoints = [s.adjoint.item() for s in trace.steps]
    assert adjoints == pytest.approx([DF_DX1, DF_DX2, 1.0, 1.0, 1.0, -1.0, 1.0])


def test_trace_marks_steps_that_f_does_not_depend_on():
    trace = parse("sin(2)*x + 3").trace(x=1.0)
    assert [(s.id, s.op, s.inputs) for s in trace.steps] == [
        ("v0", "input", ("x",)), ("v1", "sin", ("2",)), ("v2", "*", ("v1", "v0")), ("v3", "+", ("v2", "3"))]
    assert trace.steps[1].adjoint is None
    assert trace.steps[0].adjoint.item() == pytest.approx(math.sin(2.0))
    assert ["v1", "-"] in [line.split() for line in str(trace).splitlines()]


# --- command line --------------------------------------------------------------------------------

def cli(*args):
    """Run ``python -m chainrule ARGS`` in a subprocess, as a user would."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "chainrule", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def run_main(capsys, *args):
    """Run the command in this process: the same code as ``cli`` without the start-up cost."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def test_cli_example():
    result = cli("expr", EXAMPLE, "--at", "x1=2", "x2=5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"f = {F:.15g}", f"df/dx1 = {DF_DX1:.15g}", f"df/dx2 = {DF_DX2:.15g}"]
    assert result.stderr == ""


def test_cli_forward_mode_agrees():
    result = cli("expr", EXAMPLE, "--at", "x1=2", "--at", "x2=5", "--forward")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"f = {F:.15g}", f"df/dx1 = {DF_DX1:.15g}", f"df/dx2 = {DF_DX2:.15g}",
        "forward mode (dual numbers, one pass per variable):",
        f"df/dx1 = {DF_DX1:.15g}", f"df/dx2 = {DF_DX2:.15g}",
        "forward and reverse mode agree",
    ]


def test_cli_unknown_function_prints_one_line_and_a_caret():
    result = cli("expr", "sinn(x)+1", "--at", "x=1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["error: unknown function 'sinn' at column 1", "sinn(x)+1", "^"]
    assert "Traceback" not in result.stderr


def test_cli_evaluation_error_points_at_the_operator():
    result = cli("expr", "x / (x - 1)", "--at", "x=1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: division by zero at column 3", "x / (x - 1)", "  ^"]
    assert "Traceback" not in result.stderr


def test_cli_trace(capsys):
    status, out, err = run_main(capsys, "expr", EXAMPLE, "--at", "x1=2", "x2=5", "--trace")
    assert status == 0 and err == []
    assert out[3] == "parsed as: ((ln(x1) + (x1 * x2)) - sin(x2))"
    assert out[4] == "forward trace (Wengert list, evaluation order):"
    assert out[5].split() == ["id", "op", "inputs", "value"]
    assert out[8].split() == ["v1", "ln", "v-1", f"{math.log(2):.15g}"]
    assert out[9].split() == ["v2", "*", "v-1,", "v0", "10"]
    assert out[13].startswith("backward trace")
    assert [line.split() for line in out[14:]] == [
        ["id", "adjoint"], ["v5", "1"], ["v4", "-1"], ["v3", "1"], ["v2", "1"], ["v1", "1"],
        ["v0", f"{DF_DX2:.15g}"], ["v-1", f"{DF_DX1:.15g}"]]


def test_cli_values_may_be_constant_formulas(capsys):
    status, out, _ = run_main(capsys, "expr", "x*y", "--at", "x=pi/4", "y=-2.5e0")
    assert status == 0
    assert out == [f"f = {-2.5 * math.pi / 4:.15g}", "df/dx = -2.5", f"df/dy = {math.pi / 4:.15g}"]


def test_cli_leading_minus_after_double_dash(capsys):
    status, out, _ = run_main(capsys, "expr", "--at", "x=3", "--", "-x^2")
    assert (status, out) == (0, ["f = -9", "df/dx = -6"])
    status, out, _ = run_main(capsys, "expr", "- x^2", "--at", "x=3")
    assert (status, out) == (0, ["f = -9", "df/dx = -6"])


def test_cli_expression_without_variables(capsys):
    assert run_main(capsys, "expr", "2^10") == (0, ["f = 1024"], [])


@pytest.mark.parametrize("args, error", [
    (["x + y", "--at", "x=1"], ["error: no value for variable 'y' at column 5", "x + y", "    ^"]),
    (["x", "--at", "x=1", "y=2"], ["error: 'y' is not a variable of 'x' (its variables: x)"]),
    (["x", "--at", "x=1", "x=2"], ["error: --at gives a value for 'x' twice"]),
    (["x", "--at", "x"], ["error: --at expects NAME=VALUE, got 'x'"]),
    (["x", "--at", "x=1.2.3"],
     ["error: bad value for x: malformed number '1.2.3' at column 3", "x=1.2.3", "  ^"]),
    (["x", "--at", "x=y"], ["error: bad value for x: no value for variable 'y' at column 3", "x=y", "  ^"]),
    (["ln(x)", "--at", "x=-1"], ["error: ln(-1) is undefined: ln needs x > 0 at column 1", "ln(x)", "^"]),
    (["", "--at", "x=1"], ["error: empty expression at column 1", "", "^"]),
    (["2x", "--at", "x=1"], ["error: missing operator before 'x' (implicit multiplication is not allowed: "
                             "write '*') at column 2", "2x", " ^"]),
])
def test_cli_bad_input_exits_2_with_one_error_line(capsys, args, error):
    status, out, err = run_main(capsys, "expr", *args)
    assert (status, out, err) == (2, [], error)


def test_cli_reports_disagreement_between_modes(capsys, monkeypatch):
    real = chainrule.expr.Expression.forward_gradient

    def off_by_one(self, **values):
        return {name: partial + 1 for name, partial in real(self, **values).items()}

    monkeypatch.setattr(chainrule.expr.Expression, "forward_gradient", off_by_one)
    status, out, _ = run_main(capsys, "expr", "x*y", "--at", "x=2", "y=3", "--forward")
    assert status == 1
    assert out[-2:] == ["MISMATCH df/dx: forward mode 4, reverse mode 3",
                        "MISMATCH df/dy: forward mode 3, reverse mode 2"]


def test_cli_graph(tmp_path):
    path = tmp_path / "graph.dot"
    result = cli("expr", "x*y", "--at", "x=2", "y=3", "--graph", str(path))
    assert "Traceback" not in result.stderr
    try:
        from chainrule.viz import draw  # noqa: F401
    except ImportError:
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error: --graph is not available yet")
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"graph written to {path}"
        assert "digraph" in path.read_text()


@pytest.mark.parametrize("args", [
    ["-x^2", "--at", "x=3"],
    ["--at", "x=3", "-x^2"],
    ["--at=x=3", "-x^2"],
    ["-x^2", "--forward", "--at", "x=3"],
])
def test_cli_expression_may_start_with_a_minus(capsys, args):
    status, out, err = run_main(capsys, "expr", *args)
    assert (status, out[:2], err) == (0, ["f = -9", "df/dx = -6"], [])


def test_cli_expression_starting_with_a_minus_in_a_new_process():
    result = cli("expr", "-x^2", "--at", "x=3")
    assert (result.returncode, result.stdout.splitlines()) == (0, ["f = -9", "df/dx = -6"]), result.stderr


def test_cli_unknown_long_option_is_still_reported_by_argparse(capsys):
    with pytest.raises(SystemExit):
        run_main(capsys, "expr", "x", "--att", "x=3")
    assert "--att" in capsys.readouterr().err
