/*  order_saga: the orchestrated saga of one order as a pure state machine,
    with no sockets, msgpack or SQL. The orchestrator feeds it what happens
    (a start, a reply, a timer tick, a cancel, a restart) with the time, and
    it answers what to do: send the command of its current step, settle the
    order, or nothing. Times are wall-clock milliseconds.

    Forward steps: ReserveCredit -> ReserveStock -> approve. A refusal
    rejects the order and compensates what was held, in reverse order
    (ReleaseStock, then ReleaseCredit). A command unanswered after
    `timeout_ms` is sent again after min(100 ms x 2^(n-1), 5 s) following its
    n-th failure (a timeout or an error reply). Past the saga deadline a
    forward step gives up: the order is rejected PARTICIPANT_UNAVAILABLE and a
    release is sent for every step that may have applied. Releases have no
    deadline: they are retried, with the same backoff, until acknowledged.
*/
#ifndef ORDER_SAGA_H_INCLUDED
#define ORDER_SAGA_H_INCLUDED

#include "order_domain.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SAGA_RESERVE_CREDIT,
    SAGA_RESERVE_STOCK,
    SAGA_RELEASE_STOCK,
    SAGA_RELEASE_CREDIT,
    SAGA_DONE
} order_saga_step_t;

#define SAGA_BACKOFF_MIN_MS 100
#define SAGA_BACKOFF_MAX_MS 5000

typedef struct {
    uint32_t timeout_ms;  /* one command's wait for its reply */
    uint32_t deadline_ms; /* from the start to giving up on forward steps */
} order_saga_config_t;

/*  One saga, as the orchestrator stores it (every field is a column). */
typedef struct {
    order_saga_step_t step;
    uint32_t attempts;   /* sends of the current step's command so far */
    bool waiting;        /* true: a command is out and due_ms is when it times
                            out; false: due_ms is when to send it (again) */
    int64_t due_ms;      /* next timer action; 0 when done */
    int64_t deadline_ms; /* forward steps give up at this time */
    bool release_stock;  /* compensation still to run, in this order: */
    bool release_credit; /*   ReleaseStock, then ReleaseCredit */
} order_saga_t;

/*  What the orchestrator must do after an input, in this order: settle the
    order (`settle` != ORDER_PENDING: set that status, with `reason` when
    REJECTED, and publish its event), then send the command of the saga's
    (new) step when `send` is true. */
typedef struct {
    bool send;
    order_status_t settle; /* ORDER_PENDING: leave the order as it is */
    const char *reason;    /* for ORDER_REJECTED, a static string */
    bool ignored;          /* the input did not apply to the saga's step (a
                              late or duplicate reply, a tick not yet due) */
} order_saga_action_t;

/*  The outcome a participant's reply reports. */
typedef enum {
    SAGA_REPLY_OK,      /* RESERVED, or a release acknowledged */
    SAGA_REPLY_REFUSED, /* REJECTED with a reason (business outcome) */
    SAGA_REPLY_FAILED   /* an error reply: retried like a timeout */
} order_saga_reply_t;

/*  The wait after the n-th failure (n >= 1): min(100 ms x 2^(n-1), 5 s).
    Can't fail. */
int64_t order_saga_backoff_ms(uint32_t n);

/*  The command name of a step ("ReserveCredit", ...), NULL for SAGA_DONE. */
const char *order_saga_command(order_saga_step_t step);

/*  The step a command name drives, or -1 when it is not a saga command. */
int order_saga_step_of(const char *command);

/*  "RESERVE_CREDIT", ..., "DONE": names for logs and the saga table. */
const char *order_saga_step_name(order_saga_step_t step);

/*  Begins a new order's saga at `now`: ReserveCredit, sent at once. */
order_saga_action_t order_saga_start(order_saga_t *saga, const order_saga_config_t *cfg,
                                     int64_t now);

/*  Begins the compensation of an APPROVED order being cancelled:
    ReleaseStock, then ReleaseCredit; the order becomes CANCELLED. */
order_saga_action_t order_saga_cancel(order_saga_t *saga, const order_saga_config_t *cfg,
                                      int64_t now);

/*  A reply to the command of `step` with `outcome` (`reason`, a static
    string, when REFUSED). A reply for another step than the saga's current
    one is ignored (a late or duplicate reply). */
order_saga_action_t order_saga_reply(order_saga_t *saga, const order_saga_config_t *cfg,
                                     int64_t now, order_saga_step_t step,
                                     order_saga_reply_t outcome, const char *reason);

/*  A timer tick at `now`: nothing before due_ms; then a timeout (wait the
    backoff), a retry (send again), or, for a forward step at or past the
    deadline, giving up (reject and compensate). */
order_saga_action_t order_saga_tick(order_saga_t *saga, const order_saga_config_t *cfg,
                                    int64_t now);

/*  After a restart: a saga in flight sends its current command again at
    once (participants are idempotent), keeping its attempts and deadline. */
order_saga_action_t order_saga_resume(order_saga_t *saga, const order_saga_config_t *cfg,
                                      int64_t now);

#endif
