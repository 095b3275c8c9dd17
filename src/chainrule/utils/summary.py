"""``chainrule.summary(model, input_size)``: a table of the layers a forward pass runs.

One row per module call, in the order the calls start (a container before the layers it runs),
with its output shape and the parameters it owns. A module called twice appears twice but its
parameters count once; parameters registered on the model but never used by the forward pass are
reported separately, so "used" and "registered" can differ (weight sharing, unused branches).
"""

import numbers
from dataclasses import dataclass, field

from .._mode import no_grad
from ..ops.creation import zeros


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int  # parameters owned directly by this module (0 on a repeated call)
    repeated: bool = False


@dataclass
class Summary:
    rows: list = field(default_factory=list)
    used_params: int = 0
    registered_params: int = 0
    trainable_params: int = 0
    param_bytes: int = 0

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Param #")
        lines = [(f"{r.name} ({r.kind})", str(list(r.output_shape)),
                  "(shared)" if r.repeated and r.params == 0 else f"{r.params:,}") for r in self.rows]
        widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(header)]
        rule = "=" * (sum(widths) + 4)
        fmt = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}"
        out = [rule, fmt.format(*header), rule] + [fmt.format(*line) for line in lines] + [rule]
        out.append(f"Parameters used by forward: {self.used_params:,}")
        out.append(f"Parameters registered:      {self.registered_params:,}"
                   + (" (some are never used by forward)" if self.registered_params != self.used_params else ""))
        out.append(f"Trainable parameters:       {self.trainable_params:,}")
        out.append(f"Parameter size:             {self.param_bytes / 2**20:.2f} MiB")
        out.append(rule)
        return "\n".join(out)

    __repr__ = __str__


def summary(model, input_size, dtype=None, print_table=True):
    """Run ``model`` once on zeros of ``input_size`` (batch dim included) and tabulate its layers.

    ``input_size`` is one shape, or a list of shapes for a model taking several inputs. The model
    runs in eval mode without recording the tape; every module's training flag is restored after.
    """
    sizes = [input_size] if isinstance(input_size[0], numbers.Integral) else list(input_size)
    inputs = [zeros(tuple(int(d) for d in s), dtype=dtype) for s in sizes]
    names = {id(m): name or model.__class__.__name__ for name, m in model.named_modules()}
    result = Summary()
    used = {}
    seen_modules = set()
    pending = {}  # id(module) -> stack of rows opened by the pre-hook, filled in by the hook

    def open_row(module, args):
        # The row is placed when the call starts, so a container precedes the layers it runs.
        first_call = id(module) not in seen_modules
        seen_modules.add(id(module))
        own = [p for p in module.parameters(recurse=False) if id(p) not in used] if first_call else []
        for p in own:
            used[id(p)] = p
        row = LayerRow(names.get(id(module), "?"), type(module).__name__, (),
                       sum(p.numel() for p in own), repeated=not first_call)
        result.rows.append(row)
        pending.setdefault(id(module), []).append(row)

    def close_row(module, args, output):
        row = pending[id(module)].pop()
        row.output_shape = tuple(output.shape) if hasattr(output, "shape") else ()

    submodules = [m for _, m in model.named_modules() if m is not model] or [model]  # a lone layer: its own row
    handles = [m.register_forward_pre_hook(open_row) for m in submodules]
    handles += [m.register_forward_hook(close_row) for m in submodules]
    modes = [(m, m.training) for m in model.modules()]  # per module: a frozen submodule stays in eval
    model.eval()
    try:
        with no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    registered = {id(p): p for p in model.parameters()}
    for p in model.parameters(recurse=False):  # the model's own parameters are used by its forward
        used.setdefault(id(p), p)
    result.used_params = sum(p.numel() for p in used.values())
    result.registered_params = sum(p.numel() for p in registered.values())
    result.trainable_params = sum(p.numel() for p in registered.values() if p.requires_grad)
    result.param_bytes = sum(p.numel() * p.element_size() for p in registered.values())
    if print_table:
        print(result)
    return result
