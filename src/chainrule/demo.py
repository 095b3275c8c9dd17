"""``chainrule demo``: the classic worked examples of reverse and forward mode, printed step by step."""

import chainrule as cr
from chainrule.autograd import forward_ad as fwAD


def register(subparsers):
    parser = subparsers.add_parser("demo", help="walk through autodiff on the classic worked examples")
    parser.set_defaults(func=run)


def run(args=None):
    print("1) f(x1, x2) = ln(x1) + x1*x2 - sin(x2) at (2, 5)")
    x1 = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    x2 = cr.tensor(5.0, dtype=cr.float64, requires_grad=True)
    f = cr.log(x1) + x1 * x2 - cr.sin(x2)
    f.backward()
    print(f"   f = {f.item():.6f}   (graph: {f.grad_fn.name()} <- {[n.name() for n, _ in f.grad_fn.next_functions]})")
    print(f"   reverse mode: df/dx1 = {x1.grad.item():.6f} (1/x1 + x2),  df/dx2 = {x2.grad.item():.6f} (x1 - cos x2)")
    with fwAD.dual_level():
        for name in ("x1", "x2"):
            d1 = fwAD.make_dual(x1.detach(), cr.tensor(1.0 if name == "x1" else 0.0, dtype=cr.float64))
            d2 = fwAD.make_dual(x2.detach(), cr.tensor(1.0 if name == "x2" else 0.0, dtype=cr.float64))
            tangent = fwAD.unpack_dual(cr.log(d1) + d1 * d2 - cr.sin(d2)).tangent
            print(f"   forward mode (dual numbers): df/d{name} = {tangent.item():.6f}")

    print("2) x = 3, y1 = x + 1, y2 = 2x, loss = (y1 - y2)^2")
    x = cr.tensor(3.0, requires_grad=True)
    loss = ((x + 1) - 2 * x) ** 2
    loss.backward()
    print(f"   loss = {loss.item():g}, dloss/dx = {x.grad.item():g}")

    print("3) 650 * 1.1 = 715: each factor's gradient is the other factor")
    a = cr.tensor(650.0, requires_grad=True)
    b = cr.tensor(1.1, requires_grad=True)
    product = a * b
    product.backward()
    print(f"   product = {product.item():g}, d/d650 = {a.grad.item():.4g}, d/d1.1 = {b.grad.item():.4g}")

    print("4) second derivative of x^3 at x = 2 with create_graph=True")
    x = cr.tensor(2.0, requires_grad=True)
    (first,) = cr.autograd.grad(x**3, x, create_graph=True)
    (second,) = cr.autograd.grad(first, x)
    print(f"   d/dx = {first.item():g} (3x^2), d2/dx2 = {second.item():g} (6x)")
    return 0
