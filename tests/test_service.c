/*  test_service: the eda_service engine, with whole services started
    in-process as czmq actors on inproc:// endpoints: the actor contract
    (ready, status, $TERM), start failures, the built-in commands (Ping,
    Stats, ReplayEvents), heartbeats, a file database across a restart, the
    choreography saga with all three services in one process and
    order-service's two saga patterns. The engine's seams (timers, commands
    to peers sent after the commit, reply handlers, the saga filter of
    event handlers, a service's own options and Stats) are driven by two toy
    services defined here, ponger and pinger.
*/
#define _GNU_SOURCE /* RTLD_NEXT */
#include "customer_service.h"
#include "eda_client.h"
#include "inventory_service.h"
#include "order_service.h"
#include "inproc.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SETTLE_MS 15000 /* an order decided */
#define S_STOP_MS   3000  /* zactor_destroy returns: "promptly" */
#define S_HEARTBEAT 3000  /* a heartbeat arrives (one a second) */

static char s_dir[512];
static bool s_mounted; /* s_dir is a tmpfs of the test's own */

static void s_teardown(void)
{
    inproc_fini();
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

/*  Reads the service's own epoch and last_seq with Stats. */
static void s_self(eda_client_t *c, char *epoch, uint64_t *last_seq)
{
    eda_envelope_t reply;
    inproc_call_empty(c, "Stats", &reply);
    inproc_expect_ok(&reply);
    inproc_str(&reply.data, "epoch", epoch, EDA_NAME_MAX + 1);
    *last_seq = inproc_u64(&reply.data, "last_seq");
}

static void s_replay(eda_client_t *c, uint64_t after_seq, uint64_t limit,
                     eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", after_seq);
    eda_pack_kv_u64(pk, "limit", limit);
    inproc_call(c, reply);
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
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    zactor_t *actor;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);

    /* Ready means serving: the first command is answered. */
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    eda_envelope_t reply;
    inproc_call_empty(c, "Ping", &reply);
    inproc_expect_ok(&reply);

    /* $TERM (zactor_destroy) stops it promptly, although its peer
       (order-service) is not there and a replay to it is pending. */
    int64_t took = inproc_stop(&actor);
    cr_assert_null(actor);
    cr_assert_lt(took, S_STOP_MS, "zactor_destroy took %lld ms", (long long)took);

    /* Its endpoints are free again: a second service binds them. */
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0,
                 "a second service could not bind the endpoints of a stopped one");
    eda_client_t *c2 = inproc_client(t.commands[INPROC_CUSTOMER]);
    inproc_call_empty(c2, "Ping", &reply);
    inproc_expect_ok(&reply);
    took = inproc_stop(&actor);
    cr_assert_lt(took, S_STOP_MS, "zactor_destroy took %lld ms", (long long)took);
}

Test(service, every_service_starts_and_stops_alone)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    for (int i = 0; i < INPROC_NSVC; i++) {
        zactor_t *actor;
        cr_assert_eq(inproc_start(inproc_defs[i], &t.cfg[i], &actor), 0,
                     "%s did not start", inproc_names[i]);
        eda_client_t *c = inproc_client(t.commands[i]);
        eda_envelope_t reply;
        inproc_call_empty(c, "Ping", &reply);
        inproc_expect_ok(&reply);
        char service[64];
        inproc_str(&reply.data, "service", service, sizeof service);
        cr_assert_str_eq(service, inproc_names[i]);
        int64_t took = inproc_stop(&actor);
        cr_assert_lt(took, S_STOP_MS, "%s took %lld ms to stop", inproc_names[i],
                     (long long)took);
    }
}

Test(service, events_endpoint_in_use_fails_cleanly)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    zactor_t *first, *second;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &first), 0);

    /* Same events endpoint, fresh commands endpoint: the PUB bind fails. */
    eda_config_t cfg = t.cfg[INPROC_CUSTOMER];
    char commands[128];
    inproc_endpoint(commands, sizeof commands, "cmd2");
    inproc_set(&cfg, "commands", commands);
    cr_assert_eq(inproc_start(&customer_service_def, &cfg, &second), -1);
    inproc_stop(&second);
    cr_assert_null(second);

    /* The first one is unharmed. */
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    eda_envelope_t reply;
    inproc_call_empty(c, "Ping", &reply);
    inproc_expect_ok(&reply);
}

Test(service, commands_endpoint_in_use_fails_and_frees_the_events_one)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    zactor_t *first, *second, *third;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &first), 0);

    /* Fresh events endpoint, same commands endpoint: the PUB binds, then the
       ROUTER bind fails, and the PUB must be released again. Tried several
       times, as a release left to libzmq's reaper thread is a race. */
    for (int i = 0; i < 20; i++) {
        eda_config_t cfg = t.cfg[INPROC_CUSTOMER];
        char events[128], commands[128];
        inproc_endpoint(events, sizeof events, "pub2");
        inproc_set(&cfg, "events", events);
        cr_assert_eq(inproc_start(&customer_service_def, &cfg, &second), -1);
        inproc_stop(&second);

        /* The events endpoint the failed start bound for a moment is free. */
        inproc_endpoint(commands, sizeof commands, "cmd3");
        inproc_set(&cfg, "commands", commands);
        cr_assert_eq(inproc_start(&customer_service_def, &cfg, &third), 0,
                     "attempt %d: the failed start left %s bound", i + 1, events);
        if (i == 0) {
            eda_client_t *c = inproc_client(commands);
            eda_envelope_t reply;
            inproc_call_empty(c, "Ping", &reply);
            inproc_expect_ok(&reply);
        }
        inproc_stop(&third);
    }
}

Test(service, malformed_endpoints_fail)
{
    const char *bad[] = {"nonsense", "tcp://", "tcp://127.0.0.1:notaport", "bogus://x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        inproc_topo_t t;
        inproc_topo_init(&t, ":memory:");
        zactor_t *actor;
        inproc_set(&t.cfg[INPROC_CUSTOMER], "events", bad[i]);
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     -1, "events '%s' was accepted", bad[i]);
        inproc_stop(&actor);

        inproc_topo_init(&t, ":memory:");
        inproc_set(&t.cfg[INPROC_CUSTOMER], "commands", bad[i]);
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     -1, "commands '%s' was accepted", bad[i]);
        inproc_stop(&actor);

        /* A peer's endpoints are connected to: malformed ones fail too. */
        inproc_topo_init(&t, ":memory:");
        char peer[256];
        snprintf(peer, sizeof peer, "order-service=%s,%s", bad[i],
                 t.commands[INPROC_ORDER]);
        inproc_set(&t.cfg[INPROC_CUSTOMER], "peer", peer);
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     -1, "peer events '%s' was accepted", bad[i]);
        inproc_stop(&actor);

        inproc_topo_init(&t, ":memory:");
        snprintf(peer, sizeof peer, "order-service=%s,%s", t.events[INPROC_ORDER],
                 bad[i]);
        inproc_set(&t.cfg[INPROC_CUSTOMER], "peer", peer);
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     -1, "peer commands '%s' was accepted", bad[i]);
        inproc_stop(&actor);
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
        inproc_topo_t t;
        inproc_topo_init(&t, bad[i]);
        zactor_t *actor;
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     -1, "db '%s' was accepted", bad[i]);
        inproc_stop(&actor);
        /* Nothing was left bound. */
        inproc_set(&t.cfg[INPROC_CUSTOMER], "db", ":memory:");
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     0, "the failed start (db '%s') left its endpoints bound", bad[i]);
        inproc_stop(&actor);
    }
}

