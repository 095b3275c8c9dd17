"""Shared helpers for comparing chainrule with PyTorch (the oracle), and the table of core ops.

The op table ``OPS`` drives tests/test_ops_vs_torch.py (values, gradients, gradcheck, double
backward) and tests/test_forward_ad.py (forward mode). Adding an op is one line::

    op("name", lambda lib, a, b: lib.something(a, b), (3, 4), ((4,), "pos"))

``lib`` is either ``torch`` or ``chainrule``; each input is a shape, or ``(shape, domain)`` with a
domain from ``DOMAINS`` (so that log/sqrt get positive inputs, relu/abs/clamp stay away from kinks,
max/min get distinct values).
"""

import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

F32 = dict(rtol=1e-5, atol=1e-6)
F64 = dict(rtol=1e-10, atol=1e-12)
TOL = {"float32": F32, "float64": F64}


# ----------------------------------------------------------------------------------------------
# conversion and comparison
# ----------------------------------------------------------------------------------------------
def dtype_name(dt):
    """'float32' for torch.float32, chainrule.float32, np.float32, 'float32', ..."""
    if isinstance(dt, np.dtype) or (isinstance(dt, type) and issubclass(dt, np.generic)):
        return np.dtype(dt).name
    s = str(dt)
    s = s.split(".")[-1]
    s = s.strip("<>' ")
    return {"bool_": "bool", "long": "int64", "float": "float32", "double": "float64"}.get(s, s)


def to_numpy(t):
    """A numpy copy of a tensor of either library (or a python scalar)."""
    if isinstance(t, (bool, int, float, np.ndarray, np.generic)):
        return np.array(t, copy=True)
    if isinstance(t, torch.Tensor):
        return np.array(t.detach().numpy(force=True), copy=True)  # force: torch's ZeroTensor
    if hasattr(t, "detach"):
        t = t.detach()
    return np.array(t.numpy(), copy=True)


def shape_of(t):
    return tuple(int(s) for s in t.shape)


def assert_close(actual, expected, rtol=None, atol=None, dtype=None, what="value", check_dtype=True):
    """``actual`` (chainrule) against ``expected`` (torch): shape, dtype name, values."""
    assert actual is not None, f"{what}: chainrule gave None, torch gave a tensor"
    exp_np = to_numpy(expected)
    act_np = to_numpy(actual)
    assert shape_of(actual) == shape_of(expected), f"{what}: shape {shape_of(actual)} != torch {shape_of(expected)}"
    if check_dtype:
        assert dtype_name(actual.dtype) == dtype_name(expected.dtype), (
            f"{what}: dtype {actual.dtype} != torch {expected.dtype}"
        )
    if dtype is None:
        dtype = dtype_name(expected.dtype)
    tol = TOL.get(dtype, dict(rtol=0, atol=0))
    np.testing.assert_allclose(
        act_np.astype(np.float64) if act_np.dtype != bool else act_np,
        exp_np.astype(np.float64) if exp_np.dtype != bool else exp_np,
        rtol=tol["rtol"] if rtol is None else rtol,
        atol=tol["atol"] if atol is None else atol,
        equal_nan=True,
        err_msg=what,
    )


def shape_pattern(shape):
    """Regex matching a shape written as (2, 3), [2, 3], torch.Size([2, 3]), 2x3 or (2,3)."""
    nums = [str(int(s)) for s in shape]
    if len(nums) == 1:
        return r"[\[(]\s*" + nums[0] + r"\s*,?\s*[\])]"
    sep_comma = r"\s*,\s*".join(nums)
    sep_x = r"\s*[x×]\s*".join(nums)
    return r"(?:[\[(]\s*" + sep_comma + r"\s*,?\s*[\])]|\b" + sep_x + r"\b)"


