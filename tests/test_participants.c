/*  test_participants: customer-service and inventory-service as saga
    participants, each alone on its real binary: the orchestration commands
    (ReserveCredit, ReleaseCredit, ReserveStock, ReleaseStock), their
    idempotency per order, the tombstone a release before a reservation
    leaves, their validation, the events they publish (saga "orchestration"),
    and the reason column added to a database made by an older version. The
    rules themselves are the ones the choreography uses (test_e2e_saga).
*/
#include "customer_domain.h"
#include "inventory_domain.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static tu_system_t sys;
static eda_decoder_t *decoder;

static void s_init(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    decoder = eda_decoder_new();
    cr_assert(decoder);
}

static void s_customer(void)
{
    s_init();
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
}

static void s_inventory(void)
{
    s_init();
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
}

static void s_fini(void)
{
    eda_decoder_destroy(&decoder);
    tu_system_fini(&sys);
}

TestSuite(participants, .fini = s_fini, .timeout = 60);

/*  Stops the service with SIGTERM: it must exit 0, its log free of any
    sanitizer report. */
static void s_shutdown(void)
{
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

/* --- talking to a participant as the orchestrator does ------------------------ */

/*  A reply, read into plain fields (valid after the next command). */
typedef struct {
    bool ok;
    char code[32];     /* of an error */
    char message[256]; /* of an error */
    uint32_t nkeys;    /* keys in data */
    char order_id[EDA_NAME_MAX + 1];
    char outcome[16];
    char reason[32];            /* "" when absent */
    char sku[EDA_NAME_MAX + 1]; /* "" when absent */
    bool has_available;
    int64_t available;
    int released; /* -1 when absent */
} s_answer_t;

/*  Begins a command belonging to `order_id` (its correlation id, as the
    orchestrator sends it); pack exactly one map, then s_call. */
static msgpack_packer *s_begin(tu_service_t svc, const char *type, const char *order_id)
{
    return eda_client_begin(sys.client[svc], type, order_id);
}

static s_answer_t s_call(tu_service_t svc)
{
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, svc, &reply), 0, "%s", sys.why);
    s_answer_t a = {.ok = reply.ok == 1, .released = -1};
    if (!a.ok) {
        tu_error_code(&reply, a.code, sizeof a.code);
        eda_get_str(&reply.error, "message", a.message, sizeof a.message);
        return a;
    }
    cr_assert_eq(reply.data.type, MSGPACK_OBJECT_MAP);
    a.nkeys = reply.data.via.map.size;
    eda_get_str(&reply.data, "order_id", a.order_id, sizeof a.order_id);
    eda_get_str(&reply.data, "outcome", a.outcome, sizeof a.outcome);
    eda_get_str(&reply.data, "reason", a.reason, sizeof a.reason);
    eda_get_str(&reply.data, "sku", a.sku, sizeof a.sku);
    a.has_available = eda_get_i64(&reply.data, "available", &a.available) == 0;
    bool released;
    if (eda_get_bool(&reply.data, "released", &released) == 0)
        a.released = released;
    return a;
}

static s_answer_t s_reserve_credit(const char *order_id, const char *customer_id,
                                   int64_t amount)
{
    msgpack_packer *pk = s_begin(TU_CUSTOMER, "ReserveCredit", order_id);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_pack_kv_i64(pk, "amount", amount);
    return s_call(TU_CUSTOMER);
}

/*  ReleaseCredit to customer-service, ReleaseStock to inventory-service. */
static s_answer_t s_release(tu_service_t svc, const char *order_id)
{
    msgpack_packer *pk =
        s_begin(svc, svc == TU_CUSTOMER ? "ReleaseCredit" : "ReleaseStock", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    return s_call(svc);
}

/*  ReserveStock; an item with a negative price is sent without one. */
static s_answer_t s_reserve_stock(const char *order_id, const tu_item_t *items, size_t n)
{
    msgpack_packer *pk = s_begin(TU_INVENTORY, "ReserveStock", order_id);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, items[i].price < 0 ? 2 : 3);
        eda_pack_kv_str(pk, "sku", items[i].sku);
        eda_pack_kv_i64(pk, "qty", items[i].qty);
        if (items[i].price >= 0)
            eda_pack_kv_i64(pk, "price", items[i].price);
    }
    return s_call(TU_INVENTORY);
}

