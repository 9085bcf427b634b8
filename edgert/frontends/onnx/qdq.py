"""Quantized ONNX (QDQ format) -> edgert's integer IR.

onnxruntime's quantization tools (``quantize_static(..., quant_format=QuantFormat.QDQ)``)
keep every op a float op and wrap it in QuantizeLinear (Q) / DequantizeLinear (DQ) pairs:

    x_q = Q(x)   y = Conv(DQ(x_q), DQ(W_int8), DQ(B_int32))   [Relu]   y_q = Q(y)

This module folds those pairs into the integer ops the TFLite front end produces:

* the output of every Q is an int8 IR tensor with that Q's (scale, zero point); a DQ of it
  is a view of that tensor, not an op; a DQ of an initializer is a quantized constant;
* a float op whose data inputs are all DQ views and whose output goes only into a Q
  (possibly through a Relu, or a Clip to [0, 6] / [-1, 1]: the fused activation) becomes the
  int8 op writing that Q's output. A Relu that onnxruntime removed needs nothing: the output
  zero point sits at the bottom of the int8 range, so saturation is the Relu; one it kept
  on its own (DQ -> Relu -> Q) is a requantization whose saturation clamps the same way;
* a float graph input read by Q becomes a ``quantize`` op; a graph output written by a DQ
  becomes a ``dequantize`` op. Anything else left in float is refused: edgert compiles
  integer-only graphs.

Quantization: activations int8 or uint8 per tensor (uint8 is moved to int8 exactly:
q - 128 with zero point - 128, the same real values and the same integer arithmetic);
weights int8 or int4 (held as int8 values in [-8, 7]), symmetric, per tensor or per output
channel; biases int32 with scale = input scale * weight scale. Scales are the float32 values
of the file.

Ops (QDQ-wrapped ONNX op -> edgert op): Conv (group 1 -> conv2d; group = channels ->
depthwise_conv2d), MatMul / Gemm -> fully_connected, Add, Mul, MaxPool, AveragePool,
GlobalAveragePool -> mean, Reshape / Flatten / Identity -> reshape, Softmax, Sigmoid ->
logistic, Concat, Pad. Where an edgert kernel needs a quantization the file does not give
(the output of softmax and logistic is (1/256, -128); the inputs and output of pools,
reshape, pad and concat share one), the op writes a tensor of the quantization it needs and
a ``quantize`` op (int8 -> int8) moves it to the file's.

Layout as in the float path (edgert.frontends.onnx.float): a 4-D graph input is quantized in
NCHW, then transposed to NHWC (int8); a 4-D graph output is transposed back before it is
dequantized; Flatten / Reshape of an image goes through NCHW order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgert.errors import DAMAGED_ONNX, ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, Op, QuantParams, Tensor, verify
from edgert.ir.activations import activation_named_by
from edgert.ops.common import INT8_MAX, INT8_MIN, activation_range

from ..common import TO_NCHW, TO_NHWC, check_window, same_pad_total, unsupported_summary

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
ACTIVATION_OPS = ("Clip", "Relu")
#: ops of onnxruntime's QOperator format and of dynamic quantization (integer ops of their own)
QOPERATOR_OPS = ("ConvInteger", "DynamicQuantizeLinear", "DynamicQuantizeLSTM", "DynamicQuantizeMatMul",
                 "MatMulInteger", "MatMulIntegerToFloat", "QAttention", "QGemm")
#: the output quantization of edgert's (TFLite's) int8 softmax and logistic
PROB_QUANT = QuantParams(scale=(float(np.float32(1 / 256)),), zero_point=(-128,))
FIX_QDQ = "re-quantize with onnxruntime.quantization.quantize_static(..., quant_format=QuantFormat.QDQ)"
INTEGER_ONLY = ("edgert compiles integer-only QDQ graphs: quantize every op "
                "(quantize_static without nodes_to_exclude or a restricted op_types_to_quantize)")

# onnx.TensorProto element types, by value (onnx is imported lazily, as in the float path)
FLOAT, UINT8, INT8, INT32, UINT4, INT4 = 1, 2, 3, 6, 21, 22


def _is_qoperator(op_type: str) -> bool:
    return op_type.startswith("QLinear") or op_type in QOPERATOR_OPS


def is_quantized(graph) -> bool:
    """Whether the graph holds any quantization op (QDQ or QOperator): then load() reads it."""
    return any(n.op_type in QDQ_OPS or _is_qoperator(n.op_type) for n in graph.node)


def _where(i: int, node) -> str:
    return f"{node.op_type} #{i}" + (f" ({node.name})" if node.name else "")


def refuse_qoperator(graph, path: str) -> None:
    """Raise UnsupportedError naming every QOperator-format node (QLinearConv, MatMulInteger ...).
    Called before shape inference, which does not know onnxruntime's com.microsoft ops."""
    bad = [_where(i, n) for i, n in enumerate(graph.node) if _is_qoperator(n.op_type)]
    if bad:
        raise UnsupportedError(f"{path}: QOperator-format quantized ops: {', '.join(bad)}",
                               FIX_QDQ + " (edgert reads QDQ models)")


def _type_name(elem: int) -> str:
    import onnx

    return onnx.TensorProto.DataType.Name(elem)


@dataclass
class _Act:
    """An int8 IR tensor: the output of a QuantizeLinear, and every DequantizeLinear of it."""

    tensor: str
    quant: QuantParams
    image: bool  # NHWC in the IR, NCHW in ONNX


