/*  order_service: accepts orders (PlaceOrder answers PENDING at once, never
    waiting on a peer), publishes OrderCreated, and settles each order by
    the saga pattern it names. Choreography: from its peers' events
    (CreditRejected or StockRejected reject it, StockReserved approves it).
    Orchestration: order_orchestrator drives the peers with commands.
    CancelOrder cancels an APPROVED order in either pattern.
*/
#include "order_service.h"

#include "eda_client.h"
#include "eda_text.h"
#include "order_domain.h"
#include "order_orchestrator.h"

#include <string.h>

#define S_LIST_DEFAULT 100
#define S_LIST_MAX     10000
#define S_LIST_BYTES   (EDA_REPLY_MAX - 4096) /* a ListOrders reply stays under it */

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS orders ("
    " order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,"
    " reason TEXT, saga TEXT NOT NULL, total INTEGER NOT NULL, created_ts INTEGER NOT "
    "NULL,"
    " items BLOB NOT NULL, request_id TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_by_request ON orders (request_id)"
    " WHERE request_id IS NOT NULL;"
    /* PENDING orders only: what an operator looks for (stuck sagas), kept
       at one index write when an order is placed and one when it is
       decided. An index of every status cost three, 10% of the service's
       work per saga; ListOrders of another status reads the orders in
       order until its page is full. (Versions before kept that index.) */
    "DROP INDEX IF EXISTS orders_by_status;"
    "CREATE INDEX IF NOT EXISTS orders_pending ON orders (status)"
    " WHERE status = 'PENDING';" ORDER_SAGA_SCHEMA;

#define S_ORDER_COLUMNS                                                                  \
    "order_id, customer_id, status, reason, saga, items, total, created_ts"

typedef struct {
    eda_service_t *svc;
    order_orchestrator_t *orchestrator;
    sqlite3_stmt *insert, *by_id, *by_request, *list_all, *list_status, *list_pending;
    sqlite3_stmt *set_status;
    sqlite3_stmt *decide;      /* set_status for a PENDING order of one pattern only */
    sqlite3_stmt *last_number; /* the highest order number, this batch included */
    int64_t number;            /* what it read, counted on in memory */
    uint64_t undos;            /* eda_store_undos then: read again when it moved */
    char id_prefix[16];        /* "o-" and 12 hex digits drawn at each start */
    msgpack_sbuffer items;     /* scratch for an order's packed items */
    msgpack_packer items_pk;
    msgpack_sbuffer list; /* scratch for a ListOrders reply */
    msgpack_packer list_pk;
} order_state_t;

/* --- reading and writing orders ------------------------------------------ */

/*  Packs the order in the current row of `stmt` (S_ORDER_COLUMNS). */
static void s_pack_order(msgpack_packer *pk, sqlite3_stmt *stmt)
{
    msgpack_pack_map(pk, 8);
    eda_pack_kv_str(pk, "order_id", (const char *)sqlite3_column_text(stmt, 0));
    eda_pack_kv_str(pk, "customer_id", (const char *)sqlite3_column_text(stmt, 1));
    eda_pack_kv_str(pk, "status", (const char *)sqlite3_column_text(stmt, 2));
    eda_pack_kv_str(pk, "reason", (const char *)sqlite3_column_text(stmt, 3));
    eda_pack_kv_str(pk, "saga", (const char *)sqlite3_column_text(stmt, 4));
    eda_pack_key(pk, "items");
    eda_pack_raw(pk, sqlite3_column_blob(stmt, 5), (size_t)sqlite3_column_bytes(stmt, 5));
    eda_pack_kv_i64(pk, "total", sqlite3_column_int64(stmt, 6));
    eda_pack_kv_i64(pk, "created_ts", sqlite3_column_int64(stmt, 7));
}

/*  Looks an order up by id: 1 found (the row stays on `by_id` until reset),
    0 not found, -1 on a database error. */
static int s_find(order_state_t *self, const char *order_id)
{
    sqlite3_reset(self->by_id);
    sqlite3_bind_text(self->by_id, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(self->by_id);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/*  Replies {order_id, status} for the order in the current row of `stmt`. */
static int s_reply_status(eda_ctx_t *ctx, sqlite3_stmt *stmt)
{
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", (const char *)sqlite3_column_text(stmt, 0));
    eda_pack_kv_str(pk, "status", (const char *)sqlite3_column_text(stmt, 1));
    return 0;
}

/* --- commands ----------------------------------------------------------- */

/*  A PlaceOrder, read and checked. */
typedef struct {
    char request_id[EDA_NAME_MAX + 1]; /* "" when none */
    char customer_id[EDA_NAME_MAX + 1];
    char saga[32];
    eda_item_t items[EDA_ITEMS_MAX];
    int nitems;
    int64_t total;
} s_request_t;

/*  Reads the data of a PlaceOrder after its request_id. Returns 0, or -1
    with a reason in why[]. */
static int s_read_request(order_state_t *self, const msgpack_object *data,
                          s_request_t *req, char *why, size_t size)
{
    if (eda_get_str(data, "customer_id", req->customer_id, sizeof req->customer_id) !=
            0 ||
        !req->customer_id[0]) {
        snprintf(why, size, "customer_id must be a string of 1 to %d bytes",
                 EDA_NAME_MAX);
        return -1;
    }
    int sagarc = eda_get_str(data, "saga", req->saga, sizeof req->saga);
    if (sagarc == 1)
        eda_copy(req->saga, sizeof req->saga,
                 eda_config_option(eda_service_config(self->svc), "saga"));
    else if (sagarc < 0 || !order_saga_pattern_valid(req->saga)) {
        snprintf(why, size, "saga must be choreography or orchestration");
        return -1;
    }
    req->nitems = eda_items_read(eda_map_get(data, "items"), true, req->items, why, size);
    if (req->nitems < 0 ||
        order_total(req->items, (size_t)req->nitems, &req->total, why, size))
        return -1;
    return 0;
}

/*  Writes the new order `order_id`, publishes OrderCreated and, for an
    orchestrated one, begins its saga. 0, or -1 on a database error. */
static int s_create(order_state_t *self, eda_ctx_t *ctx, const s_request_t *req,
                    const char *order_id)
{
    msgpack_sbuffer_clear(&self->items);
    eda_items_pack(&self->items_pk, req->items, (size_t)req->nitems, true);
    sqlite3_stmt *ins = self->insert;
    sqlite3_bind_text(ins, 1, order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, req->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, req->saga, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 4, req->total);
    sqlite3_bind_int64(ins, 5, (int64_t)eda_now_us());
    sqlite3_bind_blob(ins, 6, self->items.data, (int)self->items.size, SQLITE_STATIC);
    if (req->request_id[0])
        sqlite3_bind_text(ins, 7, req->request_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 7);
    if (eda_store_exec(ins))
        return -1;

    msgpack_packer *pk = eda_ctx_emit(ctx, "OrderCreated", order_id);
    msgpack_pack_map(pk, 5);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "customer_id", req->customer_id);
    eda_pack_key(pk, "items");
    eda_pack_raw(pk, self->items.data, self->items.size);
    eda_pack_kv_i64(pk, "total", req->total);
    eda_pack_kv_str(pk, "saga", req->saga);
    if (eda_ctx_emit_end(ctx))
        return -1;
    return streq(req->saga, "orchestration")
               ? order_orchestrator_begin(self->orchestrator, ctx, order_id)
               : 0;
}

static int s_place_order(void *state, eda_ctx_t *ctx)
{
    order_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    s_request_t req; /* not zeroed whole: its items are 14 KB */
    req.request_id[0] = '\0';
    req.nitems = 0;
    char why[256];

    int has_request =
        eda_get_str(data, "request_id", req.request_id, sizeof req.request_id);
    if (has_request < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "request_id must be a string of at most %d bytes",
                             EDA_NAME_MAX);
    if (has_request == 0 && !eda_printable(req.request_id, strlen(req.request_id)))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "request_id must be UTF-8 text without control characters");
    if (has_request == 0 && req.request_id[0]) {
        /* A repeated request names the first order, whatever else it says. */
        sqlite3_stmt *q = self->by_request;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, req.request_id, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s_reply_status(ctx, q);
        sqlite3_reset(q);
        if (rc != SQLITE_DONE)
            return rc == SQLITE_ROW ? 0 : -1;
    }
    if (s_read_request(self, data, &req, why, sizeof why))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "%s", why);

    /* The number is the order's rowid, counted in memory from the highest
       in the database, read again in the transaction after changes were
       undone: a batch that does not commit takes its numbers back with it,
       and a restart goes on from what was committed, so no number is ever
       given twice. */
    eda_store_t *store = eda_service_store(self->svc);
    if (self->undos != eda_store_undos(store)) {
        if (sqlite3_step(self->last_number) != SQLITE_ROW) {
            sqlite3_reset(self->last_number);
            return -1;
        }
        self->number = sqlite3_column_int64(self->last_number, 0);
        self->undos = eda_store_undos(store);
        sqlite3_reset(self->last_number);
    }
    int64_t number = self->number + 1;
    char order_id[EDA_NAME_MAX + 1];
    eda_id_join(order_id, sizeof order_id, self->id_prefix, (uint64_t)number);
    sqlite3_bind_int64(self->insert, 8, number);
    if (s_create(self, ctx, &req, order_id))
        return -1;
    self->number = number;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "status", "PENDING");
    return 0;
}

