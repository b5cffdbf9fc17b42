/*  test_service: the eda_service engine, with whole services started
    in-process as czmq actors on inproc:// endpoints: the actor contract
    (ready, status, $TERM), start failures, the built-in commands (Ping,
    Stats, ReplayEvents), heartbeats, a file database across a restart, and
    the choreography saga with all three services in one process.
*/
#define _GNU_SOURCE /* RTLD_NEXT */
#include "customer_service.h"
#include "eda_client.h"
#include "inventory_service.h"
#include "order_service.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CALL_MS    5000  /* one command's reply (ASan is slow) */
#define S_SETTLE_MS  15000 /* an order decided */
#define S_STOP_MS    3000  /* zactor_destroy returns: "promptly" */
#define S_HEARTBEAT  3000  /* a heartbeat arrives (one a second) */
#define S_MAX_ACTORS 8
#define S_MAX_CLIENT 8

enum { S_ORDER, S_CUSTOMER, S_INVENTORY, S_NSVC };

static const char *s_names[S_NSVC] = {"order-service", "customer-service",
                                      "inventory-service"};
static const eda_service_def_t *s_defs[S_NSVC] = {
    &order_service_def, &customer_service_def, &inventory_service_def};

/*  One in-process deployment: endpoints, configs and the actors started. The
    actors and clients are destroyed by the suite's fini, also when a test
    fails half-way. */
typedef struct {
    char events[S_NSVC][128];
    char commands[S_NSVC][128];
    eda_config_t cfg[S_NSVC];
} s_topo_t;

static zactor_t *s_actors[S_MAX_ACTORS];
static eda_service_args_t s_args[S_MAX_ACTORS];
static eda_client_t *s_clients[S_MAX_CLIENT];
static char s_dir[512];
static bool s_mounted; /* s_dir is a tmpfs of the test's own */

static void s_teardown(void)
{
    for (int i = 0; i < S_MAX_CLIENT; i++)
        eda_client_destroy(&s_clients[i]);
    for (int i = 0; i < S_MAX_ACTORS; i++)
        zactor_destroy(&s_actors[i]);
    if (s_mounted) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "umount '%s'", s_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_service: could not unmount %s\n", s_dir);
        s_mounted = false;
    }
    if (s_dir[0])
        tu_rmtree(s_dir);
    s_dir[0] = '\0';
}

TestSuite(service, .fini = s_teardown, .timeout = 60);

/*  A fresh inproc endpoint: unique per process and per call. */
static void s_endpoint(char *out, size_t size, const char *what)
{
    static int counter;
    snprintf(out, size, "inproc://svc-%d-%d-%s", (int)getpid(), ++counter, what);
}

static void s_set(eda_config_t *cfg, const char *name, const char *value)
{
    char why[256] = "";
    cr_assert_eq(eda_config_set(cfg, name, value, why, sizeof why), 0, "%s=%s: %s", name,
                 value, why);
}

/*  Makes endpoints for the three services and a config for each, every one
    naming the other two as peers, with database `db`. */
static void s_topo_init(s_topo_t *t, const char *db)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < S_NSVC; i++) {
        s_endpoint(t->events[i], sizeof t->events[i], "pub");
        s_endpoint(t->commands[i], sizeof t->commands[i], "cmd");
    }
    for (int i = 0; i < S_NSVC; i++) {
        eda_config_t *cfg = &t->cfg[i];
        eda_config_defaults(cfg, s_names[i]);
        s_set(cfg, "events", t->events[i]);
        s_set(cfg, "commands", t->commands[i]);
        for (int j = 0; j < S_NSVC; j++) {
            if (j == i)
                continue;
            char peer[400];
            snprintf(peer, sizeof peer, "%s=%s,%s", s_names[j], t->events[j],
                     t->commands[j]);
            s_set(cfg, "peer", peer);
        }
        s_set(cfg, "db", db);
        s_set(cfg, "log-level", "error");
    }
}

/*  Starts the actor of `def` with `cfg`; returns args.status. The actor is
    kept (in *out when not NULL) whatever the status, so that destroying a
    failed one is tested too. Its args live until it is destroyed, as in
    eda_service_main: see args_need_not_outlive_zactor_new for why. */
static int s_start(const eda_service_def_t *def, const eda_config_t *cfg, zactor_t **out)
{
    int slot = 0;
    while (slot < S_MAX_ACTORS && s_actors[slot])
        slot++;
    cr_assert_lt(slot, S_MAX_ACTORS);
    s_args[slot] = (eda_service_args_t){.def = def, .cfg = cfg, .status = 42};
    zactor_t *actor = zactor_new(eda_service_actor, &s_args[slot]);
    cr_assert_not_null(actor, "zactor_new failed");
    s_actors[slot] = actor;
    if (out)
        *out = actor;
    return s_args[slot].status;
}

