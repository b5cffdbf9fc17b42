/*  customer_service: customers and their credit. It holds an order's total
    against the customer's credit (CreditReserved) or refuses it
    (CreditRejected), and gives the credit back (CreditReleased) when the
    order ends without it. By choreography on OrderCreated, OrderRejected and
    OrderCancelled; by orchestration on the ReserveCredit and ReleaseCredit
    commands. Both go through one reservation and one release rule, and one
    record per order_id makes each idempotent.
*/
#include "customer_service.h"

#include "customer_domain.h"
#include "eda_hold.h"
#include "eda_items.h"
#include "eda_text.h"

#include <string.h>

/*  Keyed by text and never by rowid: WITHOUT ROWID, one B-tree per table
    to write and to search, not two. (A database made before keeps its
    tables as they were: the statements are the same.) */
static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS customers ("
    " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, credit_limit INTEGER NOT NULL,"
    " reserved INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS credit_reservations ("
    " order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, amount INTEGER NOT NULL,"
    " state TEXT NOT NULL, reason TEXT) WITHOUT ROWID;";

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
            eda_copy(name, name_size, (const char *)sqlite3_column_text(q, 0));
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

/*  What is recorded of one order's credit. */
typedef struct {
    char customer_id[EDA_NAME_MAX + 1]; /* "" in a tombstone */
    int64_t amount;
    eda_hold_t state; /* NONE when nothing is recorded */
    char reason[32];  /* of a refusal */
} s_hold_t;

/*  Reads the record of an order (zeroed, state NONE, when there is none).
    0, or -1 on a database error. */
static int s_hold_get(customer_state_t *self, const char *order_id, s_hold_t *hold)
{
    sqlite3_stmt *q = self->hold_get;
    memset(hold, 0, sizeof *hold);
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        eda_copy(hold->customer_id, sizeof hold->customer_id,
                 (const char *)sqlite3_column_text(q, 0));
        hold->amount = sqlite3_column_int64(q, 1);
        hold->state = eda_hold_parse((const char *)sqlite3_column_text(q, 2));
        if (sqlite3_column_type(q, 3) != SQLITE_NULL)
            eda_copy(hold->reason, sizeof hold->reason,
                     (const char *)sqlite3_column_text(q, 3));
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int s_hold_put(customer_state_t *self, const char *order_id, const s_hold_t *hold)
{
    sqlite3_stmt *q = self->hold_put;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, hold->customer_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, hold->amount);
    sqlite3_bind_text(q, 4, eda_hold_name(hold->state), -1, SQLITE_STATIC);
    if (hold->reason[0])
        sqlite3_bind_text(q, 5, hold->reason, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 5);
    return eda_store_exec(q);
}

/* --- the two rules, for peers' events and commands alike ------------------ */

/*  A reservation's answer. */
typedef struct {
    bool reserved;
    char reason[32];   /* when refused */
    int64_t available; /* the customer's credit available now (0: unknown) */
} s_outcome_t;

/*  The reservation rule, for OrderCreated and ReserveCredit: the first
    request for an order holds `amount` of the customer's credit or refuses
    it, and publishes CreditReserved or CreditRejected marked with `saga`;
    any later request answers that first outcome, changing and publishing
    nothing. 0 with the answer in *out, -1 on a database error. */
static int s_reserve(customer_state_t *self, eda_ctx_t *ctx, const char *order_id,
                     const char *customer_id, int64_t amount, const char *saga,
                     s_outcome_t *out)
{
    s_hold_t hold;
    customer_credit_t credit;
    int found;
    if (s_hold_get(self, order_id, &hold) ||
        (found = s_get(self, customer_id, NULL, 0, &credit)) < 0)
        return -1;
    bool first = hold.state == EDA_HOLD_NONE;
    customer_decision_t d = {0};
    if (first)
        d = customer_reserve(found ? &credit : NULL, amount);
    else
        d.reserved = eda_hold_repeat(hold.state, hold.reason, &d.reason);
    *out = (s_outcome_t){.reserved = d.reserved,
                         .available = customer_available(found ? &credit : NULL)};
    eda_copy(out->reason, sizeof out->reason, d.reason);
    if (!first)
        return 0;

    hold = (s_hold_t){.amount = amount,
                      .state = d.reserved ? EDA_HOLD_RESERVED : EDA_HOLD_REJECTED};
    eda_copy(hold.customer_id, sizeof hold.customer_id, customer_id);
    eda_copy(hold.reason, sizeof hold.reason, out->reason);
    if (s_hold_put(self, order_id, &hold) ||
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
    eda_pack_kv_str(pk, "saga", saga);
    return eda_ctx_emit_end(ctx);
}

/*  The release rule, for OrderRejected, OrderCancelled and ReleaseCredit:
    gives back the credit held for an order, once, and publishes
    CreditReleased; a release of an order never seen records a tombstone
    (VOIDED) so that a later reservation is refused. 0 with *released (the
    order's credit was held and is given back, now or before), 1 when the
    hold's customer is gone (nothing changed), -1 on a database error. */
static int s_release(customer_state_t *self, eda_ctx_t *ctx, const char *order_id,
                     bool *released)
{
    s_hold_t hold;
    if (s_hold_get(self, order_id, &hold))
        return -1;
    eda_release_t r = eda_hold_release(hold.state);
    *released = r.released;
    if (r.give_back) {
        customer_credit_t credit;
        int found = s_get(self, hold.customer_id, NULL, 0, &credit);
        if (found <= 0) /* a hold on a customer that is gone cannot be undone */
            return found < 0 ? -1 : 1;
        customer_release(&credit, hold.amount);
        if (s_set_reserved(self, hold.customer_id, credit.reserved))
            return -1;
    }
    if (r.next != hold.state) {
        hold.state = r.next;
        if (s_hold_put(self, order_id, &hold))
            return -1;
    }
    if (!r.give_back)
        return 0;
    msgpack_packer *pk = eda_ctx_emit(ctx, "CreditReleased", order_id);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_i64(pk, "amount", hold.amount);
    return eda_ctx_emit_end(ctx);
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

/*  ReserveCredit {order_id, customer_id, amount}: the orchestrator's step. */
static int s_reserve_credit(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char order_id[EDA_NAME_MAX + 1], customer_id[EDA_NAME_MAX + 1];
    int64_t amount = -1;
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    if (eda_get_str(data, "customer_id", customer_id, sizeof customer_id) != 0 ||
        !customer_id[0])
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "customer_id must be a string of 1 to %d bytes",
                             EDA_NAME_MAX);
    if (eda_get_i64(data, "amount", &amount) != 0 || amount < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "amount must be an integer >= 0 (cents)");
    s_outcome_t out;
    if (s_reserve(self, ctx, order_id, customer_id, amount, "orchestration", &out))
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, out.reserved ? 2 : 4);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "outcome", out.reserved ? "RESERVED" : "REJECTED");
    if (!out.reserved) {
        eda_pack_kv_str(pk, "reason", out.reason);
        eda_pack_kv_i64(pk, "available", out.available);
    }
    return 0;
}