def assert_error_names(exc, op_names, shapes):
    """The message names the op (any spelling in op_names) and every shape in shapes."""
    msg = str(exc)
    assert any(n.lower() in msg.lower() for n in op_names), f"error message does not name the op ({op_names}): {msg!r}"
    for s in shapes:
        assert re.search(shape_pattern(s), msg), f"error message does not show shape {s}: {msg!r}"
    assert "could not be broadcast together" not in msg, f"bare numpy error leaked: {msg!r}"


def is_chainrule_exception(exc):
    return type(exc).__module__.split(".")[0] == "chainrule"


# ----------------------------------------------------------------------------------------------
# input generation
# ----------------------------------------------------------------------------------------------
def _grid(rng, shape):
    # k*0.1 + 0.05 +- 0.02: at least 0.03 away from every multiple of 0.1 (kinks of relu, abs, clamp)
    k = rng.integers(-15, 15, size=shape)
    return k * 0.1 + 0.05 + rng.uniform(-0.02, 0.02, size=shape)


def _distinct(rng, shape):
    n = int(np.prod(shape, dtype=np.int64))
    base = rng.permutation(n).astype(np.float64) * (3.0 / max(n, 1)) - 1.5
    return (base + rng.uniform(0, 1.0 / max(n, 1), size=n)).reshape(shape)


DOMAINS = {
    "n": lambda rng, shape: rng.standard_normal(shape),
    "pos": lambda rng, shape: rng.uniform(0.5, 2.0, size=shape),
    "away": lambda rng, shape: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 2.0, size=shape),
    "grid": _grid,
    "distinct": _distinct,
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, size=shape),
}


def seed_for(name):
    return zlib.crc32(name.encode()) & 0xFFFFFFFF


def rand_arrays(inputs, dtype, seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape, domain in inputs:
        a = np.asarray(DOMAINS[domain](rng, shape), dtype=np.float64)
        out.append(a.astype(dtype))
    return out


def make_tensor(lib, arr, requires_grad=False):
    return lib.tensor(arr, dtype=getattr(lib, dtype_name(arr.dtype)), requires_grad=requires_grad)


# ----------------------------------------------------------------------------------------------
# the op table
# ----------------------------------------------------------------------------------------------
@dataclass
class OpSpec:
    name: str
    fn: object
    inputs: list = field(default_factory=list)  # [(shape, domain)]
    grad: bool = True  # differentiable (else: output must not require grad)
    gradcheck: bool = True  # False where a float32 intermediate makes finite differences meaningless

    def arrays(self, dtype="float64", salt=""):
        return rand_arrays(self.inputs, dtype, seed_for(self.name + salt))

    def __repr__(self):
        return self.name


OPS = []


def op(name, fn, *inputs, grad=True, gradcheck=True):
    norm = []
    for spec in inputs:
        if len(spec) == 2 and isinstance(spec[0], tuple) and isinstance(spec[1], str):
            norm.append((tuple(spec[0]), spec[1]))
        else:
            norm.append((tuple(spec), "n"))
    assert name not in {o.name for o in OPS}, name
    OPS.append(OpSpec(name, fn, norm, grad, gradcheck and grad))


def P(shape):  # positive inputs
    return (shape, "pos")


def A(shape):  # away from zero
    return (shape, "away")


def G(shape):  # away from multiples of 0.1
    return (shape, "grid")


def D(shape):  # pairwise distinct
    return (shape, "distinct")


# constant index / mask data used inside ops (each lib turns them into its own tensors)
IDX_ROWS = np.array([0, 2, 0, 1], dtype=np.int64)  # duplicates: gradients must accumulate
IDX_2D = np.array([[0, 1], [2, 0]], dtype=np.int64)
IDX_A = np.array([0, 2, 1], dtype=np.int64)
IDX_B = np.array([3, 0, 3], dtype=np.int64)
MASK_34 = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]], dtype=bool)
MASK_ROWS = np.array([True, False, True])
GATHER_IDX = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]], dtype=np.int64)  # (3, 3) into (3, 4), dim 1
GATHER_IDX0 = np.array([[0, 2, 1, 0], [2, 2, 0, 1]], dtype=np.int64)  # (2, 4) into (3, 4), dim 0
SCATTER_IDX = np.array([[3, 0, 1], [2, 1, 0]], dtype=np.int64)  # unique per row, (2, 3) into (2, 4)