/*  Destroys one actor started by s_start and returns how long it took. */
static int64_t s_stop(zactor_t **actor_p)
{
    for (int i = 0; i < S_MAX_ACTORS; i++)
        if (s_actors[i] == *actor_p)
            s_actors[i] = NULL;
    int64_t start = zclock_mono();
    zactor_destroy(actor_p);
    return zclock_mono() - start;
}

static eda_client_t *s_client(const char *endpoint)
{
    eda_client_t *client = eda_client_new(endpoint, "test-service");
    cr_assert_not_null(client, "eda_client_new %s", endpoint);
    int slot = 0;
    while (slot < S_MAX_CLIENT && s_clients[slot])
        slot++;
    cr_assert_lt(slot, S_MAX_CLIENT);
    s_clients[slot] = client;
    return client;
}

/*  Sends the command begun on `client` and asserts that a reply came. */
static void s_call(eda_client_t *client, eda_envelope_t *reply)
{
    char why[256] = "";
    cr_assert_eq(eda_client_call(client, S_CALL_MS, reply, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(reply->kind, EDA_KIND_REPLY);
    cr_assert_str_eq(reply->causation_id, eda_client_last_id(client));
}

static void s_call_empty(eda_client_t *client, const char *type, eda_envelope_t *reply)
{
    msgpack_pack_map(eda_client_begin(client, type, NULL), 0);
    s_call(client, reply);
}

static void s_expect_ok(const eda_envelope_t *reply)
{
    char code[32] = "", message[256] = "";
    eda_get_str(&reply->error, "code", code, sizeof code);
    eda_get_str(&reply->error, "message", message, sizeof message);
    cr_assert_eq(reply->ok, 1, "%s refused: %s: %s", reply->type, code, message);
}

static void s_expect_error(const eda_envelope_t *reply, const char *code)
{
    char got[32] = "";
    cr_assert_eq(reply->ok, 0, "%s should have been refused with %s", reply->type, code);
    cr_assert_eq(eda_get_str(&reply->error, "code", got, sizeof got), 0);
    cr_assert_str_eq(got, code);
}

static uint64_t s_u64(const msgpack_object *map, const char *key)
{
    uint64_t v = 0;
    cr_assert_eq(eda_get_u64(map, key, &v), 0, "'%s' is not a uint", key);
    return v;
}

static void s_str(const msgpack_object *map, const char *key, char *out, size_t size)
{
    cr_assert_eq(eda_get_str(map, key, out, size), 0, "'%s' is not a string", key);
}

static void s_create_customer(eda_client_t *c, const char *id, int64_t limit)
{
    msgpack_packer *pk = eda_client_begin(c, "CreateCustomer", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", id);
    eda_pack_kv_str(pk, "name", id);
    eda_pack_kv_i64(pk, "credit_limit", limit);
    eda_envelope_t reply;
    s_call(c, &reply);
    s_expect_ok(&reply);
}

static void s_add_stock(eda_client_t *c, const char *sku, int64_t qty)
{
    msgpack_packer *pk = eda_client_begin(c, "AddStock", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_envelope_t reply;
    s_call(c, &reply);
    s_expect_ok(&reply);
}

/*  Reads the service's own epoch and last_seq with Stats. */
static void s_self(eda_client_t *c, char *epoch, uint64_t *last_seq)
{
    eda_envelope_t reply;
    s_call_empty(c, "Stats", &reply);
    s_expect_ok(&reply);
    s_str(&reply.data, "epoch", epoch, EDA_NAME_MAX + 1);
    *last_seq = s_u64(&reply.data, "last_seq");
}

static void s_replay(eda_client_t *c, uint64_t after_seq, uint64_t limit,
                     eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", after_seq);
    eda_pack_kv_u64(pk, "limit", limit);
    s_call(c, reply);
}

static bool s_is_hex16(const char *s)
{
    if (strlen(s) != 16)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* --- the actor contract ------------------------------------------------------ */

Test(service, actor_signals_ready_answers_and_stops_on_term)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    zactor_t *actor;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);

    /* Ready means serving: the first command is answered. */
    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    eda_envelope_t reply;
    s_call_empty(c, "Ping", &reply);
    s_expect_ok(&reply);

    /* $TERM (zactor_destroy) stops it promptly, although its peer
       (order-service) is not there and a replay to it is pending. */
    int64_t took = s_stop(&actor);
    cr_assert_null(actor);
    cr_assert_lt(took, S_STOP_MS, "zactor_destroy took %lld ms", (long long)took);

    /* Its endpoints are free again: a second service binds them. */
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0,
                 "a second service could not bind the endpoints of a stopped one");
    eda_client_t *c2 = s_client(t.commands[S_CUSTOMER]);
    s_call_empty(c2, "Ping", &reply);
    s_expect_ok(&reply);
    took = s_stop(&actor);
    cr_assert_lt(took, S_STOP_MS, "zactor_destroy took %lld ms", (long long)took);
}

Test(service, every_service_starts_and_stops_alone)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    for (int i = 0; i < S_NSVC; i++) {
        zactor_t *actor;
        cr_assert_eq(s_start(s_defs[i], &t.cfg[i], &actor), 0, "%s did not start",
                     s_names[i]);
        eda_client_t *c = s_client(t.commands[i]);
        eda_envelope_t reply;
        s_call_empty(c, "Ping", &reply);
        s_expect_ok(&reply);
        char service[64];
        s_str(&reply.data, "service", service, sizeof service);
        cr_assert_str_eq(service, s_names[i]);
        int64_t took = s_stop(&actor);
        cr_assert_lt(took, S_STOP_MS, "%s took %lld ms to stop", s_names[i],
                     (long long)took);
    }
}

Test(service, events_endpoint_in_use_fails_cleanly)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    zactor_t *first, *second;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &first), 0);

    /* Same events endpoint, fresh commands endpoint: the PUB bind fails. */
    eda_config_t cfg = t.cfg[S_CUSTOMER];
    char commands[128];
    s_endpoint(commands, sizeof commands, "cmd2");
    s_set(&cfg, "commands", commands);
    cr_assert_eq(s_start(&customer_service_def, &cfg, &second), -1);
    s_stop(&second);
    cr_assert_null(second);

    /* The first one is unharmed. */
    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    eda_envelope_t reply;
    s_call_empty(c, "Ping", &reply);
    s_expect_ok(&reply);
}

