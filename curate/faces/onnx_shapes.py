"""Free an ONNX model's fixed batch, height and width dimensions, editing its protobuf bytes directly.

CenterFace's file declares its input and outputs as 10x3x32x32; ONNX Runtime checks inputs against that,
so the detector needs those dimensions free. The ``onnx`` package could do the edit, but importing it costs
about 0.65 s per process (its ``ml_dtypes`` extension), more than the faces stage spends on a dozen
images. This module walks the protobuf wire format instead: it rewrites dimensions 0, 2 and 3 of the
graph's real inputs (not the initialisers old exporters also list as inputs) and of its outputs as named
dimensions, drops the graph's recorded intermediate shapes (stale once the input size is free), and copies
every other byte as it is.

Field numbers are those of ``onnx/onnx.proto``: ModelProto.graph 7; GraphProto.initializer 5, input 11,
output 12, value_info 13; TensorProto.name 8; ValueInfoProto.name 1, type 2; TypeProto.tensor_type 1;
TypeProto.Tensor.shape 2; TensorShapeProto.dim 1; Dimension.dim_value 1, dim_param 2.
"""

from __future__ import annotations

from collections.abc import Callable

Field = tuple[int, int, bytes]  # field number, wire type, payload (a varint's own bytes, or the contents)

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 5, 11, 12, 13
_TENSOR_NAME = 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM = 1, 2, 1
_DIM_VALUE, _DIM_PARAM = 1, 2
FREE_DIMS = {0: "batch", 2: "height", 3: "width"}  # NCHW: every dimension but the channels


def free_image_dims(model: bytes) -> bytes:
    """``model`` (a serialised ModelProto), its inputs' and outputs' :data:`FREE_DIMS` named, not fixed."""
    return _encode([(n, w, _free_graph(p) if n == _MODEL_GRAPH else p) for n, w, p in _decode(model)])


def _free_graph(graph: bytes) -> bytes:
    fields = _decode(graph)
    initialisers = {_string(p, _TENSOR_NAME) for n, _, p in fields if n == _GRAPH_INITIALIZER}
    kept = []
    for number, wire, payload in fields:
        if number == _GRAPH_VALUE_INFO:
            continue
        if number == _GRAPH_OUTPUT or (
            number == _GRAPH_INPUT and _string(payload, _VALUE_NAME) not in initialisers
        ):
            payload = _edit(payload, _VALUE_TYPE, lambda t: _edit(t, _TYPE_TENSOR, _free_tensor_type))
        kept.append((number, wire, payload))
    return _encode(kept)


def _free_tensor_type(tensor_type: bytes) -> bytes:
    return _edit(tensor_type, _TENSOR_SHAPE, _free_shape)


def _free_shape(shape: bytes) -> bytes:
    fields, dims = [], 0
    for number, wire, payload in _decode(shape):
        if number == _SHAPE_DIM:
            if dims in FREE_DIMS:
                others = [f for f in _decode(payload) if f[0] not in (_DIM_VALUE, _DIM_PARAM)]
                payload = _encode([(_DIM_PARAM, _LENGTH, FREE_DIMS[dims].encode()), *others])
            dims += 1
        fields.append((number, wire, payload))
    return _encode(fields)


def _edit(message: bytes, number: int, change: Callable[[bytes], bytes]) -> bytes:
    """``message`` with every length-delimited field ``number`` replaced by ``change(field)``."""
    return _encode([(n, w, change(p) if n == number and w == _LENGTH else p) for n, w, p in _decode(message)])


def _string(message: bytes, number: int) -> str | None:
    """The first string field ``number`` of ``message`` (None when absent)."""
    for n, w, payload in _decode(message):
        if n == number and w == _LENGTH:
            return payload.decode("utf-8", "replace")
    return None


def _decode(message: bytes) -> list[Field]:
    """The fields of one message, in order."""
    fields, at = [], 0
    while at < len(message):
        key, at = _read_varint(message, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            start = at
            _, at = _read_varint(message, at)
            payload = message[start:at]
        elif wire == _LENGTH:
            size, at = _read_varint(message, at)
            payload, at = message[at : at + size], at + size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            payload, at = message[at : at + size], at + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        if at > len(message):
            raise ValueError("truncated protobuf message")
        fields.append((number, wire, payload))
    return fields


def _encode(fields: list[Field]) -> bytes:
    parts = []
    for number, wire, payload in fields:
        parts.append(_varint(number << 3 | wire))
        if wire == _LENGTH:
            parts.append(_varint(len(payload)))
        parts.append(payload)
    return b"".join(parts)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