/*  Starts one service alone on :memory: (its peers' endpoints named, not
    started) and returns a client to its commands. */
static eda_client_t *s_start_alone(int svc)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    cr_assert_eq(inproc_start(inproc_defs[svc], &t.cfg[svc], NULL), 0, "%s did not start",
                 inproc_names[svc]);
    return inproc_client(t.commands[svc]);
}

/* --- built-in commands -------------------------------------------------------- */

Test(service, ping_has_the_documented_fields)
{
    eda_client_t *c = s_start_alone(INPROC_INVENTORY);
    eda_envelope_t reply;
    inproc_call_empty(c, "Ping", &reply);
    inproc_expect_ok(&reply);
    cr_assert_str_eq(reply.type, "Ping");
    cr_assert_str_eq(reply.source, "inventory-service");
    cr_assert_eq(reply.data.via.map.size, 3, "Ping data has %u keys",
                 reply.data.via.map.size);
    char service[64], version[32];
    inproc_str(&reply.data, "service", service, sizeof service);
    inproc_str(&reply.data, "version", version, sizeof version);
    cr_assert_str_eq(service, "inventory-service");
    cr_assert_str_eq(version, EDA_VERSION);
    cr_assert_lt(inproc_u64(&reply.data, "uptime_s"), 60);
}

Test(service, stats_has_the_documented_fields)
{
    eda_client_t *c = s_start_alone(INPROC_CUSTOMER);
    inproc_create_customer(c, "alice", 1000);
    inproc_create_customer(c, "bob", 1000);

    eda_envelope_t reply;
    inproc_call_empty(c, "Stats", &reply);
    inproc_expect_ok(&reply);
    const msgpack_object *d = &reply.data;
    cr_assert_eq(d->via.map.size, 39, "Stats data has %u keys, not 39", d->via.map.size);
    const char *counters[] = {"last_seq",
                              "uptime_s",
                              "commands_in",
                              "replies_out",
                              "replies_dropped",
                              "events_published",
                              "events_applied",
                              "events_ignored",
                              "duplicates_dropped",
                              "gaps_detected",
                              "gaps_repaired",
                              "replays_requested",
                              "bad_input",
                              "commits_failed",
                              "batches",
                              "batch_max",
                              "batch_avg_x100",
                              "handler_us_avg",
                              "handler_us_p50",
                              "handler_us_p99",
                              "handler_us_max",
                              "commit_us_p50",
                              "commit_us_p99",
                              "commit_us_max",
                              "wal_pages",
                              "wal_restarts",
                              "wal_checkpoints",
                              "wal_checkpoint_waits",
                              "wal_checkpoint_failures",
                              "commands_sent",
                              "commands_dropped",
                              "replies_received",
                              "events_dropped",
                              "fds_used",
                              "fds_limit",
                              "reply_backlog_bytes"};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        inproc_u64(d, counters[i]);
    char service[64], epoch[EDA_NAME_MAX + 1];
    inproc_str(d, "service", service, sizeof service);
    inproc_str(d, "epoch", epoch, sizeof epoch);
    cr_assert_str_eq(service, "customer-service");
    cr_assert(s_is_hex16(epoch), "epoch '%s' is not 16 lowercase hex digits", epoch);
    cr_assert_eq(inproc_u64(d, "last_seq"), 2);
    cr_assert_eq(inproc_u64(d, "events_published"), 2);
    cr_assert_geq(inproc_u64(d, "commands_in"),
                  3); /* two CreateCustomer and this Stats */
    cr_assert_geq(inproc_u64(d, "replies_out"), 2);
    cr_assert_eq(inproc_u64(d, "bad_input"), 0);
    cr_assert_eq(inproc_u64(d, "commits_failed"), 0);
    cr_assert_geq(inproc_u64(d, "batches"), 2);

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
    cr_assert_eq(inproc_u64(order, "last_seq"), 0);
}

Test(service, replay_limit_out_of_range_is_bad_request)
{
    eda_client_t *c = s_start_alone(INPROC_CUSTOMER);
    inproc_create_customer(c, "alice", 1000);
    eda_envelope_t reply;
    s_replay(c, 0, 0, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");
    s_replay(c, 0, 1001, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");
    cr_assert_str_eq(reply.type, "ReplayEvents");

    /* A negative or non-integer value is refused too. */
    msgpack_packer *pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_i64(pk, "limit", -1);
    inproc_call(c, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");
    pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "after_seq", "0");
    inproc_call(c, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");

    /* The bounds themselves are fine, and the defaults apply on {}. */
    s_replay(c, 0, 1, &reply);
    inproc_expect_ok(&reply);
    s_replay(c, 0, 1000, &reply);
    inproc_expect_ok(&reply);
    inproc_call_empty(c, "ReplayEvents", &reply);
    inproc_expect_ok(&reply);
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert_not_null(events);
    cr_assert_eq(events->via.array.size, 1);
}

Test(service, replay_events_are_the_published_envelopes_in_order)
{
    eda_client_t *c = s_start_alone(INPROC_CUSTOMER);
    const char *names[] = {"ann", "ben", "cat", "dan", "eve"};
    for (int i = 0; i < 5; i++)
        inproc_create_customer(c, names[i], 100 * (i + 1));
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 5);

    eda_envelope_t reply;
    s_replay(c, 0, 100, &reply);
    inproc_expect_ok(&reply);
    char reply_epoch[EDA_NAME_MAX + 1];
    inproc_str(&reply.data, "epoch", reply_epoch, sizeof reply_epoch);
    cr_assert_str_eq(reply_epoch, epoch);
    cr_assert_eq(inproc_u64(&reply.data, "last_seq"), 5);
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
        inproc_str(&ev.data, "customer_id", customer, sizeof customer);
        cr_assert_str_eq(customer, names[i]);
    }
    eda_decoder_destroy(&dec);

    /* A page from the middle. */
    s_replay(c, 2, 2, &reply);
    inproc_expect_ok(&reply);
    events = eda_map_get(&reply.data, "events");
    cr_assert_eq(events->via.array.size, 2);
    cr_assert_eq(inproc_u64(&reply.data, "last_seq"), 5);
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

/*  ReserveCredit and ReleaseCredit for one order: customer-service logs a
    CreditReserved, then a CreditReleased when `release`. */
static void s_credit_for(eda_client_t *c, const char *order, int64_t amount, bool release)
{
    msgpack_packer *pk = eda_client_begin(c, "ReserveCredit", order);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "order_id", order);
    eda_pack_kv_str(pk, "customer_id", "ann");
    eda_pack_kv_i64(pk, "amount", amount);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    if (!release)
        return;
    pk = eda_client_begin(c, "ReleaseCredit", order);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order);
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
}

/*  ReplayEvents {correlation_id, after_seq}: the seqs of the events
    returned, into seqs[8]; their count. */
static uint32_t s_replay_order(eda_client_t *c, const char *order, uint64_t after,
                               uint64_t *seqs)
{
    msgpack_packer *pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "correlation_id", order);
    eda_pack_kv_u64(pk, "after_seq", after);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    const msgpack_object *events = eda_map_get(&reply.data, "events");
    cr_assert_not_null(events);
    cr_assert_leq(events->via.array.size, 8);
    eda_decoder_t *dec = eda_decoder_new();
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        eda_envelope_t ev;
        cr_assert_eq(eda_decode(dec, bin->via.bin.ptr, bin->via.bin.size, &ev, NULL, 0),
                     EDA_OK);
        cr_assert_str_eq(ev.correlation_id, order);
        seqs[i] = ev.seq;
    }
    eda_decoder_destroy(&dec);
    return events->via.array.size;
}