Test(service, commands_endpoint_in_use_fails_and_frees_the_events_one)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    zactor_t *first, *second, *third;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &first), 0);

    /* Fresh events endpoint, same commands endpoint: the PUB binds, then the
       ROUTER bind fails, and the PUB must be released again. Tried several
       times, as a release left to libzmq's reaper thread is a race. */
    for (int i = 0; i < 20; i++) {
        eda_config_t cfg = t.cfg[S_CUSTOMER];
        char events[128], commands[128];
        s_endpoint(events, sizeof events, "pub2");
        s_set(&cfg, "events", events);
        cr_assert_eq(s_start(&customer_service_def, &cfg, &second), -1);
        s_stop(&second);

        /* The events endpoint the failed start bound for a moment is free. */
        s_endpoint(commands, sizeof commands, "cmd3");
        s_set(&cfg, "commands", commands);
        cr_assert_eq(s_start(&customer_service_def, &cfg, &third), 0,
                     "attempt %d: the failed start left %s bound", i + 1, events);
        if (i == 0) {
            eda_client_t *c = s_client(commands);
            eda_envelope_t reply;
            s_call_empty(c, "Ping", &reply);
            s_expect_ok(&reply);
        }
        s_stop(&third);
    }
}

Test(service, malformed_endpoints_fail)
{
    const char *bad[] = {"nonsense", "tcp://", "tcp://127.0.0.1:notaport", "bogus://x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_topo_t t;
        s_topo_init(&t, ":memory:");
        zactor_t *actor;
        s_set(&t.cfg[S_CUSTOMER], "events", bad[i]);
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), -1,
                     "events '%s' was accepted", bad[i]);
        s_stop(&actor);

        s_topo_init(&t, ":memory:");
        s_set(&t.cfg[S_CUSTOMER], "commands", bad[i]);
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), -1,
                     "commands '%s' was accepted", bad[i]);
        s_stop(&actor);

        /* A peer's endpoints are connected to: malformed ones fail too. */
        s_topo_init(&t, ":memory:");
        char peer[256];
        snprintf(peer, sizeof peer, "order-service=%s,%s", bad[i], t.commands[S_ORDER]);
        s_set(&t.cfg[S_CUSTOMER], "peer", peer);
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), -1,
                     "peer events '%s' was accepted", bad[i]);
        s_stop(&actor);

        s_topo_init(&t, ":memory:");
        snprintf(peer, sizeof peer, "order-service=%s,%s", t.events[S_ORDER], bad[i]);
        s_set(&t.cfg[S_CUSTOMER], "peer", peer);
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), -1,
                     "peer commands '%s' was accepted", bad[i]);
        s_stop(&actor);
    }
}

Test(service, unopenable_database_fails)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char missing[700], file[700];
    snprintf(missing, sizeof missing, "%s/no/such/folder/customer.db", s_dir);
    snprintf(file, sizeof file, "%s/plain", s_dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("this is not an SQLite database, and it is long enough to say so\n", f);
    fclose(f);
    const char *bad[] = {missing, s_dir /* a folder */, file};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_topo_t t;
        s_topo_init(&t, bad[i]);
        zactor_t *actor;
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), -1,
                     "db '%s' was accepted", bad[i]);
        s_stop(&actor);
        /* Nothing was left bound. */
        s_set(&t.cfg[S_CUSTOMER], "db", ":memory:");
        cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0,
                     "the failed start (db '%s') left its endpoints bound", bad[i]);
        s_stop(&actor);
    }
}

