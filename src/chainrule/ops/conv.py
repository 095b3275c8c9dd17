"""Convolution and pooling: window primitives and the compositions built on them.

``conv2d`` picks one of two algorithms by where the data lives and how big the columns get:

* **im2col + one GEMM** (GPU, and host convolutions whose im2col columns fit in the cache, 8 MiB):
  ``im2col`` gathers every kernel window into a column, one matrix multiplication applies the
  kernel. ``im2col`` and ``col2im`` are linear and each is the other's vjp, so this composition is
  differentiable to any order with no gradient code of its own.
* **the ``conv2d`` primitive** (host convolutions with bigger columns): window copies and GEMMs one
  cache-sized chunk of images at a time, so the copies never reach main memory; with vertical stride
  1 only the kernel's columns are copied and its rows are offsets into that copy (``_Windows``). Its
  vjps are two more primitives, ``conv2d_input_grad`` (a transposed convolution: for stride 1 a
  convolution of the padded gradient with the flipped kernel, else kernel.T @ gradient + col2im,
  chunk by chunk) and ``conv2d_weight_grad`` (gradient @ windows.T summed over chunks). All three are bilinear and each
  one's vjps are the other two, so this path is differentiable to any order too.

Layout: images are NCHW, as in PyTorch, but the columns are ``(groups, kh * kw * C/groups, N, Ho,
Wo)``, stored channel-major on a GPU and batch-innermost ((..., Ho, Wo, N) in memory, ``batch_last``)
on the host: the product ``kernel @ columns`` is (O, pixels), and the convolution's output is an
NCHW view of it. Every window copy and col2im add then moves Wo * N contiguous values, which matters
for the small images and few channels of small networks (numpy's strided copies cost per row). The
chunked primitive multiplies ``kernel @ columns`` image by image straight into a contiguous NCHW
output, so its gradient reaches ``.grad`` without a copy. Elementwise ops and the pools keep an input's
memory layout. Values are the same whatever the layout; only strides differ.

Pooling reads the same strided windows, one kernel offset at a time (``kh * kw`` vectorised passes,
no loop over pixels):

* ``max_pool2d`` (values); its vjp finds each window's winning offset (``max_pool2d_argmax``, PyTorch's
  tie rule: the first maximum in row-major window order wins) and ``pool_scatter`` routes the
  gradient there. ``pool_scatter`` and ``pool_gather`` are each other's vjp.
* ``pool_sum`` (window sums with zero padding, divided by the window count for average pooling) and
  its adjoint ``pool_sum_t``.

Geometry parameters are normalised by the public functions: ``kernel``, ``stride``, ``dilation`` are
pairs, ``padding`` is ``((top, bottom), (left, right))`` (bottom/right may differ from top/left:
``padding='same'`` with an even kernel, ``ceil_mode``; they may even be negative when trailing input
rows fall outside every window).
"""

import numpy as np

from .. import _device, _dtype
from ..errors import DTypeError, ShapeError
from . import infer
from .elementwise import as_tensor_arg
from .op import LINEAR, bilinear_jvp, bind, defop
from .shape import permute, reshape

_CHUNK_BYTES = 1 << 20  # col2im works on groups of channels whose padded planes fit in cache
_COLS_BYTES = 1 << 21  # host convolutions build the columns of this many bytes of images at a time
_CACHE_BYTES = 8 << 20  # ... when all the batch's columns take more than this
_SHORT_ROW = 16  # output rows narrower than this are computed at the padded width (see _Windows)


# --- geometry ----------------------------------------------------------------------------------
def _pair(value, name="value", op="conv2d"):
    """An int or a pair of ints, as a pair; anything else is refused naming the function ``op``."""
    if isinstance(value, (tuple, list)):
        value = tuple(int(infer.check_int(op, name, v)) for v in value)  # types first, as PyTorch checks
        if len(value) == 1:
            value = (value[0], value[0])
        if len(value) != 2:
            raise ShapeError(f"{op}: expected an int or a pair for {name}, got {value}")
        return value
    value = int(infer.check_int(op, name, value))
    return value, value


def _out_size(size, k, s, lo, hi, d):
    if not infer.known(size):
        return None
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def _out_hw(h, w, kernel, stride, padding, dilation):
    return (_out_size(h, kernel[0], stride[0], *padding[0], dilation[0]),
            _out_size(w, kernel[1], stride[1], *padding[1], dilation[1]))


def _window(i, j, kernel, stride, dilation, out_hw):
    """Index of the (Ho, Wo) grid of elements at kernel offset (i, j) of every window (NCHW)."""
    ho, wo = out_hw
    r, c = i * dilation[0], j * dilation[1]
    return (slice(None), slice(None), slice(r, r + stride[0] * (ho - 1) + 1, stride[0]),
            slice(c, c + stride[1] * (wo - 1) + 1, stride[1]))


def _offsets(kernel):
    return [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]


def _disjoint(kernel, stride, dilation):
    """True when no input element belongs to two windows (a scatter can assign instead of add)."""
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def _order(a):
    """The axes of ``a`` from the largest stride to the smallest: its memory layout."""
    return tuple(sorted(range(a.ndim), key=lambda d: -a.strides[d]))


def _alloc(xp, shape, dtype, order, fill=None):
    """An array of ``shape`` (array module ``xp``) laid out in memory like the array whose axis ``order`` is given."""
    mem_shape = tuple(shape[d] for d in order)
    buf = xp.zeros(mem_shape, dtype) if fill == 0 else xp.empty(mem_shape, dtype)
    out = buf.transpose(tuple(int(d) for d in np.argsort(order)))
    if fill is not None and fill != 0:
        out.fill(fill)
    return out


def _padded(x, padding, fill):
    """``x`` with ``fill`` around it (negative bottom/right padding: no rows are added there)."""
    (pt, pb), (pl, pr) = padding
    pb, pr = max(pb, 0), max(pr, 0)
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    out = _alloc(_device.array_module(x), (n, c, pt + h + pb, pl + w + pr), x.dtype, _order(x))
    out[:, :, :pt] = fill
    out[:, :, pt + h:] = fill
    out[:, :, pt:pt + h, :pl] = fill
    out[:, :, pt:pt + h, pl + w:] = fill
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _padded_zeros(xp, n, c, h, w, padding, dtype, order, fill=0):
    (pt, pb), (pl, pr) = padding
    return _alloc(xp, (n, c, pt + h + max(pb, 0), pl + w + max(pr, 0)), dtype, order, fill=fill)


