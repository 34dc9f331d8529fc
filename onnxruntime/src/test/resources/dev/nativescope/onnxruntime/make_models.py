#!/usr/bin/python3
"""Writes the ONNX test models of the onnxruntime module (run by the tests with Debian's python3-onnx).

  make_models.py mlp OUT.onnx
      y = Relu(x @ W1 + b1) @ W2 + b2, x: float32[4, 8], y: float32[4, 3]. The weights follow the
      formulas of OrtModels.java (mlpW1 ...), which computes the same function in Java.
  make_models.py chain OUT.onnx NODES SIZE
      y = x @ I @ I ... (NODES MatMul nodes sharing one SIZE x SIZE identity initializer), x and y:
      float32[rows, SIZE] with a free number of rows. The output equals the input exactly; its cost grows with NODES, one
      SIZE^3 matrix product per node, and ONNX Runtime checks its terminate flag between nodes.
  make_models.py sum OUT.onnx COUNT
      y = ReduceSum(x), x: float32[COUNT], y: float32[1]: a cheap pass over a large input, for
      measuring what feeding the input costs (OrtCancelBenchmark).
  make_models.py ints OUT.onnx
      Integer inputs and outputs: a2 = a + a (int32[3]), b2 = b * b (int64[3]), c2 = uint8(int32(c) + 1)
      (uint8[3]).
  make_models.py types OUT.onnx
      x: float32[2, 3] cast to every element type: outputs named after ONNX's type names (float, double,
      int8, int16, int32, int64, uint8, bool, float16, bfloat16, uint16, uint32, uint64, string,
      the integer casts read Abs(x).
  make_models.py float8 OUT.onnx
      y = Cast(x, float8e4m3fn), x: float32[2, 3]: an output type ORT's Java API cannot express.
  make_models.py nonzero OUT.onnx
      y = NonZero(x), x: float32[n], y: int64[1, k] with k known only after the run.
  make_models.py slice OUT.onnx
      y = x[0:n[0]], x: float32[8], n: int64[1]: the output shape depends on an input's value.
  make_models.py ops DIR
      Many single-operator models (DIR/op-NAME.onnx) over one float input x: float32[2, 3, 4] and one
      output y (see OPS): the many-operators test compares ORT-allocated outputs with pinned ones.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def mlp_weights():
    w1 = np.array([[((i * 7 + j * 3) % 11 - 5) / 10.0 for j in range(16)] for i in range(8)], dtype=np.float32)
    b1 = np.array([(j % 5 - 2) / 10.0 for j in range(16)], dtype=np.float32)
    w2 = np.array([[((i * 5 + j * 2) % 13 - 6) / 10.0 for j in range(3)] for i in range(16)], dtype=np.float32)
    b2 = np.array([(j % 3 - 1) / 10.0 for j in range(3)], dtype=np.float32)
    return w1, b1, w2, b2


def save(graph, path, opset=OPSET):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nativescope-tests")
    onnx.checker.check_model(model)
    onnx.save(model, path)


def mlp(path):
    w1, b1, w2, b2 = mlp_weights()
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "W2"), numpy_helper.from_array(b2, "b2")])
    save(graph, path)


def chain(path, count, size):
    if count < 1:
        raise SystemExit("chain needs at least one node")
    nodes = []
    previous = "x"
    for k in range(count):
        out = "y" if k == count - 1 else "t%d" % k
        nodes.append(helper.make_node("MatMul", [previous, "I"], [out], name="matmul%d" % k))
        previous = out
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", size])],
        [numpy_helper.from_array(np.eye(size, dtype=np.float32), "I")])
    save(graph, path)


def reduce_sum(path, count):
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["y"], keepdims=1)], "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [count])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    save(graph, path)


def ints(path):
    one = numpy_helper.from_array(np.array([1], dtype=np.int32), "one")
    nodes = [
        helper.make_node("Add", ["a", "a"], ["a2"]),
        helper.make_node("Mul", ["b", "b"], ["b2"]),
        helper.make_node("Cast", ["c"], ["c32"], to=TensorProto.INT32),
        helper.make_node("Add", ["c32", "one"], ["c33"]),
        helper.make_node("Cast", ["c33"], ["c2"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes, "ints",
        [helper.make_tensor_value_info("a", TensorProto.INT32, [3]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [3]),
         helper.make_tensor_value_info("c", TensorProto.UINT8, [3])],
        [helper.make_tensor_value_info("a2", TensorProto.INT32, [3]),
         helper.make_tensor_value_info("b2", TensorProto.INT64, [3]),
         helper.make_tensor_value_info("c2", TensorProto.UINT8, [3])],
        [one])
    save(graph, path)


TYPES = [("float", TensorProto.FLOAT), ("double", TensorProto.DOUBLE), ("int8", TensorProto.INT8),
         ("int16", TensorProto.INT16), ("int32", TensorProto.INT32), ("int64", TensorProto.INT64),
         ("uint8", TensorProto.UINT8), ("bool", TensorProto.BOOL), ("float16", TensorProto.FLOAT16),
         ("bfloat16", TensorProto.BFLOAT16), ("uint16", TensorProto.UINT16), ("uint32", TensorProto.UINT32),
         ("uint64", TensorProto.UINT64), ("string", TensorProto.STRING)]


def types(path):
    nodes = [helper.make_node("Abs", ["x"], ["ax"])]
    outputs = []
    for name, code in TYPES:
        source = "x" if code in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.BOOL, TensorProto.FLOAT16,
                                 TensorProto.BFLOAT16, TensorProto.STRING) else "ax"
        nodes.append(helper.make_node("Cast", [source], [name], to=code))
        outputs.append(helper.make_tensor_value_info(name, code, [2, 3]))
    graph = helper.make_graph(nodes, "types", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], outputs)
    save(graph, path)


FLOAT8E4M3FN = 17  # TensorProto.FLOAT8E4M3FN of onnx 1.14+; Debian's python3-onnx 1.12 lacks it


def float8(path):
    """y = Cast(x, float8e4m3fn), opset 19: not checked (onnx 1.12 knows neither the type nor the opset)."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=FLOAT8E4M3FN)], "float8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", FLOAT8E4M3FN, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], producer_name="nativescope-tests")
    model.ir_version = 9
    onnx.save(model, path)


