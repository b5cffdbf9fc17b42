/*  inventory_service: stock per SKU. It holds the stock of every line of an
    order (StockReserved) or refuses the order (StockRejected), and gives the
    stock back (StockReleased) when the order is cancelled. By choreography
    it keeps its own replica of each new order's items (from OrderCreated)
    and decides once the customer's credit is held (CreditReserved); events
    from two peers have no mutual order, so whichever of the two comes first
    is remembered until the other arrives. By orchestration it answers the
    ReserveStock command, which carries the items, and ReleaseStock. Both go
    through one reservation and one release rule, and one record per order_id
    makes each idempotent.
*/
#include "inventory_service.h"

#include "eda_hold.h"
#include "eda_mpread.h"
#include "eda_text.h"
#include "inventory_domain.h"

#include <string.h>

/*  Tables keyed by text and never by rowid are WITHOUT ROWID: a row lives
    in its key's B-tree, one B-tree to write and to search, not two. (A
    database made before keeps its tables as they were: the statements are
    the same.) */
static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS stock ("
    " sku TEXT PRIMARY KEY, available INTEGER NOT NULL, reserved INTEGER NOT NULL "
    "DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS order_replicas ("
    " order_id TEXT PRIMARY KEY, items BLOB, credit_ok INTEGER NOT NULL DEFAULT 0)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stock_reservations ("
    " order_id TEXT PRIMARY KEY, state TEXT NOT NULL, items BLOB NOT NULL,"
    " reason TEXT, sku TEXT) WITHOUT ROWID;";

typedef struct {
    sqlite3_stmt *add, *get, *hold, *unhold;
    sqlite3_stmt *replica_get, *replica_put, *replica_del;
    sqlite3_stmt *res_get, *res_put;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_zone zone;
} inventory_state_t;

/*  Reads a SKU's stock: 1 found, 0 not, -1 database error. */
static int s_stock(inventory_state_t *self, const char *sku, int64_t *available,
                   int64_t *reserved)
{
    sqlite3_bind_text(self->get, 1, sku, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(self->get);
    if (rc == SQLITE_ROW) {
        *available = sqlite3_column_int64(self->get, 0);
        if (reserved)
            *reserved = sqlite3_column_int64(self->get, 1);
    }
    sqlite3_reset(self->get);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/*  Reads items packed by eda_items_pack from a blob. Count or -1. */
static int s_unpack_items(inventory_state_t *self, const void *blob, size_t len,
                          eda_item_t *items)
{
    msgpack_object obj;
    char why[128];
    msgpack_zone_clear(&self->zone);
    if (!eda_mp_unpack(blob, len, &self->zone, &obj))
        return -1;
    return eda_items_read(&obj, false, items, why, sizeof why);
}

/*  Packs `items` into self->buf (cleared first). */
static void s_pack_items(inventory_state_t *self, const eda_item_t *items, size_t n)
{
    msgpack_sbuffer_clear(&self->buf);
    eda_items_pack(&self->pk, items, n, false);
}

/* --- commands ----------------------------------------------------------- */

static int s_add_stock(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char sku[EDA_NAME_MAX + 1] = "", why[128];
    int64_t qty = 0, available = 0, reserved = 0;
    if (eda_get_str(data, "sku", sku, sizeof sku) < 0 ||
        eda_get_i64(data, "qty", &qty) < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "sku must be a string of 1 to %d bytes, qty an integer >= 1",
                             EDA_NAME_MAX);
    int found = sku[0] ? s_stock(self, sku, &available, &reserved) : 0;
    if (found < 0)
        return -1;
    /* All stock added (available + reserved) must stay within 63 bits. */
    if (inventory_validate_add(sku, qty, available + reserved, why, sizeof why))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "%s", why);
    sqlite3_bind_text(self->add, 1, sku, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(self->add, 2, qty);
    if (eda_store_exec(self->add))
        return -1;
    available += qty;

    msgpack_packer *pk = eda_ctx_emit(ctx, "StockAdded", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_pack_kv_i64(pk, "available", available);
    if (eda_ctx_emit_end(ctx))
        return -1;
    pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "available", available);
    return 0;
}

static int s_get_stock(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char sku[EDA_NAME_MAX + 1] = "";
    int64_t available, reserved;
    if (eda_get_str(&eda_ctx_msg(ctx)->data, "sku", sku, sizeof sku) != 0 || !sku[0])
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "sku must be a string of 1 to %d bytes", EDA_NAME_MAX);
    int found = s_stock(self, sku, &available, &reserved);
    if (found < 0)
        return -1;
    if (!found)
        return eda_ctx_error(ctx, EDA_NOT_FOUND, "no stock item %s", sku);
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "available", available);
    eda_pack_kv_i64(pk, "reserved", reserved);
    return 0;
}

/* --- the two rules, for peers' events and commands alike ------------------ */

/*  What is recorded of one order's stock. */
typedef struct {
    eda_hold_t state;           /* NONE when nothing is recorded */
    char reason[32];            /* of a refusal */
    char sku[EDA_NAME_MAX + 1]; /* of a refusal: its first failing line */
} s_hold_t;

/*  Reads the record of an order (zeroed, state NONE, when there is none)
    and, when `items` is not NULL, the items recorded with it into
    items[*nitems] (0 when none, -1 when unreadable). 0, or -1 on a database
    error. */
static int s_hold_get(inventory_state_t *self, const char *order_id, s_hold_t *hold,
                      eda_item_t *items, int *nitems)
{
    sqlite3_stmt *q = self->res_get;
    memset(hold, 0, sizeof *hold);
    if (items)
        *nitems = 0;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        hold->state = eda_hold_parse((const char *)sqlite3_column_text(q, 0));
        if (items)
            *nitems = s_unpack_items(self, sqlite3_column_blob(q, 1),
                                     (size_t)sqlite3_column_bytes(q, 1), items);
        if (sqlite3_column_type(q, 2) != SQLITE_NULL)
            eda_copy(hold->reason, sizeof hold->reason,
                     (const char *)sqlite3_column_text(q, 2));
        if (sqlite3_column_type(q, 3) != SQLITE_NULL)
            eda_copy(hold->sku, sizeof hold->sku,
                     (const char *)sqlite3_column_text(q, 3));
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*  Records an order's state with its merged items (n may be 0), which stay
    packed in self->buf. 0 or -1. */
static int s_hold_put(inventory_state_t *self, const char *order_id, const s_hold_t *hold,
                      const eda_item_t *items, size_t n)
{
    sqlite3_stmt *q = self->res_put;
    s_pack_items(self, items, n);
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, eda_hold_name(hold->state), -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, self->buf.data, (int)self->buf.size, SQLITE_STATIC);
    if (hold->reason[0])
        sqlite3_bind_text(q, 4, hold->reason, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 4);
    if (hold->sku[0])
        sqlite3_bind_text(q, 5, hold->sku, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 5);
    return eda_store_exec(q);
}

/*  Moves qty between available and reserved for each line: +1 holds, -1
    gives back. 0 or -1. */
static int s_move(inventory_state_t *self, const eda_item_t *lines, int n, int sign)
{
    sqlite3_stmt *q = sign > 0 ? self->hold : self->unhold;
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(q, 1, lines[i].qty);
        sqlite3_bind_text(q, 2, lines[i].sku, -1, SQLITE_TRANSIENT);
        if (eda_store_exec(q))
            return -1;
    }
    return 0;
}

