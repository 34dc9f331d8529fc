/**
 * Message text that cannot fail, for error paths (-> JDK only). Not exported.
 */
package dev.nativescope.internal.text;
