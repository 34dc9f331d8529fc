package com.example.consumer;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The bindings of libconsumer.so, in the shape jextract generates them (the user's own header class, looked up
 * with {@code SymbolLookup.loaderLookup()}); written by hand here so that the consumer build needs no jextract.
 */
public final class consumer_h {
    private consumer_h() {
    }

    private static MethodHandle find(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = SymbolLookup.loaderLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("unresolved symbol: " + name));
        return Linker.nativeLinker().downcallHandle(symbol, descriptor);
    }

    private static final class Sum {
        static final MethodHandle HANDLE = find("consumer_sum", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    private static final class Value {
        static final MethodHandle HANDLE = find("consumer_value", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    public static int consumer_sum(MemorySegment ctx, MemorySegment in, MemorySegment out, long repeat) throws Throwable {
        return (int) Sum.HANDLE.invokeExact(ctx, in, out, repeat);
    }

    public static int consumer_value(MemorySegment ctx, MemorySegment key, MemorySegment buf, long cap) throws Throwable {
        return (int) Value.HANDLE.invokeExact(ctx, key, buf, cap);
    }
}
