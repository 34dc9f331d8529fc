package dev.nativescope.call;

/**
 * Which thread makes a bridged call in a test, and in which mode: the parameter of the tests that
 * run a call from platform and virtual threads, inline and offloaded. Threading: an enum; each
 * constant starts threads of its kind.
 */
enum Caller {
    PLATFORM_INLINE(false, CallMode.INLINE),
    VIRTUAL_AUTO(true, CallMode.AUTO),
    PLATFORM_OFFLOAD(false, CallMode.OFFLOAD),
    VIRTUAL_INLINE(true, CallMode.INLINE);

    final boolean virtual;
    final CallMode mode;

    Caller(boolean virtual, CallMode mode) {
        this.virtual = virtual;
        this.mode = mode;
    }

    Thread start(Runnable body) {
        return (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(body);
    }

    /** Whether the call runs on a native thread (-Dnativescope.callMode may force it). */
    boolean offloads() {
        CallMode resolved = mode.resolved();
        return resolved == CallMode.OFFLOAD || resolved == CallMode.AUTO && virtual;
    }
}