static void s_expect_ok(const s_answer_t *a)
{
    cr_assert(a->ok, "refused: %s: %s", a->code, a->message);
}

static void s_expect_reserved(const s_answer_t *a, const char *order_id)
{
    s_expect_ok(a);
    cr_assert_str_eq(a->order_id, order_id);
    cr_assert_str_eq(a->outcome, "RESERVED");
    cr_assert_eq(a->nkeys, 2, "a RESERVED answer is {order_id, outcome}, not %u keys",
                 a->nkeys);
}

static void s_expect_rejected(const s_answer_t *a, const char *order_id,
                              const char *reason)
{
    s_expect_ok(a);
    cr_assert_str_eq(a->order_id, order_id);
    cr_assert_str_eq(a->outcome, "REJECTED");
    cr_assert_str_eq(a->reason, reason);
}

static void s_expect_released(const s_answer_t *a, const char *order_id, bool released)
{
    s_expect_ok(a);
    cr_assert_str_eq(a->order_id, order_id);
    cr_assert_eq(a->nkeys, 2);
    cr_assert_eq(a->released, released, "released is %d", a->released);
}

static void s_expect_bad_request(const s_answer_t *a, const char *field)
{
    cr_assert_not(a->ok, "accepted what should be refused (%s)", field);
    cr_assert_str_eq(a->code, "BAD_REQUEST");
    cr_assert(strstr(a->message, field), "'%s' does not name %s", a->message, field);
}

static uint64_t s_last_seq(tu_service_t svc)
{
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last = 0;
    cr_assert_eq(tu_stat_self(&sys, svc, epoch, &last), 0, "%s", sys.why);
    return last;
}

/*  Reads event #seq of svc's log with ReplayEvents into *env (its data is
    valid until the next call). */
static void s_event(tu_service_t svc, uint64_t seq, eda_envelope_t *env)
{
    msgpack_packer *pk = tu_begin(&sys, svc, "ReplayEvents");
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", seq - 1);
    eda_pack_kv_u64(pk, "limit", 1);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, svc, &reply), 0, "%s", sys.why);
    cr_assert_eq(reply.ok, 1, "ReplayEvents refused");
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert(events && events->type == MSGPACK_OBJECT_ARRAY &&
              events->via.array.size == 1);
    const msgpack_object *bin = &events->via.array.ptr[0];
    cr_assert_eq(bin->type, MSGPACK_OBJECT_BIN);
    char why[256] = "";
    cr_assert_eq(
        eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, env, why, sizeof why),
        EDA_OK, "%s", why);
    cr_assert_eq(env->seq, seq);
}

static void s_expect_str(const msgpack_object *data, const char *key, const char *value)
{
    char s[EDA_NAME_MAX + 1] = "";
    cr_assert_eq(eda_get_str(data, key, s, sizeof s), 0, "no string %s", key);
    cr_assert_str_eq(s, value, "%s is %s, not %s", key, s, value);
}

static void s_expect_i64(const msgpack_object *data, const char *key, int64_t value)
{
    int64_t v = -1;
    cr_assert_eq(eda_get_i64(data, key, &v), 0, "no integer %s", key);
    cr_assert_eq(v, value, "%s is %lld, not %lld", key, (long long)v, (long long)value);
}

/* --- customer-service ------------------------------------------------------- */

Test(participants, reserve_credit_holds_and_a_repeat_answers_the_first_outcome,
     .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "alice", 10000), 0, "%s", sys.why);
    s_answer_t a = s_reserve_credit("o-1", "alice", 3000);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_credit(&sys, "alice", 3000, 7000), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_CUSTOMER);

    /* A retry after a lost reply, or a late duplicate, whatever its amount. */
    a = s_reserve_credit("o-1", "alice", 3000);
    s_expect_reserved(&a, "o-1");
    a = s_reserve_credit("o-1", "alice", 99999);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_credit(&sys, "alice", 3000, 7000), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last, "a repeat published something");

    /* A zero amount is held, even with nothing available. */
    a = s_reserve_credit("o-2", "alice", 7000);
    s_expect_reserved(&a, "o-2");
    a = s_reserve_credit("o-3", "alice", 0);
    s_expect_reserved(&a, "o-3");
    cr_assert_eq(tu_expect_credit(&sys, "alice", 10000, 0), 0, "%s", sys.why);
    s_shutdown();
}