def _in_layout(a, order):
    """``a``, copied into the memory layout ``order`` (see :func:`_order`) unless it has it already."""
    if _order(a) == order:
        return a
    out = _alloc(_device.array_module(a), a.shape, a.dtype, order)
    out[...] = a
    return out


def _tiles(size, out_hw, kernel, stride, padding, dilation):
    """True when the windows cover the input exactly once (a scatter then writes every element)."""
    return (dilation == (1, 1) and stride == kernel and padding == ((0, 0), (0, 0))
            and tuple(size) == (out_hw[0] * kernel[0], out_hw[1] * kernel[1]))


def _crop(buf, padding, h, w):
    (pt, _), (pl, _) = padding
    return buf[:, :, pt:pt + h, pl:pl + w]


def _check_geometry(op, h, w, kernel, stride, padding, dilation):
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ShapeError(f"{op}: kernel size, stride and dilation must be positive, got kernel {kernel}, "
                         f"stride {stride}, dilation {dilation}")
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    if (infer.known(ho) and ho < 1) or (infer.known(wo) and wo < 1):
        ph = h + padding[0][0] + padding[0][1] if infer.known(h) else None
        pw = w + padding[1][0] + padding[1][1] if infer.known(w) else None
        eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(f"{op}: calculated padded input size per channel: ({ph} x {pw}). Kernel size: "
                         f"({eff[0]} x {eff[1]}). Kernel size can't be greater than actual input size "
                         f"(input spatial size {h} x {w}, padding {padding})")
    return ho, wo


def _check_4d(op, shape):
    if len(shape) != 4:
        raise ShapeError(f"{op}: expected a 4-D input (N, C, H, W), got shape {list(shape)}")


# --- im2col / col2im ----------------------------------------------------------------------------
def _im2col_forward(x, kernel, stride, padding, dilation, groups, batch_last=False):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (pt, pb), (pl, pr) = padding
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    if ho < 1 or wo < 1:
        raise ValueError("kernel larger than the padded input")
    cg = c // groups
    xp = _device.array_module(x)
    # the source as (C, N, H, W), or (C, H, W, N) with batch_last: free when x is laid out so in memory
    xt = x.transpose((1, 2, 3, 0) if batch_last else (1, 0, 2, 3))
    if pt or pb > 0 or pl or pr > 0 or not (xt.strides[3] == x.itemsize and xt.strides[2] == xt.shape[3] * x.itemsize):
        padded = (c, pt + h + max(pb, 0), pl + w + max(pr, 0), n) if batch_last else \
            (c, n, pt + h + max(pb, 0), pl + w + max(pr, 0))
        src = xp.zeros(padded, x.dtype)
        src[(slice(None),) * (1 if batch_last else 2) + (slice(pt, pt + h), slice(pl, pl + w))] = xt
    else:
        src = xt
    s_c, s_n, s_h, s_w = (src.strides[i] for i in ((0, 3, 1, 2) if batch_last else (0, 1, 2, 3)))
    shape, strides = (groups, kh, kw, cg), (s_c * cg, s_h * dh, s_w * dw, s_c)
    pixels = ((ho, wo, n), (s_h * sh, s_w * sw, s_n)) if batch_last else ((n, ho, wo), (s_n, s_h * sh, s_w * sw))
    view = xp.lib.stride_tricks.as_strided(src, shape + pixels[0], strides + pixels[1])  # read only
    cols = xp.empty(view.shape, x.dtype)
    cols[...] = view  # whole rows of Wo pixels (of Wo * N values with batch_last) per copy
    if batch_last:
        return cols.reshape(groups, kh * kw * cg, ho, wo, n).transpose(0, 1, 4, 2, 3)
    return cols.reshape(groups, kh * kw * cg, n, ho, wo)