/*  One order's events only, in seq order, also from a log written before
    the index existed (indexed at start). */
Test(service, replay_by_correlation_id_returns_one_orders_events)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/customer.db", s_dir);
    inproc_topo_t t;
    inproc_topo_init(&t, db);
    zactor_t *actor;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    inproc_create_customer(c, "ann", 1000); /* seq 1 */
    s_credit_for(c, "o-a", 100, false);     /* 2 */
    s_credit_for(c, "o-b", 50, true);       /* 3, 4 */
    s_credit_for(c, "o-a-2", 10, false);    /* 5: a prefix is not a match */
    msgpack_packer *pk = eda_client_begin(c, "ReleaseCredit", "o-a");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", "o-a"); /* 6 */
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);

    for (int round = 0; round < 2; round++) {
        uint64_t seqs[8];
        cr_assert_eq(s_replay_order(c, "o-a", 0, seqs), 2, "round %d", round);
        cr_assert(seqs[0] == 2 && seqs[1] == 6);
        cr_assert_eq(s_replay_order(c, "o-a", 2, seqs), 1);
        cr_assert_eq(seqs[0], 6);
        cr_assert_eq(s_replay_order(c, "o-b", 0, seqs), 2);
        cr_assert(seqs[0] == 3 && seqs[1] == 4);
        cr_assert_eq(s_replay_order(c, "o-none", 0, seqs), 0);
        if (round == 1)
            break;
        /* As an older version left it: no order in the index. */
        inproc_stop(&actor);
        sqlite3 *raw;
        cr_assert_eq(sqlite3_open(db, &raw), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(raw, "UPDATE eda_event_log SET correlation_id = NULL",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
        sqlite3_close(raw);
        cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor),
                     0);
        c = inproc_client(t.commands[INPROC_CUSTOMER]);
    }

    pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_i64(pk, "correlation_id", 42);
    inproc_call(c, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");
    pk = eda_client_begin(c, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "correlation_id", "o-\x01");
    inproc_call(c, &reply);
    inproc_expect_error(&reply, "BAD_REQUEST");
}

Test(service, replay_after_the_end_returns_no_events_and_last_seq)
{
    eda_client_t *c = s_start_alone(INPROC_INVENTORY);
    eda_envelope_t reply;

    /* An empty log: no events, last_seq 0, an epoch all the same. */
    s_replay(c, 0, 10, &reply);
    inproc_expect_ok(&reply);
    char epoch[EDA_NAME_MAX + 1];
    inproc_str(&reply.data, "epoch", epoch, sizeof epoch);
    cr_assert(s_is_hex16(epoch), "epoch '%s'", epoch);
    cr_assert_eq(inproc_u64(&reply.data, "last_seq"), 0);
    cr_assert_eq(eda_map_get(&reply.data, "events")->via.array.size, 0);

    inproc_add_stock(c, "apple", 3);
    inproc_add_stock(c, "pear", 4);
    uint64_t afters[] = {2, 3, 1000, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof afters / sizeof afters[0]; i++) {
        s_replay(c, afters[i], 10, &reply);
        inproc_expect_ok(&reply);
        const msgpack_object *events = eda_map_get(&reply.data, "events");
        cr_assert_not_null(events);
        cr_assert_eq(events->type, MSGPACK_OBJECT_ARRAY);
        cr_assert_eq(events->via.array.size, 0, "after_seq %llu gave %u events",
                     (unsigned long long)afters[i], events->via.array.size);
        cr_assert_eq(inproc_u64(&reply.data, "last_seq"), 2);
        char again[EDA_NAME_MAX + 1];
        inproc_str(&reply.data, "epoch", again, sizeof again);
        cr_assert_str_eq(again, epoch);
    }
}

/* --- heartbeats ---------------------------------------------------------------- */

Test(service, heartbeat_carries_the_committed_last_seq)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], NULL), 0);
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    inproc_create_customer(c, "alice", 1000);
    inproc_create_customer(c, "bob", 1000);
    inproc_create_customer(c, "carol", 1000);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 3);

    zsock_t *sub = zsock_new_sub(t.events[INPROC_CUSTOMER], "Heartbeat");
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
    cr_assert_eq(inproc_u64(&hb.data, "last_seq"), 3);
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
    inproc_topo_t t;
    inproc_topo_init(&t, db);

    zactor_t *actor;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    inproc_create_customer(c, "alice", 1000);
    inproc_create_customer(c, "bob", 2000);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 2);
    eda_envelope_t reply;
    s_replay(c, 0, 100, &reply);
    inproc_expect_ok(&reply);
    zchunk_t *before = zchunk_new(NULL, 0);
    s_collect(&reply, before);
    inproc_stop(&actor);

    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    c = inproc_client(t.commands[INPROC_CUSTOMER]); /* inproc does not reconnect */
    char epoch2[EDA_NAME_MAX + 1];
    s_self(c, epoch2, &last_seq);
    cr_assert_str_eq(epoch2, epoch, "the epoch changed across a restart");
    cr_assert_eq(last_seq, 2);
    s_replay(c, 0, 100, &reply);
    inproc_expect_ok(&reply);
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
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "credit_limit"), 2000);
    inproc_create_customer(c, "carol", 3000);
    /* Its peer order-service is not running: the new event is held until
       that peer is counted silent (eda_fence), then served. */
    const msgpack_object *events = NULL;
    int64_t until = zclock_mono() + 10000;
    for (;;) {
        s_replay(c, 2, 100, &reply);
        inproc_expect_ok(&reply);
        events = eda_map_get(&reply.data, "events");
        if (events->via.array.size > 0 || zclock_mono() > until)
            break;
        zclock_sleep(20); /* the poll interval of an outcome wait */
    }
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
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    zactor_t *actor;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    inproc_create_customer(c, "alice", 1000);
    char epoch[EDA_NAME_MAX + 1], epoch2[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    s_self(c, epoch, &last_seq);
    cr_assert_eq(last_seq, 1);
    inproc_stop(&actor);
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    c = inproc_client(t.commands[INPROC_CUSTOMER]); /* inproc does not reconnect */
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
        eda_envelope_t reply;
        inproc_get_order(c, order_id, &reply);
        inproc_str(&reply.data, "status", status, 16);
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
    inproc_begin_place_order(c, NULL, customer, sku, qty, price, 0);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    char status[16];
    inproc_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1);
    inproc_str(&reply.data, "status", status, sizeof status);
    cr_assert_str_eq(status, "PENDING");
}

