"""Export models to ONNX: ``chainrule.onnx.export`` with PyTorch's name and signature.

The ``onnx`` package is needed only when exporting (``pip install onnx``); importing this module
(which registers every op's converter on its OpDef) does not import it.

    import chainrule as cr
    from chainrule.models import LeNet5

    model = LeNet5()
    cr.onnx.export(model, cr.randn(1, 1, 32, 32), "lenet.onnx", input_names=["input"],
                   output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
"""

from . import _modules, _ops  # noqa: F401 - registers the converters
from ._export import (
                      DEFAULT_OPSET,
                      MODULES,
                      OnnxExporterError,
                      TrainingMode,
                      UnsupportedOperatorError,
                      converter,
                      export,
                      module_converter,
)

__all__ = ["export", "OnnxExporterError", "UnsupportedOperatorError", "TrainingMode", "DEFAULT_OPSET", "MODULES",
           "converter", "module_converter"]
