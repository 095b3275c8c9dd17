"""``chainrule.backends``: PyTorch's backend switches that tutorials touch (``backends.mps.is_available()``,
``backends.cudnn.benchmark = True``); chainrule has no MPS or cuDNN backend, so they report and change nothing."""

from types import SimpleNamespace


def _false():
    return False


mps = SimpleNamespace(is_available=_false, is_built=_false)
cudnn = SimpleNamespace(is_available=_false, enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
cuda = SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False))  # CuPy's float32 matmuls do not use TF32
