/*  order_orchestrator: runs the orchestrated saga of each order that asks for
    one (saga "orchestration"). It keeps a saga row per order in the order
    database, committed in the same transaction as each step's command, which
    leaves only after that commit; so a restarted order-service resumes every
    saga in flight. The rules of a saga are order_saga's; this file stores
    sagas, sends their commands, takes the replies and watches the clock.
*/
#ifndef ORDER_ORCHESTRATOR_H_INCLUDED
#define ORDER_ORCHESTRATOR_H_INCLUDED

#include "eda_service.h"
#include "order_domain.h"

/*  The saga table, part of order-service's schema. WITHOUT ROWID: one B-tree
    to write a saga's row to, not a table and its key's index (a database made
    before keeps its table: the statements are the same). */
#define ORDER_SAGA_SCHEMA                                                                \
    "CREATE TABLE IF NOT EXISTS sagas ("                                                 \
    " order_id TEXT PRIMARY KEY, step INTEGER NOT NULL, attempts INTEGER NOT NULL,"      \
    " waiting INTEGER NOT NULL, due_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"  \
    " release_stock INTEGER NOT NULL, release_credit INTEGER NOT NULL,"                  \
    " command_id TEXT) WITHOUT ROWID;"                                                   \
    "CREATE INDEX IF NOT EXISTS sagas_by_due ON sagas (due_ms) WHERE due_ms > 0;"

typedef struct order_orchestrator order_orchestrator_t;

/*  Sets an order's status (and reason, for a rejection) and publishes its
    event (OrderApproved, OrderRejected or OrderCancelled, saga
    "orchestration"), in the transaction in hand. 0, or -1 on a database
    error. */
typedef int(order_settle_fn)(void *arg, eda_ctx_t *ctx, const char *order_id,
                             order_status_t status, const char *reason);

/*  Creates the orchestrator of service `svc` (its store holds the saga
    table), with its --command-timeout and --saga-deadline. Sagas found in
    flight are resumed by the first ticks. NULL on a database error or a bad
    option (logged). */
order_orchestrator_t *order_orchestrator_new(eda_service_t *svc, order_settle_fn *settle,
                                             void *settle_arg);

/*  Destroys the orchestrator and nulls the pointer. Idempotent. */
void order_orchestrator_destroy(order_orchestrator_t **self_p);

/*  Begins the saga of a new order (its row in `orders` is written): sends
    ReserveCredit. 0, or -1 on a database error. */
int order_orchestrator_begin(order_orchestrator_t *self, eda_ctx_t *ctx,
                             const char *order_id);

/*  Cancels an APPROVED orchestrated order: the order becomes CANCELLED
    (through `settle`) and its stock and credit are released by commands.
    0, or -1 on a database error. */
int order_orchestrator_cancel(order_orchestrator_t *self, eda_ctx_t *ctx,
                              const char *order_id);

/*  The reply handler for every saga command (the engine's table). */
int order_orchestrator_on_reply(order_orchestrator_t *self, eda_ctx_t *ctx);

/*  The timer: timeouts, retries, deadlines, and resuming after a restart. */
int order_orchestrator_tick(order_orchestrator_t *self, eda_ctx_t *ctx);

/*  Packs one map of the orchestrator's counters for Stats. */
void order_orchestrator_stats(order_orchestrator_t *self, msgpack_packer *pk);

/*  Tells whether `saga` names a saga pattern: "choreography" or
    "orchestration". */
bool order_saga_pattern_valid(const char *saga);

#endif
