/**
 * Saturating time arithmetic shared by the context API, the call bridge and the reference
 * predictors (-> JDK only). Not exported.
 */
package dev.nativescope.internal.time;