def _col2im_forward(cols, size, kernel, stride, padding, dilation, groups):
    cuda = _device.kernels(cols)
    if cuda is not None:  # on a GPU: one gathering kernel instead of a slice-add per tap
        return cuda.col2im(cols, size, kernel, stride, padding, dilation, groups)
    g, kkcg, n, ho, wo = cols.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    h, w = size
    cg = kkcg // (kh * kw)
    c = g * cg
    (pt, pb), (pl, pr) = padding
    hp, wp = pt + h + max(pb, 0), pl + w + max(pr, 0)
    rows = [(i, i * dh, slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)) for i in range(kh)]
    cols_ = [(j, slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)) for j in range(kw)]
    if cols.strides[1] == cols.itemsize and kkcg > 1:
        # Columns stored pixel-major (a (pixels, K) gradient, or one output pixel): accumulate channels-last,
        # a batch of images at a time so the padded buffer stays in cache across the kh * kw passes.
        src = cols.transpose(2, 3, 4, 0, 1).reshape(n, ho, wo, g, kh, kw, cg)
        buf = _device.array_module(cols).zeros((n, hp, wp, g, cg), cols.dtype)
        chunk = max(1, min(n, _CHUNK_BYTES // max(1, hp * wp * c * cols.itemsize)))
        for start in range(0, n, chunk):
            b, p = buf[start:start + chunk], src[start:start + chunk]
            for i, _, r in rows:
                for j, q in cols_:
                    b[:, r, q] += p[:, :, :, :, i, j]
        return buf.reshape(n, hp, wp, c)[:, pt:pt + h, pl:pl + w].transpose(0, 3, 1, 2)
    # Columns stored channel-major: every kernel offset adds whole (N, Ho, Wo) planes, channel by channel;
    # with the batch innermost (im2col's batch_last) (Ho, Wo, N) planes, Wo * N values per row
    batch_last = n > 1 and cols.strides[2] == cols.itemsize
    pixels = (ho, wo, n) if batch_last else (n, ho, wo)
    planes = cols.transpose((0, 1, 3, 4, 2) if batch_last else (0, 1, 2, 3, 4)).reshape((g, kh, kw, cg) + pixels)
    buf = _device.array_module(cols).zeros((g, cg) + ((hp, wp, n) if batch_last else (n, hp, wp)), cols.dtype)
    chunk = max(1, min(cg, _CHUNK_BYTES // max(1, n * hp * wp * cols.itemsize)))
    tail = (slice(None),) if batch_last else ()
    for start in range(0, cg, chunk):
        b, p = buf[:, start:start + chunk], planes[:, :, :, start:start + chunk]
        for i, _, r in rows:
            for j, q in cols_:
                b[(Ellipsis, r, q) + tail] += p[:, i, j]
    if batch_last:
        return buf.reshape(c, hp, wp, n)[:, pt:pt + h, pl:pl + w].transpose(3, 0, 1, 2)
    return buf.reshape(c, n, hp, wp)[:, :, pt:pt + h, pl:pl + w].transpose(1, 0, 2, 3)


def _im2col_infer(x, kernel, stride, padding, dilation, groups, batch_last=False):
    shape = infer.shape_of(x)
    _check_4d("im2col", shape)
    n, c, h, w = shape
    if infer.known(c) and c % groups:
        raise ShapeError(f"im2col: {c} input channels are not divisible by groups={groups} (input {list(shape)})")
    ho, wo = _check_geometry("im2col", h, w, kernel, stride, padding, dilation)
    kkcg = kernel[0] * kernel[1] * (c // groups) if infer.known(c) else None
    return (groups, kkcg, n, ho, wo), infer.dtype_of(x)


def _col2im_infer(cols, size, kernel, stride, padding, dilation, groups):
    shape = infer.shape_of(cols)
    if len(shape) != 5:
        raise ShapeError(f"col2im: expected columns of shape (groups, kh*kw*C/groups, N, Ho, Wo), got {list(shape)}")
    g, ckk, n, ho, wo = shape
    h, w = size
    expect = _out_hw(h, w, kernel, stride, padding, dilation)
    if (ho, wo) != expect and all(infer.known(v) for v in (ho, wo) + expect):
        raise ShapeError(f"col2im: columns of shape {list(shape)} do not match an image of size {h} x {w} "
                         f"(expected {expect[0]} x {expect[1]} windows)")
    if infer.known(ckk) and ckk % (kernel[0] * kernel[1]):
        raise ShapeError(f"col2im: dim 1 ({ckk}) of columns {list(shape)} is not a multiple of the kernel size "
                         f"{kernel[0] * kernel[1]}")
    c = g * ckk // (kernel[0] * kernel[1]) if infer.known(ckk) and infer.known(g) else None
    return (n, c, h, w), infer.dtype_of(cols)


im2col_op = defop(
    "im2col",
    _im2col_forward,
    _im2col_infer,
    vjp=(lambda g, out, x, batch_last=False, **geo: col2im(g, tuple(x.shape[2:]), **geo),),
    jvp=LINEAR,
    saves=(),
    doc="Windows of an NCHW image as columns: (groups, kh*kw*C/groups, N, Ho, Wo).",
    explain=("col2im(received): each column added back at its window",),
)

col2im_op = defop(
    "col2im",
    _col2im_forward,
    _col2im_infer,
    vjp=(lambda g, out, cols, size, **geo: im2col(g, **geo),),
    jvp=LINEAR,
    saves=(),
    doc="The adjoint of im2col: every window column added back at its place in an NCHW image.",
    explain=("im2col(received): each window read back as a column",),
)


def im2col(x, kernel, stride, padding, dilation, groups=1, batch_last=False):
    """Primitive: windows as columns (see the module docstring for the layout and parameters); with
    ``batch_last`` they are stored (groups, kh*kw*C/groups, Ho, Wo, N) in memory."""
    return bind(im2col_op, x, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                batch_last=batch_last)


def col2im(cols, size, kernel, stride, padding, dilation, groups=1):
    """Primitive: the adjoint of :func:`im2col`, back to an NCHW image of spatial ``size``."""
    return bind(col2im_op, cols, size=tuple(size), kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, groups=groups)


# --- convolution by image chunks (host arrays) --------------------------------------------------------
def _chunks(n, bytes_per_image):
    """Ranges of images whose columns take about ``_COLS_BYTES``: the GEMM operands stay in cache."""
    step = max(1, min(n, _COLS_BYTES // max(1, bytes_per_image)))
    return [(start, min(n, start + step)) for start in range(0, max(n, 1), step)]  # an empty batch: one empty chunk


class _Windows:
    """Window copies of an NCHW image batch for the chunked convolution, one chunk of images at a time,
    into buffers reused across chunks; each is the right-hand side of one or more GEMMs.

    With vertical stride 1 only the kernel's columns are copied: ``buffer[n, c, j, h * width + w]``
    holds padded row ``h`` of channel ``c`` read from column offset ``j`` (Ho + (kh - 1) * dh rows of
    ``width`` pixels), and kernel row ``i`` needs no copy at all: it is the same buffer read ``i * dh``
    rows further on, so ``buffer[n, :, :, i * dh * width:][..., :Ho * width]`` is a plain strided
    (C * kw, pixels) matrix. A
    convolution is then ``kh`` GEMMs with K = C * kw, summed; a copy kh times smaller than im2col's,
    whose numpy cost is per row of pixels (measured on conv_fwd_bwd: 79 ms a pass against 88-92 ms for
    full im2col columns). At the output width those windows are copied straight from the images, one
    rectangle per kernel column, into a buffer whose padding stays zero (no zero-bordered copy of the
    images first: 1.19-1.23x PyTorch against 1.24-1.32x for conv_fwd_bwd, interleaved runs). Other
    strides copy every kernel offset from a zero-bordered copy: one GEMM with K = C * kh * kw.

    Either way an operand is (n, groups, K, pixels) with K in (c, [i,] j) order, the weight's own order,
    and ``kernel_parts`` cuts the weight to match. Short output rows (horizontal stride 1, Wo <
    ``_SHORT_ROW``) are computed at the padded width (``width`` = Wp, not Wo): then each copy moves long
    contiguous runs instead of rows of Wo, for (Wp - Wo) / Wo more GEMM work whose extra columns are
    cropped off (an extra zero row under the padded buffer keeps their reads inside it). From rows of
    16-32 pixels on the extra GEMM work costs more than the short copies save.
    """

    def __init__(self, x, kernel, stride, padding, dilation, groups):
        self.xp = _device.array_module(x)
        self.x, self.kernel, self.stride, self.dilation, self.groups = x, kernel, stride, dilation, groups
        n, c, h, w = x.shape
        (pt, pb), (pl, pr) = padding
        (kh, kw), (dh, _) = kernel, dilation
        self.out_hw = ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
        self.width = pl + w + max(pr, 0) if stride[1] == 1 and wo < _SHORT_ROW else wo
        self.pixels = ho * self.width
        self.pad_hw = pt, pl
        self.split = stride[0] == 1 and kh > 1
        self.taps = (kw,) if self.split else (kh, kw)
        self.parts = kh if self.split else 1  # how many operands (and kernel parts) a chunk has
        self.length = (ho + (kh - 1) * dh) * self.width if self.split else self.pixels
        self.chunks = _chunks(n, c * kw * self.length * x.itemsize * (1 if self.split else kh))
        most = self.chunks[0][1]
        # Split windows at the output width are copied straight from the images into a zeroed buffer
        # whose padding stays zero; the rest go through a zero-bordered copy of the images.
        self.direct = self.split and self.width == wo
        self.padded = None if self.direct else \
            _padded_zeros(self.xp, most, c, h, w, ((pt, max(pb, 0) + 1), (pl, pr)), x.dtype, (1, 0, 2, 3))
        self.buffer = (self.xp.zeros if self.direct else self.xp.empty)((most, c) + self.taps + (self.length,), x.dtype)
        self.grad = None

    def operands(self, start, stop):
        """The window copies of images start:stop: a list of (n, groups, K, pixels) operands, one per
        part of ``kernel_parts``."""
        n, c = stop - start, self.x.shape[1]
        buf = self.buffer[:n]
        if self.direct:
            self._copy_direct(buf, start, stop)
        else:
            self._copy_padded(buf, start, stop)
        (kh, _), (dh, _) = self.kernel, self.dilation
        k = c * int(np.prod(self.taps)) // self.groups
        mats = buf.reshape(n, self.groups, k, self.length)
        if not self.split:
            return [mats]
        step = dh * self.width
        return [mats[..., i * step:i * step + self.pixels] for i in range(kh)]

    def _copy_padded(self, buf, start, stop):
        """Images start:stop into the zero-bordered buffer, then every window offset from there."""
        n, (pt, pl) = stop - start, self.pad_hw
        c, h, w = self.x.shape[1:]
        src = self.padded[:n]
        src[:, :, pt:pt + h, pl:pl + w] = self.x[start:stop]
        s_n, s_c, s_h, s_w = src.strides
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        offsets = ((kw,), (s_w * dw,)) if self.split else ((kh, kw), (s_h * dh, s_w * dw))
        view = self.xp.lib.stride_tricks.as_strided(src, (n, c) + offsets[0] + (self.length // self.width, self.width),
                                                    (s_n, s_c) + offsets[1] + (s_h * sh, s_w * sw))  # read only
        buf.reshape(view.shape)[...] = view

    def _copy_direct(self, buf, start, stop):
        """Split windows straight from images start:stop: for each kernel column ``j`` the rectangle of
        output columns whose padded column ``j * dw + w * sw`` lies inside the image (the rest stays 0)."""
        (pt, pl), (h, w), (sw, dw) = self.pad_hw, self.x.shape[2:], (self.stride[1], self.dilation[1])
        rows = self.length // self.width
        out = buf.reshape(buf.shape[:3] + (rows, self.width))
        top, bottom = pt, min(rows, pt + h)
        for j in range(self.kernel[1]):
            first = max(0, -(-(pl - j * dw) // sw))  # the first output column that reads the image
            last = min(self.width, (pl + w - 1 - j * dw) // sw + 1)
            if last > first and bottom > top:
                col = j * dw + first * sw - pl
                out[:, :, j, top:bottom, first:last] = \
                    self.x[start:stop, :, :bottom - top, col:col + (last - first - 1) * sw + 1:sw]

    def kernel_parts(self, w):
        """The weight (O, C / groups, kh, kw) cut to match ``operands``: (groups, O / groups, K) each."""
        o = w.shape[0]
        if not self.split:
            return [w.reshape(self.groups, o // self.groups, -1)]
        return [w[:, :, i].reshape(self.groups, o // self.groups, -1) for i in range(self.kernel[0])]

    def kernel_from_parts(self, parts):
        """The inverse of ``kernel_parts``: the (O, C / groups, kh, kw) kernel from its parts."""
        if not self.split:
            return parts[0].reshape((-1, self.x.shape[1] // self.groups) + self.kernel)
        return self.xp.stack([p.reshape((-1, self.x.shape[1] // self.groups, self.kernel[1])) for p in parts], axis=2)

    def gradient(self, g, start, stop):
        """Images start:stop of the NCHW gradient ``g`` laid out like a product of the operands:
        (n, groups, O / groups, Ho * width), zero in the extra columns."""
        n, o, (ho, wo) = stop - start, g.shape[1], self.out_hw
        if self.width == wo:
            return g[start:stop].reshape(n, self.groups, o // self.groups, self.pixels)
        if self.grad is None:
            self.grad = self.xp.zeros((n, o, ho, self.width), g.dtype)
        buf = self.grad[:n]
        buf[..., :wo] = g[start:stop]
        return buf.reshape(n, self.groups, o // self.groups, self.pixels)


def _grad_rows(g, start, stop, groups):
    """Images start:stop of the NCHW gradient ``g`` as (groups, O / groups, n * Ho * Wo) matrices."""
    return g[start:stop].transpose(1, 0, 2, 3).reshape(groups, g.shape[1] // groups, -1)


def _conv_forward(x, w, stride, padding, dilation, groups):
    """Chunk by chunk, the sum of kernel part @ window operand (see ``_Windows``), written straight into
    the NCHW output when its rows are not cropped."""
    o = w.shape[0]
    windows = _Windows(x, tuple(w.shape[2:]), stride, padding, dilation, groups)
    xp, (ho, wo) = windows.xp, windows.out_hw
    out = xp.empty((x.shape[0], o, ho, wo), x.dtype)
    kernels = windows.kernel_parts(w)
    direct = windows.width == wo
    scratch = None
    for start, stop in windows.chunks:
        n = stop - start
        dst = out[start:stop].reshape(n, groups, o // groups, ho, wo)
        for k, (kernel, cols) in enumerate(zip(kernels, windows.operands(start, stop))):
            if direct and k == 0:
                xp.matmul(kernel, cols, out=dst.reshape(n, groups, o // groups, windows.pixels))
                continue
            if scratch is None:
                scratch = xp.empty((windows.chunks[0][1], groups, o // groups, windows.pixels), x.dtype)
            product = xp.matmul(kernel, cols, out=scratch[:n]).reshape(n, groups, o // groups, ho, windows.width)
            if k == 0:
                dst[...] = product[..., :wo]
            else:
                dst += product[..., :wo]
    return out


def _conv_weight_grad_forward(x, g, kernel, stride, padding, dilation, groups):
    """The weight gradient: per kernel part, the gradient @ window operand.T summed over images."""
    windows = _Windows(x, kernel, stride, padding, dilation, groups)
    xp = windows.xp
    totals = [None] * windows.parts
    for start, stop in windows.chunks:
        grad = windows.gradient(g, start, stop)
        for k, cols in enumerate(windows.operands(start, stop)):
            part = xp.matmul(grad, cols.swapaxes(-1, -2)).sum(axis=0)  # (groups, O / groups, K)
            totals[k] = part if totals[k] is None else xp.add(totals[k], part, out=totals[k])
    return windows.kernel_from_parts(totals)


def _flipped(w, groups):
    """The kernel of the transposed convolution: (C, O / groups, kh, kw), rotated by 180 degrees."""
    o, cg, kh, kw = w.shape
    return (w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
            .reshape(groups * cg, o // groups, kh, kw))


def _transposed_padding(kernel, padding, dilation):
    """Padding that makes a stride-1 transposed convolution a plain one (None where it would be negative)."""
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi) for k, (lo, hi), d in zip(kernel, padding, dilation))
    return pads if min(min(p) for p in pads) >= 0 else None


def _conv_input_grad_forward(g, w, size, stride, padding, dilation, groups):
    """The input gradient (a transposed convolution). Stride 1: a convolution of the padded gradient
    with the flipped kernel; else per chunk kernel.T @ gradient, added back at its windows (col2im)."""
    kernel = tuple(w.shape[2:])
    pads = _transposed_padding(kernel, padding, dilation) if stride == (1, 1) else None
    if pads is not None:
        return _conv_forward(g, _flipped(w, groups), stride, pads, dilation, groups)
    xp = _device.array_module(g)
    n, o, ho, wo = g.shape
    c = w.shape[1] * groups
    out = xp.empty((c, n) + tuple(size), g.dtype)
    wt = w.transpose(0, 2, 3, 1).reshape(groups, o // groups, -1).transpose(0, 2, 1)  # rows (i, j, c): col2im's
    for start, stop in _chunks(n, c * kernel[0] * kernel[1] * ho * wo * g.itemsize):
        cols = xp.matmul(wt, _grad_rows(g, start, stop, groups)).reshape((groups, wt.shape[1], stop - start, ho, wo))
        image = _col2im_forward(cols, size, kernel, stride, padding, dilation, groups)
        out[:, start:stop] = image.transpose(1, 0, 2, 3)
    return out.transpose(1, 0, 2, 3)


def _conv_infer(x, w, stride, padding, dilation, groups):
    xs, ws = infer.shape_of(x), infer.shape_of(w)
    _check_4d("conv2d", xs)
    if len(ws) != 4:
        raise ShapeError(f"conv2d: expected a 4-D weight (O, C/groups, kh, kw), got shape {list(ws)}")
    n, c, h, w_ = xs
    if infer.known(c) and c != ws[1] * groups:
        raise ShapeError(f"conv2d: Given groups={groups}, weight of size {list(ws)}, expected input{list(xs)} to "
                         f"have {ws[1] * groups} channels, but got {c} channels instead")
    ho, wo = _check_geometry("conv2d", h, w_, tuple(ws[2:]), stride, padding, dilation)
    return (n, ws[0], ho, wo), infer.first_dtype((x, w))


def _conv_input_grad_infer(g, w, size, stride, padding, dilation, groups):
    gs, ws = infer.shape_of(g), infer.shape_of(w)
    _check_4d("conv2d_input_grad", gs)
    return (gs[0], ws[1] * groups) + tuple(size), infer.first_dtype((g, w))


def _conv_weight_grad_infer(x, g, kernel, stride, padding, dilation, groups):
    xs, gs = infer.shape_of(x), infer.shape_of(g)
    _check_4d("conv2d_weight_grad", xs)
    _check_4d("conv2d_weight_grad", gs)
    cg = xs[1] // groups if infer.known(xs[1]) else None
    return (gs[1], cg) + tuple(kernel), infer.first_dtype((x, g))


def conv(x, w, stride, padding, dilation, groups):
    """Primitive: conv2d without bias (geometry normalised as for :func:`im2col`)."""
    return bind(conv_op, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_input_grad(g, w, size, stride, padding, dilation, groups):
    return bind(conv_input_grad_op, g, w, size=tuple(size), stride=stride, padding=padding, dilation=dilation,
                groups=groups)


def conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    return bind(conv_weight_grad_op, x, g, kernel=tuple(kernel), stride=stride, padding=padding,
                dilation=dilation, groups=groups)


conv_op = defop(
    "conv2d",
    _conv_forward,
    _conv_infer,
    vjp=(lambda g, out, x, w, **geo: conv_input_grad(g, w, tuple(x.shape[2:]), **geo),
         lambda g, out, x, w, **geo: conv_weight_grad(x, g, tuple(w.shape[2:]), **geo)),
    jvp=bilinear_jvp(conv),
    saves={0: (1,), 1: (0,)},
    doc="2-D cross-correlation without bias, im2col + GEMM one cache-sized chunk of images at a time "
        "(host arrays).",
    explain=("conv2d_input_grad(received, {1})", "conv2d_weight_grad({0}, received)"),
)

conv_input_grad_op = defop(
    "conv2d_input_grad",
    _conv_input_grad_forward,
    _conv_input_grad_infer,
    vjp=(lambda g, out, grad, w, size, **geo: conv(g, w, **geo),
         lambda g, out, grad, w, size, **geo: conv_weight_grad(g, grad, tuple(w.shape[2:]), **geo)),
    jvp=bilinear_jvp(conv_input_grad),
    saves={0: (1,), 1: (0,)},
    doc="The input gradient of conv2d (a transposed convolution) of the gradient and the kernel.",
    explain=("conv2d(received, {1})", "conv2d_weight_grad(received, {0})"),
)

conv_weight_grad_op = defop(
    "conv2d_weight_grad",
    _conv_weight_grad_forward,
    _conv_weight_grad_infer,
    vjp=(lambda g, out, x, grad, kernel, **geo: conv_input_grad(grad, g, tuple(x.shape[2:]), **geo),
         lambda g, out, x, grad, kernel, **geo: conv(x, g, **geo)),
    jvp=bilinear_jvp(conv_weight_grad),
    saves={0: (1,), 1: (0,)},
    doc="The weight gradient of conv2d: each window of the input times the gradient at its output pixel.",
    explain=("conv2d_input_grad({1}, received)", "conv2d({0}, received)"),
)


# --- convolution -----------------------------------------------------------------------------------
def _conv_padding(padding, kernel, stride, dilation):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):  # a RuntimeError in F.conv2d (as PyTorch's), a ValueError too
                raise ShapeError("padding='same' is not supported for strided convolutions")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))  # PyTorch puts the odd pixel at the end
            return tuple(out)
        raise ShapeError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"negative padding is not supported, got {padding}")
    return ((ph, ph), (pw, pw))


def _columns_outgrow_cache(x, weight, ho, wo):
    """Whether the whole batch's im2col columns outgrow the cache: then a host convolution builds them
    chunk by chunk inside the conv2d primitive; smaller ones are cheaper as one im2col kept for backward."""
    n, c = x.shape[:2]
    if not (infer.known(n) and infer.known(c) and infer.known(ho) and infer.known(wo)):
        return False
    return n * c * weight.shape[2] * weight.shape[3] * ho * wo * x.element_size() > _CACHE_BYTES


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, PyTorch's ``F.conv2d``: input (N, C, H, W) or (C, H, W), weight
    (O, C/groups, kh, kw). im2col + one matmul, or the chunked conv2d primitive (see the module docstring)."""
    input, weight = as_tensor_arg(input, "conv2d"), as_tensor_arg(weight, "conv2d", "weight")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), got shape "
                         f"{list(weight.shape)}")
    if input.ndim == 3:
        out = conv2d(reshape(input, (1,) + tuple(input.shape)), weight, bias, stride, padding, dilation, groups)
        return reshape(out, tuple(out.shape[1:]))
    if input.ndim != 4:
        raise ShapeError(f"conv2d: expected a 3-D (unbatched) or 4-D (batched) input, got shape {list(input.shape)}")
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise DTypeError(f"conv2d: input ({input.dtype}), weight ({weight.dtype})"
                         + (f" and bias ({bias.dtype})" if bias is not None else "") + " must have the same dtype")
    groups = int(groups)
    o, cg, kh, kw = (int(s) for s in weight.shape)
    n, c, h, w = input.shape
    if groups < 1 or o % groups:
        raise ShapeError(f"conv2d: out_channels ({o}) of weight {list(weight.shape)} must be divisible by "
                         f"groups={groups}")
    if infer.known(c) and c != cg * groups:
        raise ShapeError(f"conv2d: Given groups={groups}, weight of size {list(weight.shape)}, expected "
                         f"input{list(input.shape)} to have {cg * groups} channels, but got {c} channels instead")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ShapeError(f"conv2d: bias of shape {list(bias.shape)} does not match out_channels={o}")
    kernel = (kh, kw)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _conv_padding(padding, kernel, stride, dilation)
    ho, wo = _check_geometry("conv2d", h, w, kernel, stride, pads, dilation)
    host = input.device.type == "cpu"
    if host and _columns_outgrow_cache(input, weight, ho, wo):
        out = conv(input, weight, stride, pads, dilation, groups)  # im2col chunk by chunk: cache-sized GEMMs
        return out if bias is None else out + reshape(bias, (o, 1, 1))
    # On the host the columns (and so the output and the gradients) keep the batch innermost in memory:
    # every window copy and col2im add then moves Wo * N values at once, not rows of Wo.
    cols = im2col(input, kernel, stride, pads, dilation, groups, batch_last=host)  # (G, kh*kw*Cg, N, Ho, Wo)
    kkcg = cols.shape[1]
    pixels = (ho, wo, -1) if host else (-1, ho, wo)  # their memory order
    mats = reshape(permute(cols, (0, 1, 3, 4, 2)) if host else cols, (groups, kkcg, -1))
    wmat = permute(weight, (0, 2, 3, 1))  # (O, kh, kw, Cg): the columns' row order
    if groups == 1:
        out = reshape(wmat, (o, kkcg)) @ reshape(mats, (kkcg, -1))  # (O, pixels): one GEMM
    else:
        out = reshape(reshape(wmat, (groups, o // groups, kkcg)) @ mats, (o, -1))
    if bias is not None:
        out = out + reshape(bias, (o, 1))
    return permute(reshape(out, (o,) + pixels), (3, 0, 1, 2) if host else (1, 0, 2, 3))


# --- pooling primitives ---------------------------------------------------------------------------
def _max_pool_forward(x, kernel, stride, padding, dilation):
    if (cuda := _device.kernels(x)) is not None:  # a GPU: values and where they are, in one pass
        return cuda.max_pool(x, kernel, stride, padding, dilation)[0]
    n, c, h, w = x.shape
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    padded = _padded(x, padding, -np.inf)
    out = None
    for i, j in _offsets(kernel):
        win = padded[_window(i, j, kernel, stride, dilation, (ho, wo))]
        if out is None:
            out = win.copy(order="K")
        else:
            np.maximum(out, win, out=out)
    return out


def _argmax_forward(x, out, kernel, stride, padding, dilation, flat):
    """Kernel offset (or, with ``flat``, PyTorch's flat h*W+w input index) of each window's first max.

    The offset of the first match is the number of leading offsets that do not match, which is
    counted with whole-array boolean ops (no masked assignment, which numpy does slowly).
    """
    if (cuda := _device.kernels(x)) is not None:  # a GPU: the one-pass kernel
        return cuda.max_pool(x, kernel, stride, padding, dilation, flat)[1]
    n, c, h, w = x.shape
    ho, wo = out.shape[2:]
    padded = _padded(x, padding, -np.inf)
    offsets = _offsets(kernel)
    dtype = np.int8 if len(offsets) < 127 else np.int32
    nan = np.isnan(out)
    has_nan = bool(nan.any())
    idx = None
    missed = None
    for i, j in offsets[:-1]:
        win = padded[_window(i, j, kernel, stride, dilation, (ho, wo))]
        miss = win != out
        if has_nan:  # a NaN in the window is its maximum (np.maximum propagates it): route to it
            miss &= ~(np.isnan(win) & nan)
        if missed is None:
            missed = miss
            idx = miss.astype(dtype)
        else:
            missed &= miss
            idx += missed
    if idx is None:
        idx = _device.array_module(out).zeros(out.shape, dtype)
    if not flat:
        return idx
    (pt, _), (pl, _) = padding
    ki, kj = np.divmod(idx.astype(np.int64), kernel[1])
    xp = _device.array_module(out)
    rows = xp.arange(ho).reshape(ho, 1) * stride[0] - pt + ki * dilation[0]
    cols = xp.arange(wo) * stride[1] - pl + kj * dilation[1]
    return rows * w + cols


def _select(hit, values, finite):
    """``values`` where ``hit`` else 0: a multiplication (numpy's masked select is ~15x slower), or
    np.where when non-finite values must not leak NaN (inf * 0) into unselected places."""
    return values * hit if finite else np.where(hit, values, values.dtype.type(0))


def _pool_scatter_forward(g, idx, size, kernel, stride, padding, dilation):
    n, c, ho, wo = g.shape
    h, w = size
    order = _order(idx)
    # laid out like the pooled input (idx has its layout): the gradient's next consumers read it so
    buf = _padded_zeros(_device.array_module(g), n, c, h, w, padding, g.dtype, order,
                        fill=None if _tiles(size, (ho, wo), kernel, stride, padding, dilation) else 0)
    g = _in_layout(g, order)  # the passes below then walk g, idx and buf in step
    assign = _disjoint(kernel, stride, dilation)
    finite = bool(np.isfinite(g).all())
    for k, (i, j) in enumerate(_offsets(kernel)):
        dst = buf[_window(i, j, kernel, stride, dilation, (ho, wo))]
        hit = idx == k
        if assign and finite:
            np.multiply(g, hit, out=dst)
        elif assign:
            dst[...] = _select(hit, g, False)
        else:
            dst += _select(hit, g, finite)
    return _crop(buf, padding, h, w)


def _pool_gather_forward(x, idx, kernel, stride, padding, dilation):
    ho, wo = idx.shape[2:]
    padded = _padded(x, padding, 0)
    finite = bool(np.isfinite(x).all())
    out = None
    for k, (i, j) in enumerate(_offsets(kernel)):
        picked = _select(idx == k, padded[_window(i, j, kernel, stride, dilation, (ho, wo))], finite)
        out = picked if out is None else np.add(out, picked, out=out)
    return out


def _pool_sum_forward(x, kernel, stride, padding, dilation):
    n, c, h, w = x.shape
    ho, wo = _out_hw(h, w, kernel, stride, padding, dilation)
    padded = _padded(x, padding, 0)
    out = None
    for i, j in _offsets(kernel):
        win = padded[_window(i, j, kernel, stride, dilation, (ho, wo))]
        if out is None:
            out = win.copy(order="K")
        else:
            out += win
    return out


def _pool_sum_t_forward(g, size, kernel, stride, padding, dilation):
    n, c, ho, wo = g.shape
    h, w = size
    buf = _padded_zeros(_device.array_module(g), n, c, h, w, padding, g.dtype, _order(g))
    assign = _disjoint(kernel, stride, dilation)
    for i, j in _offsets(kernel):
        dst = buf[_window(i, j, kernel, stride, dilation, (ho, wo))]
        if assign:
            dst[...] = g
        else:
            dst += g
    return _crop(buf, padding, h, w)


def _pool_infer(name):
    def rule(x, kernel, stride, padding, dilation, **_):
        shape = infer.shape_of(x)
        _check_4d(name, shape)
        n, c, h, w = shape
        ho, wo = _check_geometry(name, h, w, kernel, stride, padding, dilation)
        return (n, c, ho, wo), infer.dtype_of(x)

    return rule


def _argmax_infer(x, out, kernel, stride, padding, dilation, flat):
    shape, _ = _pool_infer("max_pool2d")(x, kernel, stride, padding, dilation)
    n_offsets = kernel[0] * kernel[1]
    return shape, np.dtype(np.int64 if flat else (np.int8 if n_offsets < 127 else np.int32))


def _scatter_infer(name):
    def rule(g, *rest, size, kernel, stride, padding, dilation):
        shape = infer.shape_of(g)
        _check_4d(name, shape)
        n, c, ho, wo = shape
        expect = _out_hw(*size, kernel, stride, padding, dilation)
        if all(infer.known(v) for v in (ho, wo) + expect) and (ho, wo) != expect:
            raise ShapeError(f"{name}: gradient of shape {list(shape)} does not match the {expect[0]} x {expect[1]} "
                             f"windows of an image of size {size[0]} x {size[1]}")
        return (n, c) + tuple(size), infer.dtype_of(g)

    return rule


def _max_pool_vjp(g, out, x, **geo):
    return pool_scatter(g, bind(argmax_op, x, out, flat=False, **geo), tuple(x.shape[2:]), **geo)


max_pool_op = defop(
    "max_pool2d",
    _max_pool_forward,
    _pool_infer("max_pool2d"),
    vjp=(_max_pool_vjp,),
    jvp=lambda tangents, out, x, **geo: pool_gather(tangents[0], bind(argmax_op, x, out, flat=False, **geo), **geo),
    saves=(0,),
    saves_output=True,
    doc="Window maxima (padding counts as -inf).",
    explain=("received routed to the maximum of each window (pool_scatter)",),
)

argmax_op = defop(
    "max_pool2d_argmax",
    _argmax_forward,
    _argmax_infer,
    doc="Which element of each window is its (first) maximum: a kernel offset, or PyTorch's flat index.",
)

pool_scatter_op = defop(
    "pool_scatter",
    _pool_scatter_forward,
    _scatter_infer("pool_scatter"),
    vjp=(lambda g, out, grad, idx, size, **geo: pool_gather(g, idx, **geo), None),
    jvp=LINEAR,
    saves=(1,),
    doc="zeros(N, C, *size) with each value added at the window element that idx selects.",
    explain=("received read at the selected window elements (pool_gather)", "(index: no gradient)"),
)

pool_gather_op = defop(
    "pool_gather",
    _pool_gather_forward,
    lambda x, idx, **geo: (infer.shape_of(idx), infer.dtype_of(x)),
    vjp=(lambda g, out, x, idx, **geo: pool_scatter(g, idx, tuple(x.shape[2:]), **geo), None),
    jvp=LINEAR,
    saves=(1,),
    doc="The window element that idx selects, per window: the adjoint of pool_scatter.",
    explain=("received added at the selected window elements (pool_scatter)", "(index: no gradient)"),
)

pool_sum_op = defop(
    "pool_sum",
    _pool_sum_forward,
    _pool_infer("pool_sum"),
    vjp=(lambda g, out, x, **geo: pool_sum_t(g, tuple(x.shape[2:]), **geo),),
    jvp=LINEAR,
    saves=(),
    doc="Window sums (zero padding).",
    explain=("received added to every element of its window (pool_sum_t)",),
)

pool_sum_t_op = defop(
    "pool_sum_t",
    _pool_sum_t_forward,
    _scatter_infer("pool_sum_t"),
    vjp=(lambda g, out, grad, size, **geo: pool_sum(g, **geo),),
    jvp=LINEAR,
    saves=(),
    doc="The adjoint of pool_sum: each value added to every element of its window.",
    explain=("received summed over each window (pool_sum)",),
)


def pool_scatter(g, idx, size, kernel, stride, padding, dilation):
    return bind(pool_scatter_op, g, idx, size=tuple(size), kernel=kernel, stride=stride, padding=padding,
                dilation=dilation)


def pool_gather(x, idx, kernel, stride, padding, dilation):
    return bind(pool_gather_op, x, idx, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def pool_sum(x, kernel, stride, padding, dilation):
    return bind(pool_sum_op, x, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def pool_sum_t(g, size, kernel, stride, padding, dilation):
    return bind(pool_sum_t_op, g, size=tuple(size), kernel=kernel, stride=stride, padding=padding,
                dilation=dilation)


# --- pooling functions ----------------------------------------------------------------------------
def _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalised (kernel, stride, padding pairs, dilation) with PyTorch's checks and ceil_mode sizes."""
    kernel = _pair(kernel_size, "kernel_size", op)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else _pair(stride, "stride", op)
    pad = _pair(padding, "padding", op)
    dilation = _pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be greater than zero, got kernel_size="
                         f"{kernel}, stride={stride}, dilation={dilation}")
    for p, k, d in zip(pad, kernel, dilation):
        if p < 0 or p > (d * (k - 1) + 1) // 2:
            raise ValueError(f"{op}: pad should be at most half of effective kernel size, but got pad={p}, "
                             f"kernel_size={k} and dilation={d}")
    h, w = input.shape[-2:]
    pads = []
    for size, k, s, p, d in zip((h, w), kernel, stride, pad, dilation):
        if not infer.known(size):
            pads.append((p, p))
            continue
        span = size + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ShapeError(f"{op}: output size is too small: input {size} with padding {p} is smaller than the "
                             f"effective kernel size {d * (k - 1) + 1} (input shape {list(input.shape)})")
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside input or left pad
            out -= 1
        pads.append((p, (out - 1) * s + d * (k - 1) + 1 - size - p))
    return kernel, stride, tuple(pads), dilation


def _batched(input, op):
    input = as_tensor_arg(input, op)
    if input.ndim == 3:
        return reshape(input, (1,) + tuple(input.shape)), True
    if input.ndim != 4:
        raise ShapeError(f"{op}: expected a 3-D (unbatched) or 4-D (batched) input, got shape {list(input.shape)}")
    return input, False


def _unbatched(out, squeeze):
    return reshape(out, tuple(out.shape[1:])) if squeeze else out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """PyTorch's ``F.max_pool2d``; with ``return_indices`` also the flat (h * W + w) argmax indices."""
    x, squeeze = _batched(input, "max_pool2d")
    if x.dtype.is_floating_point is False:
        raise DTypeError(f"max_pool2d: expected a floating point input, got {x.dtype}")
    kernel, stride, pads, dilation = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation,
                                                    ceil_mode)
    geo = dict(kernel=kernel, stride=stride, padding=pads, dilation=dilation)
    out = bind(max_pool_op, x, **geo)
    if not return_indices:
        return _unbatched(out, squeeze)
    indices = bind(argmax_op, x.detach(), out.detach(), flat=True, **geo)
    return _unbatched(out, squeeze), _unbatched(indices, squeeze)


def _window_counts(k, s, pad_lo, out, lo, hi):
    """How many positions of each window along one axis fall inside [lo, hi) (input coordinates)."""
    starts = np.arange(out) * s - pad_lo
    return np.clip(np.minimum(starts + k, hi) - np.maximum(starts, lo), 0, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """PyTorch's ``F.avg_pool2d``: window sums over zero padding divided by the window count."""
    x, squeeze = _batched(input, "avg_pool2d")
    kernel, stride, pads, dilation = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    geo = dict(kernel=kernel, stride=stride, padding=pads, dilation=dilation)
    total = pool_sum(x, **geo)
    if divisor_override:
        return _unbatched(total / divisor_override, squeeze)
    h, w = x.shape[2:]
    ho, wo = total.shape[2:]
    counts = []
    for size, k, s, (lo, _), out in zip((h, w), kernel, stride, pads, (ho, wo)):
        if count_include_pad:  # windows are clipped to the padded input (ceil_mode can overhang it)
            p = lo
            counts.append(_window_counts(k, s, lo, out, -p, size + p))
        else:
            counts.append(_window_counts(k, s, lo, out, 0, size))
    divisor = np.outer(counts[0], counts[1])
    if np.all(divisor == kernel[0] * kernel[1]):
        return _unbatched(total / (kernel[0] * kernel[1]), squeeze)
    divisor = as_tensor_arg(divisor.astype(_dtype.to_numpy_dtype(total.dtype))).to(total.device)
    return _unbatched(total / divisor, squeeze)

