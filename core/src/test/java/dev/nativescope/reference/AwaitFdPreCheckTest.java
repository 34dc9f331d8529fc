package dev.nativescope.reference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.nativescope.Context;
import dev.nativescope.internal.posix.Libc;
import dev.nativescope.library.NativeLibrary;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link ReferencePredictors#awaitFd} names a closed or never-opened fd before native code runs
 * (issue 12, item 7). Before the check, native code's ppoll saw POLLNVAL and the caller got a
 * {@code NativeStatusException "NSC_ERR_INVALID: invalid argument"} that did not say which argument.
 */
class AwaitFdPreCheckTest {
    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void aClosedFdIsNamedBeforeTheCall() {
        int fd = Libc.eventfd();
        assertThat(Libc.isOpenFd(fd)).isTrue();
        assertThat(Libc.close(fd)).isZero();
        assertThat(Libc.isOpenFd(fd)).isFalse();
        AtomicInteger reports = new AtomicInteger();
        assertThatThrownBy(() -> ReferencePredictors.awaitFd(Context.background(), fd, Duration.ofSeconds(5),
                stats -> reports.incrementAndGet()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("fd " + fd + " is not an open file descriptor");
        assertThat(reports).as("native code never ran").hasValue(0);
    }

    @Test
    void aNeverOpenedFdIsNamedToo() {
        int fd = 1_000_000; // above any RLIMIT_NOFILE this build runs with
        assertThat(Libc.isOpenFd(fd)).isFalse();
        assertThat(Libc.isOpenFd(-1)).isFalse();
        assertThatThrownBy(() -> ReferencePredictors.awaitFd(Context.background(), fd, null, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("fd 1000000");
    }

    @Test
    void anOpenFdStillWorks() {
        int fd = Libc.eventfd();
        try {
            assertThat(ReferencePredictors.awaitFd(Context.background(), fd, Duration.ofMillis(1), null)).isEmpty();
        } finally {
            Libc.close(fd);
        }
    }
}
