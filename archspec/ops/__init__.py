"""Every op archspec knows, one class per op; importing this package fills the registry.

`from archspec import ops` gives each op class by name (`ops.Conv2d(out_channels=8, kernel=3)`)
for building a `Network` in Python.
"""

from archspec.ops import (
    activation,
    attention,
    axes,
    borders,
    channels,
    conv,
    elementwise,
    layer_norm,
    learned,
    linear,
    merge,
    norm,
    pooling,
    resample,
    structure,
    transposed,
)
from archspec.ops.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from archspec.ops.attention import MultiheadAttention, PatchMerging, ShiftedWindowAttention
from archspec.ops.axes import Permute, Reshape, Select, Slice, Transpose, View
from archspec.ops.base import GLOBAL, POINTWISE, Op, Shape, TorchCall, Window
from archspec.ops.borders import Crop, Pad
from archspec.ops.channels import (
    ChannelShuffle,
    Chunk,
    Split,
)
from archspec.ops.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
)
from archspec.ops.elementwise import (
    Dropout2d,
    Mean,
    Scale,
    StochasticDepth,
)
from archspec.ops.layer_norm import LayerNorm
from archspec.ops.learned import Parameter
from archspec.ops.linear import (
    Linear,
)
from archspec.ops.merge import (
    Add,
    Concat,
    Mul,
)
from archspec.ops.norm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm,
    LocalResponseNorm,
)
from archspec.ops.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from archspec.ops.registry import OPS, build_op, lookup, register
from archspec.ops.resample import (
    PixelShuffle,
    PixelUnshuffle,
    Upsample,
)
from archspec.ops.structure import (
    Dropout,
    Flatten,
    Identity,
)
from archspec.ops.transposed import ConvTranspose2d

__all__ = [
    "ELU",
    "GELU",
    "GLOBAL",
    "OPS",
    "POINTWISE",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool2d",
    "Add",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "ChannelShuffle",
    "Chunk",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose2d",
    "Crop",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "GroupNorm",
    "Hardsigmoid",
    "Hardswish",
    "Identity",
    "InstanceNorm",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "Mean",
    "Mish",
    "Mul",
    "MultiheadAttention",
    "Op",
    "PReLU",
    "Pad",
    "Parameter",
    "PatchMerging",
    "Permute",
    "PixelShuffle",
    "PixelUnshuffle",
    "ReLU",
    "ReLU6",
    "Reshape",
    "Scale",
    "Select",
    "Shape",
    "ShiftedWindowAttention",
    "SiLU",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Softplus",
    "Split",
    "StochasticDepth",
    "Tanh",
    "TorchCall",
    "Transpose",
    "Upsample",
    "View",
    "Window",
    "activation",
    "attention",
    "axes",
    "borders",
    "build_op",
    "channels",
    "conv",
    "elementwise",
    "layer_norm",
    "learned",
    "linear",
    "lookup",
    "merge",
    "norm",
    "pooling",
    "register",
    "resample",
    "structure",
    "transposed",
]