Test(participants, credit_refusals_name_their_reason_and_hold_nothing, .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "bob", 5000), 0, "%s", sys.why);
    s_answer_t a = s_reserve_credit("o-1", "nobody", 100);
    s_expect_rejected(&a, "o-1", "UNKNOWN_CUSTOMER");
    cr_assert(a.has_available);
    cr_assert_eq(a.available, 0);
    cr_assert_eq(a.nkeys, 4, "a REJECTED credit answer has 4 keys, not %u", a.nkeys);

    a = s_reserve_credit("o-2", "bob", 5001);
    s_expect_rejected(&a, "o-2", "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(a.available, 5000);
    cr_assert_eq(tu_expect_credit(&sys, "bob", 0, 5000), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_CUSTOMER);

    /* The first outcome stands, even when the same request would now pass. */
    cr_assert_eq(tu_create_customer(&sys, "nobody", 1000), 0, "%s", sys.why);
    last++; /* CustomerCreated */
    a = s_reserve_credit("o-1", "nobody", 100);
    s_expect_rejected(&a, "o-1", "UNKNOWN_CUSTOMER");
    a = s_reserve_credit("o-2", "bob", 1);
    s_expect_rejected(&a, "o-2", "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last, "a repeat published something");
    cr_assert_eq(tu_expect_credit(&sys, "bob", 0, 5000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "nobody", 0, 1000), 0, "%s", sys.why);
    s_shutdown();
}

Test(participants, release_credit_gives_it_back_once, .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "carol", 10000), 0, "%s", sys.why);
    s_answer_t a = s_reserve_credit("o-1", "carol", 4000);
    s_expect_reserved(&a, "o-1");
    uint64_t last = s_last_seq(TU_CUSTOMER);

    a = s_release(TU_CUSTOMER, "o-1");
    s_expect_released(&a, "o-1", true);
    cr_assert_eq(tu_expect_credit(&sys, "carol", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last + 1, "a release publishes one event");
    eda_envelope_t env;
    s_event(TU_CUSTOMER, last + 1, &env);
    cr_assert_str_eq(env.type, "CreditReleased");
    cr_assert_str_eq(env.correlation_id, "o-1");
    cr_assert_eq(env.data.via.map.size, 2);
    s_expect_str(&env.data, "order_id", "o-1");
    s_expect_i64(&env.data, "amount", 4000);

    /* Again: the same answer, nothing given back twice, nothing published. */
    a = s_release(TU_CUSTOMER, "o-1");
    s_expect_released(&a, "o-1", true);
    /* A late reservation answers its first outcome and holds nothing again. */
    a = s_reserve_credit("o-1", "carol", 4000);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_credit(&sys, "carol", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last + 1, "a repeat published something");
    s_shutdown();
}

Test(participants, credit_released_before_reserved_is_refused_later, .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "dave", 10000), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_CUSTOMER);
    s_answer_t a = s_release(TU_CUSTOMER, "o-1");
    s_expect_released(&a, "o-1", false);

    a = s_reserve_credit("o-1", "dave", 100);
    s_expect_rejected(&a, "o-1", "ALREADY_RELEASED");
    cr_assert_eq(tu_expect_credit(&sys, "dave", 0, 10000), 0, "%s", sys.why);
    a = s_release(TU_CUSTOMER, "o-1");
    s_expect_released(&a, "o-1", false);
    a = s_reserve_credit("o-1", "dave", 100);
    s_expect_rejected(&a, "o-1", "ALREADY_RELEASED");
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last, "a tombstone published something");
    s_shutdown();
}

