"""CUDA kernels for what a composition of CuPy calls does slowly (CuPy is imported when first used).

Each kernel is a :class:`Kernel`: the arguments of ``cupy.ElementwiseKernel`` (its C source, which
tests compile with NVRTC where there is no GPU) and the CuPy object, built on first launch. The
functions below wrap them; ``_device.kernels(array)`` hands this module to an op only for CuPy
arrays, so CPU and simulated-GPU paths never reach it.

* ``col2im``: the adjoint of im2col, written as a gather (Chainer's ``col2im_gpu``): one thread per
  input pixel sums the columns of every window that covers it, so no two threads write the same
  place and no atomics are needed; the composition it replaces launches one slice-add per kernel tap.
* ``max_pool``: one thread per window finds its maximum and where it is, in one pass (the CPU path
  compares every tap with the maximum afterwards).
* ``scatter_add``: ``np.add.at`` as one atomic add per element.
* ``sgd_update`` / ``adam_update``: a parameter's whole optimizer update as one kernel (eager mode
  launches one per tensor op, about ten per parameter).
"""

import numpy as np


class Kernel:
    """One ``cupy.ElementwiseKernel``: its parameters, output parameters and C body."""

    def __init__(self, name, params, out, body):
        self.name, self.params, self.out, self.body = f"chainrule_{name}", params, out, body
        self._compiled = None

    def __call__(self, *args):
        if self._compiled is None:
            import cupy

            self._compiled = cupy.ElementwiseKernel(self.params, self.out, self.body, self.name)
        return self._compiled(*args)


COL2IM = Kernel("col2im", "raw T col, int32 n, int32 h, int32 w, int32 groups, int32 cg, int32 ho, int32 wo, "
                "int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, int32 dh, int32 dw", "T img", """
    const int x = i % w;
    const int y = i / w % h;
    const int c = i / (w * h) % (groups * cg);
    const ptrdiff_t b = i / ((ptrdiff_t)w * h * groups * cg);
    const int gi = c / cg, ci = c % cg;
    T sum = 0;
    for (int ky = 0; ky < kh; ++ky) {
        const int oy_s = y + pt - ky * dh;
        if (oy_s < 0 || oy_s % sh != 0 || oy_s / sh >= ho) continue;
        for (int kx = 0; kx < kw; ++kx) {
            const int ox_s = x + pl - kx * dw;
            if (ox_s < 0 || ox_s % sw != 0 || ox_s / sw >= wo) continue;
            const ptrdiff_t tap = ((ptrdiff_t)(gi * kh + ky) * kw + kx) * cg + ci;
            sum += col[((tap * n + b) * ho + oy_s / sh) * wo + ox_s / sw];
        }
    }
    img = sum;
""")

# a window's first maximum (a NaN is the maximum: np.maximum propagates it) and its kernel offset, or with
# ``flat`` PyTorch's flat h * W + w input index; padding reads as -inf and so is picked only by an all -inf window
MAX_POOL = Kernel("max_pool", "raw T x, int32 h, int32 w, int32 ho, int32 wo, int32 kh, int32 kw, int32 sh, "
                  "int32 sw, int32 pt, int32 pl, int32 dh, int32 dw, bool flat", "T out, I arg", """
    const int ox = i % wo;
    const int oy = i / wo % ho;
    const ptrdiff_t plane = i / ((ptrdiff_t)wo * ho);
    T best = 0;
    int best_k = -1, best_y = 0, best_x = 0;
    for (int ky = 0; ky < kh; ++ky) {
        for (int kx = 0; kx < kw; ++kx) {
            const int y = oy * sh - pt + ky * dh, xx = ox * sw - pl + kx * dw;
            const bool inside = y >= 0 && y < h && xx >= 0 && xx < w;
            const T v = inside ? x[(plane * h + y) * w + xx] : (T)(-1.0 / 0.0);
            if (best_k < 0 || v > best || (v != v && best == best)) {
                best = v;
                best_k = ky * kw + kx;
                best_y = y;
                best_x = xx;
            }
        }
    }
    out = best;
    arg = flat ? (I)best_y * w + best_x : (I)best_k;
""")

SCATTER_ADD = Kernel("scatter_add", "int64 position, T value", "raw T out", "atomicAdd(&out[position], value);")

# PyTorch's SGD step, operation for operation (see optim/sgd.py); ``buf`` is read only with momentum
SGD = Kernel("sgd", "T grad, float64 lr, float64 momentum, float64 dampening, float64 weight_decay, bool use_momentum, "
             "bool nesterov, bool maximize, bool first, raw T buf", "T param", """
    T g = maximize ? -grad : grad;
    if (weight_decay != 0) g = param * (T)weight_decay + g;
    if (use_momentum) {
        const T b = first ? g : buf[i] * (T)momentum + g * (T)(1 - dampening);
        buf[i] = b;
        g = nesterov ? b * (T)momentum + g : b;
    }
    param = param - g * (T)lr;
""")

