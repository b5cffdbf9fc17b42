/*  order_orchestrator: the saga rows, the commands they send, and the clock.
    Every input (a reply, a tick, a cancel) loads the saga row, asks
    order_saga what to do, does it (settle the order, queue the command)
    and writes the row back, all in the engine's transaction: a command
    leaves only once the row that sent it is committed.
*/
#include "order_orchestrator.h"

#include "eda_text.h"
#include "order_saga.h"

#include <string.h>

#define S_TICK_BATCH 256 /* sagas looked at per tick */

struct order_orchestrator {
    order_settle_fn *settle;
    void *settle_arg;
    order_saga_config_t cfg;
    sqlite3_stmt *get, *put, *due, *in_flight, *count, *order;
    char resume_after[EDA_NAME_MAX +
                      1]; /* sagas in flight at start: resumed up to this order_id */
    bool resuming;
    char ids[S_TICK_BATCH][EDA_NAME_MAX + 1]; /* one tick's sagas */
    uint64_t started, sent, retries, timeouts, failed_replies, late_replies;
    uint64_t gave_up, compensations;
};

static const char *s_peer_of[] = {
    [SAGA_RESERVE_CREDIT] = "customer-service",
    [SAGA_RESERVE_STOCK] = "inventory-service",
    [SAGA_RELEASE_STOCK] = "inventory-service",
    [SAGA_RELEASE_CREDIT] = "customer-service",
};

bool order_saga_pattern_valid(const char *saga)
{
    return streq(saga, "choreography") || streq(saga, "orchestration");
}

static int64_t s_now_ms(void)
{
    return (int64_t)(eda_now_us() / 1000);
}

/* --- saga rows ------------------------------------------------------------- */

/*  Loads the saga of `order_id`: 1 found, 0 none, -1 database error. */
static int s_load(order_orchestrator_t *self, const char *order_id, order_saga_t *saga)
{
    sqlite3_stmt *q = self->get;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        int step = sqlite3_column_int(q, 0);
        saga->step = step >= 0 && step <= SAGA_DONE ? (order_saga_step_t)step : SAGA_DONE;
        saga->attempts = (uint32_t)sqlite3_column_int64(q, 1);
        saga->waiting = sqlite3_column_int(q, 2) != 0;
        saga->due_ms = sqlite3_column_int64(q, 3);
        saga->deadline_ms = sqlite3_column_int64(q, 4);
        saga->release_stock = sqlite3_column_int(q, 5) != 0;
        saga->release_credit = sqlite3_column_int(q, 6) != 0;
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int s_store(order_orchestrator_t *self, const char *order_id,
                   const order_saga_t *saga, const char *command_id)
{
    sqlite3_stmt *q = self->put;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, (int)saga->step);
    sqlite3_bind_int64(q, 3, saga->attempts);
    sqlite3_bind_int(q, 4, saga->waiting);
    sqlite3_bind_int64(q, 5, saga->step == SAGA_DONE ? 0 : saga->due_ms);
    sqlite3_bind_int64(q, 6, saga->deadline_ms);
    sqlite3_bind_int(q, 7, saga->release_stock);
    sqlite3_bind_int(q, 8, saga->release_credit);
    if (command_id)
        sqlite3_bind_text(q, 9, command_id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 9);
    return eda_store_exec(q);
}

/* --- commands ---------------------------------------------------------------- */

/*  Packs the data of the command of `step` for `order_id`, reading what it
    needs from the order's row. 0, or -1 when the order cannot be read. */
static int s_pack_command(order_orchestrator_t *self, msgpack_packer *pk,
                          order_saga_step_t step, const char *order_id)
{
    if (step == SAGA_RELEASE_STOCK || step == SAGA_RELEASE_CREDIT) {
        msgpack_pack_map(pk, 1);
        eda_pack_kv_str(pk, "order_id", order_id);
        return 0;
    }
    sqlite3_stmt *q = self->order;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        msgpack_pack_map(pk, step == SAGA_RESERVE_CREDIT ? 3 : 2);
        eda_pack_kv_str(pk, "order_id", order_id);
        if (step == SAGA_RESERVE_CREDIT) {
            eda_pack_kv_str(pk, "customer_id", (const char *)sqlite3_column_text(q, 0));
            eda_pack_kv_i64(pk, "amount", sqlite3_column_int64(q, 1));
        } else {
            eda_pack_key(pk, "items");
            eda_pack_raw(pk, sqlite3_column_blob(q, 2),
                         (size_t)sqlite3_column_bytes(q, 2));
        }
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 0 : -1;
}

/*  Does what order_saga decided: settles the order, queues the command of
    the saga's step, and writes the row back. 0 or -1. */