static int s_get_order(void *state, eda_ctx_t *ctx)
{
    order_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1] = "";
    if (eda_get_str(&eda_ctx_msg(ctx)->data, "order_id", order_id, sizeof order_id) !=
            0 ||
        !order_id[0])
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    int found = s_find(self, order_id);
    if (found == 1)
        s_pack_order(eda_ctx_reply(ctx), self->by_id);
    else if (found == 0)
        eda_ctx_error(ctx, EDA_NOT_FOUND, "no order %s", order_id);
    sqlite3_reset(self->by_id);
    return found < 0 ? -1 : 0;
}

static int s_list_orders(void *state, eda_ctx_t *ctx)
{
    order_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char status[16] = "";
    uint64_t limit = S_LIST_DEFAULT, after = 0;
    order_status_t parsed = ORDER_PENDING;
    int has_status = eda_get_str(data, "status", status, sizeof status);
    if (has_status < 0 || (has_status == 0 && order_status_parse(status, &parsed)))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "status must be PENDING, APPROVED, REJECTED or CANCELLED");
    if (eda_get_u64(data, "limit", &limit) < 0 || limit < 1 || limit > S_LIST_MAX)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "limit must be an integer from 1 to %d", S_LIST_MAX);
    if (eda_get_u64(data, "after", &after) < 0 || after > INT64_MAX)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "after must be the `next` of an earlier ListOrders reply");

    bool pending = has_status == 0 && parsed == ORDER_PENDING;
    sqlite3_stmt *q = pending           ? self->list_pending
                      : has_status == 0 ? self->list_status
                                        : self->list_all;
    int col = 1;
    if (has_status == 0 && !pending)
        sqlite3_bind_text(q, col++, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, col++, (sqlite3_int64)after);
    sqlite3_bind_int64(q, col, (sqlite3_int64)limit + 1); /* one more: is there more? */
    /* Orders are packed aside first: msgpack wants the array's length before
       its items, and the reply must stay under EDA_REPLY_MAX. */
    msgpack_sbuffer_clear(&self->list);
    int n = 0, rc;
    bool more = false;
    int64_t next = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t before = self->list.size;
        if ((uint64_t)n < limit)
            s_pack_order(&self->list_pk, q);
        if ((uint64_t)n == limit || (self->list.size > S_LIST_BYTES && n > 0)) {
            self->list.size = before;
            more = true;
            break;
        }
        next = sqlite3_column_int64(q, 8);
        n++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, more ? 3 : 2);
    eda_pack_key(pk, "orders");
    msgpack_pack_array(pk, (size_t)n);
    eda_pack_raw(pk, self->list.data, self->list.size);
    eda_pack_kv_bool(pk, "more", more);
    if (more)
        eda_pack_kv_u64(pk, "next", (uint64_t)next);
    return 0;
}