def T(lib, a):
    return lib.tensor(a)


# --- arithmetic with broadcasting, reflected forms ---------------------------------------------
op("add", lambda lib, a, b: a + b, (3, 4), (3, 4))
op("add_bcast_3d_2d", lambda lib, a, b: a + b, (2, 3, 4), (3, 1))
op("add_bcast_outer", lambda lib, a, b: a + b, (3, 1), (1, 4))
op("add_bcast_rank0", lambda lib, a, b: a + b, (3, 4), ())
op("add_scalar", lambda lib, a: a + 2.5, (3, 4))
op("radd_scalar", lambda lib, a: 2.5 + a, (3, 4))
op("sub_bcast", lambda lib, a, b: a - b, (4,), (3, 4))
op("rsub_scalar", lambda lib, a: 1.5 - a, (3, 4))
op("sub_scalar", lambda lib, a: a - 1.5, (2, 3))
op("mul", lambda lib, a, b: a * b, (3, 4), (3, 4))
op("mul_bcast", lambda lib, a, b: a * b, (2, 1, 4), (3, 1))
op("mul_self", lambda lib, a: a * a, (3, 4))
op("rmul_scalar", lambda lib, a: 3 * a, (3, 4))
op("div_bcast", lambda lib, a, b: a / b, (3, 4), A((4,)))
op("div_bcast_num", lambda lib, a, b: a / b, (4,), A((2, 3, 1)))
op("rdiv_scalar", lambda lib, a: 2.0 / a, A((3, 4)))
op("div_scalar", lambda lib, a: a / 4, (3, 4))
op("neg", lambda lib, a: -a, (3, 4))
op("pow_2", lambda lib, a: a**2, (3, 4))
op("pow_3", lambda lib, a: a**3, (3, 4))
op("pow_half", lambda lib, a: a**0.5, P((3, 4)))
op("pow_neg", lambda lib, a: a**-1.5, P((3, 4)))
op("rpow_scalar", lambda lib, a: 2.0**a, (3, 4))
op("pow_tensor", lambda lib, a, b: a**b, P((3, 4)), (4,))
op("pow_method", lambda lib, a: a.pow(2.5), P((3, 4)))
op("pow_fn_tensor", lambda lib, a, b: lib.pow(a, b), P((2, 3)), (2, 3))
op("mixed_expr", lambda lib, a, b: (a * b - a / (b * b + 1.0)) ** 2, (3, 4), (4,))