Test(service, order_service_refuses_orchestration_until_it_has_it)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    s_set(&t.cfg[S_ORDER], "saga", "orchestration");
    zactor_t *actor;
    cr_assert_eq(s_start(&order_service_def, &t.cfg[S_ORDER], &actor), -1);
    s_stop(&actor);
}

/*  Starts one service alone on :memory: (its peers' endpoints named, not
    started) and returns a client to its commands. */
static eda_client_t *s_start_alone(int svc)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    cr_assert_eq(s_start(s_defs[svc], &t.cfg[svc], NULL), 0, "%s did not start",
                 s_names[svc]);
    return s_client(t.commands[svc]);
}

/* --- built-in commands -------------------------------------------------------- */

Test(service, ping_has_the_documented_fields)
{
    eda_client_t *c = s_start_alone(S_INVENTORY);
    eda_envelope_t reply;
    s_call_empty(c, "Ping", &reply);
    s_expect_ok(&reply);
    cr_assert_str_eq(reply.type, "Ping");
    cr_assert_str_eq(reply.source, "inventory-service");
    cr_assert_eq(reply.data.via.map.size, 3, "Ping data has %u keys",
                 reply.data.via.map.size);
    char service[64], version[32];
    s_str(&reply.data, "service", service, sizeof service);
    s_str(&reply.data, "version", version, sizeof version);
    cr_assert_str_eq(service, "inventory-service");
    cr_assert_str_eq(version, EDA_VERSION);
    cr_assert_lt(s_u64(&reply.data, "uptime_s"), 60);
}

Test(service, stats_has_the_documented_fields)
{
    eda_client_t *c = s_start_alone(S_CUSTOMER);
    s_create_customer(c, "alice", 1000);
    s_create_customer(c, "bob", 1000);

    eda_envelope_t reply;
    s_call_empty(c, "Stats", &reply);
    s_expect_ok(&reply);
    const msgpack_object *d = &reply.data;
    cr_assert_eq(d->via.map.size, 22, "Stats data has %u keys, not 22", d->via.map.size);
    const char *counters[] = {
        "last_seq",           "uptime_s",         "commands_in",    "replies_out",
        "replies_dropped",    "events_published", "events_applied", "events_ignored",
        "duplicates_dropped", "gaps_detected",    "gaps_repaired",  "replays_requested",
        "bad_input",          "commits_failed",   "batches",        "batch_max",
        "batch_avg_x100",     "handler_us_avg",   "handler_us_max"};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        s_u64(d, counters[i]);
    char service[64], epoch[EDA_NAME_MAX + 1];
    s_str(d, "service", service, sizeof service);
    s_str(d, "epoch", epoch, sizeof epoch);
    cr_assert_str_eq(service, "customer-service");
    cr_assert(s_is_hex16(epoch), "epoch '%s' is not 16 lowercase hex digits", epoch);
    cr_assert_eq(s_u64(d, "last_seq"), 2);
    cr_assert_eq(s_u64(d, "events_published"), 2);
    cr_assert_geq(s_u64(d, "commands_in"), 3); /* two CreateCustomer and this Stats */
    cr_assert_geq(s_u64(d, "replies_out"), 2);
    cr_assert_eq(s_u64(d, "bad_input"), 0);
    cr_assert_eq(s_u64(d, "commits_failed"), 0);
    cr_assert_geq(s_u64(d, "batches"), 2);

    /* peers: the inbox of each service it follows (customer follows order),
       epoch "" before the first replay. */
    const msgpack_object *peers = eda_map_get(d, "peers");
    cr_assert_not_null(peers);
    cr_assert_eq(peers->type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(peers->via.map.size, 1);
    const msgpack_object *order = eda_map_get(peers, "order-service");
    cr_assert_not_null(order, "peers lacks order-service");
    char peer_epoch[EDA_NAME_MAX + 1] = "x";
    cr_assert_eq(eda_get_str(order, "epoch", peer_epoch, sizeof peer_epoch), 0);
    cr_assert_str_eq(peer_epoch, "", "order-service is not running: no epoch known");
    cr_assert_eq(s_u64(order, "last_seq"), 0);
}

Test(service, replay_limit_out_of_range_is_bad_request)
{
    eda_client_t *c = s_start_alone(S_CUSTOMER);
    s_create_customer(c, "alice", 1000);
    eda_envelope_t reply;
    s_replay(c, 0, 0, &reply);
    s_expect_error(&reply, "BAD_REQUEST");
    s_replay(c, 0, 1001, &reply);
    s_expect_error(&reply, "BAD_REQUEST");
    cr_assert_str_eq(reply.type, "ReplayEvents");

    /* A negative or non-integer value is refused too. */
    msgpack_packer *pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_i64(pk, "limit", -1);
    s_call(c, &reply);
    s_expect_error(&reply, "BAD_REQUEST");
    pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "after_seq", "0");
    s_call(c, &reply);
    s_expect_error(&reply, "BAD_REQUEST");

    /* The bounds themselves are fine, and the defaults apply on {}. */
    s_replay(c, 0, 1, &reply);
    s_expect_ok(&reply);
    s_replay(c, 0, 1000, &reply);
    s_expect_ok(&reply);
    s_call_empty(c, "ReplayEvents", &reply);
    s_expect_ok(&reply);
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert_not_null(events);
    cr_assert_eq(events->via.array.size, 1);
}