Test(participants, releasing_refused_credit_is_a_no_op, .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "erin", 1000), 0, "%s", sys.why);
    s_answer_t a = s_reserve_credit("o-held", "erin", 600);
    s_expect_reserved(&a, "o-held");
    a = s_reserve_credit("o-1", "erin", 500);
    s_expect_rejected(&a, "o-1", "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(a.available, 400);
    uint64_t last = s_last_seq(TU_CUSTOMER);

    a = s_release(TU_CUSTOMER, "o-1");
    s_expect_released(&a, "o-1", false);
    cr_assert_eq(tu_expect_credit(&sys, "erin", 600, 400), 0, "%s",
                 sys.why); /* the other order's hold is untouched */
    a = s_reserve_credit("o-1", "erin", 500);
    s_expect_rejected(&a, "o-1", "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last, "a no-op published something");
    s_shutdown();
}

Test(participants, credit_events_of_commands_are_marked_orchestration, .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "fay", 1000), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_CUSTOMER);
    s_answer_t a = s_reserve_credit("o-ok", "fay", 700);
    s_expect_reserved(&a, "o-ok");
    const char *command_id = eda_client_last_id(sys.client[TU_CUSTOMER]);
    char ok_command[EDA_NAME_MAX + 1];
    snprintf(ok_command, sizeof ok_command, "%s", command_id);
    a = s_reserve_credit("o-no", "fay", 301);
    s_expect_rejected(&a, "o-no", "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last + 2);

    eda_envelope_t env;
    s_event(TU_CUSTOMER, last + 1, &env);
    cr_assert_str_eq(env.type, "CreditReserved");
    cr_assert_str_eq(env.source, "customer-service");
    cr_assert_str_eq(env.correlation_id, "o-ok");
    cr_assert_str_eq(env.causation_id, ok_command);
    cr_assert_eq(env.data.via.map.size, 4);
    s_expect_str(&env.data, "order_id", "o-ok");
    s_expect_str(&env.data, "customer_id", "fay");
    s_expect_i64(&env.data, "amount", 700);
    s_expect_str(&env.data, "saga", "orchestration");

    s_event(TU_CUSTOMER, last + 2, &env);
    cr_assert_str_eq(env.type, "CreditRejected");
    cr_assert_str_eq(env.correlation_id, "o-no");
    cr_assert_eq(env.data.via.map.size, 6);
    s_expect_str(&env.data, "order_id", "o-no");
    s_expect_str(&env.data, "customer_id", "fay");
    s_expect_str(&env.data, "reason", "CREDIT_LIMIT_EXCEEDED");
    s_expect_i64(&env.data, "amount", 301);
    s_expect_i64(&env.data, "available", 300);
    s_expect_str(&env.data, "saga", "orchestration");
    s_shutdown();
}

