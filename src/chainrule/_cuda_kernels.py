"""CUDA kernels for what a composition of CuPy calls does slowly (CuPy is imported when first used).

``col2im``: the adjoint of im2col, written as a gather (Chainer's ``col2im_gpu``): one thread per
input pixel sums the columns of every window that covers it, so no two threads write the same
place and no atomics are needed; the composition it replaces launches one slice-add per kernel tap.
"""

import numpy as np

_COL2IM = """
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
"""
_kernels = {}


def _kernel(name, params, out, body):
    if name not in _kernels:
        import cupy

        _kernels[name] = cupy.ElementwiseKernel(params, out, body, f"chainrule_{name}")
    return _kernels[name]


def col2im(cols, size, kernel, stride, padding, dilation, groups):
    """The image (N, C, H, W) whose im2col columns' adjoint is ``cols`` (groups, kh*kw*cg, N, Ho, Wo)."""
    import cupy

    g, kkcg, n, ho, wo = cols.shape
    (kh, kw), (sh, sw), (dh, dw), ((pt, _), (pl, _)) = kernel, stride, dilation, padding
    h, w = size
    cg = kkcg // (kh * kw)
    img = cupy.empty((n, g * cg, h, w), cols.dtype)
    run = _kernel("col2im", "raw T col, int32 n, int32 h, int32 w, int32 groups, int32 cg, int32 ho, int32 wo, "
                  "int32 kh, int32 kw, int32 sh, int32 sw, int32 pt, int32 pl, int32 dh, int32 dw", "T img", _COL2IM)
    ints = np.int32
    run(cupy.ascontiguousarray(cols), ints(n), ints(h), ints(w), ints(g), ints(cg), ints(ho), ints(wo), ints(kh),
        ints(kw), ints(sh), ints(sw), ints(pt), ints(pl), ints(dh), ints(dw), img)
    return img