Test(service, replay_events_are_the_published_envelopes_in_order)
{
    eda_client_t *c = s_start_alone(S_CUSTOMER);
    const char *names[] = {"ann", "ben", "cat", "dan", "eve"};
    for (int i = 0; i < 5; i++)
        s_create_customer(c, names[i], 100 * (i + 1));
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 5);

    eda_envelope_t reply;
    s_replay(c, 0, 100, &reply);
    s_expect_ok(&reply);
    char reply_epoch[EDA_NAME_MAX + 1];
    s_str(&reply.data, "epoch", reply_epoch, sizeof reply_epoch);
    cr_assert_str_eq(reply_epoch, epoch);
    cr_assert_eq(s_u64(&reply.data, "last_seq"), 5);
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert_not_null(events);
    cr_assert_eq(events->type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(events->via.array.size, 5);

    eda_decoder_t *dec = eda_decoder_new();
    cr_assert_not_null(dec);
    for (uint32_t i = 0; i < 5; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        cr_assert_eq(bin->type, MSGPACK_OBJECT_BIN, "event %u is not a bin", i);
        eda_envelope_t ev;
        char why[256] = "";
        cr_assert_eq(
            eda_decode(dec, bin->via.bin.ptr, bin->via.bin.size, &ev, why, sizeof why),
            EDA_OK, "event %u: %s", i, why);
        cr_assert_eq(ev.kind, EDA_KIND_EVENT);
        cr_assert_str_eq(ev.type, "CustomerCreated");
        cr_assert_str_eq(ev.source, "customer-service");
        cr_assert(ev.has_seq);
        cr_assert_eq(ev.seq, i + 1, "event %u has seq %llu", i,
                     (unsigned long long)ev.seq);
        cr_assert_str_eq(ev.epoch, epoch);
        char id[2 * EDA_NAME_MAX], customer[64];
        snprintf(id, sizeof id, "%s-%u", epoch, i + 1);
        cr_assert_str_eq(ev.id, id);
        s_str(&ev.data, "customer_id", customer, sizeof customer);
        cr_assert_str_eq(customer, names[i]);
    }
    eda_decoder_destroy(&dec);

    /* A page from the middle. */
    s_replay(c, 2, 2, &reply);
    s_expect_ok(&reply);
    events = eda_map_get(&reply.data, "events");
    cr_assert_eq(events->via.array.size, 2);
    cr_assert_eq(s_u64(&reply.data, "last_seq"), 5);
    dec = eda_decoder_new();
    for (uint32_t i = 0; i < 2; i++) {
        eda_envelope_t ev;
        const msgpack_object *bin = &events->via.array.ptr[i];
        cr_assert_eq(eda_decode(dec, bin->via.bin.ptr, bin->via.bin.size, &ev, NULL, 0),
                     EDA_OK);
        cr_assert_eq(ev.seq, 3 + i);
    }
    eda_decoder_destroy(&dec);
}

Test(service, replay_after_the_end_returns_no_events_and_last_seq)
{
    eda_client_t *c = s_start_alone(S_INVENTORY);
    eda_envelope_t reply;

    /* An empty log: no events, last_seq 0, an epoch all the same. */
    s_replay(c, 0, 10, &reply);
    s_expect_ok(&reply);
    char epoch[EDA_NAME_MAX + 1];
    s_str(&reply.data, "epoch", epoch, sizeof epoch);
    cr_assert(s_is_hex16(epoch), "epoch '%s'", epoch);
    cr_assert_eq(s_u64(&reply.data, "last_seq"), 0);
    cr_assert_eq(eda_map_get(&reply.data, "events")->via.array.size, 0);

    s_add_stock(c, "apple", 3);
    s_add_stock(c, "pear", 4);
    uint64_t afters[] = {2, 3, 1000, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof afters / sizeof afters[0]; i++) {
        s_replay(c, afters[i], 10, &reply);
        s_expect_ok(&reply);
        const msgpack_object *events = eda_map_get(&reply.data, "events");
        cr_assert_not_null(events);
        cr_assert_eq(events->type, MSGPACK_OBJECT_ARRAY);
        cr_assert_eq(events->via.array.size, 0, "after_seq %llu gave %u events",
                     (unsigned long long)afters[i], events->via.array.size);
        cr_assert_eq(s_u64(&reply.data, "last_seq"), 2);
        char again[EDA_NAME_MAX + 1];
        s_str(&reply.data, "epoch", again, sizeof again);
        cr_assert_str_eq(again, epoch);
    }
}

