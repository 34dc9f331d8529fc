/* test_status.c - library information: ABI version, clock, status names, stats. */
#include "nsc_test.h"
#include "nsc_internal.h" /* nsc_monotonic_ns_high/_low: exported, but for the Java side only */

#include <limits.h>
#include <string.h>

/* Every status of the header's one list; a status added there is covered here too. */
#define STATUS_ENTRY(name, value, description) { name, #name, description },

static const struct {
    int status;
    const char *name;
    const char *description;
} statuses[] = { NSC_STATUS_LIST(STATUS_ENTRY) };

#define STATUS_COUNT (sizeof statuses / sizeof statuses[0])

TEST(abi_version_matches_header)
{
    CHECK_EQ(nsc_abi_version(), NSC_ABI_VERSION);
}

TEST(monotonic_ns_is_clock_monotonic)
{
    int64_t before = t_now();
    int64_t ours = nsc_monotonic_ns();
    int64_t after = t_now();
    CHECK(before <= ours && ours <= after);
}

TEST(monotonic_ns_halves_make_a_reading_between_two_full_ones)
{
    int consistent = 0;
    for (int i = 0; i < 1000 && consistent < 100; i++) {
        int64_t before = nsc_monotonic_ns();
        int high = nsc_monotonic_ns_high();
        int low = nsc_monotonic_ns_low();
        int high_again = nsc_monotonic_ns_high();
        int64_t after = nsc_monotonic_ns();
        if (high != high_again) {
            continue; /* the low half wrapped between the reads: the loader reads again too */
        }
        int64_t joined = (int64_t) (((uint64_t) (uint32_t) high << 32) | (uint32_t) low);
        CHECK(before <= joined && joined <= after);
        consistent++;
    }
    CHECK(consistent == 100);
}

TEST(status_names_cover_every_status)
{
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        const char *name = nsc_status_name(statuses[i].status);
        const char *text = nsc_strerror(statuses[i].status);
        CHECK(name != NULL && strcmp(name, statuses[i].name) == 0);
        CHECK(text != NULL && text[0] != '\0' && strcmp(text, statuses[i].description) == 0
              && strcmp(text, "unknown status") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(text, nsc_strerror(statuses[j].status)) != 0);
        }
    }
}

TEST(status_list_holds_the_state_values_and_distinct_codes)
{
    /* The state word's values, fixed by the ABI. */
    CHECK_EQ(statuses[0].status, NSC_OK);
    CHECK_EQ(NSC_OK, 0);
    CHECK_EQ(NSC_CANCELED, 1);
    CHECK_EQ(NSC_DEADLINE_EXCEEDED, 2);
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        for (size_t j = 0; j < i; j++) {
            CHECK(statuses[i].status != statuses[j].status);
        }
    }
}

TEST(unknown_statuses_have_fallback_names)
{
    const int unknown[] = { 6, 7, 100, -6, -100, INT_MAX, INT_MIN };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK(strcmp(nsc_status_name(unknown[i]), "NSC_UNKNOWN") == 0);
        CHECK(strcmp(nsc_strerror(unknown[i]), "unknown status") == 0);
    }
}

TEST(stats_get_accepts_null_and_starts_at_zero)
{
    nsc_stats_get(NULL);
    nsc_stats s;
    memset(&s, 0xff, sizeof s);
    nsc_stats_get(&s);
    CHECK_EQ(s.live_contexts, 0);
    CHECK_EQ(s.live_fds, 0);
    CHECK_EQ(s.live_hooks, 0);
    CHECK_EQ(s.native_bytes, 0);
}

TEST(noop_baselines)
{
    nsc_noop();
    CHECK_STATUS(nsc_noop_ctx(NULL), NSC_ERR_INVALID);
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_noop_ctx(ctx), NSC_OK);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_noop_ctx(ctx), NSC_CANCELED);
    t_ctx_free(ctx);
}