/*  ReleaseCredit {order_id}: the orchestrator's compensation. */
static int s_release_credit(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    bool released;
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "order_id must be a string of 1 to %d bytes", EDA_NAME_MAX);
    int rc = s_release(self, ctx, order_id, &released);
    if (rc == 1)
        return eda_ctx_error(ctx, EDA_INTERNAL, "the customer holding %s is gone",
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

static int s_on_order_created(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    char order_id[EDA_NAME_MAX + 1], customer_id[EDA_NAME_MAX + 1] = "", why[128];
    int64_t amount = -1;
    eda_item_t items[EDA_ITEMS_MAX];
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id) ||
        eda_get_str(data, "customer_id", customer_id, sizeof customer_id) != 0 ||
        eda_get_i64(data, "total", &amount) != 0 || amount < 0)
        return eda_ctx_bad_event(ctx, "needs order_id, customer_id and total");
    /* The order rule inventory-service applies too: credit is never held
       for an order that could never be settled. */
    if (eda_items_read_order(eda_map_get(data, "items"), amount, items, why, sizeof why) <
        0)
        return eda_ctx_bad_event(ctx, "items: %s", why);
    s_outcome_t out;
    return s_reserve(self, ctx, order_id, customer_id, amount, "choreography", &out);
}

/*  OrderRejected or OrderCancelled: give back credit held for the order. */
static int s_on_order_ended(void *state, eda_ctx_t *ctx)
{
    customer_state_t *self = state;
    char order_id[EDA_NAME_MAX + 1];
    bool released;
    if (eda_ctx_order_id(ctx, order_id, sizeof order_id))
        return eda_ctx_bad_event(ctx, "no order_id");
    int rc = s_release(self, ctx, order_id, &released);
    if (rc == 1)
        return eda_ctx_bad_event(ctx, "the customer holding %s is gone", order_id);
    return rc;
}

/* --- start and stop ------------------------------------------------------ */

static void s_stop(void **state_p)
{
    free(*state_p);
    *state_p = NULL;
}

static void *s_start(eda_service_t *svc)
{
    eda_store_t *store = eda_service_store(svc);
    if (eda_store_add_column(store, "credit_reservations", "reason", "TEXT"))
        return NULL;
    customer_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->insert = eda_store_prepare(
        store, "INSERT INTO customers (customer_id, name, credit_limit) VALUES (?,?,?)");
    self->get = eda_store_prepare(
        store,
        "SELECT name, credit_limit, reserved FROM customers WHERE customer_id = ?");
    self->set_reserved = eda_store_prepare(
        store, "UPDATE customers SET reserved = ? WHERE customer_id = ?");
    self->hold_get =
        eda_store_prepare(store, "SELECT customer_id, amount, state, reason"
                                 " FROM credit_reservations WHERE order_id = ?");
    self->hold_put = eda_store_prepare(
        store, "INSERT OR REPLACE INTO credit_reservations"
               " (order_id, customer_id, amount, state, reason) VALUES (?,?,?,?,?)");
    if (!self->insert || !self->get || !self->set_reserved || !self->hold_get ||
        !self->hold_put) {
        s_stop((void **)&self);
        return NULL;
    }
    return self;
}

static const eda_command_t s_commands[] = {
    {"CreateCustomer", s_create_customer, EDA_CMD_CHECKS_FIRST},
    {"GetCustomer", s_get_customer, EDA_CMD_CHECKS_FIRST},
    {"ReserveCredit", s_reserve_credit, EDA_CMD_CHECKS_FIRST},
    {"ReleaseCredit", s_release_credit, EDA_CMD_CHECKS_FIRST},
    {0}};

static const eda_handler_t s_handlers[] = {
    {"order-service", "OrderCreated", s_on_order_created, "choreography"},
    {"order-service", "OrderRejected", s_on_order_ended, "choreography"},
    {"order-service", "OrderCancelled", s_on_order_ended, "choreography"},
    {NULL, NULL, NULL, NULL}};

const eda_service_def_t customer_service_def = {.name = "customer-service",
                                                .colour = "35",
                                                .schema = s_schema,
                                                .start = s_start,
                                                .stop = s_stop,
                                                .commands = s_commands,
                                                .handlers = s_handlers};
