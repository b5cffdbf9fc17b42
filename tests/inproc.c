/*  inproc: the in-process deployment of test_service and test_faults (see
    inproc.h).
*/
#include "inproc.h"

#include "customer_service.h"
#include "inventory_service.h"
#include "order_service.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_ACTORS 8
#define S_MAX_CLIENT 8

const char *const inproc_names[INPROC_NSVC] = {"order-service", "customer-service",
                                               "inventory-service"};
const eda_service_def_t *const inproc_defs[INPROC_NSVC] = {
    &order_service_def, &customer_service_def, &inventory_service_def};

static zactor_t *s_actors[S_MAX_ACTORS];
static eda_service_args_t s_args[S_MAX_ACTORS];
static eda_client_t *s_clients[S_MAX_CLIENT];

void inproc_endpoint(char *out, size_t size, const char *what)
{
    static int counter;
    snprintf(out, size, "inproc://svc-%d-%d-%s", (int)getpid(), ++counter, what);
}

void inproc_set(eda_config_t *cfg, const char *name, const char *value)
{
    char why[256] = "";
    cr_assert_eq(eda_config_set(cfg, name, value, why, sizeof why), 0, "%s=%s: %s", name,
                 value, why);
}

void inproc_topo_init(inproc_topo_t *t, const char *db)
{
    memset(t, 0, sizeof *t);
    const char *hole = strstr(db, "%s");
    for (int i = 0; i < INPROC_NSVC; i++) {
        inproc_endpoint(t->events[i], sizeof t->events[i], "pub");
        inproc_endpoint(t->commands[i], sizeof t->commands[i], "cmd");
        if (hole)
            snprintf(t->db[i], sizeof t->db[i], "%.*s%s%s", (int)(hole - db), db,
                     inproc_names[i], hole + 2);
        else
            snprintf(t->db[i], sizeof t->db[i], "%s", db);
    }
    for (int i = 0; i < INPROC_NSVC; i++) {
        eda_config_t *cfg = &t->cfg[i];
        eda_config_defaults(cfg, inproc_names[i]);
        inproc_set(cfg, "events", t->events[i]);
        inproc_set(cfg, "commands", t->commands[i]);
        for (int j = 0; j < INPROC_NSVC; j++) {
            if (j == i)
                continue;
            char peer[400];
            snprintf(peer, sizeof peer, "%s=%s,%s", inproc_names[j], t->events[j],
                     t->commands[j]);
            inproc_set(cfg, "peer", peer);
        }
        inproc_set(cfg, "db", t->db[i]);
        inproc_set(cfg, "log-level", "error");
    }
}

/*  A free slot of s_actors. */
static int s_slot(void)
{
    int slot = 0;
    while (slot < S_MAX_ACTORS && s_actors[slot])
        slot++;
    cr_assert_lt(slot, S_MAX_ACTORS);
    return slot;
}

int inproc_start(const eda_service_def_t *def, const eda_config_t *cfg, zactor_t **out)
{
    int slot = s_slot();
    s_args[slot] = (eda_service_args_t){.def = def, .cfg = cfg, .status = 42};
    zactor_t *actor = zactor_new(eda_service_actor, &s_args[slot]);
    cr_assert_not_null(actor, "zactor_new failed");
    s_actors[slot] = actor;
    if (out)
        *out = actor;
    return s_args[slot].status;
}

void inproc_adopt(zactor_t *actor)
{
    s_actors[s_slot()] = actor;
}

int64_t inproc_stop(zactor_t **actor_p)
{
    for (int i = 0; i < S_MAX_ACTORS; i++)
        if (s_actors[i] == *actor_p)
            s_actors[i] = NULL;
    int64_t start = zclock_mono();
    zactor_destroy(actor_p);
    return zclock_mono() - start;
}

int64_t inproc_stop_all(void)
{
    int64_t longest = 0;
    for (int i = 0; i < S_MAX_ACTORS; i++) {
        if (!s_actors[i])
            continue;
        zactor_t *actor = s_actors[i];
        int64_t took = inproc_stop(&actor);
        if (took > longest)
            longest = took;
    }
    return longest;
}

eda_client_t *inproc_client(const char *endpoint)
{
    eda_client_t *client = eda_client_new(endpoint, "test-inproc");
    cr_assert_not_null(client, "eda_client_new %s", endpoint);
    int slot = 0;
    while (slot < S_MAX_CLIENT && s_clients[slot])
        slot++;
    cr_assert_lt(slot, S_MAX_CLIENT);
    s_clients[slot] = client;
    return client;
}