# --- elementwise ---------------------------------------------------------------------------------
op("exp", lambda lib, a: a.exp(), (3, 4))
op("log", lambda lib, a: a.log(), P((3, 4)))
op("sqrt", lambda lib, a: a.sqrt(), P((3, 4)))
op("sin", lambda lib, a: a.sin(), (3, 4))
op("cos", lambda lib, a: a.cos(), (3, 4))
op("tanh", lambda lib, a: a.tanh(), (3, 4))
op("sigmoid", lambda lib, a: a.sigmoid(), (3, 4))
op("relu", lambda lib, a: a.relu(), G((3, 4)))
op("abs", lambda lib, a: a.abs(), G((3, 4)))
op("fn_exp", lambda lib, a: lib.exp(a), (2, 3))
op("fn_log", lambda lib, a: lib.log(a), P((2, 3)))
op("fn_sqrt", lambda lib, a: lib.sqrt(a), P((2, 3)))
op("fn_sin", lambda lib, a: lib.sin(a), (2, 3))
op("fn_cos", lambda lib, a: lib.cos(a), (2, 3))
op("fn_tanh", lambda lib, a: lib.tanh(a), (2, 3))
op("fn_sigmoid", lambda lib, a: lib.sigmoid(a), (2, 3))
op("fn_relu", lambda lib, a: lib.relu(a), G((2, 3)))
op("fn_abs", lambda lib, a: lib.abs(a), G((2, 3)))
op("clamp_both", lambda lib, a: a.clamp(min=-0.5, max=0.5), G((3, 4)))
op("clamp_positional", lambda lib, a: a.clamp(-0.5, 0.5), G((3, 4)))
op("clamp_min", lambda lib, a: a.clamp(min=0.1), G((3, 4)))
op("clamp_max", lambda lib, a: a.clamp(max=0.2), G((3, 4)))
op("fn_clamp", lambda lib, a: lib.clamp(a, -0.3, 0.7), G((3, 4)))
op("maximum", lambda lib, a, b: lib.maximum(a, b), (3, 4), (3, 4))
op("maximum_bcast", lambda lib, a, b: lib.maximum(a, b), (3, 4), (4,))
op("minimum_bcast", lambda lib, a, b: lib.minimum(a, b), (2, 1, 4), (3, 1))
op("where_cmp", lambda lib, a, b: lib.where(a > 0, a, b), (3, 4), (3, 4))
op("where_mask_bcast", lambda lib, a, b: lib.where(T(lib, MASK_34), a, b), (3, 4), (4,))
op("where_scalar_other", lambda lib, a: lib.where(a > 0, a, 0.0), G((3, 4)))
op("method_where", lambda lib, a, b: a.where(T(lib, MASK_34), b), (3, 4), (3, 4))
op("to_double", lambda lib, a: a.double() * 2, (3, 4))
op("to_float", lambda lib, a: a.float() * 2, (3, 4), gradcheck=False)
op("to_dtype", lambda lib, a: a.to(lib.float64).exp(), (3, 4))

# --- reductions ------------------------------------------------------------------------------------
op("sum_all", lambda lib, a: a.sum(), (3, 4))
op("sum_dim0", lambda lib, a: a.sum(dim=0), (3, 4))
op("sum_dim_neg", lambda lib, a: a.sum(dim=-1), (2, 3, 4))
op("sum_dim_tuple", lambda lib, a: a.sum(dim=(0, 2)), (2, 3, 4))
op("sum_keepdim", lambda lib, a: a.sum(dim=1, keepdim=True), (2, 3, 4))
op("sum_tuple_keepdim", lambda lib, a: a.sum((0, -1), keepdim=True), (2, 3, 4))
op("sum_positional_dim", lambda lib, a: a.sum(1), (2, 3, 4))
op("fn_sum", lambda lib, a: lib.sum(a, dim=1), (3, 4))
op("fn_sum_all", lambda lib, a: lib.sum(a), (3, 4))
op("mean_all", lambda lib, a: a.mean(), (3, 4))
op("mean_dim", lambda lib, a: a.mean(dim=1), (2, 3, 4))
op("mean_dim_tuple", lambda lib, a: a.mean(dim=(0, 1)), (2, 3, 4))
op("mean_keepdim_neg", lambda lib, a: a.mean(dim=-1, keepdim=True), (2, 3, 4))
op("fn_mean", lambda lib, a: lib.mean(a, dim=0), (3, 4))
op("max_all", lambda lib, a: a.max(), D((3, 4)))
op("min_all", lambda lib, a: a.min(), D((3, 4)))
op("max_dim_values", lambda lib, a: a.max(dim=1).values, D((3, 4)))
op("max_dim_keepdim", lambda lib, a: a.max(dim=-1, keepdim=True)[0], D((2, 3, 4)))
op("min_dim_values", lambda lib, a: a.min(dim=0).values, D((3, 4)))
op("min_dim_tuple_unpack", lambda lib, a: a.min(1)[0] * 2, D((3, 4)))
op("fn_max_dim", lambda lib, a: lib.max(a, dim=1)[0], D((3, 4)))
op("max_dim_indices", lambda lib, a: a.max(dim=1).indices, D((3, 4)), grad=False)
op("min_dim_indices", lambda lib, a: a.min(dim=0)[1], D((3, 4)), grad=False)
op("argmax_all", lambda lib, a: a.argmax(), D((3, 4)), grad=False)
op("argmax_dim", lambda lib, a: a.argmax(dim=1), D((3, 4)), grad=False)
op("argmax_keepdim", lambda lib, a: a.argmax(dim=-1, keepdim=True), D((2, 3, 4)), grad=False)
op("argmin_dim", lambda lib, a: a.argmin(dim=0), D((3, 4)), grad=False)
op("argmin_all", lambda lib, a: a.argmin(), D((3, 4)), grad=False)
op("fn_argmax", lambda lib, a: lib.argmax(a, dim=1), D((3, 4)), grad=False)
op("var_all", lambda lib, a: a.var(), (3, 4))
op("var_dim", lambda lib, a: a.var(dim=1), (3, 4))
op("var_keepdim", lambda lib, a: a.var(dim=0, keepdim=True), (3, 4))
op("var_unbiased_false", lambda lib, a: a.var(dim=1, unbiased=False), (3, 4))
op("var_dim_tuple", lambda lib, a: a.var(dim=(0, 2)), (2, 3, 4))
op("std_all", lambda lib, a: a.std(), (3, 4))
op("std_dim_neg", lambda lib, a: a.std(dim=-1), (2, 3, 4))
op("std_keepdim", lambda lib, a: a.std(dim=1, keepdim=True), (3, 4))
op("logsumexp_dim", lambda lib, a: a.logsumexp(dim=1), (3, 4))
op("logsumexp_keepdim", lambda lib, a: a.logsumexp(dim=-1, keepdim=True), (2, 3, 4))
op("logsumexp_tuple", lambda lib, a: a.logsumexp(dim=(0, 1)), (2, 3, 4))
op("fn_logsumexp", lambda lib, a: lib.logsumexp(a, 0), (3, 4))
op("logsumexp_large", lambda lib, a: (a * 100.0).logsumexp(dim=1), (3, 4))