/* --- heartbeats ---------------------------------------------------------------- */

Test(service, heartbeat_carries_the_committed_last_seq)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], NULL), 0);
    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    s_create_customer(c, "alice", 1000);
    s_create_customer(c, "bob", 1000);
    s_create_customer(c, "carol", 1000);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 3);

    zsock_t *sub = zsock_new_sub(t.events[S_CUSTOMER], "Heartbeat");
    cr_assert_not_null(sub);
    zpoller_t *poller = zpoller_new(sub, NULL);
    void *ready = zpoller_wait(poller, S_HEARTBEAT);
    zpoller_destroy(&poller);
    if (!ready)
        zsock_destroy(&sub);
    cr_assert_not_null(ready, "no heartbeat within %d ms", S_HEARTBEAT);

    zmsg_t *msg = zmsg_recv(sub);
    zsock_destroy(&sub);
    cr_assert_not_null(msg);
    size_t frames = zmsg_size(msg);
    char *topic = zmsg_popstr(msg);
    zframe_t *body = zmsg_pop(msg);
    zmsg_destroy(&msg);
    cr_assert_eq(frames, 2, "a heartbeat of %zu frames", frames);
    cr_assert_str_eq(topic, "Heartbeat");
    zstr_free(&topic);

    eda_decoder_t *dec = eda_decoder_new();
    eda_envelope_t hb;
    char why[256] = "";
    eda_error_t rc =
        eda_decode(dec, zframe_data(body), zframe_size(body), &hb, why, sizeof why);
    zframe_destroy(&body);
    cr_assert_eq(rc, EDA_OK, "%s", why);
    cr_assert_eq(hb.kind, EDA_KIND_HEARTBEAT);
    cr_assert_str_eq(hb.type, "Heartbeat");
    cr_assert_str_eq(hb.source, "customer-service");
    cr_assert_str_eq(hb.epoch, epoch);
    cr_assert_not(hb.has_seq, "a heartbeat takes no seq");
    cr_assert_eq(s_u64(&hb.data, "last_seq"), 3);
    eda_decoder_destroy(&dec);
}

/* --- a file database across a restart ------------------------------------------- */

/*  Copies the bins of a ReplayEvents reply into one buffer, for comparison. */
static void s_collect(const eda_envelope_t *reply, zchunk_t *out)
{
    const msgpack_object *events = eda_map_get(&reply->data, "events");
    cr_assert_not_null(events);
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        cr_assert_eq(bin->type, MSGPACK_OBJECT_BIN);
        zchunk_extend(out, bin->via.bin.ptr, bin->via.bin.size);
    }
}

Test(service, file_database_keeps_epoch_and_event_log_across_a_restart)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/customer.db", s_dir);
    s_topo_t t;
    s_topo_init(&t, db);

    zactor_t *actor;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);
    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    s_create_customer(c, "alice", 1000);
    s_create_customer(c, "bob", 2000);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 2);
    eda_envelope_t reply;
    s_replay(c, 0, 100, &reply);
    s_expect_ok(&reply);
    zchunk_t *before = zchunk_new(NULL, 0);
    s_collect(&reply, before);
    s_stop(&actor);

    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);
    c = s_client(t.commands[S_CUSTOMER]); /* inproc does not reconnect */
    char epoch2[EDA_NAME_MAX + 1];
    s_self(c, epoch2, &last_seq);
    cr_assert_str_eq(epoch2, epoch, "the epoch changed across a restart");
    cr_assert_eq(last_seq, 2);
    s_replay(c, 0, 100, &reply);
    s_expect_ok(&reply);
    zchunk_t *after = zchunk_new(NULL, 0);
    s_collect(&reply, after);
    bool same = zchunk_size(before) == zchunk_size(after) &&
                memcmp(zchunk_data(before), zchunk_data(after), zchunk_size(after)) == 0;
    zchunk_destroy(&before);
    zchunk_destroy(&after);
    cr_assert(same, "the event log differs after the restart");

    /* The state is there, and the log goes on from seq 3. */
    msgpack_packer *pk = eda_client_begin(c, "GetCustomer", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "bob");
    s_call(c, &reply);
    s_expect_ok(&reply);
    cr_assert_eq(s_u64(&reply.data, "credit_limit"), 2000);
    s_create_customer(c, "carol", 3000);
    s_replay(c, 2, 100, &reply);
    s_expect_ok(&reply);
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert_eq(events->via.array.size, 1);
    eda_decoder_t *dec = eda_decoder_new();
    eda_envelope_t ev;
    cr_assert_eq(eda_decode(dec, events->via.array.ptr[0].via.bin.ptr,
                            events->via.array.ptr[0].via.bin.size, &ev, NULL, 0),
                 EDA_OK);
    cr_assert_eq(ev.seq, 3);
    cr_assert_str_eq(ev.epoch, epoch);
    eda_decoder_destroy(&dec);
}

