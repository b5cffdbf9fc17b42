/*  inventory_service: stock per SKU. It keeps its own replica of each new
    order's items (from OrderCreated) and, once the customer's credit is held
    (CreditReserved), holds the stock for every line or refuses the order.
    Events from two peers have no mutual order, so whichever of the two comes
    first is remembered until the other arrives.
*/
#include "inventory_service.h"

#include "inventory_domain.h"

#include <string.h>

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS stock ("
    " sku TEXT PRIMARY KEY, available INTEGER NOT NULL, reserved INTEGER NOT NULL "
    "DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS order_replicas ("
    " order_id TEXT PRIMARY KEY, items BLOB, credit_ok INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS stock_reservations ("
    " order_id TEXT PRIMARY KEY, state TEXT NOT NULL, items BLOB NOT NULL);";

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
    size_t off = 0;
    char why[128];
    msgpack_zone_clear(&self->zone);
    if (!blob || eda_msgpack_check(blob, len) ||
        msgpack_unpack(blob, len, &off, &self->zone, &obj) != MSGPACK_UNPACK_SUCCESS)
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

/* --- the reservation ------------------------------------------------------ */

/*  Returns the state of the order's reservation ("" when none) in
    state[16]. 0, or -1 on a database error. */
static int s_reservation(inventory_state_t *self, const char *order_id, char *state,
                         eda_item_t *items, int *nitems)
{
    sqlite3_bind_text(self->res_get, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(self->res_get);
    state[0] = '\0';
    if (rc == SQLITE_ROW) {
        snprintf(state, 16, "%s", (const char *)sqlite3_column_text(self->res_get, 0));
        if (items)
            *nitems =
                s_unpack_items(self, sqlite3_column_blob(self->res_get, 1),
                               (size_t)sqlite3_column_bytes(self->res_get, 1), items);
    }
    sqlite3_reset(self->res_get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int s_reservation_put(inventory_state_t *self, const char *order_id,
                             const char *state)
{
    sqlite3_bind_text(self->res_put, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(self->res_put, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_blob(self->res_put, 3, self->buf.data, (int)self->buf.size,
                      SQLITE_STATIC);
    return eda_store_exec(self->res_put);
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

/*  Holds stock for every merged line of the order, or refuses it, and
    publishes StockReserved or StockRejected. */
static int s_decide(inventory_state_t *self, eda_ctx_t *ctx, const char *order_id,
                    const eda_item_t *lines, int n)
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
    s_pack_items(self, lines, (size_t)n);
    if (s_reservation_put(self, order_id, d.reserved ? "RESERVED" : "REJECTED") ||
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
        eda_pack_raw(pk, self->buf.data, self->buf.size);
    } else {
        msgpack_pack_map(pk, 6);
        eda_pack_kv_str(pk, "order_id", order_id);
        eda_pack_kv_str(pk, "reason", d.reason);
        eda_pack_kv_str(pk, "sku", lines[d.failed].sku);
        eda_pack_kv_i64(pk, "requested", d.requested);
        eda_pack_kv_i64(pk, "available", d.available);
    }
    eda_pack_kv_str(pk, "saga", "choreography");
    return eda_ctx_emit_end(ctx);
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
    char order_id[EDA_NAME_MAX + 1], why[128], res[16];
    eda_item_t items[EDA_ITEMS_MAX], lines[EDA_ITEMS_MAX];
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0)
        return eda_ctx_bad_event(ctx, "no order_id");
    int n = eda_items_read(eda_map_get(&eda_ctx_msg(ctx)->data, "items"), false, items,
                           why, sizeof why);
    int m = n > 0 ? inventory_merge(items, (size_t)n, lines) : -1;
    if (m < 0)
        return eda_ctx_bad_event(ctx, "items: %s", n < 0 ? why : "quantities overflow");
    if (!mine)
        return 0;
    if (s_reservation(self, order_id, res, NULL, NULL))
        return -1;
    if (res[0])
        return 0; /* decided already */
    bool credit_ok = false;
    int have_n;
    int found = s_replica(self, order_id, &credit_ok, items, &have_n);
    if (found < 0)
        return -1;
    if (credit_ok)
        return s_decide(self, ctx, order_id, lines, m);
    s_pack_items(self, lines, (size_t)m);
    return s_replica_put(self, order_id, true, false);
}

static int s_on_credit_reserved(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1], res[16];
    eda_item_t lines[EDA_ITEMS_MAX];
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0)
        return eda_ctx_bad_event(ctx, "no order_id");
    if (!mine)
        return 0;
    if (s_reservation(self, order_id, res, NULL, NULL))
        return -1;
    if (res[0])
        return 0;
    bool credit_ok = false;
    int n;
    int found = s_replica(self, order_id, &credit_ok, lines, &n);
    if (found < 0)
        return -1;
    if (n > 0)
        return s_decide(self, ctx, order_id, lines, n);
    /* The OrderCreated has not come yet: remember the credit is held. */
    return s_replica_put(self, order_id, false, true);
}

/*  OrderRejected: forget the replica of an order that will never be
    reserved. */
static int s_on_order_rejected(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0)
        return eda_ctx_bad_event(ctx, "no order_id");
    if (!mine)
        return 0;
    sqlite3_bind_text(self->replica_del, 1, order_id, -1, SQLITE_TRANSIENT);
    return eda_store_exec(self->replica_del);
}

/*  OrderCancelled: give back the stock held for the order. */
static int s_on_order_cancelled(void *state, eda_ctx_t *ctx)
{
    inventory_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1], res[16];
    eda_item_t lines[EDA_ITEMS_MAX];
    int n = 0;
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0)
        return eda_ctx_bad_event(ctx, "no order_id");
    if (!mine)
        return 0;
    if (s_reservation(self, order_id, res, lines, &n))
        return -1;
    if (strcmp(res, "RESERVED"))
        return 0; /* nothing held: releasing nothing is a no-op */
    if (n <= 0)
        return eda_ctx_bad_event(ctx, "the held items of %s cannot be read", order_id);
    s_pack_items(self, lines, (size_t)n);
    if (s_move(self, lines, n, -1) || s_reservation_put(self, order_id, "RELEASED"))
        return -1;
    msgpack_packer *pk = eda_ctx_emit(ctx, "StockReleased", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    return eda_ctx_emit_end(ctx);
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
    eda_store_t *store = eda_service_store(svc);
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
    self->res_get = eda_store_prepare(
        store, "SELECT state, items FROM stock_reservations WHERE order_id = ?");
    self->res_put = eda_store_prepare(
        store, "INSERT OR REPLACE INTO stock_reservations VALUES (?,?,?)");
    if (!self->add || !self->get || !self->hold || !self->unhold || !self->replica_get ||
        !self->replica_put || !self->replica_del || !self->res_get || !self->res_put) {
        s_stop((void **)&self);
        return NULL;
    }
    return self;
}

static const eda_command_t s_commands[] = {
    {"AddStock", s_add_stock}, {"GetStock", s_get_stock}, {NULL, NULL}};

static const eda_handler_t s_handlers[] = {
    {"order-service", "OrderCreated", s_on_order_created},
    {"order-service", "OrderRejected", s_on_order_rejected},
    {"order-service", "OrderCancelled", s_on_order_cancelled},
    {"customer-service", "CreditReserved", s_on_credit_reserved},
    {NULL, NULL, NULL}};

const eda_service_def_t inventory_service_def = {.name = "inventory-service",
                                                 .schema = s_schema,
                                                 .start = s_start,
                                                 .stop = s_stop,
                                                 .commands = s_commands,
                                                 .handlers = s_handlers};
