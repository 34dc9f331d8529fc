package dev.nativescope.examples.soak;

import java.util.List;
import java.util.Locale;

/**
 * A hand-written SVG of the soak's resource columns: one small panel per column (each with its own
 * y range, since RSS in KiB and thread counts share no scale), time on the x axis. No dependency:
 * the examples module should not pull a plotting library for one picture.
 */
final class Svg {
    private static final int[] PLOTTED = {Sampler.RSS_KIB, Sampler.HEAP_USED_KIB, Sampler.HEAP_COMMITTED_KIB, Sampler.FDS, Sampler.THREADS,
        Sampler.JAVA_NATIVE_BYTES, Sampler.LIVE_CALL_FRAMES, Sampler.LIVE_VALUE_BLOCKS, Sampler.SHIM_LIVE_FDS, Sampler.SHIM_LIVE_HOOKS,
        Sampler.ORT_OPEN_RUN_OBJECTS, Sampler.ORT_OPEN_PREDICTORS, Sampler.MALLOC_IN_USE_KIB, Sampler.MALLOC_FREE_KIB};
    private static final int PANEL_W = 420;
    private static final int PANEL_H = 170;
    private static final int MARGIN_L = 80;
    private static final int MARGIN_T = 30;
    private static final int GAP_X = 110;
    private static final int GAP_Y = 60;
    private static final int COLS = 3;

    private Svg() {
    }

    static String render(List<long[]> samples) {
        int rows = (PLOTTED.length + COLS - 1) / COLS;
        int width = MARGIN_L + COLS * (PANEL_W + GAP_X);
        int height = 50 + rows * (PANEL_H + GAP_Y + MARGIN_T);
        StringBuilder svg = new StringBuilder();
        svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
                + " viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">%n", width, height, width, height));
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        long seconds = samples.isEmpty() ? 0 : samples.getLast()[0];
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" font-size=\"16\">nativescope soak: %d s,"
                + " one sample per second (grey band: warm-up third; green: middle third; blue: last third)</text>%n",
                MARGIN_L, seconds));
        for (int i = 0; i < PLOTTED.length; i++) {
            int x0 = MARGIN_L + (i % COLS) * (PANEL_W + GAP_X);
            int y0 = 50 + MARGIN_T + (i / COLS) * (PANEL_H + GAP_Y + MARGIN_T);
            panel(svg, samples, PLOTTED[i], x0, y0);
        }
        svg.append("</svg>\n");
        return svg.toString();
    }

    private static void panel(StringBuilder svg, List<long[]> samples, int column, int x0, int y0) {
        long min = Long.MAX_VALUE;
        long max = Long.MIN_VALUE;
        for (long[] row : samples) {
            min = Math.min(min, row[column]);
            max = Math.max(max, row[column]);
        }
        if (samples.isEmpty()) {
            min = 0;
            max = 1;
        }
        // Start the axis at zero unless that squashes the line flat: growth should look like growth.
        long lo = min >= 0 && min <= max / 2 ? 0 : min;
        long hi = max == lo ? lo + 1 : max;
        double tMax = samples.isEmpty() ? 1 : Math.max(1, samples.getLast()[0]);
        svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>%n",
                x0, y0 - 10, Sampler.COLUMNS[column]));
        // Thirds, as the growth verdict sees them.
        double third = PANEL_W / 3.0;
        String[] fills = {"#eeeeee", "#e6f4e6", "#e6eef8"};
        for (int k = 0; k < 3; k++) {
            svg.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>%n",
                    x0 + k * third, y0, third, PANEL_H, fills[k]));
        }
        svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                x0, y0, x0, y0 + PANEL_H));
        svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
                x0, y0 + PANEL_H, x0 + PANEL_W, y0 + PANEL_H));
        for (int k = 0; k <= 4; k++) {
            double frac = k / 4.0;
            double y = y0 + PANEL_H - frac * PANEL_H;
            long value = lo + Math.round(frac * (hi - lo));
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>"
                    + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n",
                    x0 - 4, y, x0, y, x0 - 6, y + 4, label(value)));
            double x = x0 + frac * PANEL_W;
            svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>"
                    + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d s</text>%n",
                    x, y0 + PANEL_H, x, y0 + PANEL_H + 4, x, y0 + PANEL_H + 18, Math.round(frac * tMax)));
        }
        StringBuilder points = new StringBuilder();
        for (long[] row : samples) {
            double x = x0 + row[0] / tMax * PANEL_W;
            double y = y0 + PANEL_H - (double) (row[column] - lo) / (hi - lo) * PANEL_H;
            points.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
        }
        svg.append(String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"1.5\""
                + " points=\"%s\"/>%n", points.toString().trim()));
    }

    /** Compact axis labels: 123, 45.6k, 7.8M. */
    private static String label(long value) {
        long abs = Math.abs(value);
        if (abs >= 10_000_000) {
            return String.format(Locale.ROOT, "%.1fM", value / 1e6);
        }
        if (abs >= 10_000) {
            return String.format(Locale.ROOT, "%.1fk", value / 1e3);
        }
        return Long.toString(value);
    }
}
