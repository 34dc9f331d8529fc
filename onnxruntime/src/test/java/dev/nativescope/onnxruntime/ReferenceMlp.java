package dev.nativescope.onnxruntime;

import dev.nativescope.reference.ReferencePredictors;

/**
 * The small MLP that the module's tests, the examples and the soak run through ONNX Runtime to
 * check its results: {@code y = Relu(x W1 + b1) W2 + b2}, x float32[{@value #BATCH},
 * {@value #IN}], a hidden layer of {@value #HIDDEN}, y float32[{@value #BATCH}, {@value #OUT}].
 * The weights are fixed formulas of their indices, the same that the tests' {@code make_models.py}
 * writes into the model, and {@link #expected(float[])} computes y in Java, in double precision,
 * independently of ORT's kernels. A test fixture, in the module's test jar (not its API); public
 * for the examples module, whose soak (main code) checks its MLP runs with it. Stateless and
 * thread-safe.
 */
public final class ReferenceMlp {
    /** Rows of x and y. */
    public static final int BATCH = 4;
    /** Columns of x. */
    public static final int IN = 8;
    /** Width of the hidden layer. */
    public static final int HIDDEN = 16;
    /** Columns of y. */
    public static final int OUT = 3;

    private ReferenceMlp() {
    }

    /** @return W1[i][j], i &lt; {@value #IN}, j &lt; {@value #HIDDEN} */
    public static float w1(int i, int j) {
        return ((i * 7 + j * 3) % 11 - 5) / 10.0f;
    }

    /** @return b1[j], j &lt; {@value #HIDDEN} */
    public static float b1(int j) {
        return (j % 5 - 2) / 10.0f;
    }

    /** @return W2[i][j], i &lt; {@value #HIDDEN}, j &lt; {@value #OUT} */
    public static float w2(int i, int j) {
        return ((i * 5 + j * 2) % 13 - 6) / 10.0f;
    }

    /** @return b2[j], j &lt; {@value #OUT} */
    public static float b2(int j) {
        return (j % 3 - 1) / 10.0f;
    }

    /**
     * @param x the input, row-major, {@value #BATCH} x {@value #IN} values
     * @return y, row-major, {@value #BATCH} x {@value #OUT} values
     */
    public static float[] expected(float[] x) {
        if (x.length != BATCH * IN) {
            throw new IllegalArgumentException("x must have " + BATCH * IN + " values, got " + x.length);
        }
        float[] y = new float[BATCH * OUT];
        for (int b = 0; b < BATCH; b++) {
            double[] hidden = new double[HIDDEN];
            for (int j = 0; j < HIDDEN; j++) {
                double sum = b1(j);
                for (int i = 0; i < IN; i++) {
                    sum += (double) x[b * IN + i] * w1(i, j);
                }
                hidden[j] = Math.max(0.0, sum);
            }
            for (int j = 0; j < OUT; j++) {
                double sum = b2(j);
                for (int i = 0; i < HIDDEN; i++) {
                    sum += hidden[i] * w2(i, j);
                }
                y[b * OUT + j] = (float) sum;
            }
        }
        return y;
    }
}