@dataclass
class _Const:
    """A DequantizeLinear of an initializer: the stored integers and their quantization."""

    values: np.ndarray  # as stored (int4 unpacked into its numpy type)
    elem: int  # onnx element type of the stored integers
    scale: np.ndarray  # float32, scalar or 1-D
    zero_point: np.ndarray  # int64, scalar or 1-D
    axis: int  # normalized; meaningful for a 1-D scale
    name: str


def _to_int8(values, zero_point, elem: int):
    """uint8 -> int8 with the same real values: q - 128, zero point - 128."""
    values = np.asarray(values).astype(np.int64)
    zero_point = np.asarray(zero_point).astype(np.int64)
    if elem == UINT8:
        return values - 128, zero_point - 128
    return values, zero_point


class _Reader:
    """One pass over the nodes in order, building the IR; see the module docstring."""

    def __init__(self, model, path: str):
        from onnx import numpy_helper

        self.path, self.g = path, model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.elems: dict[str, int] = {i.name: i.data_type for i in self.g.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in list(self.g.input) + list(self.g.value_info) + list(self.g.output):
            tt = vi.type.tensor_type
            self.elems.setdefault(vi.name, tt.elem_type)
            if all(d.HasField("dim_value") and d.dim_value > 0 for d in tt.shape.dim):
                self.shapes[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.g.node):
            for name in n.input:
                if name:
                    self.consumers.setdefault(name, []).append(i)
        self.producer = {name: i for i, n in enumerate(self.g.node) for name in n.output}
        self.outputs = {o.name for o in self.g.output}
        self.float_inputs: dict[str, str] = {}  # ONNX graph input -> IR float32 tensor (as ONNX lays it out)
        self.acts: dict[str, _Act] = {}  # Q outputs and DQ views of them, by ONNX name
        self.qconsts: dict[str, _Const] = {}  # DQ views of initializers, by ONNX name
        self.claimed: set[int] = set()  # Relu / Clip / Q nodes translated with the op before them
        self.tensors: dict[str, Tensor] = {}
        self.tensor_count = 0
        self.ops: list[Op] = []
        self.counters: dict[str, int] = {}

    # ------------------------------------------------------------------ IR building

    def new_tensor(self, shape, dtype: DType, quant: QuantParams | None = None, data=None) -> str:
        t = f"t{self.tensor_count}"
        self.tensor_count += 1
        self.tensors[t] = Tensor(t, tuple(int(d) for d in shape), dtype, quant=quant, data=data)
        return t

    def const(self, data: np.ndarray, quant: QuantParams | None = None) -> str:
        data = np.ascontiguousarray(data)
        return self.new_tensor(data.shape, DType.from_numpy(data.dtype), quant, data)

    def emit(self, kind: str, ins: list[str], outs: list[str], attrs: dict, source: str) -> None:
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        self.ops.append(Op(kind, ins, outs, attrs, name=f"{kind}_{n}", source=source))

    def emit_as(self, kind: str, ins: list[str], out: _Act, attrs: dict, source: str, quant: QuantParams) -> None:
        """``kind`` writing ``out``, computed in ``quant`` (what the kernel needs) and moved to
        out's quantization by an int8 -> int8 ``quantize`` where the two differ."""
        if _same_quant(quant, out.quant):
            self.emit(kind, ins, [out.tensor], attrs, source)
            return
        mid = self.new_tensor(self.tensors[out.tensor].shape, DType.I8, quant)
        self.emit(kind, ins, [mid], attrs, source)
        self.emit("quantize", [mid], [out.tensor], {}, source)

    def requantized(self, a: _Act, quant: QuantParams, source: str) -> str:
        """a's tensor in ``quant`` (a itself when it already is)."""
        if _same_quant(a.quant, quant):
            return a.tensor
        t = self.new_tensor(self.tensors[a.tensor].shape, DType.I8, quant)
        self.emit("quantize", [a.tensor], [t], {}, source)
        return t

    # ------------------------------------------------------------------ reading values

    def shape(self, name: str, where: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise UnsupportedError(f"{where}: tensor {name} has no static shape",
                                   "export with static shapes: a fixed batch size of 1")
        return self.shapes[name]

    def constant(self, name: str, where: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise UnsupportedError(f"{where}: the {what} {name} is not a constant",
                                   "edgert compiles static graphs with constant quantization parameters")
        return self.consts[name]

    def act(self, name: str, where: str) -> _Act:
        """The int8 tensor behind a data input of a float op (a DequantizeLinear output)."""
        if name in self.acts:
            return self.acts[name]
        if name in self.float_inputs:
            problem = f"reads the float graph input {name} directly"
        elif name in self.consts or name in self.qconsts:
            problem = f"input {name} is a constant where edgert expects an activation"
        else:
            problem = f"input {name} is float, not the output of a DequantizeLinear"
        raise UnsupportedError(f"{where}: {problem}", INTEGER_ONLY)

    def quant_params(self, node, where: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(scale float32, zero point int64, element type) of a Q or DQ node's inputs 1 and 2."""
        if any(a.name == "block_size" and a.i != 0 for a in node.attribute):
            raise UnsupportedError(f"{where}: blocked quantization (block_size)",
                                   "quantize weights per tensor or per channel")
        scale = np.asarray(self.constant(node.input[1], where, "scale"), dtype=np.float32)
        if len(node.input) > 2 and node.input[2]:
            zp = self.constant(node.input[2], where, "zero point")
            elem = self.elems.get(node.input[2], 0)
        else:
            zp = np.zeros(scale.shape, np.int64)
            out_dtype = next((a.i for a in node.attribute if a.name == "output_dtype"), 0)
            elem = self.elems.get(node.input[0], FLOAT) if node.op_type == "DequantizeLinear" else (out_dtype or UINT8)
        zp = np.asarray(zp).astype(np.int64)
        if zp.size == 1 and scale.size == 1:
            zp = zp.reshape(scale.shape)
        if zp.shape != scale.shape:
            raise UnsupportedError(f"{where}: scale of shape {list(scale.shape)}, zero point of shape {list(zp.shape)}",
                                   "give the zero point the scale's shape")
        bad = scale[~(np.isfinite(scale) & (scale > 0))]
        if bad.size:
            raise ModelFormatError(f"{where}: quantization scale {float(bad.reshape(-1)[0])} is not a positive finite "
                                   "number", DAMAGED_ONNX)
        return scale, zp, elem

    def act_quant(self, node, where: str) -> QuantParams:
        """The per-tensor int8 quantization of an activation Q / DQ node (uint8 moved to int8)."""
        scale, zp, elem = self.quant_params(node, where)
        if scale.size != 1:
            raise UnsupportedError(f"{where}: activation {node.input[0]} is quantized per channel ({scale.size} scales)",
                                   "quantize activations per tensor (quantize_static does; per_channel applies to weights)")
        if elem not in (INT8, UINT8):
            raise UnsupportedError(f"{where}: activations quantized to {_type_name(elem)}",
                                   "quantize activations to 8 bits: activation_type=QuantType.QInt8 or QuantType.QUInt8")
        _, z = _to_int8(0, zp.reshape(()), elem)
        return QuantParams(scale=(float(scale.reshape(())),), zero_point=(int(z),))

    # ------------------------------------------------------------------ the pass

    def run(self) -> Graph:
        self.refuse_unsupported_ops()
        graph_inputs = [self.graph_input(i) for i in self.g.input if i.name not in self.consts]
        for i, node in enumerate(self.g.node):
            if i in self.claimed:
                continue
            where = _where(i, node)
            if node.op_type == "Constant":
                self.constant_node(node, where)
            elif node.op_type == "QuantizeLinear":
                self.quantize_node(node, where)
            elif node.op_type == "DequantizeLinear":
                self.dequantize_node(node, where)
            elif node.op_type in ACTIVATION_OPS:
                self.standalone_activation(node, where)
            else:
                self.compute_node(node, where)
        graph_outputs = [self.graph_output(o.name) for o in self.g.output]
        graph = Graph(tensors=self.tensors, ops=self.ops, inputs=graph_inputs, outputs=graph_outputs,
                      name=_stem(self.path))
        verify(graph)
        return graph

    def refuse_unsupported_ops(self) -> None:
        standard = ("", "ai.onnx")
        bad = [(n.op_type + ("" if n.domain in standard else f" of domain {n.domain}"), f"#{i} {n.name}".strip())
               for i, n in enumerate(self.g.node) if n.op_type not in SUPPORTED_OPS or n.domain not in standard]
        if bad:
            raise UnsupportedError(
                f"{self.path}: unsupported ONNX op{'s' if len(bad) > 1 else ''} in a quantized model: "
                f"{unsupported_summary(bad, 'node')}",
                "supported ops in QDQ models: " + ", ".join(SUPPORTED_OPS))

    def graph_input(self, vi) -> str:
        """A float32 graph input (read by QuantizeLinear nodes, translated there)."""
        where = f"graph input {vi.name}"
        elem = vi.type.tensor_type.elem_type
        if elem != FLOAT:
            raise UnsupportedError(f"{where} is {_type_name(elem)}",
                                   "edgert reads QDQ models with float32 inputs followed by QuantizeLinear "
                                   "(as quantize_static writes them)")
        t = self.new_tensor(self.shape(vi.name, where), DType.F32)
        self.float_inputs[vi.name] = t
        return t

    def graph_output(self, name: str) -> str:
        """A graph output must be a DequantizeLinear of an int8 tensor: dequantize (after the
        transpose back to NCHW, on the int8 values, for an image)."""
        producer = self.producer.get(name)
        if producer is not None and self.g.node[producer].op_type == "QuantizeLinear":
            raise UnsupportedError(f"graph output {name} is {_type_name(self.elems.get(name, UINT8))}, "
                                   f"written by {_where(producer, self.g.node[producer])}",
                                   "end the graph with a DequantizeLinear to float32 (as quantize_static does)")
        if name not in self.acts:
            raise UnsupportedError(f"graph output {name} is not the output of a DequantizeLinear",
                                   "edgert reads QDQ models whose outputs are dequantized to float32 "
                                   "(as quantize_static writes them)")
        a = self.acts[name]
        src = a.tensor
        if a.image:
            shape = self.tensors[src].shape
            src = self.new_tensor(tuple(shape[p] for p in TO_NCHW), DType.I8, a.quant)
            self.emit("transpose", [a.tensor], [src], {"perm": TO_NCHW}, f"output {name}")
        out = self.new_tensor(self.tensors[src].shape, DType.F32)
        self.emit("dequantize", [src], [out], {}, f"output {name}")
        return out

    def constant_node(self, node, where: str) -> None:
        from onnx import helper, numpy_helper

        attr = {a.name: a for a in node.attribute}
        if "value" not in attr:
            raise UnsupportedError(f"{where}: a Constant without a tensor value", "export constants as initializers")
        tensor = helper.get_attribute_value(attr["value"])
        self.consts[node.output[0]] = numpy_helper.to_array(tensor)
        self.elems[node.output[0]] = tensor.data_type

    def out_act(self, q_node, image: bool, where: str) -> _Act:
        """The IR tensor written by QuantizeLinear ``q_node`` (NHWC for an image); ``where``
        names the op it is translated with."""
        own = _where(self.producer[q_node.output[0]], q_node)
        qwhere = where if where == own else f"{where}, {own}"
        quant = self.act_quant(q_node, qwhere)
        shape = self.shape(q_node.output[0], qwhere)
        if image:
            if len(shape) != 4:
                raise UnsupportedError(f"{where}: expected a 4-D NCHW output, got {list(shape)}", "check the model")
            shape = tuple(shape[p] for p in TO_NHWC)
        a = _Act(self.new_tensor(shape, DType.I8, quant), quant, image)
        self.acts[q_node.output[0]] = a
        return a

    def quantize_node(self, node, where: str) -> None:
        """Q of a float graph input -> quantize (then transpose to NHWC for an image);
        Q of a DQ view -> quantize int8 -> int8 (a requantization)."""
        src = node.input[0]
        if src in self.float_inputs:
            image = len(self.shapes[src]) == 4
            if not image:
                a = self.out_act(node, False, where)
                self.emit("quantize", [self.float_inputs[src]], [a.tensor], {}, where)
                return
            a = self.out_act(node, True, where)
            nchw = self.new_tensor(self.shapes[src], DType.I8, a.quant)
            self.emit("quantize", [self.float_inputs[src]], [nchw], {}, where)
            self.emit("transpose", [nchw], [a.tensor], {"perm": TO_NHWC}, where)
        elif src in self.acts:
            x = self.acts[src]
            a = self.out_act(node, x.image, where)
            self.emit("quantize", [x.tensor], [a.tensor], {}, where)
        else:
            raise UnsupportedError(f"{where}: quantizes {src}, which is neither a float graph input, "
                                   "a DequantizeLinear output nor the output of a quantized op", INTEGER_ONLY)

    def dequantize_node(self, node, where: str) -> None:
        """A DQ is a view: of a constant (weights, bias, constant operand) or of an int8 tensor."""
        src, out = node.input[0], node.output[0]
        if src in self.consts:
            scale, zp, elem = self.quant_params(node, where)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            rank = self.consts[src].ndim
            self.qconsts[out] = _Const(self.consts[src], self.elems.get(src, 0), scale, zp,
                                       axis % rank if rank else 0, src)
        elif src in self.acts:
            a = self.acts[src]
            q = self.act_quant(node, where)
            if not _same_quant(q, a.quant):
                raise UnsupportedError(f"{where}: dequantizes {src} with ({q.scale[0]:.6g}, {q.zp}), "
                                       f"which was quantized with ({a.quant.scale[0]:.6g}, {a.quant.zp})",
                                       "use the QuantizeLinear's scale and zero point on its DequantizeLinear")
            self.acts[out] = a
        else:
            what = "a float graph input" if src in self.float_inputs else "neither a quantized tensor nor a constant"
            raise UnsupportedError(f"{where}: dequantizes {src}, {what}",
                                   "edgert reads QDQ models with float32 inputs followed by QuantizeLinear")

    # ------------------------------------------------------------------ float ops

    def sink(self, node, where: str):
        """(the QuantizeLinear that takes node's output, the fused activation), claiming both.
        The output must go only into that Q, or only into a Relu / Clip that goes only into it."""
        out = node.output[0]
        act = "none"
        users = self.consumers.get(out, [])
        if len(users) == 1 and out not in self.outputs and self.g.node[users[0]].op_type in ACTIVATION_OPS:
            a_i = users[0]
            act = self.activation(self.g.node[a_i], _where(a_i, self.g.node[a_i]))
            self.claimed.add(a_i)
            out = self.g.node[a_i].output[0]
            users = self.consumers.get(out, [])
        if len(users) != 1 or out in self.outputs or self.g.node[users[0]].op_type != "QuantizeLinear":
            if out in self.outputs:
                fate = "is a float graph output, not quantized again"
            elif not users:
                fate = "is not used"
            elif len(users) == 1:
                fate = f"goes into {_where(users[0], self.g.node[users[0]])}, not into a QuantizeLinear"
            else:
                fate = f"goes into {len(users)} nodes, not into one QuantizeLinear"
            raise UnsupportedError(f"{where}: its output {out} {fate}", INTEGER_ONLY)
        self.claimed.add(users[0])
        return self.g.node[users[0]], act

    def activation(self, node, where: str) -> str:
        """Relu -> "relu"; Clip to [0, 6] -> "relu6", [-1, 1] -> "relu_n1_to_1", [0, inf) -> "relu"."""
        if node.op_type == "Relu":
            return "relu"
        bounds = [-np.inf, np.inf]
        attrs = {a.name: a.f for a in node.attribute}
        for k, key in enumerate(("min", "max")):
            if key in attrs:
                bounds[k] = attrs[key]
            if len(node.input) > k + 1 and node.input[k + 1]:
                bounds[k] = float(np.asarray(self.constant(node.input[k + 1], where, key)).reshape(()))
        act = activation_named_by(*bounds)
        if act in (None, "none"):
            raise UnsupportedError(f"{where}: Clip to [{bounds[0]}, {bounds[1]}]",
                                   "fused clamps: Relu, Clip to [0, 6] or [-1, 1]")
        return act

    def standalone_activation(self, node, where: str) -> None:
        """DQ -> Relu / Clip -> Q (quantize_static's QDQKeepRemovableActivations): a requantization
        to the output's quantization, whose saturation must do the clamping (its zero point at
        -128 for a Relu, as calibration makes it); otherwise refused."""
        x = self.act(node.input[0], where)
        act = self.activation(node, where)
        q_node, after = self.sink(node, where)
        if after != "none":
            raise UnsupportedError(f"{where}: two activations in a row", "export one activation")
        y = self.out_act(q_node, x.image, where)
        if activation_range(act, self.tensors[y.tensor]) != (INT8_MIN, INT8_MAX):
            raise UnsupportedError(f"{where}: a {node.op_type} on its own whose output quantization "
                                   f"({y.quant.scale[0]:.6g}, {y.quant.zp}) does not clamp by saturation",
                                   "quantize without QDQKeepRemovableActivations, so that the activation is fused "
                                   "into the op before it")
        if _same_quant(x.quant, y.quant):  # nothing to do: the Q's output is x
            del self.tensors[y.tensor]
            self.acts[q_node.output[0]] = x
        else:
            self.emit("quantize", [x.tensor], [y.tensor], {}, where)

    def compute_node(self, node, where: str) -> None:
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if len(node.output) > 1 and any(node.output[1:]):
            raise UnsupportedError(f"{where}: a second output ({node.output[1]})", "export the op with one output")
        q_node, act = self.sink(node, where)
        t = node.op_type
        if act != "none" and t not in FUSES_ACTIVATION:
            raise UnsupportedError(f"{where}: a {act} after {t} cannot be fused",
                                   "fused activations follow " + ", ".join(FUSES_ACTIVATION))
        TRANSLATE[t](self, node, attrs, q_node, act, where)

    def image_in(self, node, where: str) -> _Act:
        x = self.act(node.input[0], where)
        if not x.image:
            raise UnsupportedError(f"{where}: expected a 4-D NCHW image input", "export 2-D convolutions and pools only")
        return x

    def conv(self, node, attrs, q_node, act, where) -> None:
        x = self.image_in(node, where)
        w = self.weight_view(node.input[1], where)
        if w.values.ndim != 4:
            raise UnsupportedError(f"{where}: weights of shape {list(w.values.shape)}", "export 2-D convolutions")
        cin = self.tensors[x.tensor].shape[3]
        cout, per_group = w.values.shape[:2]
        group = attrs.get("group", 1)
        depthwise = group != 1 and group == cin and per_group == 1
        if group != 1 and not depthwise:
            raise UnsupportedError(f"{where}: attribute group = {group} ({cin} input channels)",
                                   "grouped convolutions other than depthwise (group = input channels) are not supported")
        values, quant = self.weights(w, 0, where)
        y = self.out_act(q_node, True, where)
        kh, kw = w.values.shape[2:]
        spatial, _ = self.spatial(attrs, self.tensors[x.tensor].shape, (kh, kw), where)
        if depthwise:  # [C*M, 1, kh, kw] -> [1, kh, kw, C*M], per channel along axis 3
            wt = self.const(np.transpose(values, (1, 2, 3, 0)),
                            QuantParams(quant.scale, quant.zero_point, axis=3))
            kind, extra = "depthwise_conv2d", {"depth_multiplier": cout // cin}
        else:  # OIHW -> OHWI
            wt = self.const(np.transpose(values, (0, 2, 3, 1)), quant)
            kind, extra = "conv2d", {}
        b = self.bias(node.input[2] if len(node.input) > 2 else "", x, quant, cout, where)
        self.emit(kind, [x.tensor, wt, b], [y.tensor], {**spatial, "act": act, **extra}, where)

    def spatial(self, attrs, x_shape, kernel, where, pool=False) -> tuple[dict, tuple[int, ...]]:
        """(stride, dilation and pad = (top, left) of a 2-D window over an NHWC input; the four
        ONNX pads (top, left, bottom, right)).

        The kernels place the windows with the top / left padding and read whatever the
        output shape needs below and right of the input as padding, so the bottom / right
        pads need no attribute: shape inference already made the output size from them."""
        strides = tuple(attrs.get("strides") or (1, 1))
        dilations = tuple(attrs.get("dilations") or (1, 1))
        if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
            raise UnsupportedError(f"{where}: not a 2-D window", "export 2-D convolutions and pools")
        check_window(where, kernel, strides, dilations, attrs.get("pads") or ())
        if attrs.get("ceil_mode", 0):
            raise UnsupportedError(f"{where}: attribute ceil_mode = 1", "export the pool with ceil_mode=False")
        if pool and any(d != 1 for d in dilations):
            raise UnsupportedError(f"{where}: a dilated pool", "export pools without dilation")
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode(errors="replace") if isinstance(auto, bytes) else auto
        if auto == "NOTSET":
            pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        elif auto == "VALID":
            pads = (0, 0, 0, 0)
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            totals = [same_pad_total(size, k, st, d) for size, k, st, d in zip(x_shape[1:3], kernel, strides, dilations)]
            begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in totals]
            ends = [total - b for total, b in zip(totals, begin)]
            pads = (begin[0], begin[1], ends[0], ends[1])
        else:
            raise UnsupportedError(f"{where}: attribute auto_pad = {auto}", "export with explicit pads")
        if len(pads) != 4 or any(p < 0 for p in pads):
            raise UnsupportedError(f"{where}: pads {list(pads)}", "2-D windows with non-negative pads")
        if pool and (pads[0] >= kernel[0] or pads[1] >= kernel[1]):
            raise UnsupportedError(f"{where}: pads {list(pads)} as large as the window {list(kernel)}",
                                   "pad a pool by less than its window")
        out = {"stride": strides, "pad": (int(pads[0]), int(pads[1]))}
        if not pool:
            out["dilation"] = dilations
        return out, pads

    def matmul(self, node, attrs, q_node, act, where) -> None:
        """MatMul(x, W [K, M]) -> fully_connected with weights W^T [M, K]."""
        x = self.flat_in(node, where)
        w = self.weight_view(node.input[1], where)
        if w.values.ndim != 2:
            raise UnsupportedError(f"{where}: the weights are {w.values.ndim}-D",
                                   "MatMul with a constant 2-D weight matrix")
        values, quant = self.weights(w, 1, where)
        y = self.out_act(q_node, False, where)
        wt = self.const(np.ascontiguousarray(values.T), QuantParams(quant.scale, quant.zero_point, axis=0))
        self.emit("fully_connected", [x.tensor, wt, ""], [y.tensor], {"act": act}, where)

    def gemm(self, node, attrs, q_node, act, where) -> None:
        """Gemm(x, B, C) with alpha = beta = 1, no transA -> fully_connected (B^T unless transB)."""
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise UnsupportedError(f"{where}: Gemm with transA or alpha / beta other than 1",
                                   "export as MatMul and Add, or with default Gemm attributes")
        x = self.flat_in(node, where)
        w = self.weight_view(node.input[1], where)
        if w.values.ndim != 2:
            raise UnsupportedError(f"{where}: the weights are {w.values.ndim}-D", "Gemm with a 2-D weight matrix")
        trans_b = bool(attrs.get("transB", 0))
        values, quant = self.weights(w, 0 if trans_b else 1, where)
        if not trans_b:
            values = np.ascontiguousarray(values.T)
            quant = QuantParams(quant.scale, quant.zero_point, axis=0)
        y = self.out_act(q_node, False, where)
        wt = self.const(values, quant)
        b = self.bias(node.input[2] if len(node.input) > 2 else "", x, quant, values.shape[0], where)
        self.emit("fully_connected", [x.tensor, wt, b], [y.tensor], {"act": act}, where)

    def flat_in(self, node, where: str) -> _Act:
        x = self.act(node.input[0], where)
        if x.image:
            raise UnsupportedError(f"{where}: a 4-D image input", "Flatten the image before MatMul / Gemm")
        return x

    def binary(self, node, attrs, q_node, act, where) -> None:
        """Add / Sub / Mul of two activations, or of an activation and a quantized constant."""
        ins = list(node.input)
        acts = [self.acts.get(n) for n in ins]
        if all(a is None for a in acts):
            raise UnsupportedError(f"{where}: both inputs are constant", "fold constant arithmetic before export")
        image = any(a is not None and a.image for a in acts)
        names = []
        for n, a in zip(ins, acts):
            if a is not None:
                if image and not a.image:
                    raise UnsupportedError(f"{where}: an image and a non-image operand", "check the model")
                names.append(a.tensor)
            elif n in self.qconsts:
                names.append(self.operand_const(self.qconsts[n], image, where))
            else:
                self.act(n, where)  # raises, naming the problem
        y = self.out_act(q_node, image, where)
        self.emit(node.op_type.lower(), names, [y.tensor], {"act": act}, where)

    def operand_const(self, c: _Const, image: bool, where: str) -> str:
        """A quantized constant operand of Add / Mul, per tensor; next to an image, per channel
        ([C, 1, 1] or [1, C, 1, 1]) or scalar constants become [C] or []."""
        if c.elem not in (INT8, UINT8) or c.scale.size != 1:
            raise UnsupportedError(f"{where}: constant operand {c.name} is {_type_name(c.elem)} with "
                                   f"{c.scale.size} scale(s)", "quantize constant operands like activations "
                                   "(int8 or uint8, per tensor)")
        values, zp = _to_int8(c.values, c.zero_point.reshape(()), c.elem)
        if image and values.size > 1:
            if not (values.ndim >= 3 and values.shape[-2:] == (1, 1) and values.size == values.shape[-3]):
                raise UnsupportedError(f"{where}: constant {c.name} of shape {list(values.shape)} next to an image",
                                       "per-channel ([C, 1, 1]) or scalar constants are supported")
            values = values.reshape(-1)
        elif image:
            values = values.reshape(())
        quant = QuantParams(scale=(float(c.scale.reshape(())),), zero_point=(int(zp),))
        return self.const(values.astype(np.int8), quant)

    def pool(self, node, attrs, q_node, act, where) -> None:
        x = self.image_in(node, where)
        kernel = tuple(attrs.get("kernel_shape", ()))
        if node.op_type == "MaxPool" and attrs.get("storage_order", 0):
            raise UnsupportedError(f"{where}: attribute storage_order = 1", "export MaxPool with row-major storage")
        spatial, pads = self.spatial(attrs, self.tensors[x.tensor].shape, kernel, where, pool=True)
        if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and any(pads):
            raise UnsupportedError(f"{where}: average pool with count_include_pad = 1 and padding",
                                   "export with count_include_pad=False (TFLite averages over the input only)")
        y = self.out_act(q_node, True, where)
        kind = "max_pool2d" if node.op_type == "MaxPool" else "avg_pool2d"
        self.emit_as(kind, [x.tensor], y, {"filter": kernel, **spatial, "act": act}, where, x.quant)

    def global_pool(self, node, attrs, q_node, act, where) -> None:
        x = self.image_in(node, where)
        y = self.out_act(q_node, True, where)
        self.emit("mean", [x.tensor], [y.tensor], {"axes": (1, 2), "keep_dims": True}, where)

    def reshape(self, node, attrs, q_node, act, where) -> None:
        """Reshape / Flatten (of an image: in NCHW order) and Identity: a reshape in int8."""
        x = self.act(node.input[0], where)
        image_out = x.image and node.op_type == "Identity"
        y = self.out_act(q_node, image_out, where)
        src = x.tensor
        shape = self.tensors[src].shape
        if x.image and not image_out and shape[1:3] != (1, 1):  # a [1, 1, 1, C] image is also NCHW order
            src = self.new_tensor(tuple(shape[p] for p in TO_NCHW), DType.I8, x.quant)
            self.emit("transpose", [x.tensor], [src], {"perm": TO_NCHW}, where)
        self.emit_as("reshape", [src], y, {}, where, x.quant)

    def table_op(self, node, attrs, q_node, act, where) -> None:
        """Softmax over the last axis and Sigmoid: computed into (1/256, -128), as edgert's
        int8 kernels (TFLite's) write them."""
        x = self.act(node.input[0], where)
        if node.op_type == "Softmax":
            rank = len(self.tensors[x.tensor].shape)
            axis = attrs.get("axis", -1 if self.opset >= 13 else 1) % rank
            if x.image or axis != rank - 1:
                raise UnsupportedError(f"{where}: Softmax over axis {attrs.get('axis', axis)} of a {rank}-D tensor",
                                       "softmax over the last axis of a non-image tensor (Flatten first)")
        y = self.out_act(q_node, x.image, where)
        kind, extra = ("softmax", {"beta": 1.0}) if node.op_type == "Softmax" else ("logistic", {})
        self.emit_as(kind, [x.tensor], y, extra, where, PROB_QUANT)

    def concat(self, node, attrs, q_node, act, where) -> None:
        xs = [self.act(n, where) for n in node.input]
        image = xs[0].image
        if any(x.image != image for x in xs):
            raise UnsupportedError(f"{where}: concatenates images and non-images", "check the model")
        rank = len(self.tensors[xs[0].tensor].shape)
        axis = attrs["axis"] % rank
        y = self.out_act(q_node, image, where)
        ins = [self.requantized(x, y.quant, where) for x in xs]
        self.emit("concat", ins, [y.tensor], {"axis": TO_NHWC.index(axis) if image else axis, "act": "none"}, where)

    def pad(self, node, attrs, q_node, act, where) -> None:
        """Constant-mode Pad; the value is the quantized zero unless the model gives one."""
        x = self.act(node.input[0], where)
        mode = attrs.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            raise UnsupportedError(f"{where}: Pad mode {mode!r}", "constant padding only")
        rank = len(self.tensors[x.tensor].shape)
        if len(node.input) > 3 and node.input[3]:
            raise UnsupportedError(f"{where}: Pad with axes", "pad every axis (no axes input)")
        pads = attrs.get("pads") if self.opset < 11 else self.constant(node.input[1], where, "pads")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        if len(pads) != 2 * rank or any(p < 0 for p in pads):
            raise UnsupportedError(f"{where}: pads {pads}", "non-negative pads for every axis")
        pairs = [(pads[d], pads[d + rank]) for d in range(rank)]
        if x.image:
            pairs = [pairs[p] for p in TO_NHWC]
        y = self.out_act(q_node, x.image, where)
        out_attrs = {"pads": tuple(pairs)}
        value = self.pad_value(node, attrs, x.quant, where)
        if value is not None:
            out_attrs["value"] = value
        self.emit_as("pad", [x.tensor], y, out_attrs, where, x.quant)

    def pad_value(self, node, attrs, quant: QuantParams, where: str) -> int | None:
        """The int8 padding value in the input's quantization (None: the zero point)."""
        name = node.input[2] if len(node.input) > 2 else ""
        if self.opset < 11:
            real = attrs.get("value", 0.0)
        elif not name:
            return None
        elif name in self.qconsts:
            c = self.qconsts[name]
            v, z = _to_int8(c.values.reshape(()), c.zero_point.reshape(()), c.elem)
            real = float(np.float32(c.scale.reshape(())) * np.float32(v - z))
        else:
            value = np.asarray(self.constant(name, where, "constant value")).reshape(())
            if value.dtype.kind != "f":
                v, _ = _to_int8(value, 0, self.elems.get(name, INT8))
                return int(np.clip(v, -128, 127))
            real = float(value)
        q = np.round(np.float32(real) / np.float32(quant.scale[0])) + quant.zp
        return int(np.clip(q, -128, 127))

    # ------------------------------------------------------------------ weights and biases

    def weight_view(self, name: str, where: str) -> _Const:
        if name in self.qconsts:
            return self.qconsts[name]
        if name in self.consts:
            raise UnsupportedError(f"{where}: the weights {name} are float, not quantized", INTEGER_ONLY)
        raise UnsupportedError(f"{where}: the weights {name} are not a constant",
                               "edgert compiles models with constant weights")

    def weights(self, w: _Const, channel_axis: int, where: str) -> tuple[np.ndarray, QuantParams]:
        """Symmetric int8 / int4 weights as int8 values, quantized per tensor or per channel
        along ``channel_axis`` (the output channels, in ONNX's layout)."""
        if w.elem == UINT8:
            raise UnsupportedError(f"{where}: the weights {w.name} are uint8 (zero point {int(w.zero_point.flat[0])})",
                                   "quantize weights to symmetric int8: weight_type=QuantType.QInt8")
        if w.elem == UINT4:
            raise UnsupportedError(f"{where}: the weights {w.name} are uint4",
                                   "quantize weights to symmetric int4 (weight_type=QuantType.QInt4) or int8")
        if w.elem not in (INT8, INT4):
            raise UnsupportedError(f"{where}: the weights {w.name} are {_type_name(w.elem)}",
                                   "quantize weights to int8 or int4 (weight_type=QuantType.QInt8 or QInt4)")
        if np.any(w.zero_point != 0):
            raise UnsupportedError(f"{where}: the weights {w.name} have a nonzero zero point",
                                   "edgert (like TFLite Micro) needs symmetric weights: quantize_static does "
                                   "so for QInt8 / QInt4 weights (WeightSymmetric)")
        values = np.asarray(w.values).astype(np.int8)
        scales = w.scale.reshape(-1)
        if scales.size > 1 and (w.scale.ndim != 1 or w.axis != channel_axis
                                or scales.size != values.shape[channel_axis]):
            raise UnsupportedError(f"{where}: the weights {w.name} are quantized per channel along axis {w.axis} "
                                   f"with {scales.size} scales",
                                   f"quantize weights per tensor or along axis {channel_axis} (the output channels)")
        quant = QuantParams(scale=tuple(float(s) for s in scales), zero_point=(0,) * scales.size)
        return values, quant

    def bias(self, name: str, x: _Act, w_quant: QuantParams, channels: int, where: str) -> str:
        """An int32 bias whose scale is input scale * weight scale (within float32 rounding)."""
        if not name:
            return ""
        if name not in self.qconsts:
            if name in self.consts:
                raise UnsupportedError(f"{where}: the bias {name} is float, not quantized", INTEGER_ONLY)
            raise UnsupportedError(f"{where}: the bias {name} is not a constant",
                                   "edgert compiles models with constant biases")
        b = self.qconsts[name]
        if b.elem != INT32 or np.any(b.zero_point != 0) or b.values.size != channels:
            raise UnsupportedError(f"{where}: the bias {name} is {_type_name(b.elem)}[{b.values.size}] "
                                   f"with zero point {b.zero_point.reshape(-1)[:1].tolist()}",
                                   f"quantize biases to int32 [{channels}] with zero point 0 (quantize_static does)")
        want, got = np.broadcast_arrays(np.float32(x.quant.scale[0]) * w_quant.scales, b.scale.reshape(-1))
        if not np.allclose(got, want, rtol=4 * np.finfo(np.float32).eps, atol=0):
            worst = int(np.argmax(np.abs(got / want - 1)))
            raise UnsupportedError(f"{where}: the bias {name} has scale {got[worst]:.9g}, not input scale x weight "
                                   f"scale = {want[worst]:.9g}", "quantize biases with scale input scale x weight "
                                   "scale and zero point 0 (quantize_static does)")
        return self.const(np.asarray(b.values).astype(np.int32).reshape(-1),
                          QuantParams(tuple(float(s) for s in want), (0,) * want.size, axis=0))


#: ONNX op type of a compute node (between DequantizeLinear and QuantizeLinear nodes) -> the
#: _Reader method translating it, given (node, attrs, the QuantizeLinear it writes, its fused
#: activation, where)
TRANSLATE = {
    "Add": _Reader.binary,
    "AveragePool": _Reader.pool,
    "Concat": _Reader.concat,
    "Conv": _Reader.conv,
    "Flatten": _Reader.reshape,
    "Gemm": _Reader.gemm,
    "GlobalAveragePool": _Reader.global_pool,
    "Identity": _Reader.reshape,
    "MatMul": _Reader.matmul,
    "MaxPool": _Reader.pool,
    "Mul": _Reader.binary,
    "Sub": _Reader.binary,
    "Pad": _Reader.pad,
    "Reshape": _Reader.reshape,
    "Sigmoid": _Reader.table_op,
    "Softmax": _Reader.table_op,
}
#: the compute ops a Relu or Clip after them fuses into
FUSES_ACTIVATION = ("Add", "AveragePool", "Conv", "Gemm", "MatMul", "MaxPool", "Mul", "Sub")
SUPPORTED_OPS = tuple(sorted((*QDQ_OPS, *TRANSLATE, *ACTIVATION_OPS, "Constant")))


def _same_quant(a: QuantParams, b: QuantParams) -> bool:
    return np.float32(a.scale[0]) == np.float32(b.scale[0]) and a.zp == b.zp


def _stem(path: str) -> str:
    import os

    return os.path.splitext(os.path.basename(path))[0]


def load(model, path: str) -> Graph:
    """A shape-inferred QDQ ModelProto -> edgert Graph (model attributes only; run passes next)."""
    return _Reader(model, path).run()