void inproc_fini(void)
{
    for (int i = 0; i < S_MAX_CLIENT; i++)
        eda_client_destroy(&s_clients[i]);
    for (int i = 0; i < S_MAX_ACTORS; i++)
        zactor_destroy(&s_actors[i]);
}

void inproc_call(eda_client_t *client, eda_envelope_t *reply)
{
    char why[256] = "";
    cr_assert_eq(eda_client_call(client, INPROC_CALL_MS, reply, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(reply->kind, EDA_KIND_REPLY);
    cr_assert_str_eq(reply->causation_id, eda_client_last_id(client));
}

void inproc_call_empty(eda_client_t *client, const char *type, eda_envelope_t *reply)
{
    msgpack_pack_map(eda_client_begin(client, type, NULL), 0);
    inproc_call(client, reply);
}

void inproc_expect_ok(const eda_envelope_t *reply)
{
    char code[32] = "", message[256] = "";
    eda_get_str(&reply->error, "code", code, sizeof code);
    eda_get_str(&reply->error, "message", message, sizeof message);
    cr_assert_eq(reply->ok, 1, "%s refused: %s: %s", reply->type, code, message);
}

void inproc_expect_error(const eda_envelope_t *reply, const char *code)
{
    char got[32] = "";
    cr_assert_eq(reply->ok, 0, "%s should have been refused with %s", reply->type, code);
    cr_assert_eq(eda_get_str(&reply->error, "code", got, sizeof got), 0);
    cr_assert_str_eq(got, code);
}

uint64_t inproc_u64(const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    cr_assert_eq(eda_get_u64(map, key, &v), 0, "'%s' is not a uint", key);
    return v;
}

void inproc_str(const msgpack_object *map, const char *key, char *out, size_t size)
{
    cr_assert_eq(eda_get_str(map, key, out, size), 0, "'%s' is not a string", key);
}

int inproc_list_orders(eda_client_t *c, const char *status, uint64_t limit,
                       uint64_t after, char ids[][EDA_NAME_MAX + 1], int max,
                       uint64_t *next)
{
    msgpack_packer *pk = eda_client_begin(c, "ListOrders", NULL);
    msgpack_pack_map(pk, 1 + (status != NULL) + (after != 0));
    if (status)
        eda_pack_kv_str(pk, "status", status);
    eda_pack_kv_u64(pk, "limit", limit);
    if (after)
        eda_pack_kv_u64(pk, "after", after);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    const msgpack_object *orders = eda_map_get(&reply.data, "orders");
    cr_assert(orders && orders->type == MSGPACK_OBJECT_ARRAY);
    int n = (int)orders->via.array.size;
    cr_assert_leq(n, max, "ListOrders gave more than %d orders", max);
    for (int i = 0; i < n; i++)
        inproc_str(&orders->via.array.ptr[i], "order_id", ids[i], EDA_NAME_MAX + 1);
    const msgpack_object *more = eda_map_get(&reply.data, "more");
    cr_assert(more && more->type == MSGPACK_OBJECT_BOOLEAN);
    *next = more->via.boolean ? inproc_u64(&reply.data, "next") : 0;
    return n;
}

msgpack_packer *inproc_begin_place_order(eda_client_t *c, const char *request_id,
                                         const char *customer, const char *sku,
                                         int64_t qty, int64_t price, uint32_t more)
{
    msgpack_packer *pk = eda_client_begin(c, "PlaceOrder", NULL);
    msgpack_pack_map(pk, 2 + (request_id ? 1 : 0) + more);
    if (request_id)
        eda_pack_kv_str(pk, "request_id", request_id);
    eda_pack_kv_str(pk, "customer_id", customer);
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_pack_kv_i64(pk, "price", price);
    return pk;
}

void inproc_get_order(eda_client_t *c, const char *order_id, eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(c, "GetOrder", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    inproc_call(c, reply);
    inproc_expect_ok(reply);
}

void inproc_create_customer(eda_client_t *c, const char *id, int64_t limit)
{
    msgpack_packer *pk = eda_client_begin(c, "CreateCustomer", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", id);
    eda_pack_kv_str(pk, "name", id);
    eda_pack_kv_i64(pk, "credit_limit", limit);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
}

void inproc_add_stock(eda_client_t *c, const char *sku, int64_t qty)
{
    msgpack_packer *pk = eda_client_begin(c, "AddStock", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
}
