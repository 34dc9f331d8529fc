package dev.nativescope.examples.userpredictor;

import dev.nativescope.tensor.Tensor;

/**
 * The Java reference of {@code user_conv2d}: the same "valid" cross-correlation, summed in the
 * same order in float, so a completed native run must match it exactly.
 *
 * <p>Stateless and thread-safe.
 */
public final class Conv2dReference {
    private Conv2dReference() {
    }

    /**
     * @param input {@code [H, W]} float32
     * @param kernel {@code [KH, KW]} float32
     * @return the {@code [H - KH + 1][W - KW + 1]} output
     */
    public static float[][] conv2d(Tensor input, Tensor kernel) {
        int rows = Math.toIntExact(input.dim(0) - kernel.dim(0) + 1);
        int cols = Math.toIntExact(input.dim(1) - kernel.dim(1) + 1);
        float[][] out = new float[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float acc = 0.0f;
                for (long a = 0; a < kernel.dim(0); a++) {
                    for (long b = 0; b < kernel.dim(1); b++) {
                        acc += input.getFloat(i + a, j + b) * kernel.getFloat(a, b);
                    }
                }
                out[i][j] = acc;
            }
        }
        return out;
    }
}