# --- shape ---------------------------------------------------------------------------------------
op("reshape", lambda lib, a: a.reshape(4, 3), (3, 4))
op("reshape_neg1", lambda lib, a: a.reshape(-1), (2, 3, 4))
op("reshape_tuple_infer", lambda lib, a: a.reshape((2, -1)), (3, 4))
op("fn_reshape", lambda lib, a: lib.reshape(a, (6, 2)), (3, 4))
op("view_infer", lambda lib, a: a.view(-1, 2), (3, 4))
op("view_3d", lambda lib, a: a.view(2, 2, 3), (3, 4))
op("view_tuple", lambda lib, a: a.view((12,)), (3, 4))
op("expand_new_dims", lambda lib, a: a.expand(2, 3, 4), (3, 1))
op("expand_minus1", lambda lib, a: a.expand(-1, 4), (3, 1))
op("expand_tuple", lambda lib, a: a.expand((3, 2, 4)), (1, 1, 4))
op("permute", lambda lib, a: a.permute(2, 0, 1), (2, 3, 4))
op("permute_tuple", lambda lib, a: a.permute((1, 0, 2)), (2, 3, 4))
op("transpose", lambda lib, a: a.transpose(0, 1), (3, 4))
op("transpose_neg", lambda lib, a: a.transpose(-1, 0), (2, 3, 4))
op("fn_transpose", lambda lib, a: lib.transpose(a, 1, 2), (2, 3, 4))
op("T", lambda lib, a: a.T, (3, 4))
op("unsqueeze0", lambda lib, a: a.unsqueeze(0), (3, 4))
op("unsqueeze_neg", lambda lib, a: a.unsqueeze(-1), (3, 4))
op("unsqueeze_mid", lambda lib, a: a.unsqueeze(1), (3, 4))
op("fn_unsqueeze", lambda lib, a: lib.unsqueeze(a, 2), (3, 4))
op("squeeze_all", lambda lib, a: a.squeeze(), (1, 3, 1, 4))
op("squeeze_dim", lambda lib, a: a.squeeze(0), (1, 3, 1, 4))
op("squeeze_neg", lambda lib, a: a.squeeze(-2), (1, 3, 1, 4))
op("squeeze_noop", lambda lib, a: a.squeeze(1), (1, 3, 1, 4))
op("fn_squeeze", lambda lib, a: lib.squeeze(a), (3, 1))
op("flatten", lambda lib, a: a.flatten(), (2, 3, 4))
op("flatten_start", lambda lib, a: a.flatten(1), (2, 3, 4))
op("flatten_range", lambda lib, a: a.flatten(0, 1), (2, 3, 4))
op("fn_flatten", lambda lib, a: lib.flatten(a, start_dim=1), (2, 3, 4))
op("chain_shapes", lambda lib, a: a.permute(1, 0, 2).reshape(3, 8).T.unsqueeze(0) * 2, (2, 3, 4))