Test(service, choreography_with_three_actors_in_one_process)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    eda_client_t *c[INPROC_NSVC];
    for (int i = 0; i < INPROC_NSVC; i++) {
        cr_assert_eq(inproc_start(inproc_defs[i], &t.cfg[i], NULL), 0, "%s",
                     inproc_names[i]);
        c[i] = inproc_client(t.commands[i]);
    }
    inproc_create_customer(c[INPROC_CUSTOMER], "alice", 1000);
    inproc_add_stock(c[INPROC_INVENTORY], "apple", 10);

    char order_id[EDA_NAME_MAX + 1], status[16], reason[64];
    s_place_order(c[INPROC_ORDER], "alice", "apple", 3, 200, order_id);
    s_wait_order(c[INPROC_ORDER], order_id, status, reason);
    cr_assert_str_eq(status, "APPROVED", "order rejected: %s", reason);

    /* Credit and stock are held for it. */
    msgpack_packer *pk = eda_client_begin(c[INPROC_CUSTOMER], "GetCustomer", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "alice");
    eda_envelope_t reply;
    inproc_call(c[INPROC_CUSTOMER], &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "reserved"), 600);
    cr_assert_eq(inproc_u64(&reply.data, "available"), 400);
    pk = eda_client_begin(c[INPROC_INVENTORY], "GetStock", NULL);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "sku", "apple");
    inproc_call(c[INPROC_INVENTORY], &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "available"), 7);
    cr_assert_eq(inproc_u64(&reply.data, "reserved"), 3);

    /* Over the remaining credit: rejected, and nothing more is held. */
    s_place_order(c[INPROC_ORDER], "alice", "apple", 3, 200, order_id);
    s_wait_order(c[INPROC_ORDER], order_id, status, reason);
    cr_assert_str_eq(status, "REJECTED");
    cr_assert_str_eq(reason, "CREDIT_LIMIT_EXCEEDED");

    /* Every actor stops promptly with the saga's sockets all connected. */
    int64_t took = inproc_stop_all();
    cr_assert_lt(took, S_STOP_MS, "an actor took %lld ms to stop", (long long)took);
}

Test(service, restarts_on_the_same_endpoints_at_once)
{
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    for (int i = 0; i < 200; i++) {
        zactor_t *actor;
        cr_assert_eq(
            inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0,
            "start %d: the endpoints of the service stopped before are still bound",
            i + 1);
        inproc_stop(&actor);
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
    inproc_topo_t t;
    inproc_topo_init(&t, ":memory:");
    eda_service_args_t *args = calloc(1, sizeof *args);
    cr_assert_not_null(args);
    *args = (eda_service_args_t){.def = &customer_service_def,
                                 .cfg = &t.cfg[INPROC_CUSTOMER]};
    atomic_store(&s_hold_armed, 1);
    zactor_t *actor = zactor_new(eda_service_actor, args);
    cr_assert_not_null(actor);
    int status = args->status;
    memset(args, 0, sizeof *args); /* the frame is gone: def is NULL now */
    atomic_store(&s_args_gone, 1);
    inproc_adopt(actor); /* destroyed by the fini */
    cr_assert_eq(status, 0);

    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    eda_envelope_t reply;
    inproc_call_empty(c, "Ping", &reply);
    inproc_expect_ok(&reply);
    inproc_stop(&actor);
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
    inproc_topo_t t;
    inproc_topo_init(&t, db);
    zactor_t *actor;
    cr_assert_eq(inproc_start(&customer_service_def, &t.cfg[INPROC_CUSTOMER], &actor), 0);
    eda_client_t *client = inproc_client(t.commands[INPROC_CUSTOMER]);

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
        inproc_call(client, &reply);
        if (reply.ok == 1)
            created++;
        else {
            inproc_expect_error(&reply, "INTERNAL");
            full = true;
        }
    }
    cr_assert(full, "512 KiB held %d customers and never filled", created);
    cr_assert_gt(created, 0);

    inproc_call_empty(client, "Ping", &reply);
    inproc_expect_ok(&reply);
    /* The last customer that was created is there; the refused one is not. */
    for (int i = created - 1; i <= created; i++) {
        char id[EDA_NAME_MAX + 1];
        snprintf(id, sizeof id, "customer-%06d", i);
        msgpack_packer *pk = eda_client_begin(client, "GetCustomer", NULL);
        msgpack_pack_map(pk, 1);
        eda_pack_kv_str(pk, "customer_id", id);
        inproc_call(client, &reply);
        if (i < created)
            inproc_expect_ok(&reply);
        else
            inproc_expect_error(&reply, "NOT_FOUND");
    }
    inproc_stop(&actor);
}

/* --- order-service's saga patterns ------------------------------------------------ */

/*  Places an order of one apple for alice with data.saga `saga` (absent when
    NULL) and returns the reply. */
static void s_place_saga(eda_client_t *c, const msgpack_object *saga,
                         eda_envelope_t *reply)
{
    msgpack_packer *pk =
        inproc_begin_place_order(c, NULL, "alice", "apple", 1, 100, saga ? 1 : 0);
    if (saga) {
        eda_pack_key(pk, "saga");
        msgpack_pack_object(pk, *saga);
    }
    inproc_call(c, reply);
}

static msgpack_object s_str_obj(const char *s)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_STR,
                            .via.str = {.size = (uint32_t)strlen(s), .ptr = s}};
}

static msgpack_object s_uint_obj(uint64_t v)
{
    return (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v};
}

Test(service, pending_orders_are_listed_in_pages_and_an_old_status_index_is_dropped)
{
    /* A database made by a version that indexed every status. */
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/order.db", s_dir);
    sqlite3 *old = NULL;
    cr_assert_eq(sqlite3_open(db, &old), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(old,
                     "CREATE TABLE orders (order_id TEXT PRIMARY KEY,"
                     " customer_id TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,"
                     " saga TEXT NOT NULL, total INTEGER NOT NULL,"
                     " created_ts INTEGER NOT NULL, items BLOB NOT NULL,"
                     " request_id TEXT);"
                     "CREATE INDEX orders_by_status ON orders (status);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(old);

    /* order-service alone: its orders stay PENDING. */
    inproc_topo_t t;
    inproc_topo_init(&t, db);
    cr_assert_eq(inproc_start(inproc_defs[INPROC_ORDER], &t.cfg[INPROC_ORDER], NULL), 0);
    eda_client_t *c = inproc_client(t.commands[INPROC_ORDER]);
    char placed[5][EDA_NAME_MAX + 1];
    for (int i = 0; i < 5; i++)
        s_place_order(c, "alice", "apple", 1, 100, placed[i]);

    /* Two at a time, oldest first, each once. */
    char page[5][EDA_NAME_MAX + 1];
    uint64_t next = 0;
    int seen = 0;
    do {
        int n = inproc_list_orders(c, "PENDING", 2, next, page, 5, &next);
        cr_assert_leq(n, 2);
        for (int i = 0; i < n; i++, seen++) {
            cr_assert_lt(seen, 5, "more PENDING orders listed than placed");
            cr_assert_str_eq(page[i], placed[seen]);
        }
    } while (next);
    cr_assert_eq(seen, 5);
    cr_assert_eq(inproc_list_orders(c, "APPROVED", 10, 0, page, 5, &next), 0);

    /* The old index is gone, the PENDING one is there. */
    sqlite3 *check = NULL;
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &check, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(check, 5000);
    cr_assert_eq(
        sqlite3_prepare_v2(check,
                           "SELECT group_concat(name, ',') FROM (SELECT name FROM"
                           " sqlite_master WHERE type = 'index' AND tbl_name ="
                           " 'orders' AND sql IS NOT NULL ORDER BY name)",
                           -1, &q, NULL),
        SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(q, 0),
                     "orders_by_request,orders_pending");
    sqlite3_finalize(q);
    sqlite3_close(check);
}

Test(service, order_service_takes_both_saga_patterns_and_no_other)
{
    /* --saga: the two patterns, nothing else, refused when it is set. */
    eda_config_t cfg;
    eda_config_defaults(&cfg, "order-service");
    eda_config_declare(&cfg, order_service_def.options);
    cr_assert_str_eq(eda_config_option(&cfg, "saga"), "choreography");
    const char *bad[] = {"dance", "Orchestration", "choreography ", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256] = "";
        cr_assert_eq(eda_config_set(&cfg, "saga", bad[i], why, sizeof why), -1,
                     "--saga '%s' was accepted", bad[i]);
        cr_assert_neq(why[0], '\0', "--saga '%s' refused without a reason", bad[i]);
        cr_assert_str_eq(eda_config_option(&cfg, "saga"), "choreography");
    }
    inproc_set(&cfg, "saga", "orchestration");
    cr_assert_str_eq(eda_config_option(&cfg, "saga"), "orchestration");

    /* PlaceOrder: an orchestrated order is accepted and PENDING (its peers
       are not running: it stays so), any other saga is a bad request. */
    eda_client_t *c = s_start_alone(INPROC_ORDER);
    eda_envelope_t reply;
    msgpack_object saga = s_str_obj("orchestration");
    s_place_saga(c, &saga, &reply);
    inproc_expect_ok(&reply);
    char order_id[EDA_NAME_MAX + 1], status[16], got[32];
    inproc_str(&reply.data, "order_id", order_id, sizeof order_id);
    inproc_str(&reply.data, "status", status, sizeof status);
    cr_assert_str_eq(status, "PENDING");
    inproc_get_order(c, order_id, &reply);
    inproc_str(&reply.data, "saga", got, sizeof got);
    cr_assert_str_eq(got, "orchestration");

    msgpack_object others[] = {s_str_obj("dance"), s_str_obj("Choreography"),
                               s_str_obj(""), s_uint_obj(7)};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        s_place_saga(c, &others[i], &reply);
        inproc_expect_error(&reply, "BAD_REQUEST");
    }
    /* No saga: the default, choreography. */
    s_place_saga(c, NULL, &reply);
    inproc_expect_ok(&reply);
}

