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


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nativescope-tests")
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


def main(argv):
    if len(argv) == 3 and argv[1] == "mlp":
        mlp(argv[2])
    elif len(argv) == 5 and argv[1] == "chain":
        chain(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 4 and argv[1] == "sum":
        reduce_sum(argv[2], int(argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
