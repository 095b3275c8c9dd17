"""Summary protobufs for TensorBoard (PyTorch's ``torch.utils.tensorboard.summary``).

Each function returns a ``Summary`` message built from TensorBoard's own protobuf classes; the
:class:`~chainrule.utils.tensorboard.SummaryWriter` wraps it in an ``Event`` and TensorBoard's record
writer puts it on disk.
"""

import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_DOUBLE, DT_FLOAT, DT_STRING
from tensorboard.plugins.scalar import metadata as _scalar_metadata
from tensorboard.plugins.text import metadata as _text_metadata

from ...tensor import Tensor

__all__ = ["scalar", "histogram", "histogram_raw", "make_histogram", "text", "default_bins", "to_numpy"]


def to_numpy(x):
    """A numpy array from a chainrule tensor, an array, a number or a (nested) list."""
    if isinstance(x, Tensor):
        return x.detach().numpy()
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy") and callable(x.numpy):  # a tensor of another library (a torch tensor, say)
        return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x.numpy())
    return np.asarray(x)


def _scalar_value(tag, value):
    array = to_numpy(value)
    if array.size != 1:
        raise ValueError(f"add_scalar: the value for {tag!r} must hold one element, got shape {list(array.shape)}")
    return array.reshape(()).item()


def scalar(name, scalar, collections=None, new_style=False, double_precision=False):
    """A scalar summary: ``simple_value`` (the classic form), or with ``new_style`` a 0-d tensor tagged
    for the scalars plugin (``double_precision`` keeps it float64)."""
    value = _scalar_value(name, scalar)
    if not new_style:
        return Summary(value=[Summary.Value(tag=name, simple_value=float(value))])
    if double_precision:
        tensor = TensorProto(double_val=[float(value)], dtype=DT_DOUBLE, tensor_shape=TensorShapeProto())
    else:
        tensor = TensorProto(float_val=[float(value)], dtype=DT_FLOAT, tensor_shape=TensorShapeProto())
    metadata = _scalar_metadata.create_summary_metadata(display_name=name, description="")
    return Summary(value=[Summary.Value(tag=name, tensor=tensor, metadata=metadata)])


def default_bins():
    """TensorFlow's histogram buckets: edges growing by 10% from 1e-12 to 1e20, mirrored for negative
    values around 0, closed by the largest doubles so every finite value falls in a bucket."""
    edges = []
    v = 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    big = float(np.finfo(np.float64).max)
    return [-big] + [-e for e in reversed(edges)] + [0.0] + edges + [big]


_DEFAULT_BINS = None


def _bins(bins):
    global _DEFAULT_BINS
    if isinstance(bins, str) and bins == "tensorflow":
        if _DEFAULT_BINS is None:
            _DEFAULT_BINS = np.asarray(default_bins())
        return _DEFAULT_BINS
    return bins


def make_histogram(values, bins, max_bins=None):
    """A ``HistogramProto`` of ``values``: numpy's histogram over ``bins`` ('tensorflow' for
    :func:`default_bins`, or anything ``numpy.histogram`` accepts), cut to the non-empty range and
    merged down to at most ``max_bins`` buckets."""
    values = to_numpy(values).astype(np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("add_histogram: the histogram is empty (no values were given)")
    counts, limits = np.histogram(values, bins=_bins(bins))
    if max_bins is not None and len(counts) > max_bins:
        group = -(-len(counts) // int(max_bins))  # merge runs of `group` neighbouring buckets
        short = -len(counts) % group
        counts = np.pad(counts, (0, short)).reshape(-1, group).sum(axis=1)
        limits = np.concatenate([limits[:-1:group], limits[-1:]])
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:  # every value fell outside explicit bins: report the range only
        lo, hi = 0, len(counts) - 1
    else:
        lo, hi = int(nonzero[0]), int(nonzero[-1])
    # bucket i counts values in [limit[i-1], limit[i]); the first bucket (below the lowest edge) is empty
    bucket_limit = limits[lo:hi + 2]
    bucket = np.concatenate([[0], counts[lo:hi + 1]])
    return HistogramProto(
        min=float(values.min()),
        max=float(values.max()),
        num=int(values.size),
        sum=float(values.sum()),
        sum_squares=float(values.dot(values)),
        bucket_limit=[float(x) for x in bucket_limit],
        bucket=[float(x) for x in bucket],
    )


def histogram(name, values, bins="tensorflow", max_bins=None):
    """A histogram summary of ``values`` (see :func:`make_histogram`)."""
    return Summary(value=[Summary.Value(tag=name, histo=make_histogram(values, bins, max_bins))])


def histogram_raw(name, min, max, num, sum, sum_squares, bucket_limits, bucket_counts):  # noqa: A002
    """A histogram summary from statistics computed elsewhere (``bucket_counts[i]`` counts the values
    up to ``bucket_limits[i]``)."""
    if len(bucket_limits) != len(bucket_counts):
        raise ValueError(f"add_histogram_raw: {len(bucket_limits)} bucket limits but {len(bucket_counts)} counts")
    histo = HistogramProto(min=float(min), max=float(max), num=int(num), sum=float(sum),
                           sum_squares=float(sum_squares), bucket_limit=[float(x) for x in bucket_limits],
                           bucket=[float(x) for x in bucket_counts])
    return Summary(value=[Summary.Value(tag=name, histo=histo)])


def text(tag, text):
    """A text summary (markdown, shown by TensorBoard's text plugin under ``tag + '/text_summary'``)."""
    metadata = _text_metadata.create_summary_metadata(display_name=tag, description="")
    tensor = TensorProto(dtype=DT_STRING, string_val=[str(text).encode("utf-8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])