/*  A reservation's answer. */
typedef struct {
    bool reserved;
    char reason[32];            /* when refused */
    char sku[EDA_NAME_MAX + 1]; /* when refused: the first failing line, or "" */
} s_outcome_t;

/*  Holds stock for every merged line of a new order, or refuses it, records
    the outcome, forgets the order's replica and publishes StockReserved or
    StockRejected marked with `saga`. 0 with *out, or -1. */
static int s_decide(inventory_state_t *self, eda_ctx_t *ctx, const char *order_id,
                    const eda_item_t *lines, int n, const char *saga, s_outcome_t *out)
{
    int64_t available[EDA_ITEMS_MAX];
    for (int i = 0; i < n; i++) {
        int found = s_stock(self, lines[i].sku, &available[i], NULL);
        if (found < 0)
            return -1;
        if (!found)
            available[i] = -1;
    }
    inventory_decision_t d = inventory_decide(lines, available, (size_t)n);
    s_hold_t hold = {.state = d.reserved ? EDA_HOLD_RESERVED : EDA_HOLD_REJECTED};
    if (!d.reserved) {
        eda_copy(hold.reason, sizeof hold.reason, d.reason);
        eda_copy(hold.sku, sizeof hold.sku, lines[d.failed].sku);
    }
    *out = (s_outcome_t){.reserved = d.reserved};
    eda_copy(out->reason, sizeof out->reason, hold.reason);
    eda_copy(out->sku, sizeof out->sku, hold.sku);
    if (s_hold_put(self, order_id, &hold, lines, (size_t)n) ||
        (d.reserved && s_move(self, lines, n, +1)))
        return -1;
    sqlite3_bind_text(self->replica_del, 1, order_id, -1, SQLITE_TRANSIENT);
    if (eda_store_exec(self->replica_del))
        return -1;

    msgpack_packer *pk =
        eda_ctx_emit(ctx, d.reserved ? "StockReserved" : "StockRejected", order_id);
    if (d.reserved) {
        msgpack_pack_map(pk, 3);
        eda_pack_kv_str(pk, "order_id", order_id);
        eda_pack_key(pk, "items");
        eda_pack_raw(pk, self->buf.data, self->buf.size); /* packed by s_hold_put */
    } else {
        msgpack_pack_map(pk, 6);
        eda_pack_kv_str(pk, "order_id", order_id);
        eda_pack_kv_str(pk, "reason", d.reason);
        eda_pack_kv_str(pk, "sku", lines[d.failed].sku);
        eda_pack_kv_i64(pk, "requested", d.requested);
        eda_pack_kv_i64(pk, "available", d.available);
    }
    eda_pack_kv_str(pk, "saga", saga);
    return eda_ctx_emit_end(ctx);
}

