/*
 * nativescope_bindings.h - what jextract reads for dev.nativescope.bindings
 * (nativescope.args names it last). jextract takes one header, and the
 * bindings (one class, nativescope_h) cover the contract and every header
 * shipped beside it, so this includes them all. Not shipped and not for C
 * code: include the headers themselves. AbiConformanceTest fails when a
 * public header of native-shim is missing here.
 */
#include <nativescope.h>
#include <nsc_hold.h>
#include <nsc_reference.h>
#include <nsc_stats.h>
