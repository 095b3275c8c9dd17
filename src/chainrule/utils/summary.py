"""``chainrule.summary(model, input_size)``: a table of the layers a forward pass runs.

One row per module call, in call order, with its output shape and the parameters it owns. A
module called twice appears twice but its parameters count once; parameters registered on the
model but never used by the forward pass are reported separately, so "used" and "registered"
can differ (weight sharing, unused branches).
"""

from dataclasses import dataclass, field


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
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
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
    """Run ``model`` once on zeros of ``input_size`` (batch dim included) and tabulate its layers."""
    import chainrule as cr

    sizes = [input_size] if isinstance(input_size[0], int) else list(input_size)
    inputs = [cr.zeros(tuple(s), dtype=dtype) for s in sizes]
    names = {id(m): name or model.__class__.__name__ for name, m in model.named_modules()}
    result = Summary()
    used = {}
    seen_modules = set()

    def record(module, args, output):
        first_call = id(module) not in seen_modules
        seen_modules.add(id(module))
        own = [p for p in module.parameters(recurse=False) if id(p) not in used] if first_call else []
        for p in own:
            used[id(p)] = p
        shape = tuple(output.shape) if hasattr(output, "shape") else ()
        result.rows.append(LayerRow(names.get(id(module), "?"), type(module).__name__, shape,
                                    sum(p.numel() for p in own), repeated=not first_call))

    handles = [m.register_forward_hook(record) for _, m in model.named_modules() if m is not model]
    was_training = model.training
    model.eval()
    try:
        with cr.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
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