Test(service, memory_database_gets_a_new_epoch_at_each_start)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    zactor_t *actor;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);
    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    s_create_customer(c, "alice", 1000);
    char epoch[EDA_NAME_MAX + 1], epoch2[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 1);
    s_stop(&actor);
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);
    c = s_client(t.commands[S_CUSTOMER]); /* inproc does not reconnect */
    s_self(c, epoch2, &last_seq);
    cr_assert_eq(last_seq, 0);
    cr_assert_str_neq(epoch2, epoch);
}

/* --- the saga, three actors in one process --------------------------------------- */

/*  Polls GetOrder every 15 ms until the order has left PENDING. */
static void s_wait_order(eda_client_t *c, const char *order_id, char *status,
                         char *reason)
{
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (true) {
        msgpack_packer *pk = eda_client_begin(c, "GetOrder", order_id);
        msgpack_pack_map(pk, 1);
        eda_pack_kv_str(pk, "order_id", order_id);
        eda_envelope_t reply;
        s_call(c, &reply);
        s_expect_ok(&reply);
        s_str(&reply.data, "status", status, 16);
        reason[0] = '\0';
        eda_get_str(&reply.data, "reason", reason, 64);
        if (strcmp(status, "PENDING") != 0)
            return;
        cr_assert_lt(zclock_mono(), deadline, "order %s still PENDING after %d ms",
                     order_id, S_SETTLE_MS);
        zclock_sleep(15); /* a poll interval, not a readiness guess */
    }
}

static void s_place_order(eda_client_t *c, const char *customer, const char *sku,
                          int64_t qty, int64_t price, char *order_id)
{
    msgpack_packer *pk = eda_client_begin(c, "PlaceOrder", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "customer_id", customer);
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_pack_kv_i64(pk, "price", price);
    eda_envelope_t reply;
    s_call(c, &reply);
    s_expect_ok(&reply);
    char status[16];
    s_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1);
    s_str(&reply.data, "status", status, sizeof status);
    cr_assert_str_eq(status, "PENDING");
}

Test(service, choreography_with_three_actors_in_one_process)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    eda_client_t *c[S_NSVC];
    for (int i = 0; i < S_NSVC; i++) {
        cr_assert_eq(s_start(s_defs[i], &t.cfg[i], NULL), 0, "%s", s_names[i]);
        c[i] = s_client(t.commands[i]);
    }
    s_create_customer(c[S_CUSTOMER], "alice", 1000);
    s_add_stock(c[S_INVENTORY], "apple", 10);

    char order_id[EDA_NAME_MAX + 1], status[16], reason[64];
    s_place_order(c[S_ORDER], "alice", "apple", 3, 200, order_id);
    s_wait_order(c[S_ORDER], order_id, status, reason);
    cr_assert_str_eq(status, "APPROVED", "order rejected: %s", reason);

    /* Credit and stock are held for it. */
    msgpack_packer *pk = eda_client_begin(c[S_CUSTOMER], "GetCustomer", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "alice");
    eda_envelope_t reply;
    s_call(c[S_CUSTOMER], &reply);
    s_expect_ok(&reply);
    cr_assert_eq(s_u64(&reply.data, "reserved"), 600);
    cr_assert_eq(s_u64(&reply.data, "available"), 400);
    pk = eda_client_begin(c[S_INVENTORY], "GetStock", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "sku", "apple");
    s_call(c[S_INVENTORY], &reply);
    s_expect_ok(&reply);
    cr_assert_eq(s_u64(&reply.data, "available"), 7);
    cr_assert_eq(s_u64(&reply.data, "reserved"), 3);

    /* Over the remaining credit: rejected, and nothing more is held. */
    s_place_order(c[S_ORDER], "alice", "apple", 3, 200, order_id);
    s_wait_order(c[S_ORDER], order_id, status, reason);
    cr_assert_str_eq(status, "REJECTED");
    cr_assert_str_eq(reason, "CREDIT_LIMIT_EXCEEDED");

    /* Every actor stops promptly with the saga's sockets all connected. */
    for (int i = 0; i < S_MAX_ACTORS; i++) {
        if (!s_actors[i])
            continue;
        zactor_t *a = s_actors[i];
        int64_t took = s_stop(&a);
        cr_assert_lt(took, S_STOP_MS, "an actor took %lld ms to stop", (long long)took);
    }
}

