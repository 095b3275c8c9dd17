"""The optimizer base class: parameter groups, per-parameter state, hooks, state dicts.

Like PyTorch's ``torch.optim.Optimizer``: ``param_groups`` is a list of dicts (``'params'`` plus
every hyperparameter, defaults filled in), ``state`` maps each parameter tensor to a dict of its
buffers, and ``state_dict()`` replaces the tensors by integer ids, counted across the groups in
order::

    {'state': {0: {'momentum_buffer': tensor(...)}, ...},
     'param_groups': [{'lr': 0.01, ..., 'params': [0, 1]}, ...]}

Subclasses implement ``step`` with in-place tensor ops (``p.sub_``, ``buf.mul_(m).add_(g)``) under
``no_grad``, so one code path serves both modes: in eager mode the ops write into the arrays (numpy's
in-place ufuncs, no tape) and bump the version counters, as PyTorch's in-place updates do; inside a
static graph (``chainrule.compile``, ``chainrule.static.Graph``) the same ops record updates of the
parameters and of the state tensors, and the hyperparameters become 0-d tensors read from the param
groups at run time, so a scheduler's changes reach a compiled step without retracing. Which branches a
step takes (momentum or not, weight decay or not, ...) is fixed when it is traced.
"""

import functools
import numbers
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from .. import _device
from ..autograd.grad_mode import enable_grad, no_grad, state
from ..tensor import Tensor, _wrap

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyperparameter that every param group must set (no default)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class _RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _typename(obj):
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _hooked_step(step):
    """Wrap a subclass's ``step`` so that step pre/post hooks run around it (once, even when a
    subclass's step calls its parent's) and schedulers can tell that the optimizer has stepped."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if getattr(self, "_in_step", False):
            return step(self, *args, **kwargs)
        self._opt_called = True
        for hook in tuple(self._optimizer_step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{hook} must return None or a tuple of (new_args, new_kwargs), but got {result}."
                    )
                args, kwargs = result
        self._in_step = True
        try:
            with no_grad():  # an update is not part of any graph (closures re-enable grad)
                out = step(self, *args, **kwargs)
        finally:
            self._in_step = False
        for hook in tuple(self._optimizer_step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper._hooked = True
    return wrapper


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter
            groups, each with a ``'params'`` entry and optional per-group hyperparameters).
        defaults: the hyperparameters' default values, used where a group does not set them.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _hooked_step(step)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {_typename(params)}"
            )
        if isinstance(params, dict):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                "but got a single dict; wrap a parameter group in a list: [{'params': ...}]"
            )
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # --- groups ------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters (a dict with ``'params'`` and optional hyperparameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (the tensors to optimize)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)

        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):
                if len(p) != 2:
                    raise TypeError(f"a named parameter must be a (name, tensor) pair, got a tuple of {len(p)}")
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names

        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {_typename(p)}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)
        self._check_group(param_group)

        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will cause "
                "an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def _check_group(self, group):
        """Validate a group's hyperparameters (subclasses raise ValueError like their constructor)."""

    # --- gradients and steps -----------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized tensors: to ``None`` (default) or to zeros.

        While ``chainrule.compile`` traces, gradients are set to ``None`` and the reset is noted, so
        each compiled call replaces ``.grad`` (zeroing in place for ``set_to_none=False``) instead of
        accumulating into it."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if _grad_resets is not None and state.tracer is not None:
                    _grad_resets.setdefault(id(p), (p, g, set_to_none))
                    p.grad = None
                elif g is None:
                    continue
                elif set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g._data[...] = 0
                    g._version[0] += 1

    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        raise NotImplementedError

    def _eval_closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # --- hooks -------------------------------------------------------------------------------
    def _register(self, hooks, hook, prepend=False):
        handle = _RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)`` before each step."""
        return self._register(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs) -> None`` after each step."""
        return self._register(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        return self._register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        return self._register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        return self._register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        return self._register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # --- state dicts -------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state, parameters replaced by integer ids (PyTorch's layout).

        Like PyTorch's, the returned dict refers to the live state tensors: deep-copy it (or save
        it with ``chainrule.save``) to keep a snapshot.
        """
        for hook in tuple(self._optimizer_state_dict_pre_hooks.values()):
            hook(self)
        index = {}
        start = 0
        packed_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            packed_groups.append(packed)
        packed_state = {
            (index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()
        }
        state_dict = {"state": packed_state, "param_groups": packed_groups}
        for hook in tuple(self._optimizer_state_dict_post_hooks.values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict):
        """Load a state from :meth:`state_dict` (of an optimizer over the same parameter layout).

        Raises ValueError when the number of groups or a group's size differs. State tensors are
        copied (never shared with ``state_dict``) and cast to their parameter's dtype.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            keys = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else _typename(state_dict)
            raise ValueError(
                "an optimizer state dict must be a dict with the keys 'state' and 'param_groups' "
                f"(as returned by Optimizer.state_dict()), got {keys}"
            )
        state_dict = dict(state_dict)
        for hook in tuple(self._optimizer_load_state_dict_pre_hooks.values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result

        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(
                "loaded state dict has a different number of parameter groups "
                f"({len(saved_groups)}, this optimizer has {len(groups)})"
            )
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                    f"group: group {i} has {len(s['params'])} parameters in the state dict and "
                    f"{len(g['params'])} in this optimizer"
                )
        saved_ids = chain.from_iterable(g["params"] for g in saved_groups)
        id_map = dict(zip(saved_ids, chain.from_iterable(g["params"] for g in groups)))

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if isinstance(k, str) and k.lstrip("-").isdigit() and int(k) in id_map:
                k = int(k)  # ids that went through a JSON round trip
            if k in id_map:
                param = id_map[k]
                state[param] = self._load_param_state(param, k, v)
            else:
                state[k] = v

        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups
        self._after_load()
        for hook in tuple(self._optimizer_load_state_dict_post_hooks.values()):
            hook(self)

    # state keys holding a tensor shaped like its parameter (checked on load)
    _PARAM_SHAPED_STATE = ()

    def _load_param_state(self, param, pid, value):
        def cast(v, key=None):
            if isinstance(v, (Tensor, np.ndarray)):
                array = v._data if isinstance(v, Tensor) else v
                if key == "step":
                    return _wrap(np.array(array, copy=True))
                if key in self._PARAM_SHAPED_STATE and array.shape != param._data.shape:
                    raise ValueError(
                        f"loaded state dict has {key!r} of shape {list(array.shape)} for parameter {pid}, "
                        f"but that parameter has shape {list(param._data.shape)}: the state dict belongs to "
                        "a different model"
                    )
                dtype = param._data.dtype if param._data.dtype.kind == "f" else array.dtype
                array = _device.move(array, param.device)  # state lives on its parameter's device
                return _wrap(_device.array_module(array).array(array, dtype=dtype, copy=True))
            if isinstance(v, dict):
                return {k: cast(x, k) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return type(v)(cast(x) for x in v)
            return v

        return cast(value)

    def _after_load(self):
        """Hook for subclasses: fill in defaults a loaded group may lack, normalize state."""

    # --- misc ----------------------------------------------------------------------------------
    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                     "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            self.__dict__.setdefault(name, OrderedDict())

    def __repr__(self):
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # --- helpers for the subclasses' steps ------------------------------------------------------
    def _branches(self, group):
        """The group's settings that choose a step's code path (a static graph fixes them when traced)."""
        return ()

    def _hyper(self, index, *keys):
        """This step's hyperparameters of ``param_groups[index]`` (a key, or ``(key, i)`` for
        ``group[key][i]``): Python floats in eager mode; inside a static graph, 0-d float64 tensors
        that read the group whenever the compiled program runs (one per group and key), refusing to
        run once the group's branches differ from the traced ones."""
        group = self.param_groups[index]
        if state.tracer is None:
            return [_scalar(_lookup(group, key), key) for key in keys]
        cells = self.__dict__.setdefault("_live_hyperparameters", {})
        traced = self._branches(group)
        for key in keys:
            if (index, key, traced) not in cells:
                cells[index, key, traced] = _LiveScalar(lambda key=key: self._read_traced(index, key, traced))
        return [cells[index, key, traced] for key in keys]

    def _read_traced(self, index, key, traced):
        """A hyperparameter's value for a run of a step traced with the branches ``traced``."""
        group = self.param_groups[index]
        now = self._branches(group)
        if now != traced:
            raise RuntimeError(
                f"{type(self).__name__}: param_groups[{index}] changed a setting that a compiled step fixed when "
                f"it was traced ({traced} -> {now}); create the compiled function again (chainrule.compile) "
                "to retrace it"
            )
        return _scalar(_lookup(group, key), key)


def with_grads(params):
    """The parameters that have a gradient. Inside a static graph it must be a value of the graph (from a
    backward in it): a concrete ``.grad`` would be baked into the program as the value it has now."""
    for p in params:
        if p.grad is None:
            continue
        if state.tracer is not None and isinstance(p.grad._data, np.ndarray):
            raise RuntimeError(
                "optimizer.step() inside chainrule.compile or a static Graph found a .grad computed outside it; "
                "call loss.backward() inside the compiled function (or set .grad to chainrule.static.gradients)"
            )
        yield p


def _lookup(group, key):
    return group[key[0]][key[1]] if isinstance(key, tuple) else group[key]


class _LiveScalar(Tensor):
    """A 0-d float64 tensor whose value is read (by ``read()``) at every access of its data: inside a
    static graph it is a variable, so each run of the compiled program sees the current value."""

    __slots__ = ("_read",)

    def __init__(self, read):
        super().__init__()
        self._read = read

    @property
    def _data(self):
        return np.array(self._read(), dtype=np.float64)

    @_data.setter
    def _data(self, value):
        if getattr(self, "_read", None) is not None:  # only Tensor.__init__ sets it (to an ignored placeholder)
            raise RuntimeError("a hyperparameter tensor reads its param group; set the group's value instead")


def step_count(step):
    """A state's step tensor as the bias corrections use it: a float in eager mode, a float64 tensor
    (read at run time) inside a static graph."""
    return float(step._data) if state.tracer is None else step.to(np.float64)


# ids of the tensors whose .grad zero_grad reset while chainrule.compile traced: (tensor, old grad,
# set_to_none); None when no trace is recording them (see recording_grad_resets)
_grad_resets = None


class recording_grad_resets:
    """``with recording_grad_resets() as resets:`` collects the gradients ``zero_grad`` resets while a
    function is traced, so the compiled function knows to replace those ``.grad`` rather than add."""

    def __enter__(self):
        global _grad_resets
        self.previous, _grad_resets = _grad_resets, {}
        return _grad_resets

    def __exit__(self, *exc):
        global _grad_resets
        _grad_resets = self.previous
        return False


# --- helpers shared by the optimizers ------------------------------------------------------------
def _scalar(value, name):
    """A hyperparameter as a Python float (a 1-element tensor is accepted, like PyTorch's tensor lr)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(value.item())
    return float(value)


def _nonzero(group, key):
    """Whether a group's hyperparameter is on (a branch of the step, fixed when a step is traced)."""
    return _scalar(group[key], key) != 0


def _check_number(value, name):
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_typename(value)}")


def _refuse_unsupported(**flags):
    for name, value in flags.items():
        if value:
            raise ValueError(
                f"{name}=True is not supported by chainrule (it has one CPU implementation); leave it unset"
            )