/*  Reads the unsigned integer at `path` (keys joined by '.') of `map`. */
static uint64_t s_path_u64(const msgpack_object *map, const char *path)
{
    const msgpack_object *obj = map;
    for (const char *p = path;;) {
        char key[64];
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        cr_assert_lt(n, sizeof key);
        memcpy(key, p, n);
        key[n] = '\0';
        if (!dot)
            return inproc_u64(obj, key);
        obj = eda_map_get(obj, key);
        cr_assert_not_null(obj, "no '%s' on the way to '%s'", key, path);
        p = dot + 1;
    }
}

/*  Sends `type` with {} until the unsigned integer at `path` of its reply
    reaches `want`, and returns it; fails the test after S_SETTLE_MS. A
    command that shared a batch that was undone is answered INTERNAL: it is
    asked again, as a client would. */
static uint64_t s_poll(eda_client_t *c, const char *type, const char *path, uint64_t want)
{
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (true) {
        eda_envelope_t reply;
        inproc_call_empty(c, type, &reply);
        char code[32] = "";
        if (reply.ok != 1 && eda_get_str(&reply.error, "code", code, sizeof code) == 0 &&
            streq(code, "INTERNAL") && zclock_mono() < deadline) {
            zclock_sleep(15);
            continue;
        }
        inproc_expect_ok(&reply);
        uint64_t v = s_path_u64(&reply.data, path);
        if (v >= want)
            return v;
        cr_assert_lt(zclock_mono(), deadline, "%s %s is %llu after %d ms, not %llu", type,
                     path, (unsigned long long)v, S_SETTLE_MS, (unsigned long long)want);
        zclock_sleep(15); /* a poll interval, not a readiness guess */
    }
}

/*  The unsigned integer at `path` of the reply to `type` with {}. */
static uint64_t s_get(eda_client_t *c, const char *type, const char *path)
{
    return s_poll(c, type, path, 0);
}