def nonzero(path):
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"])], "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, "k"])])
    save(graph, path)


def slice_model(path):
    starts = numpy_helper.from_array(np.array([0], dtype=np.int64), "starts")
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "starts", "n"], ["y"])], "slice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8]),
         helper.make_tensor_value_info("n", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"])],
        [starts])
    save(graph, path)


def c(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.array(array, dtype=dtype), name)


W45 = [[((i * 3 + j) % 7 - 3) / 4.0 for j in range(5)] for i in range(4)]
# name -> (nodes, initializers, output type); every model maps x: float32[2, 3, 4] to y.
OPS = {
    "relu": ([("Relu", ["x"], {})], [], TensorProto.FLOAT),
    "sigmoid": ([("Sigmoid", ["x"], {})], [], TensorProto.FLOAT),
    "tanh": ([("Tanh", ["x"], {})], [], TensorProto.FLOAT),
    "exp": ([("Exp", ["x"], {})], [], TensorProto.FLOAT),
    "abs": ([("Abs", ["x"], {})], [], TensorProto.FLOAT),
    "neg": ([("Neg", ["x"], {})], [], TensorProto.FLOAT),
    "floor": ([("Floor", ["x"], {})], [], TensorProto.FLOAT),
    "ceil": ([("Ceil", ["x"], {})], [], TensorProto.FLOAT),
    "sin": ([("Sin", ["x"], {})], [], TensorProto.FLOAT),
    "cos": ([("Cos", ["x"], {})], [], TensorProto.FLOAT),
    "erf": ([("Erf", ["x"], {})], [], TensorProto.FLOAT),
    "softplus": ([("Softplus", ["x"], {})], [], TensorProto.FLOAT),
    "elu": ([("Elu", ["x"], {"alpha": 0.5})], [], TensorProto.FLOAT),
    "leakyrelu": ([("LeakyRelu", ["x"], {"alpha": 0.1})], [], TensorProto.FLOAT),
    "hardsigmoid": ([("HardSigmoid", ["x"], {})], [], TensorProto.FLOAT),
    "sqrtabs": ([("Abs", ["x"], {}, "t"), ("Sqrt", ["t"], {})], [], TensorProto.FLOAT),
    "softmax": ([("Softmax", ["x"], {"axis": -1})], [], TensorProto.FLOAT),
    "logsoftmax": ([("LogSoftmax", ["x"], {"axis": 1})], [], TensorProto.FLOAT),
    "transpose": ([("Transpose", ["x"], {"perm": [2, 0, 1]})], [], TensorProto.FLOAT),
    "flatten": ([("Flatten", ["x"], {"axis": 1})], [], TensorProto.FLOAT),
    "reducemean": ([("ReduceMean", ["x"], {"axes": [1]})], [], TensorProto.FLOAT),
    "reducemax": ([("ReduceMax", ["x"], {"axes": [0, 2], "keepdims": 0})], [], TensorProto.FLOAT),
    "reducesum": ([("ReduceSum", ["x", "axes"], {})], [c("axes", [2], np.int64)], TensorProto.FLOAT),
    "concat": ([("Concat", ["x", "x"], {"axis": 0})], [], TensorProto.FLOAT),
    "square": ([("Mul", ["x", "x"], {})], [], TensorProto.FLOAT),
    "addconst": ([("Add", ["x", "k"], {})], [c("k", [0.5, -1, 2, 0])], TensorProto.FLOAT),
    "matmul": ([("MatMul", ["x", "W"], {})], [c("W", W45)], TensorProto.FLOAT),
    "gemmlike": ([("MatMul", ["x", "W"], {}, "t"), ("Relu", ["t"], {})], [c("W", W45)], TensorProto.FLOAT),
    "unsqueeze": ([("Unsqueeze", ["x", "axes"], {})], [c("axes", [0], np.int64)], TensorProto.FLOAT),
    "reshape": ([("Reshape", ["x", "shape"], {})], [c("shape", [4, -1], np.int64)], TensorProto.FLOAT),
    "clip": ([("Clip", ["x", "lo", "hi"], {})], [c("lo", -0.5), c("hi", 0.5)], TensorProto.FLOAT),
    "where": ([("Greater", ["x", "zero"], {}, "m"), ("Where", ["m", "x", "zero"], {})], [c("zero", 0.0)],
              TensorProto.FLOAT),
    "shape": ([("Shape", ["x"], {})], [], TensorProto.INT64),
    "size": ([("Size", ["x"], {})], [], TensorProto.INT64),
    "argmax": ([("ArgMax", ["x"], {"axis": 2})], [], TensorProto.INT64),
    "greater": ([("Greater", ["x", "zero"], {})], [c("zero", 0.0)], TensorProto.BOOL),
    "nonzero": ([("NonZero", ["x"], {})], [], TensorProto.INT64),
    "todouble": ([("Cast", ["x"], {"to": TensorProto.DOUBLE})], [], TensorProto.DOUBLE),
    "tohalf": ([("Cast", ["x"], {"to": TensorProto.FLOAT16})], [], TensorProto.FLOAT16),
}


