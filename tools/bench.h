/*  bench: `eda bench`, whole sagas through running services, timed. */
#ifndef EDA_BENCH_H_INCLUDED
#define EDA_BENCH_H_INCLUDED

#include "eda_config.h"
#include "eda_keys.h"

#include <stdbool.h>

/*  Tells whether `saga` names a saga pattern order-service knows:
    "choreography" or "orchestration". Can't fail. */
bool bench_saga_valid(const char *saga);

/*  Runs the benchmark against the services of `cfg` (CURVE with `keys`, may
    be NULL) and prints throughput
    and latency (as one JSON line with `json`). With --saga every order is
    placed with that saga; without it order-service's default applies.
    An order with no reply, or no outcome seen, for 2x `timeout_ms` is sent
    again with its request_id (counted as "resent"); the run gives up as
    stalled after 6x `timeout_ms` with nothing from order-service.
    Returns the exit code: 0 when every saga completed, 1 otherwise, 2 on
    bad arguments. */
int bench_main(const eda_config_t *cfg, eda_keys_t *keys, int timeout_ms, bool json,
               int argc, char **argv);

#endif
