"""How tensors print: PyTorch's layout, element for element.

Every element is formatted the same way and right-aligned to one common width (``tensor([-0.8415,
0.8415])`` pads the positive value); floats print with four decimals, as whole numbers with a trailing
dot when all are integral, or in scientific notation when the nonzero magnitudes span more than three
decades, exceed 1e8 or (non-integral) fall below 1e-4. Rows wrap at 80 columns, large tensors are
summarized with ``...``, and non-default dtypes, ``requires_grad`` and ``grad_fn`` follow as suffixes.
"""

import math

import numpy as np

from . import _dtype


class _PrintOptions:
    precision = 4
    threshold = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode = None


PRINT_OPTS = _PrintOptions()

_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """PyTorch's ``set_printoptions``: digits, summarization threshold, edge items, line width, sci mode."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        for key, value in _PROFILES[profile].items():
            setattr(PRINT_OPTS, key, value)
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, key, value)
    PRINT_OPTS.sci_mode = sci_mode


class _Formatter:
    """One format and width for all elements of a tensor (from its values, or its summary's)."""

    def __init__(self, array):
        self.floating = array.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        p = PRINT_OPTS.precision
        if not self.floating:
            self.width = max((len(str(v)) for v in array.ravel().tolist()), default=1)
            return
        values = array[np.isfinite(array) & (array != 0)].astype(np.float64)
        if values.size:
            magnitudes = np.abs(values)
            lo, hi = magnitudes.min(), magnitudes.max()
            self.int_mode = bool(np.all(values == np.ceil(values)))
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            if PRINT_OPTS.sci_mode is not None:
                self.sci_mode = PRINT_OPTS.sci_mode
            if self.sci_mode:
                texts = [f"{v:.{p}e}" for v in values.tolist()]
            elif self.int_mode:
                texts = [f"{v:.0f}." for v in values.tolist()]
            else:
                texts = [f"{v:.{p}f}" for v in values.tolist()]
            self.width = max(len(t) for t in texts)

    def format(self, value):
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:.{PRINT_OPTS.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{PRINT_OPTS.precision}f}"
        return text.rjust(self.width)


def _summary(array, edge):
    """The edge items of every long dim: what a summarized print shows (its format comes from these)."""
    for axis, size in enumerate(array.shape):
        if size > 2 * edge:
            array = np.concatenate([np.take(array, range(edge), axis), np.take(array, range(size - edge, size), axis)],
                                   axis)
    return array


def _body(array, indent, summarize, fmt):
    edge = PRINT_OPTS.edgeitems
    if array.ndim == 0:
        return fmt.format(array.item())
    long = summarize and array.shape[0] > 2 * edge
    if array.ndim == 1:
        per_line = max(1, int((PRINT_OPTS.linewidth - indent) // (fmt.width + 2)))
        if long:
            items = [fmt.format(v) for v in array[:edge].tolist()] + [" ..."] + \
                    [fmt.format(v) for v in array[-edge:].tolist()]
        else:
            items = [fmt.format(v) for v in array.tolist()]
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = range(array.shape[0])
    if long:
        rows = list(range(edge)) + [None] + list(range(array.shape[0] - edge, array.shape[0]))
    parts = ["..." if i is None else _body(array[i], indent + 1, summarize, fmt) for i in rows]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def format_tensor(array, dtype_name, grad_fn_name, requires_grad, device_name=None):
    """``repr`` of a tensor holding the host array ``array``: PyTorch's ``tensor(...)`` text with its
    suffixes (``device_name`` for data that lives on another device)."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = [] if device_name is None else [f"device='{device_name}'"]
    default = array.dtype in (_dtype.default_float.numpy, np.dtype(np.int64), np.dtype(np.bool_))
    if array.size == 0:
        body = "[]"
        if array.ndim != 1:
            suffixes.append(f"size={tuple(array.shape)}")
        if array.dtype != _dtype.default_float.numpy:
            suffixes.append(f"dtype={dtype_name}")
    else:
        summarize = array.size > PRINT_OPTS.threshold
        shown = array.astype(np.float32) if array.dtype == np.float16 else array
        fmt = _Formatter(_summary(shown, PRINT_OPTS.edgeitems) if summarize else shown)
        body = _body(shown, indent, summarize, fmt)
        if not default:
            suffixes.append(f"dtype={dtype_name}")
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    text = prefix + body
    last = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last + len(suffix) + 2 > PRINT_OPTS.linewidth:
            text += ",\n" + " " * indent + suffix
            last = indent + len(suffix)
        else:
            text += ", " + suffix
            last += len(suffix) + 2
    return text + ")"