def ops(directory):
    import os
    for name, (specs, initializers, out_type) in OPS.items():
        nodes = []
        for k, spec in enumerate(specs):
            op, inputs, attrs = spec[0], spec[1], spec[2]
            out = spec[3] if len(spec) > 3 else "y"
            nodes.append(helper.make_node(op, inputs, [out], name="%s%d" % (op.lower(), k), **attrs))
        # The output's shape comes from ONNX's shape inference (NonZero's is partly symbolic).
        unknown = helper.make_graph(
            nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
            [helper.make_value_info("y", helper.make_tensor_type_proto(out_type, None))], initializers)
        inferred = onnx.shape_inference.infer_shapes(
            helper.make_model(unknown, opset_imports=[helper.make_opsetid("", OPSET)]), strict_mode=True)
        output = inferred.graph.output[0]
        if not output.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.CopyFrom(onnx.TensorShapeProto())
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                                  [output], initializers)
        save(graph, os.path.join(directory, "op-%s.onnx" % name))


def main(argv):
    if len(argv) == 3 and argv[1] == "mlp":
        mlp(argv[2])
    elif len(argv) == 5 and argv[1] == "chain":
        chain(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 4 and argv[1] == "sum":
        reduce_sum(argv[2], int(argv[3]))
    elif len(argv) == 3 and argv[1] == "ints":
        ints(argv[2])
    elif len(argv) == 3 and argv[1] == "types":
        types(argv[2])
    elif len(argv) == 3 and argv[1] == "float8":
        float8(argv[2])
    elif len(argv) == 3 and argv[1] == "nonzero":
        nonzero(argv[2])
    elif len(argv) == 3 and argv[1] == "slice":
        slice_model(argv[2])
    elif len(argv) == 3 and argv[1] == "ops":
        ops(argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