/*  A string of n bytes of 'x'. */
static const char *s_long(size_t n)
{
    static char s[512];
    cr_assert(n < sizeof s);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

Test(participants, bad_credit_commands_are_refused_and_the_service_serves_on,
     .init = s_customer)
{
    cr_assert_eq(tu_create_customer(&sys, "gus", 1000), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_CUSTOMER);
    /* {order_id, customer_id, amount}, each present or not, string or int. */
    struct {
        const char *field; /* the one the message must name */
        int order_id;      /* 0 absent, 1 "o-1", 2 an integer, 3 "", 4 65 bytes */
        int customer_id;   /* the same, with "gus" */
        int amount;        /* 0 absent, 1 100, 2 a string, 3 -1, 4 nil */
    } cases[] = {
        {"order_id", 0, 1, 1},    {"order_id", 2, 1, 1},    {"order_id", 3, 1, 1},
        {"order_id", 4, 1, 1},    {"customer_id", 1, 0, 1}, {"customer_id", 1, 2, 1},
        {"customer_id", 1, 3, 1}, {"customer_id", 1, 4, 1}, {"amount", 1, 1, 0},
        {"amount", 1, 1, 2},      {"amount", 1, 1, 3},      {"amount", 1, 1, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fields[3] = {cases[i].order_id, cases[i].customer_id, cases[i].amount};
        const char *keys[3] = {"order_id", "customer_id", "amount"};
        const char *good[2] = {"o-1", "gus"};
        msgpack_packer *pk = s_begin(TU_CUSTOMER, "ReserveCredit", "o-1");
        msgpack_pack_map(pk, (fields[0] > 0) + (fields[1] > 0) + (fields[2] > 0));
        for (int k = 0; k < 2; k++) {
            if (fields[k] == 1)
                eda_pack_kv_str(pk, keys[k], good[k]);
            else if (fields[k] == 2)
                eda_pack_kv_i64(pk, keys[k], 7);
            else if (fields[k] == 3)
                eda_pack_kv_str(pk, keys[k], "");
            else if (fields[k] == 4)
                eda_pack_kv_str(pk, keys[k], s_long(EDA_NAME_MAX + 1));
        }
        if (fields[2] == 1)
            eda_pack_kv_i64(pk, "amount", 100);
        else if (fields[2] == 2)
            eda_pack_kv_str(pk, "amount", "100");
        else if (fields[2] == 3)
            eda_pack_kv_i64(pk, "amount", -1);
        else if (fields[2] == 4)
            eda_pack_kv_nil(pk, "amount");
        s_answer_t a = s_call(TU_CUSTOMER);
        s_expect_bad_request(&a, cases[i].field);
    }
    for (int how = 0; how < 4; how++) {
        msgpack_packer *pk = s_begin(TU_CUSTOMER, "ReleaseCredit", NULL);
        msgpack_pack_map(pk, how == 0 ? 0 : 1);
        if (how == 1)
            eda_pack_kv_i64(pk, "order_id", 1);
        else if (how == 2)
            eda_pack_kv_str(pk, "order_id", "");
        else if (how == 3)
            eda_pack_kv_str(pk, "order_id", s_long(EDA_NAME_MAX + 1));
        s_answer_t a = s_call(TU_CUSTOMER);
        s_expect_bad_request(&a, "order_id");
    }
    cr_assert_eq(s_last_seq(TU_CUSTOMER), last, "a refused command published something");
    cr_assert_eq(tu_expect_credit(&sys, "gus", 0, 1000), 0, "%s", sys.why);

    /* Nothing was recorded: the order can still be reserved, with the
       longest id there is. */
    s_answer_t a = s_reserve_credit("o-1", "gus", 100);
    s_expect_reserved(&a, "o-1");
    char longest[EDA_NAME_MAX + 1];
    snprintf(longest, sizeof longest, "%s", s_long(EDA_NAME_MAX));
    a = s_reserve_credit(longest, "gus", 100);
    s_expect_reserved(&a, longest);
    a = s_release(TU_CUSTOMER, longest);
    s_expect_released(&a, longest, true);
    cr_assert_eq(tu_expect_credit(&sys, "gus", 100, 900), 0, "%s", sys.why);
    s_shutdown();
}

/*  Creates a database as the version before the reason column made it. */
static void s_old_database(const char *path, const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err);
    sqlite3_close(db);
}

Test(participants, an_old_credit_database_gains_the_reason_column)
{
    s_init();
    s_old_database(
        sys.db[TU_CUSTOMER],
        "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
        " credit_limit INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE credit_reservations (order_id TEXT PRIMARY KEY,"
        " customer_id TEXT NOT NULL, amount INTEGER NOT NULL, state TEXT NOT NULL);"
        "INSERT INTO customers VALUES ('hal', 'Hal', 1000, 250);"
        "INSERT INTO credit_reservations VALUES ('o-old', 'hal', 250, 'RESERVED');");
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "hal", 250, 750), 0, "%s", sys.why);
    s_answer_t a = s_reserve_credit("o-1", "hal", 751);
    s_expect_rejected(&a, "o-1", "CREDIT_LIMIT_EXCEEDED");

    /* The reason outlives a restart, and the old hold is released. */
    cr_assert_eq(tu_system_stop(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    a = s_reserve_credit("o-1", "hal", 1);
    s_expect_rejected(&a, "o-1", "CREDIT_LIMIT_EXCEEDED");
    a = s_reserve_credit("o-old", "hal", 250);
    s_expect_reserved(&a, "o-old");
    a = s_release(TU_CUSTOMER, "o-old");
    s_expect_released(&a, "o-old", true);
    cr_assert_eq(tu_expect_credit(&sys, "hal", 0, 1000), 0, "%s", sys.why);
    s_shutdown();
}

/* --- inventory-service ------------------------------------------------------ */

Test(participants, reserve_stock_holds_every_line_and_a_repeat_answers_the_first,
     .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pear", 5), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 2, 150}, {"pear", 1, -1}, {"apple", 1, 150}};
    s_answer_t a = s_reserve_stock("o-1", items, 3);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 7, 3), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "pear", 4, 1), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);

    a = s_reserve_stock("o-1", items, 3);
    s_expect_reserved(&a, "o-1");
    tu_item_t other[] = {{"pear", 4, -1}};
    a = s_reserve_stock("o-1", other, 1);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 7, 3), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "pear", 4, 1), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_INVENTORY), last, "a repeat published something");
    s_shutdown();
}