# --- indexing ------------------------------------------------------------------------------------
op("idx_int", lambda lib, a: a[1], (3, 4))
op("idx_neg_int", lambda lib, a: a[-1], (3, 4))
op("idx_scalar_elem", lambda lib, a: a[1, -2], (3, 4))
op("idx_slice", lambda lib, a: a[1:3], (3, 4))
op("idx_slice_step", lambda lib, a: a[::2], (5, 4))
op("idx_slice_2d_step", lambda lib, a: a[:, 1::2], (3, 5))
op("idx_slice_neg_bounds", lambda lib, a: a[-2:, :-1], (3, 4))
op("idx_none", lambda lib, a: a[None], (3, 4))
op("idx_none_mid", lambda lib, a: a[:, None, 1:], (3, 4))
op("idx_ellipsis", lambda lib, a: a[..., 0], (2, 3, 4))
op("idx_ellipsis_mid", lambda lib, a: a[1, ..., 1:3], (2, 3, 4))
op("idx_mixed_basic", lambda lib, a: a[1:, None, ..., ::2], (2, 3, 4))
op("idx_list_dups", lambda lib, a: a[[0, 2, 0]], (3, 4))
op("idx_tensor_dups", lambda lib, a: a[T(lib, IDX_ROWS)], (3, 4))
op("idx_tensor_2d", lambda lib, a: a[T(lib, IDX_2D)], (3, 4))
op("idx_two_arrays", lambda lib, a: a[T(lib, IDX_A), T(lib, IDX_B)], (3, 4))
op("idx_slice_then_array", lambda lib, a: a[:, [2, 0, 2]], (3, 4))
op("idx_int_and_array", lambda lib, a: a[1, [0, 0, 3]], (3, 4))
op("idx_bool_mask", lambda lib, a: a[T(lib, MASK_34)], (3, 4))
op("idx_bool_rows", lambda lib, a: a[T(lib, MASK_ROWS)], (3, 4))
op("idx_bool_from_cmp", lambda lib, a: a[a > 0], G((3, 4)))