/* --- peers' events ------------------------------------------------------- */

/*  Runs `up` (set_status, or decide with its pattern bound) for an order:
    its status `next` and reason. Returns the rows changed (0 or 1), or -1 on
    a database error. */
static int s_set_status(order_state_t *self, sqlite3_stmt *up, const char *order_id,
                        order_status_t next, const char *reason)
{
    sqlite3_bind_text(up, 1, order_status_name(next), -1, SQLITE_STATIC);
    if (reason)
        sqlite3_bind_text(up, 2, reason, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(up, 2);
    sqlite3_bind_text(up, 3, order_id, -1, SQLITE_TRANSIENT);
    if (eda_store_exec(up))
        return -1;
    return sqlite3_changes(eda_store_db(eda_service_store(self->svc)));
}

/*  Publishes the event that says an order is now `next`: OrderApproved,
    OrderRejected or OrderCancelled of `saga`. 0 or -1. */
static int s_announce(eda_ctx_t *ctx, const char *order_id, order_status_t next,
                      const char *reason, const char *saga)
{
    static const char *events[] = {[ORDER_APPROVED] = "OrderApproved",
                                   [ORDER_REJECTED] = "OrderRejected",
                                   [ORDER_CANCELLED] = "OrderCancelled"};
    assert(next != ORDER_PENDING);
    msgpack_packer *pk = eda_ctx_emit(ctx, events[next], order_id);
    msgpack_pack_map(pk, reason ? 3 : 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    if (reason)
        eda_pack_kv_str(pk, "reason", reason);
    eda_pack_kv_str(pk, "saga", saga);
    return eda_ctx_emit_end(ctx);
}

/*  Sets an order's status (and reason) and announces it. 0 or -1. */
static int s_record(order_state_t *self, eda_ctx_t *ctx, const char *order_id,
                    order_status_t next, const char *reason, const char *saga)
{
    if (s_set_status(self, self->set_status, order_id, next, reason) < 0)
        return -1;
    return s_announce(ctx, order_id, next, reason, saga);
}

/*  Approves or rejects a PENDING order of `saga`'s pattern and announces it,
    in one statement. Returns 1 when it did, 0 when the order is not PENDING
    or of another pattern (or unknown), -1 on a database error. */
static int s_decide(order_state_t *self, eda_ctx_t *ctx, const char *order_id,
                    order_status_t next, const char *reason, const char *saga)
{
    sqlite3_bind_text(self->decide, 5, saga, -1, SQLITE_STATIC);
    int changed = s_set_status(self, self->decide, order_id, next, reason);
    if (changed <= 0)
        return changed;
    return s_announce(ctx, order_id, next, reason, saga) ? -1 : 1;
}

/*  Reads an order's status and saga pattern: 1 found, 0 not, -1 error. */
static int s_status(order_state_t *self, const char *order_id, order_status_t *status,
                    char *saga, size_t saga_size)
{
    int found = s_find(self, order_id);
    if (found == 1) {
        if (order_status_parse((const char *)sqlite3_column_text(self->by_id, 2), status))
            *status = ORDER_CANCELLED; /* unreadable: treat as final */
        eda_copy(saga, saga_size, (const char *)sqlite3_column_text(self->by_id, 4));
    }
    sqlite3_reset(self->by_id);
    return found;
}

/*  The orchestrator's verdicts (order_settle_fn). */
static int s_settle_orchestrated(void *state, eda_ctx_t *ctx, const char *order_id,
                                 order_status_t status, const char *reason)
{
    order_state_t *self = state;
    if (status != ORDER_CANCELLED) /* decided already: a second verdict changes nothing */
        return s_decide(self, ctx, order_id, status, reason, "orchestration") < 0 ? -1
                                                                                  : 0;
    order_status_t now;
    char saga[32];
    int found = s_status(self, order_id, &now, saga, sizeof saga);
    if (found <= 0)
        return found < 0 ? -1 : 0;
    return s_record(self, ctx, order_id, status, reason, "orchestration");
}

/*  Moves a PENDING choreography order to APPROVED or REJECTED from a peer's
    event. `reason` is NULL for an approval. */
static int s_settle(order_state_t *self, eda_ctx_t *ctx, const char *reason)
{
    char order_id[EDA_NAME_MAX + 1] = "", saga[32];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    /* One statement in the common case: the order is PENDING. */
    order_status_t next = reason ? ORDER_REJECTED : ORDER_APPROVED;
    int decided = s_decide(self, ctx, order_id, next, reason, "choreography");
    if (decided != 0)
        return decided < 0 ? -1 : 0;
    order_status_t status;
    int found = s_status(self, order_id, &status, saga, sizeof saga);
    if (found < 0)
        return -1;
    if (found == 0)
        return eda_ctx_bad_event(ctx, "unknown order %s", order_id);
    return 0; /* decided already, or another pattern's order */
}

static int s_on_rejected(void *state, eda_ctx_t *ctx)
{
    char reason[64] = "";
    if (eda_get_str(&eda_ctx_msg(ctx)->data, "reason", reason, sizeof reason) != 0 ||
        !reason[0])
        return eda_ctx_bad_event(ctx, "no reason");
    /* A reason this version does not know (a newer peer) still rejects. */
    if (!order_reason_valid(reason))
        eda_log_msg(eda_ctx_log(ctx), EDA_LOG_WARN, "unknown rejection reason %s",
                    reason);
    return s_settle(state, ctx, reason);
}

static int s_on_stock_reserved(void *state, eda_ctx_t *ctx)
{
    return s_settle(state, ctx, NULL);
}

/* --- start and stop ------------------------------------------------------ */

/* --- cancelling ------------------------------------------------------------ */

static int s_cancel_order(void *state, eda_ctx_t *ctx)
{
    order_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1] = "", saga[32];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    order_status_t status;
    int found = s_status(self, order_id, &status, saga, sizeof saga);
    if (found < 0)
        return -1;
    if (found == 0)
        return eda_ctx_error(ctx, EDA_NOT_FOUND, "no order %s", order_id);
    if (status != ORDER_CANCELLED && !order_can_cancel(status))
        return eda_ctx_error(ctx, EDA_CONFLICT,
                             "order %s is %s: only an APPROVED order can be cancelled",
                             order_id, order_status_name(status));
    /* A repeat finds it CANCELLED and changes nothing. */
    if (status == ORDER_APPROVED &&
        (streq(saga, "orchestration")
             ? order_orchestrator_cancel(self->orchestrator, ctx, order_id)
             : s_record(self, ctx, order_id, ORDER_CANCELLED, NULL, saga)))
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "status", "CANCELLED");
    return 0;
}

