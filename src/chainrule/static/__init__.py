"""Static graphs (define-then-run) on the one op library: ``chainrule.static``.

    import chainrule as cr
    with cr.static.Graph() as g:
        x = cr.static.placeholder((None, 784), name="x")
        loss = model(x).sum()
        grads = cr.static.gradients(loss, list(model.parameters()))
    program = cr.static.compile([loss] + grads)
    loss_value, *grad_values = program.run({x: batch})

Building runs only the ops' shape rules (shape errors raise here, naming the op, the shapes and
your line); ``gradients`` runs the ordinary reverse-mode engine with the graph as tracer, so the
backward graph is made of the same ops; ``compile`` optimises (DCE, constant folding, CSE,
algebraic simplification, elementwise fusion, memory planning) and generates Python source.
"""

from .function import CompiledFunction, trace_compile
from .ir import AbstractArray, Dim, Graph, SymbolicTensor, TracingError, full, gradients, placeholder
from .passes import PASS_ORDER
from .program import FeedError, Program, compile
from .training import sgd_updates

__all__ = [
    "AbstractArray", "CompiledFunction", "Dim", "FeedError", "Graph", "PASS_ORDER", "Program", "SymbolicTensor",
    "TracingError", "compile", "full", "gradients", "placeholder", "sgd_updates", "trace_compile",
]
