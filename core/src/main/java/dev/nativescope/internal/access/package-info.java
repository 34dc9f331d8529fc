/**
 * The one access point to package-private internals other packages of the core need (not
 * exported), after the JDK's {@code SharedSecrets}: {@link dev.nativescope.internal.access.SharedAccess}
 * holds one implementation of each access interface ({@link dev.nativescope.internal.access.ContextAccess},
 * {@link dev.nativescope.internal.access.MappedFileAccess}), which the owning package registers from
 * a class initialiser; {@link dev.nativescope.internal.access.FieldHandles} makes the
 * {@code VarHandle} of a class's own field.
 *
 * <p>Uses the types its interfaces name ({@code dev.nativescope}, {@code tensor.io}, and, to initialise their owners, {@code call} and {@code diagnostics}); those packages'
 * registration is the only edge back into it.
 */
package dev.nativescope.internal.access;
