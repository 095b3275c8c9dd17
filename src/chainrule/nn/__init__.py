"""Neural-network building blocks with PyTorch's API: ``Module``, layers, losses, ``functional``, ``init``."""

from .._missing import module_getattr
from . import functional, init, parallel, utils  # noqa: F401
from .activation import (
                         ELU,
                         GELU,
                         Hardtanh,
                         LeakyReLU,
                         LogSigmoid,
                         LogSoftmax,
                         PReLU,
                         ReLU,
                         ReLU6,
                         Sigmoid,
                         SiLU,
                         Softmax,
                         Softmin,
                         Softplus,
                         Tanh,
)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, ParameterList, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .flatten import Flatten, Unflatten
from .layers_more import (
                         GLU,
                         SELU,
                         AvgPool1d,
                         ConstantPad2d,
                         CosineEmbeddingLoss,
                         CosineSimilarity,
                         GroupNorm,
                         Hardsigmoid,
                         Hardswish,
                         MarginRankingLoss,
                         MaxPool1d,
                         Mish,
                         MultiLabelSoftMarginLoss,
                         PairwiseDistance,
                         ParameterDict,
                         ReflectionPad2d,
                         ReplicationPad2d,
                         SoftMarginLoss,
                         Softsign,
                         Tanhshrink,
                         Threshold,
                         TripletMarginLoss,
                         ZeroPad2d,
)
from .linear import Embedding, Identity, Linear
from .loss import (
                         BCELoss,
                         BCEWithLogitsLoss,
                         CrossEntropyLoss,
                         HuberLoss,
                         KLDivLoss,
                         L1Loss,
                         MSELoss,
                         NLLLoss,
                         SmoothL1Loss,
)
from .module import Module
from .normalization import LayerNorm
from .parameter import Buffer, Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .transformer import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer
from .upsampling import Upsample

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Buffer",
    "Conv2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU", "Embedding", "Flatten", "Hardtanh", "HuberLoss",
    "Identity", "KLDivLoss", "L1Loss", "LeakyReLU", "Linear", "LogSigmoid", "LogSoftmax", "MSELoss", "MaxPool2d",
    "Module", "ModuleDict", "ModuleList", "NLLLoss", "PReLU", "Parameter", "ParameterList", "ReLU", "ReLU6",
    "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax", "Softmin", "Softplus", "Tanh", "Unflatten",
    "functional", "init", "parallel", "utils",
    "Conv1d", "ConvTranspose2d", "GELU", "GRU", "GRUCell", "LSTM", "LSTMCell", "LayerNorm", "MultiheadAttention", "RNN",
    "RNNBase", "RNNCell", "RNNCellBase", "TransformerEncoder", "TransformerEncoderLayer", "Upsample",
    "SELU", "AvgPool1d", "ConstantPad2d", "CosineSimilarity", "Hardsigmoid",
    "Hardswish", "MaxPool1d", "Mish", "PairwiseDistance", "ParameterDict", "Softsign", "Tanhshrink", "Threshold",
    "ZeroPad2d", "GLU", "CosineEmbeddingLoss", "GroupNorm", "MarginRankingLoss", "MultiLabelSoftMarginLoss",
    "ReflectionPad2d", "ReplicationPad2d", "SoftMarginLoss", "TripletMarginLoss",
]

__getattr__ = module_getattr("chainrule.nn", "torch.nn")
