/*  latency.h: a run's latency figures, computed one way for eda bench and
    eda-floor, so that the two stay comparable. Header only: eda-floor links
    nothing of libeda.
*/
#ifndef EDA_LATENCY_H_INCLUDED
#define EDA_LATENCY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*  The figures of one kind of latency, in microseconds. */
typedef struct {
    int64_t p50, p99, max;
} latency_t;

static inline int latency_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*  The q-th quantile (0..1) of sorted v[n]; 0 when n is 0. */
static inline int64_t latency_quantile(const int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/*  Sorts v[n] in place and reads its p50, p99 and max. */
static inline latency_t latency_figures(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, latency_cmp);
    return (latency_t){latency_quantile(v, n, 0.5), latency_quantile(v, n, 0.99),
                       latency_quantile(v, n, 1.0)};
}

#endif