/* --- the orchestrator's seams -------------------------------------------- */

static int s_on_reply(void *state, eda_ctx_t *ctx)
{
    return order_orchestrator_on_reply(((order_state_t *)state)->orchestrator, ctx);
}

static int s_tick(void *state, eda_ctx_t *ctx)
{
    return order_orchestrator_tick(((order_state_t *)state)->orchestrator, ctx);
}

static void s_stats(void *state, msgpack_packer *pk)
{
    order_orchestrator_stats(((order_state_t *)state)->orchestrator, pk);
}

static void s_stop(void **state_p)
{
    order_state_t *self = *state_p;
    if (!self)
        return;
    order_orchestrator_destroy(&self->orchestrator);
    msgpack_sbuffer_destroy(&self->items);
    msgpack_sbuffer_destroy(&self->list);
    free(self);
    *state_p = NULL;
}

static void *s_start(eda_service_t *svc)
{
    order_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->svc = svc;
    msgpack_sbuffer_init(&self->items);
    msgpack_packer_init(&self->items_pk, &self->items, msgpack_sbuffer_write);
    msgpack_sbuffer_init(&self->list);
    msgpack_packer_init(&self->list_pk, &self->list, msgpack_sbuffer_write);
    eda_store_t *store = eda_service_store(svc);
    self->insert = eda_store_prepare(
        store,
        "INSERT INTO orders (order_id, customer_id, status, saga, total, created_ts,"
        " items, request_id, rowid) VALUES (?1, ?2, 'PENDING', ?3, ?4, ?5, ?6, ?7, ?8)");
    self->last_number =
        eda_store_prepare(store, "SELECT COALESCE(MAX(rowid), 0) FROM orders");
    self->undos = eda_store_undos(store) - 1; /* not read yet */
    self->by_id = eda_store_prepare(store, "SELECT " S_ORDER_COLUMNS
                                           " FROM orders WHERE order_id = ?");
    self->by_request = eda_store_prepare(
        store, "SELECT order_id, status FROM orders WHERE request_id = ?");
    self->list_all = eda_store_prepare(store, "SELECT " S_ORDER_COLUMNS ", rowid"
                                              " FROM orders WHERE rowid > ?"
                                              " ORDER BY rowid LIMIT ?");
    self->list_status =
        eda_store_prepare(store, "SELECT " S_ORDER_COLUMNS
                                 ", rowid FROM orders WHERE status = ? AND rowid > ?"
                                 " ORDER BY rowid LIMIT ?");
    self->list_pending = eda_store_prepare(
        store, "SELECT " S_ORDER_COLUMNS ", rowid FROM orders INDEXED BY orders_pending"
               " WHERE status = 'PENDING' AND rowid > ? ORDER BY rowid LIMIT ?");
    self->set_status = eda_store_prepare(
        store, "UPDATE orders SET status = ?1, reason = ?2 WHERE order_id = ?3");
    /* Only an order that order_can_decide, of one pattern (?5). */
    self->decide = eda_store_prepare(store, "UPDATE orders SET status = ?1, reason = ?2"
                                            " WHERE order_id = ?3 AND status = ?4"
                                            " AND saga = ?5");
    if (self->decide)
        sqlite3_bind_text(self->decide, 4, order_status_name(ORDER_PENDING), -1,
                          SQLITE_STATIC);
    self->orchestrator = order_orchestrator_new(svc, s_settle_orchestrated, self);
    if (!self->insert || !self->by_id || !self->by_request || !self->list_all ||
        !self->list_status || !self->list_pending || !self->set_status || !self->decide ||
        !self->last_number || !self->orchestrator) {
        s_stop((void **)&self);
        return NULL;
    }
    /* Drawn at each start: a database that lost its last commits (restored
       from a copy) numbers orders again from where it stands, and the ids
       must still differ from those its peers hold. */
    char run[13];
    eda_random_hex(run, 12);
    snprintf(self->id_prefix, sizeof self->id_prefix, "o-%s", run);
    return self;
}