Test(participants, stock_refusals_report_the_first_failing_line, .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pear", 5), 0, "%s", sys.why);
    tu_item_t unknown[] = {{"apple", 2, -1}, {"ghost", 1, -1}, {"pear", 99, -1}};
    s_answer_t a = s_reserve_stock("o-1", unknown, 3);
    s_expect_rejected(&a, "o-1", "UNKNOWN_SKU");
    cr_assert_str_eq(a.sku, "ghost");
    cr_assert_eq(a.nkeys, 4, "a REJECTED stock answer has 4 keys, not %u", a.nkeys);

    tu_item_t short_[] = {{"apple", 2, -1}, {"pear", 6, -1}, {"ghost", 1, -1}};
    a = s_reserve_stock("o-2", short_, 3);
    s_expect_rejected(&a, "o-2", "OUT_OF_STOCK");
    cr_assert_str_eq(a.sku, "pear");

    /* Lines of one SKU are summed before they are weighed. */
    tu_item_t split[] = {{"pear", 3, -1}, {"apple", 1, -1}, {"pear", 3, -1}};
    a = s_reserve_stock("o-3", split, 3);
    s_expect_rejected(&a, "o-3", "OUT_OF_STOCK");
    cr_assert_str_eq(a.sku, "pear");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "pear", 5, 0), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);

    /* The first outcome stands, even once there is stock enough. */
    cr_assert_eq(tu_add_stock(&sys, "pear", 100), 0, "%s", sys.why);
    last++; /* StockAdded */
    a = s_reserve_stock("o-2", short_, 3);
    s_expect_rejected(&a, "o-2", "OUT_OF_STOCK");
    cr_assert_str_eq(a.sku, "pear");
    a = s_reserve_stock("o-1", unknown, 3);
    s_expect_rejected(&a, "o-1", "UNKNOWN_SKU");
    cr_assert_str_eq(a.sku, "ghost");
    cr_assert_eq(s_last_seq(TU_INVENTORY), last, "a repeat published something");
    cr_assert_eq(tu_expect_stock(&sys, "pear", 105, 0), 0, "%s", sys.why);
    s_shutdown();
}

Test(participants, release_stock_gives_it_back_once, .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pear", 5), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 4, 10}, {"pear", 5, 20}};
    s_answer_t a = s_reserve_stock("o-1", items, 2);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_stock(&sys, "pear", 0, 5), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);

    a = s_release(TU_INVENTORY, "o-1");
    s_expect_released(&a, "o-1", true);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "pear", 5, 0), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_INVENTORY), last + 1, "a release publishes one event");
    eda_envelope_t env;
    s_event(TU_INVENTORY, last + 1, &env);
    cr_assert_str_eq(env.type, "StockReleased");
    cr_assert_str_eq(env.correlation_id, "o-1");
    cr_assert_eq(env.data.via.map.size, 1);
    s_expect_str(&env.data, "order_id", "o-1");

    a = s_release(TU_INVENTORY, "o-1");
    s_expect_released(&a, "o-1", true);
    a = s_reserve_stock("o-1", items, 2);
    s_expect_reserved(&a, "o-1");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "pear", 5, 0), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_INVENTORY), last + 1, "a repeat published something");
    s_shutdown();
}

Test(participants, stock_released_before_reserved_is_refused_later, .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);
    s_answer_t a = s_release(TU_INVENTORY, "o-1");
    s_expect_released(&a, "o-1", false);

    tu_item_t items[] = {{"apple", 1, -1}};
    a = s_reserve_stock("o-1", items, 1);
    s_expect_rejected(&a, "o-1", "ALREADY_RELEASED");
    cr_assert_eq(a.nkeys, 3, "no failing line to name: {order_id, outcome, reason}");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    a = s_release(TU_INVENTORY, "o-1");
    s_expect_released(&a, "o-1", false);
    cr_assert_eq(s_last_seq(TU_INVENTORY), last, "a tombstone published something");
    s_shutdown();
}

