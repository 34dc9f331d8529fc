/**
 * The operating system below the core (not exported): {@link dev.nativescope.internal.posix.Libc},
 * every libc function the core calls, looked up once, with errno capture and {@code strerror};
 * {@link dev.nativescope.internal.posix.PosixFiles}, the file calls the JDK lacks (open without
 * following links, {@code statx} on the descriptor, {@code posix_fallocate}); and
 * {@link dev.nativescope.internal.posix.NativeHeap}, {@code malloc}/{@code free} for blocks whose
 * lifetime the core counts itself.
 *
 * <p>Uses {@code library} (for {@code NativeLibraryException}) and nothing else of nativescope.
 */
package dev.nativescope.internal.posix;
