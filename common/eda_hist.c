/*  eda_hist: bucket b < 8 holds the value b; above, a value with its highest
    bit at position m >= 3 goes to (m - 2) * 8 plus the three bits below
    that highest one: the buckets of each octave split it in eight equal
    parts.
*/
#include "eda_hist.h"

static unsigned s_bucket(uint64_t value)
{
    if (value < 8)
        return (unsigned)value;
    unsigned msb = 63u - (unsigned)__builtin_clzll(value);
    return (msb - 2) * 8 + (unsigned)((value >> (msb - 3)) & 7);
}

/*  The smallest value of bucket b. */
static uint64_t s_floor(unsigned b)
{
    if (b < 8)
        return b;
    unsigned msb = b / 8 + 2;
    return (UINT64_C(1) << msb) | ((uint64_t)(b % 8) << (msb - 3));
}

void eda_hist_add(eda_hist_t *self, uint64_t value)
{
    unsigned b = s_bucket(value);
    self->count[b < EDA_HIST_BUCKETS ? b : EDA_HIST_BUCKETS - 1]++;
    self->total++;
}

uint64_t eda_hist_quantile(const eda_hist_t *self, double q)
{
    if (!self->total)
        return 0;
    /* The rank of the sample wanted, 1-based: ceil(q * total), at least 1. */
    double want = q * (double)self->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < EDA_HIST_BUCKETS; b++) {
        seen += self->count[b];
        if (seen >= rank)
            return s_floor(b);
    }
    return s_floor(EDA_HIST_BUCKETS - 1);
}
