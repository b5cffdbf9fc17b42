/*  customer_service: customers and their credit. On OrderCreated it holds
    the order's total against the customer's credit (CreditReserved) or
    refuses (CreditRejected); when that order is rejected or cancelled later,
    it gives the credit back (CreditReleased).
*/
#include "customer_service.h"

#include "customer_domain.h"

#include <string.h>

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS customers ("
    " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, credit_limit INTEGER NOT NULL,"
    " reserved INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS credit_reservations ("
    " order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, amount INTEGER NOT NULL,"
    " state TEXT NOT NULL);";

typedef struct {
    sqlite3_stmt *insert, *get, *set_reserved;
    sqlite3_stmt *hold_get, *hold_put;
} customer_state_t;

/*  Reads a customer: 1 found, 0 not, -1 database error. */
static int s_get(customer_state_t *self, const char *customer_id, char *name,
                 size_t name_size, customer_credit_t *credit)
{
    sqlite3_stmt *q = self->get;
    sqlite3_bind_text(q, 1, customer_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (name)
            snprintf(name, name_size, "%s", (const char *)sqlite3_column_text(q, 0));
        credit->credit_limit = sqlite3_column_int64(q, 1);
        credit->reserved = sqlite3_column_int64(q, 2);
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int s_set_reserved(customer_state_t *self, const char *customer_id,
                          int64_t reserved)
{
    sqlite3_bind_int64(self->set_reserved, 1, reserved);
    sqlite3_bind_text(self->set_reserved, 2, customer_id, -1, SQLITE_TRANSIENT);
    return eda_store_exec(self->set_reserved);
}

/*  A hold on credit for one order. */
typedef struct {
    char customer_id[EDA_NAME_MAX + 1];
    int64_t amount;
    char state[16]; /* RESERVED, REJECTED, RELEASED */
} s_hold_t;

static int s_hold_get(customer_state_t *self, const char *order_id, s_hold_t *hold)
{
    sqlite3_stmt *q = self->hold_get;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        snprintf(hold->customer_id, sizeof hold->customer_id, "%s",
                 (const char *)sqlite3_column_text(q, 0));
        hold->amount = sqlite3_column_int64(q, 1);
        snprintf(hold->state, sizeof hold->state, "%s",
                 (const char *)sqlite3_column_text(q, 2));
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int s_hold_put(customer_state_t *self, const char *order_id,
                      const char *customer_id, int64_t amount, const char *state)
{
    sqlite3_stmt *q = self->hold_put;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, customer_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, amount);
    sqlite3_bind_text(q, 4, state, -1, SQLITE_STATIC);
    return eda_store_exec(q);
}

/* --- commands ----------------------------------------------------------- */

static int s_create_customer(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char customer_id[EDA_NAME_MAX + 1] = "", name[EDA_NAME_MAX + 1] = "", why[128];
    int64_t limit = -1;
    if (eda_get_str(data, "customer_id", customer_id, sizeof customer_id) < 0 ||
        eda_get_str(data, "name", name, sizeof name) < 0 ||
        eda_get_i64(data, "credit_limit", &limit) < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "customer_id and name must be strings of 1 to %d bytes,"
                             " credit_limit an integer >= 0 (cents)",
                             EDA_NAME_MAX);
    if (customer_validate(customer_id, name, limit, why, sizeof why))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "%s", why);
    customer_credit_t credit;
    int found = s_get(self, customer_id, NULL, 0, &credit);
    if (found < 0)
        return -1;
    if (found)
        return eda_ctx_error(ctx, EDA_CONFLICT, "customer %s exists", customer_id);
    sqlite3_bind_text(self->insert, 1, customer_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(self->insert, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(self->insert, 3, limit);
    if (eda_store_exec(self->insert))
        return -1;

    msgpack_packer *pk = eda_ctx_emit(ctx, "CustomerCreated", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_pack_kv_str(pk, "name", name);
    eda_pack_kv_i64(pk, "credit_limit", limit);
    if (eda_ctx_emit_end(ctx))
        return -1;
    pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    return 0;
}

static int s_get_customer(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    char customer_id[EDA_NAME_MAX + 1] = "", name[EDA_NAME_MAX + 1] = "";
    if (eda_get_str(&eda_ctx_msg(ctx)->data, "customer_id", customer_id,
                    sizeof customer_id) != 0 ||
        !customer_id[0])
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "customer_id must be a string of 1 to %d bytes",
                             EDA_NAME_MAX);
    customer_credit_t credit;
    int found = s_get(self, customer_id, name, sizeof name, &credit);
    if (found < 0)
        return -1;
    if (!found)
        return eda_ctx_error(ctx, EDA_NOT_FOUND, "no customer %s", customer_id);
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 5);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_pack_kv_str(pk, "name", name);
    eda_pack_kv_i64(pk, "credit_limit", credit.credit_limit);
    eda_pack_kv_i64(pk, "reserved", credit.reserved);
    eda_pack_kv_i64(pk, "available", customer_available(&credit));
    return 0;
}

/* --- peers' events ------------------------------------------------------- */

static int s_on_order_created(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char order_id[EDA_NAME_MAX + 1], customer_id[EDA_NAME_MAX + 1] = "";
    int64_t amount = -1;
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0 ||
        eda_get_str(data, "customer_id", customer_id, sizeof customer_id) != 0 ||
        eda_get_i64(data, "total", &amount) != 0 || amount < 0)
        return eda_ctx_bad_event(ctx, "needs order_id, customer_id and total");
    if (!mine)
        return 0;
    s_hold_t hold;
    int held = s_hold_get(self, order_id, &hold);
    if (held)
        return held < 0 ? -1 : 0; /* decided before: a repeat changes nothing */

    customer_credit_t credit;
    int found = s_get(self, customer_id, NULL, 0, &credit);
    if (found < 0)
        return -1;
    customer_decision_t d = customer_reserve(found ? &credit : NULL, amount);
    if (s_hold_put(self, order_id, customer_id, amount,
                   d.reserved ? "RESERVED" : "REJECTED") ||
        (d.reserved && s_set_reserved(self, customer_id, credit.reserved)))
        return -1;

    msgpack_packer *pk =
        eda_ctx_emit(ctx, d.reserved ? "CreditReserved" : "CreditRejected", order_id);
    msgpack_pack_map(pk, d.reserved ? 4 : 6);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    if (!d.reserved)
        eda_pack_kv_str(pk, "reason", d.reason);
    eda_pack_kv_i64(pk, "amount", amount);
    if (!d.reserved)
        eda_pack_kv_i64(pk, "available", d.available);
    eda_pack_kv_str(pk, "saga", "choreography");
    return eda_ctx_emit_end(ctx);
}

/*  OrderRejected or OrderCancelled: give back credit held for the order. */
static int s_on_order_ended(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    int mine = eda_ctx_choreography_order(ctx, order_id, sizeof order_id);
    if (mine < 0)
        return eda_ctx_bad_event(ctx, "no order_id");
    if (!mine)
        return 0;
    s_hold_t hold;
    int held = s_hold_get(self, order_id, &hold);
    if (held <= 0 || strcmp(hold.state, "RESERVED"))
        return held < 0 ? -1 : 0; /* nothing held: releasing nothing is a no-op */
    customer_credit_t credit;
    int found = s_get(self, hold.customer_id, NULL, 0, &credit);
    if (found <= 0) /* a hold on a customer that is gone cannot be undone */
        return found < 0 ? -1
                         : eda_ctx_bad_event(ctx, "no customer %s", hold.customer_id);
    customer_release(&credit, hold.amount);
    if (s_set_reserved(self, hold.customer_id, credit.reserved) ||
        s_hold_put(self, order_id, hold.customer_id, hold.amount, "RELEASED"))
        return -1;
    msgpack_packer *pk = eda_ctx_emit(ctx, "CreditReleased", order_id);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_i64(pk, "amount", hold.amount);
    return eda_ctx_emit_end(ctx);
}

/* --- start and stop ------------------------------------------------------ */

static void s_stop(void **state_p)
{
    free(*state_p);
    *state_p = NULL;
}

static void *s_start(eda_service_t *svc)
{
    customer_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    eda_store_t *store = eda_service_store(svc);
    self->insert = eda_store_prepare(
        store, "INSERT INTO customers (customer_id, name, credit_limit) VALUES (?,?,?)");
    self->get = eda_store_prepare(
        store,
        "SELECT name, credit_limit, reserved FROM customers WHERE customer_id = ?");
    self->set_reserved = eda_store_prepare(
        store, "UPDATE customers SET reserved = ? WHERE customer_id = ?");
    self->hold_get = eda_store_prepare(
        store,
        "SELECT customer_id, amount, state FROM credit_reservations WHERE order_id = ?");
    self->hold_put = eda_store_prepare(
        store, "INSERT OR REPLACE INTO credit_reservations VALUES (?,?,?,?)");
    if (!self->insert || !self->get || !self->set_reserved || !self->hold_get ||
        !self->hold_put) {
        s_stop((void **)&self);
        return NULL;
    }
    return self;
}

static const eda_command_t s_commands[] = {
    {"CreateCustomer", s_create_customer}, {"GetCustomer", s_get_customer}, {NULL, NULL}};

static const eda_handler_t s_handlers[] = {
    {"order-service", "OrderCreated", s_on_order_created},
    {"order-service", "OrderRejected", s_on_order_ended},
    {"order-service", "OrderCancelled", s_on_order_ended},
    {NULL, NULL, NULL}};

const eda_service_def_t customer_service_def = {.name = "customer-service",
                                                .schema = s_schema,
                                                .start = s_start,
                                                .stop = s_stop,
                                                .commands = s_commands,
                                                .handlers = s_handlers};