static const eda_command_t s_commands[] = {
    {"PlaceOrder", s_place_order, EDA_CMD_CHECKS_FIRST},
    {"GetOrder", s_get_order, EDA_CMD_CHECKS_FIRST},
    {"ListOrders", s_list_orders, EDA_CMD_CHECKS_FIRST},
    {"CancelOrder", s_cancel_order, EDA_CMD_CHECKS_FIRST},
    {0}};

static const eda_handler_t s_handlers[] = {
    {"customer-service", "CreditRejected", s_on_rejected, "choreography"},
    {"inventory-service", "StockRejected", s_on_rejected, "choreography"},
    {"inventory-service", "StockReserved", s_on_stock_reserved, "choreography"},
    {NULL, NULL, NULL, NULL}};

static const eda_reply_handler_t s_replies[] = {
    {"customer-service", "ReserveCredit", s_on_reply},
    {"customer-service", "ReleaseCredit", s_on_reply},
    {"inventory-service", "ReserveStock", s_on_reply},
    {"inventory-service", "ReleaseStock", s_on_reply},
    {NULL, NULL, NULL}};

/*  Timeouts, retries and deadlines are looked at this often. */
static const eda_timer_t s_timers[] = {{20, s_tick}, {0, NULL}};

static int s_check_saga(const char *name, const char *value, char *why, size_t why_size)
{
    (void)name;
    if (order_saga_pattern_valid(value))
        return 0;
    snprintf(why, why_size, "--%s must be choreography or orchestration, not '%s'", name,
             value);
    return -1;
}

static const eda_option_t s_options[] = {{"saga", "choreography", s_check_saga},
                                         {"command-timeout", "1000", eda_config_check_ms},
                                         {"saga-deadline", "30000", eda_config_check_ms},
                                         {NULL, NULL, NULL}};

const eda_service_def_t order_service_def = {.name = "order-service",
                                             .colour = "36",
                                             .schema = s_schema,
                                             .start = s_start,
                                             .stop = s_stop,
                                             .commands = s_commands,
                                             .handlers = s_handlers,
                                             .replies = s_replies,
                                             .timers = s_timers,
                                             .options = s_options,
                                             .stats = s_stats};
