import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Handle;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

/**
 * The bindings' build step (bindings/pom.xml, phase process-classes; jextract-config/README.md, "The load hook"):
 * inserts one call to the hand-written {@code dev.nativescope.bindings.internal.LoadHook} as the first instruction
 * of {@code nativescope_h.findOrThrow(String)} ({@code aload_0; invokestatic LoadHook.ensureLoaded(String)}) and of
 * {@code nativescope_h.<clinit>} ({@code invokestatic LoadHook.checkNativeAccess()}), and changes nothing else: the
 * class is rewritten from its own reader, so the constant pool keeps its entries and indices, the class file
 * version is kept, and every other method is copied as it was. Neither call needs more stack than the method
 * already has (findOrThrow pushes the lookup and the symbol before its first call), so the maxs stay; the calls come before any
 * branch target, so no stack map frame changes. A class woven already is left alone.
 *
 * <p>Run with the JDK's source launcher and ASM on the class path, so it is compiled into nothing that ships:
 * {@code java -cp asm.jar WeaveLoadHook.java <classes dir>}. Exit status 1 with a message when the class or one of
 * the two methods is missing (jextract's output changed: see jextract-config/README.md).
 */
public final class WeaveLoadHook {
    private static final String HEADER_CLASS = "dev/nativescope/bindings/nativescope_h";
    private static final String HOOK = "dev/nativescope/bindings/internal/LoadHook";
    private static final String FIND_OR_THROW = "findOrThrow";
    private static final String FIND_OR_THROW_DESCRIPTOR = "(Ljava/lang/String;)Ljava/lang/foreign/MemorySegment;";

    private WeaveLoadHook() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            fail("usage: java -cp asm.jar WeaveLoadHook.java <classes directory>");
        }
        Path file = Path.of(args[0], HEADER_CLASS + ".class");
        if (!Files.isRegularFile(file)) {
            fail(file + " does not exist: run after javac (phase process-classes) on the bindings' output directory");
        }
        byte[] original = Files.readAllBytes(file);
        ClassReader reader = new ClassReader(original);
        if (woven(reader)) {
            System.out.println("[weave] " + file + ": woven already, left alone");
            return;
        }
        ClassWriter writer = new ClassWriter(reader, 0);
        boolean[] found = new boolean[2];
        reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String descriptor, String signature, String[] exceptions) {
                MethodVisitor next = super.visitMethod(access, name, descriptor, signature, exceptions);
                if (name.equals(FIND_OR_THROW) && descriptor.equals(FIND_OR_THROW_DESCRIPTOR)) {
                    found[0] = true;
                    return new FirstInstruction(next, mv -> {
                        mv.visitVarInsn(Opcodes.ALOAD, 0);
                        mv.visitMethodInsn(Opcodes.INVOKESTATIC, HOOK, "ensureLoaded", "(Ljava/lang/String;)V", false);
                    });
                }
                if (name.equals("<clinit>")) {
                    found[1] = true;
                    return new FirstInstruction(next, mv ->
                            mv.visitMethodInsn(Opcodes.INVOKESTATIC, HOOK, "checkNativeAccess", "()V", false));
                }
                return next;
            }
        }, 0);
        if (!found[0] || !found[1]) {
            fail(file + " has no " + (found[0] ? "static initialiser" : FIND_OR_THROW + FIND_OR_THROW_DESCRIPTOR)
                    + ": jextract's output changed shape; adapt WeaveLoadHook and WovenBindingsTest to it");
        }
        Files.write(file, writer.toByteArray());
        System.out.println("[weave] " + file + ": LoadHook calls inserted in " + FIND_OR_THROW + " and <clinit>");
    }

    /** Whether findOrThrow already calls the hook. */
    private static boolean woven(ClassReader reader) {
        boolean[] calls = new boolean[1];
        reader.accept(new ClassVisitor(Opcodes.ASM9) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String descriptor, String signature, String[] exceptions) {
                if (!name.equals(FIND_OR_THROW)) {
                    return null;
                }
                return new MethodVisitor(Opcodes.ASM9) {
                    @Override
                    public void visitMethodInsn(int opcode, String owner, String method, String desc, boolean isInterface) {
                        calls[0] |= owner.equals(HOOK);
                    }
                };
            }
        }, ClassReader.SKIP_DEBUG | ClassReader.SKIP_FRAMES);
        return calls[0];
    }

    /** Emits {@code insertion} once, before the method's first instruction (after its first label and line number). */
    private static final class FirstInstruction extends MethodVisitor {
        private final java.util.function.Consumer<MethodVisitor> insertion;
        private boolean done;

        FirstInstruction(MethodVisitor next, java.util.function.Consumer<MethodVisitor> insertion) {
            super(Opcodes.ASM9, next);
            this.insertion = insertion;
        }

        private void before() {
            if (!done) {
                done = true;
                insertion.accept(mv);
            }
        }

        @Override public void visitInsn(int opcode) { before(); super.visitInsn(opcode); }
        @Override public void visitIntInsn(int opcode, int operand) { before(); super.visitIntInsn(opcode, operand); }
        @Override public void visitVarInsn(int opcode, int varIndex) { before(); super.visitVarInsn(opcode, varIndex); }
        @Override public void visitTypeInsn(int opcode, String type) { before(); super.visitTypeInsn(opcode, type); }
        @Override public void visitFieldInsn(int opcode, String owner, String name, String descriptor) {
            before();
            super.visitFieldInsn(opcode, owner, name, descriptor);
        }
        @Override public void visitMethodInsn(int opcode, String owner, String name, String descriptor, boolean isInterface) {
            before();
            super.visitMethodInsn(opcode, owner, name, descriptor, isInterface);
        }
        @Override public void visitInvokeDynamicInsn(String name, String descriptor, Handle bootstrap, Object... arguments) {
            before();
            super.visitInvokeDynamicInsn(name, descriptor, bootstrap, arguments);
        }
        @Override public void visitJumpInsn(int opcode, Label label) { before(); super.visitJumpInsn(opcode, label); }
        @Override public void visitLdcInsn(Object value) { before(); super.visitLdcInsn(value); }
        @Override public void visitIincInsn(int varIndex, int increment) { before(); super.visitIincInsn(varIndex, increment); }
        @Override public void visitTableSwitchInsn(int min, int max, Label dflt, Label... labels) {
            before();
            super.visitTableSwitchInsn(min, max, dflt, labels);
        }
        @Override public void visitLookupSwitchInsn(Label dflt, int[] keys, Label[] labels) {
            before();
            super.visitLookupSwitchInsn(dflt, keys, labels);
        }
        @Override public void visitMultiANewArrayInsn(String descriptor, int numDimensions) {
            before();
            super.visitMultiANewArrayInsn(descriptor, numDimensions);
        }
    }

    private static void fail(String message) {
        System.err.println("[weave] " + message);
        System.exit(1);
    }
}