static int s_apply(order_orchestrator_t *self, eda_ctx_t *ctx, const char *order_id,
                   order_saga_t *saga, order_saga_action_t action)
{
    if (action.ignored)
        return 0;
    if (action.settle != ORDER_PENDING &&
        self->settle(self->settle_arg, ctx, order_id, action.settle, action.reason))
        return -1;
    if (action.settle == ORDER_REJECTED && saga->step != SAGA_DONE)
        self->compensations++;
    const char *command_id = NULL;
    if (action.send) {
        const char *type = order_saga_command(saga->step);
        msgpack_packer *pk = eda_ctx_command(ctx, s_peer_of[saga->step], type, order_id);
        if (!pk || s_pack_command(self, pk, saga->step, order_id))
            return -1;
        eda_ctx_command_end(ctx);
        command_id = eda_ctx_command_id(ctx);
        self->sent++;
        self->retries += saga->attempts > 1;
    }
    return s_store(self, order_id, saga, command_id);
}

int order_orchestrator_begin(order_orchestrator_t *self, eda_ctx_t *ctx,
                             const char *order_id)
{
    order_saga_t saga;
    order_saga_action_t action = order_saga_start(&saga, &self->cfg, s_now_ms());
    self->started++;
    return s_apply(self, ctx, order_id, &saga, action);
}

int order_orchestrator_cancel(order_orchestrator_t *self, eda_ctx_t *ctx,
                              const char *order_id)
{
    order_saga_t saga = {.step = SAGA_DONE};
    if (s_load(self, order_id, &saga) < 0)
        return -1;
    order_saga_action_t action = order_saga_cancel(&saga, &self->cfg, s_now_ms());
    return s_apply(self, ctx, order_id, &saga, action);
}

/* --- replies and the clock ------------------------------------------------- */

/*  Reads what a participant's reply to the command of `step` says; `reason`
    gets a refusal's. An error reply, or a reservation's reply whose outcome
    is neither RESERVED nor REJECTED, is a failure: the command is retried. */
static order_saga_reply_t s_outcome(order_orchestrator_t *self, eda_ctx_t *ctx,
                                    order_saga_step_t step, char *reason, size_t size)
{
    const eda_envelope_t *reply = eda_ctx_msg(ctx);
    char outcome[16] = "", code[32] = "";
    if (reply->ok == 1 && (step == SAGA_RELEASE_STOCK || step == SAGA_RELEASE_CREDIT))
        return SAGA_REPLY_OK; /* a release is acknowledged, whatever it found */
    if (reply->ok == 1 &&
        eda_get_str(&reply->data, "outcome", outcome, sizeof outcome) == 0) {
        if (streq(outcome, "RESERVED"))
            return SAGA_REPLY_OK;
        if (streq(outcome, "REJECTED")) {
            if (eda_get_str(&reply->data, "reason", reason, size) != 0 || !reason[0])
                snprintf(reason, size, "REJECTED");
            return SAGA_REPLY_REFUSED;
        }
    }
    if (reply->ok != 1)
        eda_get_str(&reply->error, "code", code, sizeof code);
    eda_log_msg(eda_ctx_log(ctx), EDA_LOG_WARN, "%s for %s failed at %s: %s: retry",
                reply->type, reply->correlation_id, reply->source,
                code[0] ? code : "no outcome in the reply");
    self->failed_replies++;
    return SAGA_REPLY_FAILED;
}

int order_orchestrator_on_reply(order_orchestrator_t *self, eda_ctx_t *ctx)
{
    const eda_envelope_t *reply = eda_ctx_msg(ctx);
    int step = order_saga_step_of(reply->type);
    order_saga_t saga;
    int found = step < 0 || !reply->correlation_id[0]
                    ? 0
                    : s_load(self, reply->correlation_id, &saga);
    if (found <= 0) {
        if (found == 0)
            self->late_replies++;
        return found;
    }
    char reason[64] = "";
    order_saga_reply_t outcome =
        s_outcome(self, ctx, (order_saga_step_t)step, reason, sizeof reason);
    order_saga_action_t action = order_saga_reply(
        &saga, &self->cfg, s_now_ms(), (order_saga_step_t)step, outcome, reason);
    if (action.ignored) {
        self->late_replies++;
        return 0;
    }
    return s_apply(self, ctx, reply->correlation_id, &saga, action);
}

/*  Runs one saga's tick (or its resumption after a restart). 0 or -1. */
static int s_tick_one(order_orchestrator_t *self, eda_ctx_t *ctx, const char *order_id,
                      int64_t now, bool resume)
{
    order_saga_t saga;
    int found = s_load(self, order_id, &saga);
    if (found <= 0)
        return found;
    bool waiting = saga.waiting;
    order_saga_step_t step = saga.step;
    order_saga_action_t action = resume ? order_saga_resume(&saga, &self->cfg, now)
                                        : order_saga_tick(&saga, &self->cfg, now);
    if (action.ignored)
        return 0;
    eda_log_t *log = eda_ctx_log(ctx);
    if (action.settle == ORDER_REJECTED) {
        self->gave_up++;
        eda_log_msg(log, EDA_LOG_WARN,
                    "%s: %s unanswered past the saga deadline: rejected", order_id,
                    order_saga_command(step));
    } else if (waiting && !resume) {
        self->timeouts++;
        eda_log_msg(log, EDA_LOG_INFO, "%s: %s timed out (attempt %u): retry in %lld ms",
                    order_id, order_saga_command(step), saga.attempts,
                    (long long)(saga.due_ms - now));
    } else if (resume)
        eda_log_msg(log, EDA_LOG_INFO, "%s: resuming at %s", order_id,
                    order_saga_command(saga.step));
    return s_apply(self, ctx, order_id, &saga, action);
}