/*  The reservation rule, for the choreography (once both OrderCreated and
    CreditReserved came) and ReserveStock: the first request for an order
    decides (s_decide); any later one answers that first outcome, changing
    and publishing nothing. 0 with the answer in *out, -1 on a database
    error. */
static int s_reserve(inventory_state_t *self, eda_ctx_t *ctx, const char *order_id,
                     const eda_item_t *lines, int n, const char *saga, s_outcome_t *out)
{
    s_hold_t hold;
    if (s_hold_get(self, order_id, &hold, NULL, NULL))
        return -1;
    if (hold.state == EDA_HOLD_NONE)
        return s_decide(self, ctx, order_id, lines, n, saga, out);
    const char *reason;
    *out = (s_outcome_t){.reserved = eda_hold_repeat(hold.state, hold.reason, &reason)};
    if (!out->reserved) {
        eda_copy(out->reason, sizeof out->reason, reason);
        eda_copy(out->sku, sizeof out->sku, hold.sku);
    }
    return 0;
}

/*  The release rule, for OrderCancelled and ReleaseStock: gives back the
    stock held for an order, once, and publishes StockReleased; a release of
    an order never seen records a tombstone (VOIDED) so that a later
    reservation is refused. 0 with *released (the order's stock was held and
    is given back, now or before), 1 when the held items cannot be read
    (nothing changed), -1 on a database error. */
static int s_release(inventory_state_t *self, eda_ctx_t *ctx, const char *order_id,
                     bool *released)
{
    s_hold_t hold;
    eda_item_t lines[EDA_ITEMS_MAX];
    int n;
    if (s_hold_get(self, order_id, &hold, lines, &n))
        return -1;
    eda_release_t r = eda_hold_release(hold.state);
    *released = r.released;
    if (r.give_back && n <= 0)
        return 1;
    if (r.give_back && s_move(self, lines, n, -1))
        return -1;
    if (r.next != hold.state) {
        hold.state = r.next;
        if (s_hold_put(self, order_id, &hold, lines, n > 0 ? (size_t)n : 0))
            return -1;
    }
    if (!r.give_back)
        return 0;
    msgpack_packer *pk = eda_ctx_emit(ctx, "StockReleased", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    return eda_ctx_emit_end(ctx);
}

/* --- commands of the orchestration ------------------------------------------ */

/*  ReserveStock {order_id, items}: the orchestrator's step. */
static int s_reserve_stock(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1], why[128];
    eda_item_t items[EDA_ITEMS_MAX], lines[EDA_ITEMS_MAX];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    int n = eda_items_read(eda_map_get(&eda_ctx_msg(ctx)->data, "items"), false, items,
                           why, sizeof why);
    int m = n > 0 ? inventory_merge(items, (size_t)n, lines) : -1;
    if (m < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "%s",
                             n < 0 ? why : "items: the quantities of one sku overflow");
    s_outcome_t out;
    if (s_reserve(self, ctx, order_id, lines, m, "orchestration", &out))
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, out.reserved ? 2 : out.sku[0] ? 4 : 3);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "outcome", out.reserved ? "RESERVED" : "REJECTED");
    if (!out.reserved)
        eda_pack_kv_str(pk, "reason", out.reason);
    if (!out.reserved && out.sku[0])
        eda_pack_kv_str(pk, "sku", out.sku);
    return 0;
}

