/*  causal: puts live events from several lanes (one per service) in causal
    order, for `eda watch` and `eda console`.

    Each service's stream is in order, but merged on arrival they are not: a
    customer-service reaction can overtake the order-service event that
    caused it. What this guarantees:

    - An effect is passed on after its cause. An event whose causation_id
      is an event id ("<16 hex>-<seq>", so in some service's log) not passed
      on yet is held while that cause may still come, and passed on as soon
      as the cause passes (and then what waited for it, in turn).
    - "May still come" means: the cause is held itself, or its epoch is none
      a lane has sent, or its seq is beyond the highest its lane has sent.
      A cause its lane has already sent past was passed before we looked,
      or dropped: the effect is passed on at once, marked.
    - The wait is bounded: an effect waits at most hold_ms, then it is
      passed on marked "(cause not seen)"; when the held events are too
      many, the oldest is given up the same way. A lost cause costs a mark,
      never a stall, and memory stays bounded.

    A causation_id that names a command (in no log) makes the event a root:
    it is passed on at once. The ids passed on are remembered (the last
    CAUSAL_RECENT, with a hash set over them) to tell a cause that passed.
*/
#ifndef EDA_CAUSAL_H_INCLUDED
#define EDA_CAUSAL_H_INCLUDED

#include "eda_envelope.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define CAUSAL_RECENT  2048 /* ids of events passed on, remembered */
#define CAUSAL_HELD    1024 /* events waiting for their cause */
#define CAUSAL_MARK    "(cause not seen)"
#define CAUSAL_HOLD_MS 200 /* how long watch and console hold an effect for its cause */

typedef struct causal causal_t;

/*  Called for each event passed on, in causal order: `env` and `root` (the
    whole map) decoded from it, valid for the call only. `mark` is NULL, or
    CAUSAL_MARK when its cause was not seen. */
typedef void causal_emit_fn(void *arg, int lane, const eda_envelope_t *env,
                            const msgpack_object *root, const char *mark);

/*  Creates an orderer of `lanes` lanes whose effects wait up to `hold_ms`
    for their cause. NULL when out of memory. */
causal_t *causal_new(int lanes, int hold_ms, causal_emit_fn *emit, void *arg);

/*  Destroys it and nulls the pointer; held events go unpassed. Idempotent. */
void causal_destroy(causal_t **self_p);

/*  Offers one event of lane `lane` (takes *body, nulls it): `env` is its
    decoded envelope, an event. Passed on now, or held while its cause may
    still come. With `hold` false it is passed on now, unmarked, whatever
    its cause (its lane's position is still noted). */
void causal_offer(causal_t *self, int lane, zframe_t **body, const eda_envelope_t *env,
                  bool hold);

/*  Passes on, marked, the held events whose wait ends by `now` (zclock_mono;
    INT64_MAX: all of them). Returns when the next held one's wait ends, or
    INT64_MAX when none is held. */
int64_t causal_expire(causal_t *self, int64_t now);

/*  When the next held event's wait ends (zclock_mono), or INT64_MAX. */
int64_t causal_next(const causal_t *self);

#endif