# --- joining, gather, scatter, masked_fill -------------------------------------------------------
op("cat_dim0", lambda lib, a, b: lib.cat([a, b], dim=0), (2, 3), (4, 3))
op("cat_dim1_three", lambda lib, a, b, c: lib.cat([a, b, c], dim=1), (2, 3), (2, 1), (2, 2))
op("cat_neg_dim", lambda lib, a, b: lib.cat((a, b), -1), (2, 3, 1), (2, 3, 2))
op("cat_default_dim", lambda lib, a, b: lib.cat([a, b]), (1, 3), (2, 3))
op("stack_dim0", lambda lib, a, b: lib.stack([a, b]), (3, 4), (3, 4))
op("stack_dim_last", lambda lib, a, b, c: lib.stack([a, b, c], dim=2), (3, 4), (3, 4), (3, 4))
op("stack_neg_dim", lambda lib, a, b: lib.stack((a, b), dim=-1), (3,), (3,))
op("gather_dim1", lambda lib, a: a.gather(1, T(lib, GATHER_IDX)), (3, 4))
op("gather_dim0", lambda lib, a: a.gather(0, T(lib, GATHER_IDX0)), (3, 4))
op("fn_gather", lambda lib, a: lib.gather(a, 1, T(lib, GATHER_IDX)), (3, 4))
op("scatter_src", lambda lib, a, s: a.scatter(1, T(lib, SCATTER_IDX), s), (2, 4), (2, 3))
op("scatter_value", lambda lib, a: a.scatter(1, T(lib, SCATTER_IDX), 0.5), (2, 4))
op("masked_fill", lambda lib, a: a.masked_fill(T(lib, MASK_34), 0.25), (3, 4))
op("masked_fill_bcast", lambda lib, a: a.masked_fill(T(lib, MASK_34[0]), -1.0), (3, 4))
op("masked_fill_cmp", lambda lib, a: a.masked_fill(a < 0, 0.0), G((3, 4)))

# --- linear algebra --------------------------------------------------------------------------------
op("matmul_1d_1d", lambda lib, a, b: a @ b, (3,), (3,))
op("matmul_1d_2d", lambda lib, a, b: a @ b, (3,), (3, 4))
op("matmul_2d_1d", lambda lib, a, b: a @ b, (4, 3), (3,))
op("matmul_2d_2d", lambda lib, a, b: a @ b, (2, 3), (3, 4))
op("matmul_3d_2d", lambda lib, a, b: a @ b, (5, 2, 3), (3, 4))
op("matmul_2d_3d", lambda lib, a, b: a @ b, (2, 3), (5, 3, 4))
op("matmul_bcast_batch", lambda lib, a, b: a @ b, (5, 1, 2, 3), (4, 3, 2))
op("matmul_1d_3d", lambda lib, a, b: a @ b, (3,), (5, 3, 4))
op("matmul_3d_1d", lambda lib, a, b: a @ b, (5, 4, 3), (3,))
op("fn_matmul", lambda lib, a, b: lib.matmul(a, b), (2, 2, 3), (2, 3, 2))
op("method_matmul", lambda lib, a, b: a.matmul(b), (2, 3), (3,))
op("mm", lambda lib, a, b: lib.mm(a, b), (2, 3), (3, 4))
op("method_mm", lambda lib, a, b: a.mm(b), (4, 3), (3, 2))
op("bmm", lambda lib, a, b: lib.bmm(a, b), (2, 3, 4), (2, 4, 5))
op("method_bmm", lambda lib, a, b: a.bmm(b), (3, 2, 2), (3, 2, 1))
op("matmul_self_T", lambda lib, a: a @ a.T, (3, 4))

OPS_BY_NAME = {o.name: o for o in OPS}


# --- edge cases with fixed inputs (kinks, ties, zero-size and 0-d tensors): name -> (fn, arrays) ---
def _f32(*values):
    return np.array(values, dtype=np.float32)