# PyTorch's single-tensor Adam/AdamW step (see optim/adam.py); ``max_sq`` is read only with amsgrad
ADAM = Kernel("adam", "T grad, float64 lr, float64 beta1, float64 beta2, float64 eps, float64 weight_decay, "
              "float64 step_size, float64 bias2_sqrt, bool decoupled, bool amsgrad, bool maximize, bool large_weight, "
              "raw T max_sq", "T param, T exp_avg, T exp_avg_sq", """
    T g = maximize ? -grad : grad;
    if (weight_decay != 0 && decoupled) param = param * (T)(1 - lr * weight_decay);
    else if (weight_decay != 0) g = param * (T)weight_decay + g;
    exp_avg = large_weight ? (g - exp_avg) * (T)(-beta1) + g : exp_avg + (g - exp_avg) * (T)(1 - beta1);
    exp_avg_sq = exp_avg_sq * (T)beta2 + g * (T)(1 - beta2) * g;
    T second = exp_avg_sq;
    if (amsgrad) {
        const T m = max_sq[i];
        second = (m > exp_avg_sq || m != m) ? m : exp_avg_sq;
        max_sq[i] = second;
    }
    const T denom = sqrt(second) / (T)bias2_sqrt + (T)eps;
    param = param - exp_avg * (T)step_size / denom;
""")

KERNELS = (COL2IM, MAX_POOL, SCATTER_ADD, SGD, ADAM)


def _ints(*values):
    return [np.int32(v) for v in values]


def col2im(cols, size, kernel, stride, padding, dilation, groups):
    """The image (N, C, H, W) whose im2col columns' adjoint is ``cols`` (groups, kh*kw*cg, N, Ho, Wo)."""
    xp = _module(cols)
    g, kkcg, n, ho, wo = cols.shape
    (kh, kw), (sh, sw), (dh, dw), ((pt, _), (pl, _)) = kernel, stride, dilation, padding
    h, w = size
    cg = kkcg // (kh * kw)
    img = xp.empty((n, g * cg, h, w), cols.dtype)
    COL2IM(xp.ascontiguousarray(cols), *_ints(n, h, w, g, cg, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw), img)
    return img


def max_pool(x, kernel, stride, padding, dilation, flat=False):
    """(window maxima, where each is) for an (N, C, H, W) input: kernel offsets (int8, or int32 for 127+
    taps), or with ``flat`` PyTorch's int64 h * W + w indices."""
    xp = _module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = kernel, stride, dilation, padding
    ho, wo = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1, (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = xp.empty((n, c, ho, wo), x.dtype)
    arg = xp.empty((n, c, ho, wo), np.int64 if flat else np.int8 if kh * kw < 127 else np.int32)
    MAX_POOL(xp.ascontiguousarray(x), *_ints(h, w, ho, wo, kh, kw, sh, sw, pt, pl, dh, dw), bool(flat), out, arg)
    return out, arg


def scatter_add(out, index, values):
    """``np.add.at(out, index, values)`` for a contiguous ``out``: repeated indices add up (float32/64 by the
    kernel; other dtypes, which CUDA has no atomic add for, by CuPy's own)."""
    xp = _module(out)
    if out.dtype in (np.float32, np.float64):
        SCATTER_ADD(xp.arange(out.size).reshape(out.shape)[index], values.astype(out.dtype, copy=False), out)
    else:
        xp.add.at(out, index, values)


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """``param`` (and the momentum buffer ``buf``, None without momentum: the kernel then reads no buffer and
    is handed ``grad`` in its place) updated in place."""
    use_momentum = buf is not None
    SGD(grad, lr, momentum, dampening, weight_decay, use_momentum, nesterov, maximize, first,
        buf if use_momentum else grad, param)


def adam_update(param, grad, exp_avg, exp_avg_sq, max_sq, hyper, step, flags):
    """``param`` and its moments (and ``max_sq``, None without amsgrad) updated in place. ``hyper``: (lr, beta1,
    beta2, eps, weight_decay); ``step``: the step count after this step; ``flags``: (decoupled, amsgrad,
    maximize, large_weight)."""
    lr, beta1, beta2, eps, weight_decay = hyper
    step_size, bias2_sqrt = lr / (1 - beta1**step), (1 - beta2**step) ** 0.5
    ADAM(grad, lr, beta1, beta2, eps, weight_decay, step_size, bias2_sqrt, *flags,
         grad if max_sq is None else max_sq, param, exp_avg, exp_avg_sq)


def _module(array):
    """The array module of ``array`` (CuPy's, on a GPU; the tests' fake kernels see numpy's)."""
    import cupy

    return cupy.get_array_module(array)