/*  Reads up to S_TICK_BATCH order ids from `q` (bound by the caller) into
    ids. Returns the count, or -1 on a database error. */
static int s_collect(sqlite3_stmt *q, char ids[][EDA_NAME_MAX + 1])
{
    int n = 0, rc;
    while (n < S_TICK_BATCH && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        eda_copy(ids[n], EDA_NAME_MAX + 1, (const char *)sqlite3_column_text(q, 0));
        n++;
    }
    rc = n == S_TICK_BATCH ? SQLITE_DONE : rc;
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? n : -1;
}

int order_orchestrator_tick(order_orchestrator_t *self, eda_ctx_t *ctx)
{
    int64_t now = s_now_ms();
    bool resume = self->resuming;
    sqlite3_stmt *q = resume ? self->in_flight : self->due;
    if (resume)
        sqlite3_bind_text(q, 1, self->resume_after, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(q, 1, now);
    sqlite3_bind_int(q, 2, S_TICK_BATCH);
    int n = s_collect(q, self->ids);
    if (n < 0)
        return -1;
    if (resume && n > 0)
        memcpy(self->resume_after, self->ids[n - 1], sizeof self->resume_after);
    if (resume && n < S_TICK_BATCH)
        self->resuming = false;
    for (int i = 0; i < n; i++)
        if (s_tick_one(self, ctx, self->ids[i], now, resume))
            return -1;
    return 0;
}

void order_orchestrator_stats(order_orchestrator_t *self, msgpack_packer *pk)
{
    int64_t in_flight = -1;
    if (sqlite3_step(self->count) == SQLITE_ROW)
        in_flight = sqlite3_column_int64(self->count, 0);
    sqlite3_reset(self->count);
    msgpack_pack_map(pk, 9);
    eda_pack_kv_u64(pk, "sagas_started", self->started);
    eda_pack_kv_i64(pk, "sagas_in_flight", in_flight);
    eda_pack_kv_u64(pk, "saga_commands_sent", self->sent);
    eda_pack_kv_u64(pk, "saga_retries", self->retries);
    eda_pack_kv_u64(pk, "saga_timeouts", self->timeouts);
    eda_pack_kv_u64(pk, "saga_failed_replies", self->failed_replies);
    eda_pack_kv_u64(pk, "saga_late_replies", self->late_replies);
    eda_pack_kv_u64(pk, "saga_deadlines_passed", self->gave_up);
    eda_pack_kv_u64(pk, "saga_compensations", self->compensations);
}

/* --- start and stop ------------------------------------------------------ */

void order_orchestrator_destroy(order_orchestrator_t **self_p)
{
    free(*self_p);
    *self_p = NULL;
}

order_orchestrator_t *order_orchestrator_new(eda_service_t *svc, order_settle_fn *settle,
                                             void *settle_arg)
{
    const eda_config_t *cfg = eda_service_config(svc);
    char why[256];
    order_orchestrator_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    *self = (order_orchestrator_t){
        .settle = settle, .settle_arg = settle_arg, .resuming = true};
    if (eda_config_parse_ms("command-timeout", eda_config_option(cfg, "command-timeout"),
                            &self->cfg.timeout_ms, why, sizeof why) ||
        eda_config_parse_ms("saga-deadline", eda_config_option(cfg, "saga-deadline"),
                            &self->cfg.deadline_ms, why, sizeof why)) {
        eda_log_msg(eda_service_log(svc), EDA_LOG_ERROR, "%s", why);
        order_orchestrator_destroy(&self);
        return NULL;
    }
    eda_store_t *store = eda_service_store(svc);
    self->get = eda_store_prepare(store, "SELECT step, attempts, waiting, due_ms,"
                                         " deadline_ms, release_stock, release_credit"
                                         " FROM sagas WHERE order_id = ?");
    self->put = eda_store_prepare(store, "INSERT OR REPLACE INTO sagas VALUES"
                                         " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    self->due = eda_store_prepare(store, "SELECT order_id FROM sagas WHERE due_ms > 0"
                                         " AND due_ms <= ?1 ORDER BY due_ms LIMIT ?2");
    self->in_flight = eda_store_prepare(store, "SELECT order_id FROM sagas"
                                               " WHERE due_ms > 0 AND order_id > ?1"
                                               " ORDER BY order_id LIMIT ?2");
    self->count = eda_store_prepare(store, "SELECT COUNT(*) FROM sagas WHERE due_ms > 0");
    self->order = eda_store_prepare(
        store, "SELECT customer_id, total, items FROM orders WHERE order_id = ?");
    if (!self->get || !self->put || !self->due || !self->in_flight || !self->count ||
        !self->order)
        order_orchestrator_destroy(&self);
    return self;
}