EDGE = {
    # subgradients at kinks and ties, as torch defines them
    "relu_at_0": (lambda lib, x: x.relu(), [_f32(0.0, -1.0, 1.0)]),
    "abs_at_0": (lambda lib, x: x.abs(), [_f32(0.0, -1.0, 1.0)]),
    "clamp_at_bounds": (lambda lib, x: x.clamp(-1.0, 1.0), [_f32(-1.0, 1.0, 0.5, 2.0)]),
    "maximum_tie": (lambda lib, x, y: lib.maximum(x, y), [_f32(1.0, 2.0), _f32(1.0, 3.0)]),
    "minimum_tie": (lambda lib, x, y: lib.minimum(x, y), [_f32(1.0, 2.0), _f32(1.0, 3.0)]),
    "max_all_tie": (lambda lib, x: x.max(), [_f32(3.0, 1.0, 3.0)]),
    "min_all_tie": (lambda lib, x: x.min(), [_f32(1.0, 1.0, 3.0)]),
    "sqrt_at_0": (lambda lib, x: x.sqrt(), [_f32(0.0, 1.0)]),
    "square_at_0": (lambda lib, x: x**2, [_f32(0.0, 1.0)]),
    "pow_0_at_0": (lambda lib, x: x**0, [_f32(0.0, 2.0)]),
    "pow_tensor_base_0": (lambda lib, x, y: x**y, [_f32(0.0, 0.0, 2.0), _f32(2.0, 0.0, 0.5)]),
    "std_of_constant": (lambda lib, x: x.std(), [_f32(1.0, 1.0, 1.0)]),
    "std_dim_of_constant_row": (lambda lib, x: x.std(dim=1), [np.array([[1.0, 1.0], [1.0, 2.0]], np.float32)]),
    "logsumexp_all_neg_inf": (lambda lib, x: x.logsumexp(0), [_f32(-np.inf, -np.inf, 0.0)]),
    "logsumexp_huge": (lambda lib, x: x.logsumexp(0), [_f32(1000.0, 1000.0)]),
    "sigmoid_saturated": (lambda lib, x: x.sigmoid(), [_f32(-100.0, 100.0)]),
    "tanh_saturated": (lambda lib, x: x.tanh(), [_f32(-100.0, 100.0)]),
    "div_by_zero": (lambda lib, x, y: x / y, [_f32(1.0, -1.0, 0.0), _f32(0.0, 0.0, 0.0)]),
    "log_of_zero": (lambda lib, x: x.log(), [_f32(0.0, 1.0)]),
    # zero-size and 0-d tensors
    "sum_empty": (lambda lib, x: x.sum(), [np.zeros((0,), np.float32)]),
    "sum_empty_dim": (lambda lib, x: x.sum(dim=0), [np.zeros((0, 3), np.float32)]),
    "matmul_zero_inner": (lambda lib, a, b: a @ b, [np.ones((2, 0), np.float32), np.ones((0, 3), np.float32)]),
    "cat_with_empty": (lambda lib, a, b: lib.cat([a, b]), [np.zeros((0, 3), np.float32), np.ones((2, 3), np.float32)]),
    "sum_0d_dim": (lambda lib, x: x.sum(0), [np.array(2.0, np.float32)]),
    "max_0d_dim": (lambda lib, x: x.max(0).values, [np.array(2.0, np.float32)]),
    "mean_0d_dim_neg": (lambda lib, x: x.mean(-1), [np.array(2.0, np.float32)]),
    "unsqueeze_0d": (lambda lib, x: x.unsqueeze(0) * 2, [np.array(2.0, np.float32)]),
    "stack_0d": (lambda lib, a, b: lib.stack([a, b]), [np.array(2.0, np.float32), np.array(3.0, np.float32)]),
    "expand_0d": (lambda lib, x: x.expand(3), [np.array(2.0, np.float32)]),
    "index_slice_out_of_range": (lambda lib, x: x[1:100], [_f32(1.0, 2.0, 3.0)]),
    "index_empty_slice": (lambda lib, x: x[2:1], [_f32(1.0, 2.0, 3.0)]),
    "adv_index_separated_dims": (
        lambda lib, x: x[[0, 1], :, [1, 0]],
        [np.arange(24, dtype=np.float32).reshape(2, 3, 4)],
    ),
    "adv_index_broadcast": (
        lambda lib, x: x[lib.tensor([[0], [1]]), lib.tensor([0, 2, 1])],
        [np.arange(12, dtype=np.float32).reshape(3, 4)],
    ),
    "bool_index_leading_dims": (
        lambda lib, x: x[lib.tensor([[True, False, True], [False, True, False]])],
        [np.arange(24, dtype=np.float32).reshape(2, 3, 4)],
    ),
}

GRAD_OPS = [o for o in OPS if o.grad]


def op_params(ops):
    import pytest

    return [pytest.param(o, id=o.name) for o in ops]


def torch_module():
    return torch