Test(service, order_service_has_its_own_counters_in_stats)
{
    eda_client_t *c = s_start_alone(INPROC_ORDER);
    eda_envelope_t reply;
    inproc_call_empty(c, "Stats", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(reply.data.via.map.size, 40, "Stats data has %u keys, not 40",
                 reply.data.via.map.size);
    const msgpack_object *own = eda_map_get(&reply.data, "own");
    cr_assert_not_null(own, "Stats has no 'own' map");
    cr_assert_eq(own->type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(inproc_u64(own, "sagas_started"), 0);
    cr_assert_eq(inproc_u64(own, "sagas_in_flight"), 0);

    /* The counters are live: an orchestrated order starts a saga, which
       stays in flight while customer-service is not running. */
    msgpack_object saga = s_str_obj("orchestration");
    s_place_saga(c, &saga, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(s_get(c, "Stats", "own.sagas_started"), 1);
    cr_assert_eq(s_get(c, "Stats", "own.sagas_in_flight"), 1);
}

/* --- the engine's seams, with two toy services -------------------------------------- */

/*  ponger answers Echo {n} with {n}, counting them, and on Publish {saga?}
    publishes an event Pong whose data.saga is the command's (any value, or
    none). With its own option --witness PATH (the sender's database), each
    Echo checks that its sender had committed the row of that command before
    sending it, and counts those that came early. Its counters are its own
    Stats map. */
typedef struct {
    eda_service_t *svc;
    uint64_t echoes, early;
    sqlite3 *witness;
    sqlite3_stmt *seen;
} s_ponger_t;

/*  Whether the witness database has the row of command `id`, committed: 1
    yes (also when there is no witness), 0 no, -1 when it cannot be read. */
static int s_ponger_witness(s_ponger_t *self, const char *id)
{
    const char *path = eda_config_option(eda_service_config(self->svc), "witness");
    if (!path || !path[0])
        return 1;
    if (!self->witness) {
        if (sqlite3_open_v2(path, &self->witness, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK)
            return -1;
        sqlite3_busy_timeout(self->witness, 5000);
    }
    if (!self->seen &&
        sqlite3_prepare_v2(self->witness, "SELECT 1 FROM sent WHERE id = ?", -1,
                           &self->seen, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(self->seen, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(self->seen);
    sqlite3_reset(self->seen); /* no read transaction left open */
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int s_ponger_echo(void *state, eda_ctx_t *ctx)
{
    s_ponger_t *self = state;
    const eda_envelope_t *cmd = eda_ctx_msg(ctx);
    uint64_t n;
    if (eda_get_u64(&cmd->data, "n", &n) != 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "n must be an unsigned integer");
    int seen = s_ponger_witness(self, cmd->id);
    if (seen < 0)
        return eda_ctx_error(ctx, EDA_INTERNAL, "witness: %s",
                             self->witness ? sqlite3_errmsg(self->witness) : "no memory");
    self->echoes++;
    self->early += seen == 0;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_u64(pk, "n", n);
    return 0;
}

static int s_ponger_publish(void *state, eda_ctx_t *ctx)
{
    (void)state;
    /* The Pong carries Publish's data as it came. */
    msgpack_packer *pk = eda_ctx_emit(ctx, "Pong", NULL);
    msgpack_pack_object(pk, eda_ctx_msg(ctx)->data);
    if (eda_ctx_emit_end(ctx))
        return -1;
    msgpack_pack_map(eda_ctx_reply(ctx), 0);
    return 0;
}

static void s_ponger_stats(void *state, msgpack_packer *pk)
{
    s_ponger_t *self = state;
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "echoes", self->echoes);
    eda_pack_kv_u64(pk, "early", self->early);
}

static void *s_ponger_start(eda_service_t *svc)
{
    s_ponger_t *self = calloc(1, sizeof *self);
    if (self)
        self->svc = svc;
    return self;
}

static void s_ponger_stop(void **state_p)
{
    s_ponger_t *self = *state_p;
    if (!self)
        return;
    sqlite3_finalize(self->seen);
    sqlite3_close(self->witness);
    free(self);
    *state_p = NULL;
}

static const eda_command_t s_ponger_commands[] = {
    {"Echo", s_ponger_echo, EDA_CMD_SAVEPOINT},
    {"Publish", s_ponger_publish, EDA_CMD_SAVEPOINT},
    {0}};
static const eda_handler_t s_ponger_handlers[] = {{NULL, NULL, NULL, NULL}};
static const eda_option_t s_ponger_options[] = {{"witness", "", NULL},
                                                {NULL, NULL, NULL}};

static const eda_service_def_t s_ponger_def = {.name = "ponger",
                                               .start = s_ponger_start,
                                               .stop = s_ponger_stop,
                                               .commands = s_ponger_commands,
                                               .handlers = s_ponger_handlers,
                                               .options = s_ponger_options,
                                               .stats = s_ponger_stats};

/*  pinger counts its timer's ticks; Fire {n, fail?, internal?, poison?}
    sends n Echo commands to ponger, each recorded in table `sent`, then
    answers ok, or an error (fail), or fails (internal: returns -1), or
    answers ok but leaves a deferred foreign key broken so that the batch's
    COMMIT fails (poison). Its reply handler counts each reply to an Echo it
    sent and committed, once, with the n it carried; anything else is a
    stray. Its Pong handler, for the choreography saga only, counts the
    events and notes their saga ("-" for none); the first Pong with
    data.fail_once true makes it fail after that write. Count answers {ticks,
    replies, strays, pongs, sagas}. All of it lives in its database, so
    what it reports was committed. */
#define S_TICK_MS 10

static const char s_pinger_schema[] =
    "CREATE TABLE IF NOT EXISTS pinger (id INTEGER PRIMARY KEY, ticks INTEGER NOT NULL,"
    " replies INTEGER NOT NULL, strays INTEGER NOT NULL, pongs INTEGER NOT NULL,"
    " sagas TEXT NOT NULL);"
    "INSERT OR IGNORE INTO pinger VALUES (1, 0, 0, 0, 0, '');"
    "CREATE TABLE IF NOT EXISTS sent (id TEXT PRIMARY KEY, n INTEGER NOT NULL,"
    " answered INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS child (parent INTEGER REFERENCES parent (id)"
    " DEFERRABLE INITIALLY DEFERRED);";

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *tick, *replied, *stray, *pong, *count, *sent, *answer, *poison;
    bool failed_once; /* a Pong with fail_once made the handler fail */
} s_pinger_t;

static int s_pinger_tick(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    /* A timer has no message in hand: one that had would be a stray. */
    return eda_store_exec(eda_ctx_msg(ctx) ? self->stray : self->tick);
}

static int s_pinger_fire(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    const msgpack_object *data = &eda_ctx_msg(ctx)->data;
    uint64_t n = 0;
    bool fail = false, internal = false, poison = false;
    if (eda_get_u64(data, "n", &n) != 0 || n > 100 ||
        eda_get_bool(data, "fail", &fail) < 0 ||
        eda_get_bool(data, "internal", &internal) < 0 ||
        eda_get_bool(data, "poison", &poison) < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST, "Fire wants {n: 0..100, flags}");
    for (uint64_t i = 0; i < n; i++) {
        msgpack_packer *pk = eda_ctx_command(ctx, "ponger", "Echo", NULL);
        if (!pk) /* no reply handler for it: asserted in a debug build */
            return -1;
        msgpack_pack_map(pk, 1);
        eda_pack_kv_u64(pk, "n", i);
        sqlite3_bind_text(self->sent, 1, eda_ctx_command_id(ctx), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(self->sent, 2, (int64_t)i);
        if (eda_store_exec(self->sent))
            return -1;
        eda_ctx_command_end(ctx);
    }
    if (internal)
        return -1;
    if (fail)
        return eda_ctx_error(ctx, EDA_CONFLICT, "asked to fail after queueing %llu",
                             (unsigned long long)n);
    if (poison && eda_store_exec(self->poison))
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_u64(pk, "queued", n);
    return 0;
}

static int s_pinger_on_echo(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    const eda_envelope_t *reply = eda_ctx_msg(ctx);
    uint64_t n = UINT64_MAX;
    if (reply->ok != 1 || eda_get_u64(&reply->data, "n", &n) != 0)
        return eda_store_exec(self->stray);
    /* Its causation_id names a command we sent and committed, not yet
       answered, with the same n. */
    sqlite3_bind_text(self->answer, 1, reply->causation_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(self->answer, 2, (int64_t)n);
    if (eda_store_exec(self->answer))
        return -1;
    return eda_store_exec(sqlite3_changes(self->db) == 1 ? self->replied : self->stray);
}

static int s_pinger_on_pong(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    char saga[32] = "-";
    if (eda_get_str(&eda_ctx_msg(ctx)->data, "saga", saga, sizeof saga) < 0)
        snprintf(saga, sizeof saga, "!"); /* the engine should have skipped it */
    sqlite3_bind_text(self->pong, 1, saga, -1, SQLITE_TRANSIENT);
    if (eda_store_exec(self->pong))
        return -1;
    bool fail_once = false;
    if (eda_get_bool(&eda_ctx_msg(ctx)->data, "fail_once", &fail_once) == 0 &&
        fail_once && !self->failed_once) {
        self->failed_once = true;
        return -1; /* after the write */
    }
    return 0;
}

/*  Scribble breaks the promise of EDA_CMD_CHECKS_FIRST, under which it is
    declared: it writes (a stray), then refuses. */
static int s_pinger_scribble(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    if (eda_store_exec(self->stray))
        return -1;
    return eda_ctx_error(ctx, EDA_CONFLICT, "refused after a write");
}

static int s_pinger_count(void *state, eda_ctx_t *ctx)
{
    s_pinger_t *self = state;
    sqlite3_stmt *q = self->count;
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_reset(q);
        return -1;
    }
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 5);
    eda_pack_kv_i64(pk, "ticks", sqlite3_column_int64(q, 0));
    eda_pack_kv_i64(pk, "replies", sqlite3_column_int64(q, 1));
    eda_pack_kv_i64(pk, "strays", sqlite3_column_int64(q, 2));
    eda_pack_kv_i64(pk, "pongs", sqlite3_column_int64(q, 3));
    eda_pack_kv_str(pk, "sagas", (const char *)sqlite3_column_text(q, 4));
    sqlite3_reset(q);
    return 0;
}

static void s_pinger_stop(void **state_p)
{
    free(*state_p); /* its statements belong to the store */
    *state_p = NULL;
}

static void *s_pinger_start(eda_service_t *svc)
{
    eda_store_t *store = eda_service_store(svc);
    /* Off by default; a deferred key is then checked at COMMIT only. */
    if (sqlite3_exec(eda_store_db(store), "PRAGMA foreign_keys=ON", NULL, NULL, NULL))
        return NULL;
    s_pinger_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->db = eda_store_db(store);
    self->tick = eda_store_prepare(store, "UPDATE pinger SET ticks = ticks + 1");
    self->replied = eda_store_prepare(store, "UPDATE pinger SET replies = replies + 1");
    self->stray = eda_store_prepare(store, "UPDATE pinger SET strays = strays + 1");
    self->pong = eda_store_prepare(
        store, "UPDATE pinger SET pongs = pongs + 1, sagas = sagas || ?1 || ';'");
    self->count = eda_store_prepare(
        store, "SELECT ticks, replies, strays, pongs, sagas FROM pinger");
    self->sent = eda_store_prepare(store, "INSERT INTO sent (id, n) VALUES (?1, ?2)");
    self->answer = eda_store_prepare(
        store, "UPDATE sent SET answered = 1 WHERE id = ?1 AND n = ?2 AND answered = 0");
    self->poison = eda_store_prepare(store, "INSERT INTO child VALUES (42)");
    if (!self->tick || !self->replied || !self->stray || !self->pong || !self->count ||
        !self->sent || !self->answer || !self->poison)
        s_pinger_stop((void **)&self);
    return self;
}

static const eda_command_t s_pinger_commands[] = {
    {"Fire", s_pinger_fire, EDA_CMD_SAVEPOINT},
    {"Count", s_pinger_count, EDA_CMD_CHECKS_FIRST},
    {"Scribble", s_pinger_scribble, EDA_CMD_CHECKS_FIRST},
    {0}};
static const eda_handler_t s_pinger_handlers[] = {
    {"ponger", "Pong", s_pinger_on_pong, "choreography"}, {NULL, NULL, NULL, NULL}};
static const eda_reply_handler_t s_pinger_replies[] = {
    {"ponger", "Echo", s_pinger_on_echo}, {NULL, NULL, NULL}};
static const eda_timer_t s_pinger_timers[] = {{S_TICK_MS, s_pinger_tick}, {0, NULL}};

static const eda_service_def_t s_pinger_def = {.name = "pinger",
                                               .schema = s_pinger_schema,
                                               .start = s_pinger_start,
                                               .stop = s_pinger_stop,
                                               .commands = s_pinger_commands,
                                               .handlers = s_pinger_handlers,
                                               .replies = s_pinger_replies,
                                               .timers = s_pinger_timers};

enum { S_PONGER, S_PINGER, S_NTOYS };

static const eda_service_def_t *s_toy_defs[S_NTOYS] = {&s_ponger_def, &s_pinger_def};

typedef struct {
    eda_config_t cfg[S_NTOYS];
    char commands[S_NTOYS][128];
    eda_client_t *client[S_NTOYS]; /* set by s_toy_start */
} s_toys_t;

/*  Configures ponger (its --witness, when not NULL) and pinger (database
    `pinger_db`, ponger its peer); starts nothing. */
static void s_toys_init(s_toys_t *t, const char *pinger_db, const char *witness)
{
    memset(t, 0, sizeof *t);
    char events[S_NTOYS][128];
    for (int i = 0; i < S_NTOYS; i++) {
        eda_config_t *cfg = &t->cfg[i];
        inproc_endpoint(events[i], sizeof events[i], "pub");
        inproc_endpoint(t->commands[i], sizeof t->commands[i], "cmd");
        eda_config_defaults(cfg, s_toy_defs[i]->name);
        eda_config_declare(cfg, s_toy_defs[i]->options);
        inproc_set(cfg, "events", events[i]);
        inproc_set(cfg, "commands", t->commands[i]);
        inproc_set(cfg, "db", i == S_PINGER ? pinger_db : ":memory:");
        inproc_set(cfg, "log-level", "error");
    }
    char peer[400];
    snprintf(peer, sizeof peer, "ponger=%s,%s", events[S_PONGER], t->commands[S_PONGER]);
    inproc_set(&t->cfg[S_PINGER], "peer", peer);
    if (witness)
        inproc_set(&t->cfg[S_PONGER], "witness", witness);
}

static eda_client_t *s_toy_start(s_toys_t *t, int toy)
{
    cr_assert_eq(inproc_start(s_toy_defs[toy], &t->cfg[toy], NULL), 0, "%s did not start",
                 s_toy_defs[toy]->name);
    t->client[toy] = inproc_client(t->commands[toy]);
    return t->client[toy];
}

/*  Starts ponger, then pinger. */
static void s_toys_start(s_toys_t *t, const char *pinger_db, const char *witness)
{
    s_toys_init(t, pinger_db, witness);
    s_toy_start(t, S_PONGER);
    s_toy_start(t, S_PINGER);
}

/*  Sends Fire {n} (and `flag`: true, when not NULL) and returns the reply. */
static void s_fire(eda_client_t *c, uint64_t n, const char *flag, eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(c, "Fire", NULL);
    msgpack_pack_map(pk, flag ? 2 : 1);
    eda_pack_kv_u64(pk, "n", n);
    if (flag)
        eda_pack_kv_bool(pk, flag, true);
    inproc_call(c, reply);
}

/*  Publish on ponger: a Pong with data.saga `saga` (absent when NULL), and
    data.fail_once true when `fail_once`. */
static void s_publish_pong(eda_client_t *c, const msgpack_object *saga, bool fail_once)
{
    msgpack_packer *pk = eda_client_begin(c, "Publish", NULL);
    msgpack_pack_map(pk, (saga ? 1 : 0) + (fail_once ? 1 : 0));
    if (saga) {
        eda_pack_key(pk, "saga");
        msgpack_pack_object(pk, *saga);
    }
    if (fail_once)
        eda_pack_kv_bool(pk, "fail_once", true);
    eda_envelope_t reply;
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
}

/*  pinger's committed tick count, read on a connection of our own: in WAL
    mode it sees only committed transactions. */
static uint64_t s_committed_ticks(const char *db)
{
    sqlite3 *reader = NULL;
    sqlite3_stmt *q = NULL;
    int64_t ticks = -1;
    if (sqlite3_open_v2(db, &reader, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(reader, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(reader, "SELECT ticks FROM pinger", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        ticks = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(reader);
    cr_assert_geq(ticks, 0, "cannot read the ticks in %s", db);
    return (uint64_t)ticks;
}

Test(service, a_timer_runs_repeatedly_and_its_work_commits)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/pinger.db", s_dir);
    s_toys_t t;
    s_toys_init(&t, db, NULL);
    /* pinger alone: ponger is down, nothing reaches pinger, and only its
       timer makes batches, which must commit on their own. */
    s_toy_start(&t, S_PINGER);
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    uint64_t committed;
    while ((committed = s_committed_ticks(db)) < 4) {
        cr_assert_lt(zclock_mono(), deadline, "%llu ticks committed after %d ms",
                     (unsigned long long)committed, S_SETTLE_MS);
        zclock_sleep(15);
    }
    /* What it reports is at least what was committed, and it goes on. */
    eda_client_t *pinger = t.client[S_PINGER];
    uint64_t ticks = s_get(pinger, "Count", "ticks");
    cr_assert_geq(ticks, committed);
    s_poll(pinger, "Count", "ticks", ticks + 3);
    cr_assert_geq(s_committed_ticks(db), ticks + 3);
    cr_assert_eq(s_get(pinger, "Count", "strays"), 0, "a timer had a message in hand");
}

Test(service, commands_leave_after_the_commit_and_their_replies_come_back)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/pinger.db", s_dir);
    s_toys_t t;
    s_toys_start(&t, db, db); /* ponger checks pinger's committed rows */
    eda_client_t *pinger = t.client[S_PINGER], *ponger = t.client[S_PONGER];

    eda_envelope_t reply;
    s_fire(pinger, 5, NULL, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "queued"), 5);
    cr_assert_eq(s_poll(pinger, "Count", "replies", 5), 5);
    cr_assert_eq(s_get(ponger, "Stats", "own.echoes"), 5);
    cr_assert_eq(s_get(ponger, "Stats", "own.early"), 0,
                 "an Echo arrived before its sender had committed it");
    cr_assert_eq(s_get(pinger, "Count", "strays"), 0,
                 "a reply whose causation_id is no command sent, or one twice");
    inproc_call_empty(pinger, "Stats", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "commands_sent"), 5);
    cr_assert_eq(inproc_u64(&reply.data, "commands_dropped"), 0);
    cr_assert_eq(inproc_u64(&reply.data, "replies_received"), 5);
    cr_assert_eq(inproc_u64(&reply.data, "bad_input"), 0);
}

Test(service, a_unit_that_is_undone_sends_none_of_its_commands)
{
    s_toys_t t;
    s_toys_start(&t, ":memory:", NULL);
    eda_client_t *pinger = t.client[S_PINGER], *ponger = t.client[S_PONGER];

    eda_envelope_t reply;
    s_fire(pinger, 3, "fail", &reply); /* queues, then answers an error */
    inproc_expect_error(&reply, "CONFLICT");
    s_fire(pinger, 2, "internal", &reply); /* queues, then returns -1 */
    inproc_expect_error(&reply, "INTERNAL");

    /* One more Fire: its one Echo goes on the same connection, behind any
       that were sent before, so once it is answered ponger has seen them. */
    s_fire(pinger, 1, NULL, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(s_poll(pinger, "Count", "replies", 1), 1);
    cr_assert_eq(s_get(ponger, "Stats", "own.echoes"), 1,
                 "ponger got the commands of handlers that were undone");
    cr_assert_eq(s_get(pinger, "Stats", "commands_sent"), 1);
    cr_assert_eq(s_get(pinger, "Stats", "replies_received"), 1);
    cr_assert_eq(s_get(pinger, "Count", "strays"), 0);
}

Test(service, commands_of_a_batch_that_does_not_commit_are_never_sent)
{
    s_toys_t t;
    s_toys_start(&t, ":memory:", NULL);
    eda_client_t *pinger = t.client[S_PINGER], *ponger = t.client[S_PONGER];

    /* The handler succeeds and answers ok; the batch's COMMIT then fails
       (a deferred foreign key): its reply becomes INTERNAL, and its two
       commands must not leave. */
    eda_envelope_t reply;
    s_fire(pinger, 2, "poison", &reply);
    inproc_expect_error(&reply, "INTERNAL");
    cr_assert_eq(s_get(pinger, "Stats", "commits_failed"), 1);

    s_fire(pinger, 1, NULL, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(s_poll(pinger, "Count", "replies", 1), 1);
    cr_assert_eq(s_get(ponger, "Stats", "own.echoes"), 1,
                 "ponger got the commands of a batch that did not commit");
    cr_assert_eq(s_get(pinger, "Stats", "commands_sent"), 1);
    cr_assert_eq(s_get(pinger, "Count", "strays"), 0);
}

Test(service, an_event_handler_takes_only_its_own_saga)
{
    s_toys_t t;
    s_toys_start(&t, ":memory:", NULL);
    eda_client_t *pinger = t.client[S_PINGER], *ponger = t.client[S_PONGER];

    msgpack_object mine = s_str_obj("choreography"), other = s_str_obj("orchestration");
    msgpack_object number = s_uint_obj(7);
    msgpack_object longer = s_str_obj("orchestration-of-a-much-longer-name-than-32");
    s_publish_pong(ponger, &mine, false);
    s_publish_pong(ponger, NULL, false);
    s_publish_pong(ponger, &other, false);
    s_publish_pong(ponger, &number, false);
    s_publish_pong(ponger, &longer, false);
    cr_assert_eq(s_poll(pinger, "Stats", "peers.ponger.last_seq", 5), 5);

    /* Applied: the choreography one and the one of no saga, in order. */
    eda_envelope_t reply;
    inproc_call_empty(pinger, "Count", &reply);
    inproc_expect_ok(&reply);
    char sagas[64];
    inproc_str(&reply.data, "sagas", sagas, sizeof sagas);
    cr_assert_str_eq(sagas, "choreography;-;");
    cr_assert_eq(inproc_u64(&reply.data, "pongs"), 2);
    inproc_call_empty(pinger, "Stats", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "events_applied"), 2);
    cr_assert_eq(inproc_u64(&reply.data, "events_ignored"), 2,
                 "the orchestration one and the long one: other patterns");
    cr_assert_eq(inproc_u64(&reply.data, "bad_input"), 1,
                 "the saga that is not a string");
}

Test(service,
     an_event_handler_that_fails_after_writing_undoes_its_batch_and_gets_it_again)
{
    s_toys_t t;
    s_toys_start(&t, ":memory:", NULL);
    eda_client_t *pinger = t.client[S_PINGER], *ponger = t.client[S_PONGER];

    /* The second Pong's handler writes, then fails: an event handler runs
       without a savepoint, so its whole batch is undone, and the event is
       applied again from ponger's log, once. */
    msgpack_object mine = s_str_obj("choreography");
    s_publish_pong(ponger, &mine, false);
    s_publish_pong(ponger, &mine, true);
    s_publish_pong(ponger, &mine, false);
    cr_assert_eq(s_poll(pinger, "Stats", "peers.ponger.last_seq", 3), 3);

    eda_envelope_t reply;
    inproc_call_empty(pinger, "Count", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "pongs"), 3,
                 "the failed handler's write was kept, or an event was lost");
    inproc_call_empty(pinger, "Stats", &reply);
    inproc_expect_ok(&reply);
    cr_assert_geq(inproc_u64(&reply.data, "commits_failed"), 1,
                  "the batch was not undone");
    /* And it goes on: a command after it commits. */
    s_fire(pinger, 1, NULL, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(s_poll(pinger, "Count", "replies", 1), 1);
}

Test(service, a_command_that_refuses_after_writing_without_a_savepoint_undoes_its_batch)
{
    s_toys_t t;
    s_toys_start(&t, ":memory:", NULL);
    eda_client_t *pinger = t.client[S_PINGER];

    /* Scribble runs without a savepoint and refuses after it wrote: its
       refusal cannot stand (its write would be kept), so the batch is
       undone and the command answered INTERNAL. */
    eda_envelope_t reply;
    inproc_call_empty(pinger, "Scribble", &reply);
    inproc_expect_error(&reply, "INTERNAL");
    cr_assert_eq(s_get(pinger, "Count", "strays"), 0,
                 "the refused command's write was kept");
    cr_assert_geq(s_get(pinger, "Stats", "commits_failed"), 1);
    /* Count, read-only and also without a savepoint, answers as before. */
    s_fire(pinger, 1, NULL, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(s_poll(pinger, "Count", "replies", 1), 1);
}
