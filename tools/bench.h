/*  bench: `eda bench`, whole sagas through running services, timed. */
#ifndef EDA_BENCH_H_INCLUDED
#define EDA_BENCH_H_INCLUDED

#include "eda_config.h"
#include "eda_keys.h"

#include <stdbool.h>

/*  What the command line asked for. */
typedef struct {
    long orders;
    long window;
    long rate;        /* orders per second, 0 unpaced */
    const char *saga; /* NULL: order-service's default */
} bench_args_t;

/*  Runs the benchmark against the services of `cfg` (CURVE with `keys`, may
    be NULL) and prints throughput
    and latency (as one JSON line with `json`). With --saga every order is
    placed with that saga; without it order-service's default applies.
    An order with no reply, or no outcome seen, for 2x `timeout_ms` is sent
    again with its request_id (counted as "resent"); the run gives up as
    stalled after 6x `timeout_ms` with nothing from order-service.
    Returns the exit code: 0 when every saga completed, 1 otherwise. */
int bench_main(const eda_config_t *cfg, eda_keys_t *keys, int timeout_ms, bool json,
               const bench_args_t *args);

#endif
