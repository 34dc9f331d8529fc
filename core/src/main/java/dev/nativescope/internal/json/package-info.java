/**
 * The JSON codec of the safetensors header (not exported): {@link
 * dev.nativescope.internal.json.JsonParser}, a strict RFC 8259 parser for small untrusted documents
 * (duplicate keys refused; depth, value count and number length limited), which throws {@link dev.nativescope.internal.json.JsonException};
 * and {@link dev.nativescope.internal.json.JsonWriter}.
 *
 * <p>Uses the JDK alone.
 */
package dev.nativescope.internal.json;
