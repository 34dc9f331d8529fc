/*
 * nsc_status_probe.c - prints every status of NSC_STATUS_LIST (nativescope.h)
 * and what the library says about it: one line per status, in the list's
 * order, five tab-separated fields:
 *
 *   name  value  description  nsc_status_name(value)  nsc_strerror(value)
 *
 * The first three are the header's, the last two those of the
 * libnativescope.so it is linked with. AbiConformanceTest builds it with
 *
 *   gcc -std=gnu11 -Wall -Wextra -Werror -I <header dir> nsc_status_probe.c \
 *       -L <library dir> -lnativescope -Wl,-rpath,<library dir>
 *
 * and checks each line against the bindings; a test of another list of the
 * statuses (a Java enum, say) can run it the same way.
 */
#include <stdio.h>

#include "nativescope.h"

/* The enum constant, not the list's literal: the value a compiler gives the name. */
#define PRINT_STATUS(name, value, description) \
    printf("%s\t%d\t%s\t%s\t%s\n", #name, (int) (name), description, nsc_status_name(name), nsc_strerror(name));

int main(void)
{
    NSC_STATUS_LIST(PRINT_STATUS)
    /* A full disk or closed pipe must fail the run, not shorten the list. */
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
