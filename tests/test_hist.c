/*  test_hist: the histogram behind Stats' latency percentiles: exact for
    small values, within one bucket (12.5%) above, the right rank for each
    quantile, and no overflow at the top of the range.
*/
#include "eda_hist.h"

#include <criterion/criterion.h>
#include <string.h>

static eda_hist_t s_hist;

static void s_setup(void)
{
    memset(&s_hist, 0, sizeof s_hist);
}

TestSuite(hist, .init = s_setup);

Test(hist, empty_gives_zero)
{
    cr_assert_eq(eda_hist_quantile(&s_hist, 0.5), 0);
    cr_assert_eq(eda_hist_quantile(&s_hist, 1.0), 0);
}

Test(hist, small_values_are_exact)
{
    for (uint64_t v = 0; v < 16; v++) {
        memset(&s_hist, 0, sizeof s_hist);
        eda_hist_add(&s_hist, v);
        cr_assert_eq(eda_hist_quantile(&s_hist, 0.5), v, "value %llu",
                     (unsigned long long)v);
    }
}

Test(hist, a_large_value_reads_back_within_one_bucket)
{
    const uint64_t values[] = {17,        100, 999, 12345, 1000000, UINT64_C(1) << 40,
                               UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        memset(&s_hist, 0, sizeof s_hist);
        eda_hist_add(&s_hist, values[i]);
        uint64_t got = eda_hist_quantile(&s_hist, 1.0);
        cr_assert_leq(got, values[i]);
        cr_assert_geq(got, values[i] - values[i] / 8, "%llu read back as %llu",
                      (unsigned long long)values[i], (unsigned long long)got);
    }
}

Test(hist, quantiles_take_the_right_rank)
{
    /* 1..100: the median is 50, p99 is 99 (read back as their buckets). */
    for (uint64_t v = 1; v <= 100; v++)
        eda_hist_add(&s_hist, v);
    uint64_t p50 = eda_hist_quantile(&s_hist, 0.5);
    uint64_t p99 = eda_hist_quantile(&s_hist, 0.99);
    cr_assert(p50 <= 50 && p50 >= 50 - 50 / 8, "p50 %llu", (unsigned long long)p50);
    cr_assert(p99 <= 99 && p99 >= 99 - 99 / 8, "p99 %llu", (unsigned long long)p99);
    cr_assert_eq(eda_hist_quantile(&s_hist, 0.001), 1, "the smallest");
    /* 99 fast samples and one slow one: p99 is fast, the max is slow. */
    memset(&s_hist, 0, sizeof s_hist);
    for (int i = 0; i < 99; i++)
        eda_hist_add(&s_hist, 10);
    eda_hist_add(&s_hist, 5000);
    cr_assert_eq(eda_hist_quantile(&s_hist, 0.99), 10);
    cr_assert_geq(eda_hist_quantile(&s_hist, 1.0), 5000 - 5000 / 8);
}