Test(service, restarts_on_the_same_endpoints_at_once)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    for (int i = 0; i < 200; i++) {
        zactor_t *actor;
        cr_assert_eq(
            s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0,
            "start %d: the endpoints of the service stopped before are still bound",
            i + 1);
        s_stop(&actor);
    }
}

/* --- the actor's argument --------------------------------------------------------- */

/*  zsock_signal, wrapped: when armed, the thread that signals (the actor
    saying "ready") waits after signalling until the test has ended the
    lifetime of the args, as a caller's stack frame ends once zactor_new
    returns. This makes a race deterministic; unarmed it only forwards. */
static atomic_int s_hold_armed, s_args_gone;

int zsock_signal(void *self, byte status)
{
    static int (*real)(void *, byte);
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "zsock_signal");
        memcpy(&real, &sym, sizeof real);
    }
    int rc = real(self, status);
    if (atomic_exchange(&s_hold_armed, 0)) {
        int64_t deadline = zclock_mono() + 2000;
        while (!atomic_load(&s_args_gone) && zclock_mono() < deadline)
            zclock_sleep(1);
    }
    return rc;
}

/*  The header says `status` is set before the actor signals ready; a caller
    that starts a service from a helper function (args on its stack, the
    pattern of the suite's brief) lets args go once zactor_new has returned.
    The actor must not read args after signalling. */
Test(service, args_need_not_outlive_zactor_new)
{
    s_topo_t t;
    s_topo_init(&t, ":memory:");
    eda_service_args_t *args = calloc(1, sizeof *args);
    cr_assert_not_null(args);
    *args = (eda_service_args_t){.def = &customer_service_def, .cfg = &t.cfg[S_CUSTOMER]};
    atomic_store(&s_hold_armed, 1);
    zactor_t *actor = zactor_new(eda_service_actor, args);
    cr_assert_not_null(actor);
    int status = args->status;
    memset(args, 0, sizeof *args); /* the frame is gone: def is NULL now */
    atomic_store(&s_args_gone, 1);
    s_actors[0] = actor; /* destroyed by the fini */
    cr_assert_eq(status, 0);

    eda_client_t *c = s_client(t.commands[S_CUSTOMER]);
    eda_envelope_t reply;
    s_call_empty(c, "Ping", &reply);
    s_expect_ok(&reply);
    s_stop(&actor);
    free(args);
}

/*  A full disk, on a 512 KiB tmpfs of the test's own (mounting needs root:
    elsewhere the test is skipped). A command whose change cannot be written
    is answered INTERNAL, not left waiting; nothing of it stays; and the
    service goes on answering. */
Test(service, full_disk_answers_internal_and_keeps_serving)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=512k eda-test '%s' 2>/dev/null",
             s_dir);
    if (geteuid() != 0 || system(cmd) != 0)
        cr_skip_test("mounting a small tmpfs needs root");
    s_mounted = true;
    char db[700];
    snprintf(db, sizeof db, "%s/customer.db", s_dir);
    s_topo_t t;
    s_topo_init(&t, db);
    zactor_t *actor;
    cr_assert_eq(s_start(&customer_service_def, &t.cfg[S_CUSTOMER], &actor), 0);
    eda_client_t *client = s_client(t.commands[S_CUSTOMER]);

    char name[EDA_NAME_MAX + 1];
    memset(name, 'n', EDA_NAME_MAX);
    name[EDA_NAME_MAX] = '\0';
    eda_envelope_t reply;
    int created = 0;
    bool full = false;
    for (int i = 0; i < 100000 && !full; i++) {
        char id[EDA_NAME_MAX + 1];
        snprintf(id, sizeof id, "customer-%06d", i);
        msgpack_packer *pk = eda_client_begin(client, "CreateCustomer", NULL);
        msgpack_pack_map(pk, 3);
        eda_pack_kv_str(pk, "customer_id", id);
        eda_pack_kv_str(pk, "name", name);
        eda_pack_kv_i64(pk, "credit_limit", 100);
        s_call(client, &reply);
        if (reply.ok == 1)
            created++;
        else {
            s_expect_error(&reply, "INTERNAL");
            full = true;
        }
    }
    cr_assert(full, "512 KiB held %d customers and never filled", created);
    cr_assert_gt(created, 0);

    s_call_empty(client, "Ping", &reply);
    s_expect_ok(&reply);
    /* The last customer that was created is there; the refused one is not. */
    for (int i = created - 1; i <= created; i++) {
        char id[EDA_NAME_MAX + 1];
        snprintf(id, sizeof id, "customer-%06d", i);
        msgpack_packer *pk = eda_client_begin(client, "GetCustomer", NULL);
        msgpack_pack_map(pk, 1);
        eda_pack_kv_str(pk, "customer_id", id);
        s_call(client, &reply);
        if (i < created)
            s_expect_ok(&reply);
        else
            s_expect_error(&reply, "NOT_FOUND");
    }
    s_stop(&actor);
}