Test(participants, releasing_refused_stock_is_a_no_op, .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 3), 0, "%s", sys.why);
    tu_item_t held[] = {{"apple", 2, -1}};
    s_answer_t a = s_reserve_stock("o-held", held, 1);
    s_expect_reserved(&a, "o-held");
    tu_item_t more[] = {{"apple", 2, -1}};
    a = s_reserve_stock("o-1", more, 1);
    s_expect_rejected(&a, "o-1", "OUT_OF_STOCK");
    uint64_t last = s_last_seq(TU_INVENTORY);

    a = s_release(TU_INVENTORY, "o-1");
    s_expect_released(&a, "o-1", false);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 1, 2), 0, "%s", sys.why);
    cr_assert_eq(s_last_seq(TU_INVENTORY), last, "a no-op published something");
    s_shutdown();
}

Test(participants, stock_events_of_commands_are_marked_orchestration, .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);
    tu_item_t ok[] = {{"apple", 2, 150}, {"apple", 3, 150}};
    s_answer_t a = s_reserve_stock("o-ok", ok, 2);
    s_expect_reserved(&a, "o-ok");
    tu_item_t no[] = {{"apple", 6, -1}};
    a = s_reserve_stock("o-no", no, 1);
    s_expect_rejected(&a, "o-no", "OUT_OF_STOCK");
    cr_assert_eq(s_last_seq(TU_INVENTORY), last + 2);

    eda_envelope_t env;
    s_event(TU_INVENTORY, last + 1, &env);
    cr_assert_str_eq(env.type, "StockReserved");
    cr_assert_str_eq(env.source, "inventory-service");
    cr_assert_str_eq(env.correlation_id, "o-ok");
    cr_assert_eq(env.data.via.map.size, 3);
    s_expect_str(&env.data, "order_id", "o-ok");
    s_expect_str(&env.data, "saga", "orchestration");
    eda_item_t lines[EDA_ITEMS_MAX];
    char why[128];
    cr_assert_eq(
        eda_items_read(eda_map_get(&env.data, "items"), false, lines, why, sizeof why), 1,
        "%s", why);
    cr_assert_str_eq(lines[0].sku, "apple");
    cr_assert_eq(lines[0].qty, 5);
    cr_assert_eq(lines[0].price, -1, "StockReserved carries no prices");

    s_event(TU_INVENTORY, last + 2, &env);
    cr_assert_str_eq(env.type, "StockRejected");
    cr_assert_str_eq(env.correlation_id, "o-no");
    cr_assert_eq(env.data.via.map.size, 6);
    s_expect_str(&env.data, "order_id", "o-no");
    s_expect_str(&env.data, "reason", "OUT_OF_STOCK");
    s_expect_str(&env.data, "sku", "apple");
    s_expect_i64(&env.data, "requested", 6);
    s_expect_i64(&env.data, "available", 5);
    s_expect_str(&env.data, "saga", "orchestration");
    s_shutdown();
}

/*  Sends ReserveStock for o-1 with `items` packed by `pack` and expects
    BAD_REQUEST naming `field`. */
static void s_bad_items(void (*pack)(msgpack_packer *pk), const char *field)
{
    msgpack_packer *pk = s_begin(TU_INVENTORY, "ReserveStock", "o-1");
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", "o-1");
    eda_pack_key(pk, "items");
    pack(pk);
    s_answer_t a = s_call(TU_INVENTORY);
    s_expect_bad_request(&a, field);
}

static void s_item(msgpack_packer *pk, const char *sku, int64_t qty)
{
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
}

static void s_items_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void s_items_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}
static void s_items_empty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void s_items_too_many(msgpack_packer *pk)
{
    msgpack_pack_array(pk, EDA_ITEMS_MAX + 1);
    for (int i = 0; i < EDA_ITEMS_MAX + 1; i++)
        s_item(pk, "apple", 1);
}
static void s_items_not_maps(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    eda_pack_str(pk, "apple");
}
static void s_items_no_sku(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_i64(pk, "qty", 1);
}
static void s_items_long_sku(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    s_item(pk, s_long(EDA_NAME_MAX + 1), 1);
}
static void s_items_zero_qty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    s_item(pk, "apple", 0);
}
static void s_items_string_qty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", "apple");
    eda_pack_kv_str(pk, "qty", "1");
}
static void s_items_negative_price(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", "apple");
    eda_pack_kv_i64(pk, "qty", 1);
    eda_pack_kv_i64(pk, "price", -1);
}
static void s_items_overflow(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    s_item(pk, "apple", INT64_MAX);
    s_item(pk, "apple", 1);
}