/*  ReleaseStock {order_id}: the orchestrator's compensation. */
static int s_release_stock(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    bool released;
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    int rc = s_release(self, ctx, order_id, &released);
    if (rc == 1)
        return eda_ctx_error(ctx, EDA_INTERNAL, "the held items of %s cannot be read",
                             order_id);
    if (rc)
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_bool(pk, "released", released);
    return 0;
}

/* --- peers' events ------------------------------------------------------- */

/*  Reads the replica of an order: 1 with credit_ok and items (n > 0 when the
    OrderCreated came), 0 none, -1 database error. */
static int s_replica(inventory_state_t *self, const char *order_id, bool *credit_ok,
                     eda_item_t *items, int *n)
{
    sqlite3_bind_text(self->replica_get, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(self->replica_get);
    *n = 0;
    if (rc == SQLITE_ROW) {
        *credit_ok = sqlite3_column_int(self->replica_get, 1) != 0;
        if (sqlite3_column_type(self->replica_get, 0) != SQLITE_NULL)
            *n =
                s_unpack_items(self, sqlite3_column_blob(self->replica_get, 0),
                               (size_t)sqlite3_column_bytes(self->replica_get, 0), items);
    }
    sqlite3_reset(self->replica_get);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int s_replica_put(inventory_state_t *self, const char *order_id, bool has_items,
                         bool credit_ok)
{
    sqlite3_stmt *q = self->replica_put;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    if (has_items)
        sqlite3_bind_blob(q, 2, self->buf.data, (int)self->buf.size, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 2);
    sqlite3_bind_int(q, 3, credit_ok);
    return eda_store_exec(q);
}

static int s_on_order_created(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1], why[128];
    eda_item_t items[EDA_ITEMS_MAX], lines[EDA_ITEMS_MAX];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    /* The order rule customer-service applies too (items and total). */
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    int64_t total = -1;
    if (eda_get_i64(data, "total", &total) != 0 || total < 0)
        return eda_ctx_bad_event(ctx, "needs a total");
    int n =
        eda_items_read_order(eda_map_get(data, "items"), total, items, why, sizeof why);
    int m = n > 0 ? inventory_merge(items, (size_t)n, lines) : -1;
    if (m < 0)
        return eda_ctx_bad_event(ctx, "items: %s", n < 0 ? why : "quantities overflow");
    bool credit_ok = false;
    int have_n;
    if (s_replica(self, order_id, &credit_ok, items, &have_n) < 0)
        return -1;
    s_outcome_t out;
    if (credit_ok)
        return s_reserve(self, ctx, order_id, lines, m, "choreography", &out);
    s_pack_items(self, lines, (size_t)m);
    return s_replica_put(self, order_id, true, false);
}

static int s_on_credit_reserved(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    eda_item_t lines[EDA_ITEMS_MAX];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    bool credit_ok = false;
    int n;
    if (s_replica(self, order_id, &credit_ok, lines, &n) < 0)
        return -1;
    s_outcome_t out;
    if (n > 0)
        return s_reserve(self, ctx, order_id, lines, n, "choreography", &out);
    /* The OrderCreated has not come yet: remember the credit is held. */
    return s_replica_put(self, order_id, false, true);
}

/*  OrderRejected: forget the replica of an order that will never be
    reserved. */
static int s_on_order_rejected(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    sqlite3_bind_text(self->replica_del, 1, order_id, -1, SQLITE_TRANSIENT);
    return eda_store_exec(self->replica_del);
}

/*  OrderCancelled: give back the stock held for the order. */
static int s_on_order_cancelled(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    bool released;
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    int rc = s_release(self, ctx, order_id, &released);
    if (rc == 1)
        return eda_ctx_bad_event(ctx, "the held items of %s cannot be read", order_id);
    return rc;
}

/* --- start and stop ------------------------------------------------------ */

static void s_stop(void **state_p)
{
    inventory_state_t *self = *state_p;
    if (!self)
        return;
    msgpack_sbuffer_destroy(&self->buf);
    msgpack_zone_destroy(&self->zone);
    free(self);
    *state_p = NULL;
}

static void *s_start(eda_service_t *svc)
{
    eda_store_t *store = eda_service_store(svc);
    if (eda_store_add_column(store, "stock_reservations", "reason", "TEXT") ||
        eda_store_add_column(store, "stock_reservations", "sku", "TEXT"))
        return NULL;
    inventory_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    msgpack_sbuffer_init(&self->buf);
    msgpack_packer_init(&self->pk, &self->buf, msgpack_sbuffer_write);
    if (!msgpack_zone_init(&self->zone, 4096)) {
        msgpack_sbuffer_destroy(&self->buf);
        free(self);
        return NULL;
    }
    self->add =
        eda_store_prepare(store, "INSERT INTO stock (sku, available) VALUES (?1, ?2)"
                                 " ON CONFLICT (sku) DO UPDATE"
                                 " SET available = available + ?2");
    self->get =
        eda_store_prepare(store, "SELECT available, reserved FROM stock WHERE sku = ?");
    self->hold = eda_store_prepare(store, "UPDATE stock SET available = available - ?1,"
                                          " reserved = reserved + ?1 WHERE sku = ?2");
    self->unhold = eda_store_prepare(store, "UPDATE stock SET available = available + ?1,"
                                            " reserved = reserved - ?1 WHERE sku = ?2");
    self->replica_get = eda_store_prepare(
        store, "SELECT items, credit_ok FROM order_replicas WHERE order_id = ?");
    self->replica_put =
        eda_store_prepare(store, "INSERT OR REPLACE INTO order_replicas VALUES (?,?,?)");
    self->replica_del =
        eda_store_prepare(store, "DELETE FROM order_replicas WHERE order_id = ?");
    self->res_get =
        eda_store_prepare(store, "SELECT state, items, reason, sku"
                                 " FROM stock_reservations WHERE order_id = ?");
    self->res_put = eda_store_prepare(
        store, "INSERT OR REPLACE INTO stock_reservations"
               " (order_id, state, items, reason, sku) VALUES (?,?,?,?,?)");
    if (!self->add || !self->get || !self->hold || !self->unhold || !self->replica_get ||
        !self->replica_put || !self->replica_del || !self->res_get || !self->res_put) {
        s_stop((void **)&self);
        return NULL;
    }
    return self;
}

static const eda_command_t s_commands[] = {
    {"AddStock", s_add_stock, EDA_CMD_CHECKS_FIRST},
    {"GetStock", s_get_stock, EDA_CMD_CHECKS_FIRST},
    {"ReserveStock", s_reserve_stock, EDA_CMD_CHECKS_FIRST},
    {"ReleaseStock", s_release_stock, EDA_CMD_CHECKS_FIRST},
    {0}};

static const eda_handler_t s_handlers[] = {
    {"order-service", "OrderCreated", s_on_order_created, "choreography"},
    {"order-service", "OrderRejected", s_on_order_rejected, "choreography"},
    {"order-service", "OrderCancelled", s_on_order_cancelled, "choreography"},
    {"customer-service", "CreditReserved", s_on_credit_reserved, "choreography"},
    {NULL, NULL, NULL, NULL}};

const eda_service_def_t inventory_service_def = {.name = "inventory-service",
                                                 .colour = "33",
                                                 .schema = s_schema,
                                                 .start = s_start,
                                                 .stop = s_stop,
                                                 .commands = s_commands,
                                                 .handlers = s_handlers};
