"""The Python half of the exchange's worked example (ExchangeDemo, ./run exchange-demo).

A JVM producer runs the shim's dense reference predictor, relu(x @ w + bias),
straight into the slots of a shared-memory exchange; this consumer reads every
prediction in place (a read-only NumPy view over the mapping, no copy),
recomputes it with NumPy from the same inputs and checks the two agree. The
inputs are a formula of the version and the indices, exactly representable in
float32 (so any difference is a bug, not rounding).

    PYTHONPATH=exchange/src/main/python python3 examples/src/main/python/check_predictions.py FILE

Prints "ready" once it has opened FILE, then one line per 50 predictions and
a summary when the producer closes; exits 1 on a mismatch.
"""
import sys

import numpy as np

import nativescope_exchange as nx


def inputs(v, rows, inner, cols):
    """The producer's x (for version v), w and bias; the same formula as ExchangeDemo.inputs."""
    i, k = np.meshgrid(np.arange(rows), np.arange(inner), indexing="ij")
    x = (((v * 31 + i * 7 + k * 3) % 17) - 8) / 8.0
    k, j = np.meshgrid(np.arange(inner), np.arange(cols), indexing="ij")
    w = (((k * 5 + j * 11) % 13) - 6) / 4.0
    bias = ((np.arange(cols) % 5) - 2) / 2.0
    return x.astype(np.float32), w.astype(np.float32), bias.astype(np.float32)


def main(path):
    checked = overrun = overwritten = 0
    worst = 0.0
    with nx.Exchange.open(path) as x:
        print("ready", flush=True)
        while True:
            r = x.wait_next(timeout=30.0)
            if r.status == nx.OVERRUN:
                overrun += r.missed
                continue
            if r.status != nx.OK:
                break
            y = r.array                          # read-only view into the shared mapping
            assert not y.flags.writeable and y.dtype == np.float32 and y.ndim == 2, (y.dtype, y.shape)
            xv, w, bias = inputs(r.version, y.shape[0], 32, y.shape[1])
            expected = np.maximum(xv @ w + bias, 0)
            err = float(np.max(np.abs(y - expected)))
            if not r.still_valid():              # the producer reused the slot while we read: skip it
                overwritten += 1
                continue
            worst = max(worst, err)
            if err > 1e-5:
                print("MISMATCH at version %d: max |y - numpy| = %g" % (r.version, err), flush=True)
                return 1
            checked += 1
            if checked % 50 == 0:
                print("version %d: %s predictions, mean %.4f, max |y - numpy| %g"
                      % (r.version, "x".join(map(str, y.shape)), float(y.mean()), err), flush=True)
    print("checked %d predictions against NumPy (max |error| %g), %d lost to overrun, %d overwritten while read; "
          "producer %s" % (checked, worst, overrun, overwritten, r.status), flush=True)
    return 0 if checked > 0 and r.status == nx.PRODUCER_CLOSED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
