package dev.nativescope.examples.soak;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * The operations, with their weight in the random draw. The nativescope-only operations weigh 2
 * each; the ONNX Runtime ones 9 in all (about a quarter of the draws): 2 for checked runs, 1 for
 * each way of stopping a run and for each kind of session churn, since a stopped chain run or a
 * session load costs far more than a checked MLP run.
 */
enum Op {
    DENSE_OK(2), CANCEL_BEFORE(2), DEADLINE_BEFORE(2), CANCEL_MID(2), DEADLINE_MID(2), FD_SIGNALLED(2),
    FD_CANCELLED(2), FD_DEADLINE(2), INTERRUPT(2), TREE_CANCEL(2), SCOPE_TIMEOUT(2), SCOPE_SIBLING_FAILS(2),
    NPY_ROUNDTRIP(2),
    ORT_OK(2), ORT_CANCEL_MID(1), ORT_DEADLINE_MID(1), ORT_INTERRUPT(1), ORT_SCOPE_TIMEOUT(1),
    ORT_SCOPE_SIBLING_FAILS(1), ORT_SESSION_CHURN(1), ORT_CLOSE_MID(1);

    final int weight;

    Op(int weight) {
        this.weight = weight;
    }

    /**
     * Each operation {@code weight} times: a uniform draw from it is the weighted draw. The
     * system property {@code nsc.soak.ops} (comma-separated names) narrows the mix to those
     * operations, to find which one makes a resource grow.
     */
    static final Op[] DRAW = draw(System.getProperty("nsc.soak.ops", ""));

    static Op[] draw(String only) {
        List<Op> chosen = only.isBlank() ? List.of(values())
                : Arrays.stream(only.split(",")).map(name -> valueOf(name.strip().toUpperCase(Locale.ROOT))).toList();
        return chosen.stream().flatMap(op -> Stream.generate(() -> op).limit(op.weight)).toArray(Op[]::new);
    }
}
