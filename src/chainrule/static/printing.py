"""The IR as text: one line per node, ``%7 = matmul(%3, %5)  : f32[None,2]  # model.py:12: h = x @ w``."""

import numpy as np

from .node import Dim, site_text, type_text


def _param_text(v):
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, np.ndarray):
        text = np.array2string(v, threshold=6, separator=",")
        return text if len(text) < 40 else f"array({v.dtype.name}{list(v.shape)})"
    if isinstance(v, Dim):
        return str(v) if not (v.coef == 1 and len(v.bases) == 1) else repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_param_text(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})"
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def op_title(n):
    """What node ``n`` computes, in a word: its op's name, or ``fused[mul,add,...]`` for a kernel."""
    if n.kind == "fused":
        return "fused[" + ",".join(op.name for op, _, _ in n.steps) + "]"
    return n.op.name if n.op is not None else n.kind


def node_expr(n):
    """``matmul(%3, %5)``: an op or kernel node applied to its inputs (an op's parameters included)."""
    args = [i.label() for i in n.inputs]
    if n.kind == "op":
        args += [f"{k}={_param_text(v)}" for k, v in n.params.items()]
    return f"{op_title(n)}({', '.join(args)})"


def format_node(n):
    if n.kind == "placeholder":
        head = f"{n.label()} = placeholder {n.name!r}"
    elif n.kind == "variable":
        head = f"{n.label()} = variable"
    elif n.kind == "constant":
        small = not isinstance(n.data, np.ndarray) or n.data.size <= 4
        head = f"{n.label()} = constant {_param_text(n.data) if small else 'array'}"
    else:
        head = f"{n.label()} = {node_expr(n)}"
    line = f"{head}  : {type_text(n.shape, n.dtype)}"
    comment = []
    if n.site is not None:
        comment.append(site_text(n.site))
    if n.tag == "backward":
        comment.append("(backward)")
    if comment:
        line = f"{line:<58}  # " + " ".join(comment)
    return line


def format_nodes(nodes):
    return "\n".join(format_node(n) for n in nodes)