Test(participants, bad_stock_commands_are_refused_and_the_service_serves_on,
     .init = s_inventory)
{
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    uint64_t last = s_last_seq(TU_INVENTORY);
    s_bad_items(s_items_nil, "items");
    s_bad_items(s_items_map, "items");
    s_bad_items(s_items_empty, "items");
    s_bad_items(s_items_too_many, "items");
    s_bad_items(s_items_not_maps, "item 1");
    s_bad_items(s_items_no_sku, "sku");
    s_bad_items(s_items_long_sku, "sku");
    s_bad_items(s_items_zero_qty, "qty");
    s_bad_items(s_items_string_qty, "qty");
    s_bad_items(s_items_negative_price, "price");
    s_bad_items(s_items_overflow, "overflow");

    for (int how = 0; how < 4; how++) {
        for (int release = 0; release < 2; release++) {
            msgpack_packer *pk =
                s_begin(TU_INVENTORY, release ? "ReleaseStock" : "ReserveStock", NULL);
            msgpack_pack_map(pk, (how > 0) + !release);
            if (how == 1)
                eda_pack_kv_i64(pk, "order_id", 1);
            else if (how == 2)
                eda_pack_kv_str(pk, "order_id", "");
            else if (how == 3)
                eda_pack_kv_str(pk, "order_id", s_long(EDA_NAME_MAX + 1));
            if (!release) {
                eda_pack_key(pk, "items");
                msgpack_pack_array(pk, 1);
                s_item(pk, "apple", 1);
            }
            s_answer_t a = s_call(TU_INVENTORY);
            s_expect_bad_request(&a, "order_id");
        }
    }
    cr_assert_eq(s_last_seq(TU_INVENTORY), last, "a refused command published something");
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);

    tu_item_t items[] = {{"apple", 1, -1}};
    s_answer_t a = s_reserve_stock("o-1", items, 1);
    s_expect_reserved(&a, "o-1");
    char longest[EDA_NAME_MAX + 1];
    snprintf(longest, sizeof longest, "%s", s_long(EDA_NAME_MAX));
    a = s_reserve_stock(longest, items, 1);
    s_expect_reserved(&a, longest);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 8, 2), 0, "%s", sys.why);
    s_shutdown();
}

Test(participants, an_old_stock_database_gains_the_reason_column)
{
    s_init();
    /* A hold made by the older version: its items packed as they were. */
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    eda_item_t held[] = {{.sku = "apple", .qty = 2, .price = -1}};
    eda_items_pack(&pk, held, 1, false);
    char hex[256] = "";
    for (size_t i = 0; i < buf.size; i++)
        snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", (unsigned char)buf.data[i]);
    msgpack_sbuffer_destroy(&buf);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE TABLE stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL,"
             " reserved INTEGER NOT NULL DEFAULT 0);"
             "CREATE TABLE stock_reservations (order_id TEXT PRIMARY KEY,"
             " state TEXT NOT NULL, items BLOB NOT NULL);"
             "INSERT INTO stock VALUES ('apple', 8, 2);"
             "INSERT INTO stock_reservations VALUES ('o-old', 'RESERVED', x'%s');",
             hex);
    s_old_database(sys.db[TU_INVENTORY], sql);
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);

    tu_item_t items[] = {{"apple", 9, -1}};
    s_answer_t a = s_reserve_stock("o-1", items, 1);
    s_expect_rejected(&a, "o-1", "OUT_OF_STOCK");
    cr_assert_str_eq(a.sku, "apple");

    cr_assert_eq(tu_system_stop(&sys, TU_INVENTORY), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    a = s_reserve_stock("o-1", items, 1);
    s_expect_rejected(&a, "o-1", "OUT_OF_STOCK");
    cr_assert_str_eq(a.sku, "apple");
    a = s_release(TU_INVENTORY, "o-old");
    s_expect_released(&a, "o-old", true);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    s_shutdown();
}
