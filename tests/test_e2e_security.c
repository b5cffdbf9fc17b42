/*  test_e2e_security: CURVE security (DESIGN section 7) on the real
    binaries. With --keys, a client without a key, or with a key the keys
    folder does not hold, gets no reply and no event; a process that squats
    a stopped service's ports and publishes forged events with the real
    epoch and the next seq changes nothing, while without keys the same
    forgery does (the control, in the same test). A service without its
    secret certificate exits 1 naming it; one bound beyond loopback without
    keys warns.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static tu_system_t sys;   /* secured */
static tu_system_t plain; /* the control: no keys */
/*  Freed in teardown even when an assertion fails half way. */
static zsock_t *s_socks[24];
static eda_keys_t *s_mallory;
static eda_decoder_t *s_decoder;

static void s_setup(void)
{
    /* This suite chooses itself which deployment is secured. */
    unsetenv("EDA_TEST_KEYS");
    s_decoder = eda_decoder_new();
    cr_assert_not_null(s_decoder);
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_init(&plain), 0, "%s", plain.why);
}

static void s_teardown(void)
{
    for (size_t i = 0; i < sizeof s_socks / sizeof s_socks[0]; i++)
        zsock_destroy(&s_socks[i]);
    eda_keys_destroy(&s_mallory);
    eda_decoder_destroy(&s_decoder);
    tu_system_fini(&plain);
    tu_system_fini(&sys);
}

TestSuite(e2e_security, .init = s_setup, .fini = s_teardown, .timeout = 180);

#define S_NO_REPLY_MS 1500 /* long enough for a reply that will not come */
#define S_SILENCE_MS  2500 /* past two heartbeats */
#define S_WAIT_MS     10000

/*  Keeps `sock` for teardown and returns it. */
static zsock_t *s_keep(zsock_t *sock)
{
    cr_assert_not_null(sock);
    size_t i = 0;
    while (i < sizeof s_socks / sizeof s_socks[0] && s_socks[i])
        i++;
    cr_assert_lt(i, sizeof s_socks / sizeof s_socks[0], "too many sockets");
    s_socks[i] = sock;
    return sock;
}

/*  Destroys a socket kept by s_keep. */
static void s_drop(zsock_t **sock_p)
{
    for (size_t i = 0; i < sizeof s_socks / sizeof s_socks[0]; i++)
        if (s_socks[i] == *sock_p)
            s_socks[i] = NULL;
    zsock_destroy(sock_p);
}

/* --- socket monitors: what became of a connection ------------------------- */

typedef struct {
    zsock_t *pair;
    int failed_protocol; /* ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL */
    int failed_auth;     /* ZMQ_EVENT_HANDSHAKE_FAILED_AUTH */
    int failed_other;    /* ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: the peer hung up */
    int succeeded;       /* ZMQ_EVENT_HANDSHAKE_SUCCEEDED */
    int accepted;        /* ZMQ_EVENT_ACCEPTED, on a bound socket */
    uint32_t protocol_error, auth_status;
} s_monitor_t;

/*  Watches the handshakes of `sock`. Call before it connects or binds. */
static void s_monitor(s_monitor_t *m, zsock_t *sock)
{
    static int n;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://security-monitor-%d", n++);
    *m = (s_monitor_t){0};
    cr_assert_eq(zmq_socket_monitor(zsock_resolve(sock), endpoint,
                                    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                        ZMQ_EVENT_ACCEPTED),
                 0, "zmq_socket_monitor: %s", zmq_strerror(errno));
    m->pair = s_keep(zsock_new(ZMQ_PAIR));
    cr_assert_eq(zsock_connect(m->pair, "%s", endpoint), 0);
}

/*  Tallies the events that came, waiting up to `timeout_ms` for the first. */
static void s_monitor_read(s_monitor_t *m, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve(m->pair), 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, timeout_ms) > 0) {
        zmq_msg_t head, address;
        zmq_msg_init(&head);
        zmq_msg_init(&address);
        cr_assert_geq(zmq_msg_recv(&head, item.socket, 0), 0);
        cr_assert_geq(zmq_msg_recv(&address, item.socket, 0), 0);
        cr_assert_eq(zmq_msg_size(&head), 6, "a monitor event of %zu bytes",
                     zmq_msg_size(&head));
        uint16_t event;
        uint32_t value;
        memcpy(&event, zmq_msg_data(&head), 2);
        memcpy(&value, (char *)zmq_msg_data(&head) + 2, 4);
        zmq_msg_close(&head);
        zmq_msg_close(&address);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            m->failed_protocol++;
            m->protocol_error = value;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            m->failed_auth++;
            m->auth_status = value;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            m->failed_other++;
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            m->succeeded++;
        else if (event == ZMQ_EVENT_ACCEPTED)
            m->accepted++;
        timeout_ms = 0;
    }
}

/*  Polls until the monitor has seen a refused handshake. */
static bool s_monitor_refused(s_monitor_t *m, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    s_monitor_read(m, 0);
    while (!m->failed_protocol && !m->failed_auth && zclock_mono() < deadline)
        s_monitor_read(m, (int)(deadline - zclock_mono()));
    return m->failed_protocol || m->failed_auth;
}

/* --- intruders: a plain client, and one with a key nobody trusts ------------ */

typedef enum { S_PLAIN, S_UNTRUSTED } s_intruder_t;

/*  A keys folder of mallory's own, in the system's temp folder: a fresh
    certificate of hers, and the services' real public certificates, read
    from sys.keys_dir. */
static eda_keys_t *s_mallory_keys(void)
{
    char dir[400], path[600];
    snprintf(dir, sizeof dir, "%s/mallory", sys.dir);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s: %s", dir, strerror(errno));
    zcert_t *own = zcert_new();
    cr_assert_not_null(own);
    snprintf(path, sizeof path, "%s/mallory.cert", dir);
    cr_assert_eq(zcert_save(own, path), 0);
    zcert_destroy(&own);
    for (int i = 0; i < TU_NSERVICES; i++) {
        snprintf(path, sizeof path, "%s/%s.cert", sys.keys_dir,
                 tu_service_name((tu_service_t)i));
        zcert_t *server = zcert_load(path);
        cr_assert_not_null(server, "cannot load %s", path);
        snprintf(path, sizeof path, "%s/%s.cert", dir, tu_service_name((tu_service_t)i));
        cr_assert_eq(zcert_save_public(server, path), 0);
        zcert_destroy(&server);
    }
    char why[1200];
    eda_keys_t *keys = eda_keys_new(dir, "mallory", why, sizeof why);
    cr_assert_not_null(keys, "%s", why);
    return keys;
}

/*  An intruder's socket connected to `svc`: a DEALER to its commands (the
    socket eda_client_new makes, plain when eda_client_secure is not
    called) or a SUB to its events, plain or with mallory's keys, watched
    by `m` from before it connects: libzmq does not retry a refused
    handshake, and the one event it makes must not be missed. */
static zsock_t *s_intruder(int type, tu_service_t svc, eda_keys_t *keys, s_monitor_t *m)
{
    zsock_t *sock = s_keep(zsock_new(type));
    zsock_set_linger(sock, 0);
    if (type == ZMQ_SUB)
        zsock_set_subscribe(sock, "");
    char why[1200];
    if (keys)
        cr_assert_eq(eda_keys_client(keys, sock, tu_service_name(svc), why, sizeof why),
                     0, "%s", why);
    s_monitor(m, sock);
    cr_assert_eq(
        zsock_connect(sock, "%s", type == ZMQ_SUB ? sys.events[svc] : sys.commands[svc]),
        0);
    return sock;
}

/*  A SUB of the test's own, with the trusted client certificate. */
static zsock_t *s_trusted_sub(tu_service_t svc)
{
    zsock_t *sub = s_keep(zsock_new(ZMQ_SUB));
    zsock_set_linger(sub, 0);
    zsock_set_subscribe(sub, "");
    char why[1200];
    cr_assert_eq(eda_keys_client(sys.keys, sub, tu_service_name(svc), why, sizeof why), 0,
                 "%s", why);
    cr_assert_eq(zsock_connect(sub, "%s", sys.events[svc]), 0);
    return sub;
}

/*  Queues one command on an intruder's DEALER, packed as eda_client
    packs one; `data` is the packed data map. */
static void s_command(zsock_t *dealer, const char *type, const msgpack_sbuffer *data)
{
    char id[EDA_NAME_MAX + 1];
    eda_new_id(id, sizeof id);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = EDA_KIND_COMMAND,
                        .type = type,
                        .id = id,
                        .source = "mallory",
                        .ts = eda_now_us()};
    eda_pack_header(&pk, &hdr);
    eda_pack_raw(&pk, data->data, data->size);
    int rc = zmq_send(zsock_resolve(dealer), buf.data, buf.size, ZMQ_DONTWAIT);
    int err = errno;
    msgpack_sbuffer_destroy(&buf);
    /* A refused handshake ends the DEALER's only connection, and its queue
       with it: on a slow machine (under AddressSanitizer) that can come
       before the intruder sends. The refusal is asserted after. */
    cr_assert(rc >= 0 || err == EAGAIN, "%s not queued: %s", type, zmq_strerror(err));
}

/*  Queues Ping, ReplayEvents {after_seq: 0, limit: 100} and CreateCustomer
    on an intruder's DEALER. */
static void s_intrude(zsock_t *dealer)
{
    msgpack_sbuffer data;
    msgpack_sbuffer_init(&data);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &data, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0);
    s_command(dealer, "Ping", &data);
    msgpack_sbuffer_clear(&data);
    msgpack_pack_map(&pk, 2);
    eda_pack_kv_u64(&pk, "after_seq", 0);
    eda_pack_kv_u64(&pk, "limit", 100);
    s_command(dealer, "ReplayEvents", &data);
    msgpack_sbuffer_clear(&data);
    msgpack_pack_map(&pk, 3);
    eda_pack_kv_str(&pk, "customer_id", "mallory");
    eda_pack_kv_str(&pk, "name", "Mallory");
    eda_pack_kv_i64(&pk, "credit_limit", 1000000);
    s_command(dealer, "CreateCustomer", &data);
    msgpack_sbuffer_destroy(&data);
}

/*  What the trusted SUBs saw, per service. */
typedef struct {
    int heartbeats[TU_NSERVICES];
    bool order_created, order_approved;
} s_seen_t;

/*  Polls every socket for `ms`: a message on an intruder's socket (the
    first TU_NSERVICES DEALER sockets, then TU_NSERVICES SUBs) fails the
    test; what the trusted SUBs get is tallied. */
static void s_watch(zsock_t **intruders, zsock_t **trusted, s_seen_t *seen, int ms)
{
    zmq_pollitem_t items[3 * TU_NSERVICES];
    for (int i = 0; i < 2 * TU_NSERVICES; i++)
        items[i] = (zmq_pollitem_t){zsock_resolve(intruders[i]), 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < TU_NSERVICES; i++)
        items[2 * TU_NSERVICES + i] =
            (zmq_pollitem_t){zsock_resolve(trusted[i]), 0, ZMQ_POLLIN, 0};
    int64_t deadline = zclock_mono() + ms;
    while (1) {
        int64_t left = deadline - zclock_mono();
        if (zmq_poll(items, 3 * TU_NSERVICES, left > 0 ? (long)left : 0) < 0)
            break;
        for (int i = 0; i < 2 * TU_NSERVICES; i++)
            cr_assert_not(items[i].revents & ZMQ_POLLIN,
                          "the intruder's %s of %s received a message",
                          i < TU_NSERVICES ? "DEALER" : "SUB",
                          tu_service_name((tu_service_t)(i % TU_NSERVICES)));
        for (int i = 0; i < TU_NSERVICES; i++) {
            if (!(items[2 * TU_NSERVICES + i].revents & ZMQ_POLLIN))
                continue;
            zmsg_t *msg = zmsg_recv(trusted[i]);
            cr_assert_not_null(msg);
            zframe_t *body = zmsg_last(msg);
            eda_envelope_t env;
            cr_assert_eq(eda_decode(s_decoder, zframe_data(body), zframe_size(body), &env,
                                    NULL, 0),
                         EDA_OK);
            seen->heartbeats[i] += env.kind == EDA_KIND_HEARTBEAT;
            seen->order_created |= streq(env.type, "OrderCreated");
            seen->order_approved |= streq(env.type, "OrderApproved");
            zmsg_destroy(&msg);
        }
        if (left <= 0)
            break;
    }
}

/*  The intruder sends Ping, ReplayEvents and CreateCustomer to every
    service and subscribes to every service's events while the secured
    system serves a real order: no reply, no event, no customer made. Its
    every handshake is refused: for a plain client because it speaks no
    CURVE (a mechanism mismatch), for an untrusted key by the
    authenticator (status 400), which proves that its handshake was
    otherwise valid. */
static void s_intruder_gets_nothing(s_intruder_t how)
{
    cr_assert_eq(tu_system_secure(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    eda_keys_t *keys = how == S_UNTRUSTED ? (s_mallory = s_mallory_keys()) : NULL;
    int64_t start = zclock_mono();

    zsock_t *intruders[2 * TU_NSERVICES], *trusted[TU_NSERVICES];
    s_monitor_t dealer_mon[TU_NSERVICES], sub_mon[TU_NSERVICES];
    for (int i = 0; i < TU_NSERVICES; i++) {
        tu_service_t svc = (tu_service_t)i;
        intruders[i] = s_intruder(ZMQ_DEALER, svc, keys, &dealer_mon[i]);
        s_intrude(intruders[i]);
        intruders[TU_NSERVICES + i] = s_intruder(ZMQ_SUB, svc, keys, &sub_mon[i]);
        trusted[i] = s_trusted_sub(svc);
    }

    for (int i = 0; i < TU_NSERVICES; i++) {
        const char *name = tu_service_name((tu_service_t)i);
        s_monitor_t *mons[] = {&dealer_mon[i], &sub_mon[i]};
        for (int k = 0; k < 2; k++) {
            s_monitor_t *m = mons[k];
            const char *what = k ? "SUB" : "DEALER";
            cr_assert(s_monitor_refused(m, S_WAIT_MS),
                      "the intruder's %s to %s saw no refused handshake in %d ms", what,
                      name, S_WAIT_MS);
            cr_assert_eq(m->succeeded, 0, "the intruder's %s to %s got in", what, name);
            if (how == S_PLAIN) {
                cr_assert_gt(m->failed_protocol, 0);
                cr_assert_eq(m->protocol_error,
                             (uint32_t)ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH,
                             "the plain %s to %s: protocol error 0x%x", what, name,
                             m->protocol_error);
            } else {
                cr_assert_gt(m->failed_auth, 0,
                             "the untrusted %s to %s was not refused by the "
                             "authenticator (protocol error 0x%x)",
                             what, name, m->protocol_error);
                cr_assert_eq(m->auth_status, 400, "the untrusted %s to %s: status %u",
                             what, name, m->auth_status);
            }
        }
    }

    /* The trusted SUBs are connected once each has had a heartbeat. */
    s_seen_t seen = {0};
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    bool all = false;
    while (!all && zclock_mono() < deadline) {
        s_watch(intruders, trusted, &seen, 100);
        all = seen.heartbeats[0] && seen.heartbeats[1] && seen.heartbeats[2];
    }
    cr_assert(all, "the trusted SUBs saw no heartbeat of every service in %d ms",
              S_WAIT_MS);

    /* A real order while the intruder listens. */
    cr_assert_eq(tu_create_customer(&sys, "alice", 1000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 5), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 1, 100}};
    char id[EDA_NAME_MAX + 1];
    cr_assert_eq(tu_place_order(&sys, "alice", items, 1, NULL, id, NULL, NULL), 0, "%s",
                 sys.why);
    tu_order_t o;
    cr_assert_eq(tu_wait_order(&sys, id, TU_SETTLE_MS, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "APPROVED");
    int64_t since = zclock_mono() - start;
    s_watch(intruders, trusted, &seen,
            since < S_SILENCE_MS ? S_SILENCE_MS - (int)since + S_NO_REPLY_MS
                                 : S_NO_REPLY_MS);
    cr_assert(seen.order_created && seen.order_approved,
              "the trusted SUB of order-service missed the order's events");

    /* Nothing the intruder sent was acted on. */
    msgpack_packer *pk = tu_begin(&sys, TU_CUSTOMER, "GetCustomer");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "mallory");
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, TU_CUSTOMER, &reply), 0, "%s", sys.why);
    char code[32];
    cr_assert_str_eq(tu_error_code(&reply, code, sizeof code), "NOT_FOUND",
                     "the intruder's CreateCustomer was carried out");
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

Test(e2e_security, unkeyed_client_gets_nothing)
{
    s_intruder_gets_nothing(S_PLAIN);
}

Test(e2e_security, untrusted_key_gets_nothing)
{
    s_intruder_gets_nothing(S_UNTRUSTED);
}

/* --- a squatter on a stopped order-service's ports -------------------------- */

/*  What the squatter needs: the real epoch and last seq, and the order. */
typedef struct {
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq;
    char order_id[EDA_NAME_MAX + 1];
} s_target_t;

typedef struct {
    zsock_t *pub, *router;
    s_monitor_t mon; /* of the PUB: who came, and whether they got in */
    msgpack_sbuffer buf;
    int commands_received;
} s_squatter_t;

/*  Polls until `endpoint`'s TCP port can be bound (its last listener has
    gone), or the deadline passes. */
static bool s_port_free(const char *endpoint, int timeout_ms)
{
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)atoi(colon + 1)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t deadline = zclock_mono() + timeout_ms;
    while (1) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int on = 1;
        cr_assert_geq(fd, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        bool unused = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        close(fd);
        if (unused)
            return true;
        if (zclock_mono() >= deadline)
            return false;
        zclock_sleep(20); /* polling a port: nothing tells when it is let go */
    }
}

/*  A deployment on TCP with order-service in choreography, one approved
    order of alice's holding 10 of her credit, quiet; then order-service is
    stopped. Fills `target`. */
static void s_prepare(tu_system_t *s, s_target_t *target)
{
    cr_assert_eq(tu_system_setenv(s, TU_ORDER, "EDA_SAGA", "choreography"), 0, "%s",
                 s->why);
    cr_assert_eq(tu_system_use_config(s), 0, "%s", s->why);
    cr_assert_eq(tu_system_start_all(s), 0, "%s", s->why);
    cr_assert_eq(tu_create_customer(s, "alice", 1000), 0, "%s", s->why);
    cr_assert_eq(tu_add_stock(s, "apple", 5), 0, "%s", s->why);
    tu_item_t items[] = {{"apple", 1, 10}};
    cr_assert_eq(tu_place_order(s, "alice", items, 1, NULL, target->order_id, NULL, NULL),
                 0, "%s", s->why);
    tu_order_t o;
    cr_assert_eq(tu_wait_order(s, target->order_id, TU_SETTLE_MS, &o), 0, "%s", s->why);
    cr_assert_str_eq(o.status, "APPROVED");
    cr_assert_eq(tu_wait_quiet(s, TU_SETTLE_MS), 0, "%s", s->why);
    cr_assert_eq(tu_expect_credit(s, "alice", 10, 990), 0, "%s", s->why);
    cr_assert_eq(tu_stat_self(s, TU_ORDER, target->epoch, &target->last_seq), 0, "%s",
                 s->why);
    cr_assert_eq(tu_system_stop(s, TU_ORDER), 0, "order-service: %s", s->why);
}

/*  Binds order-service's two endpoints, as a plain process would. */
static void s_squat(s_squatter_t *sq, tu_system_t *s)
{
    *sq = (s_squatter_t){0};
    msgpack_sbuffer_init(&sq->buf);
    sq->pub = s_keep(zsock_new(ZMQ_PUB));
    sq->router = s_keep(zsock_new(ZMQ_ROUTER));
    zsock_set_linger(sq->pub, 0);
    zsock_set_linger(sq->router, 0);
    s_monitor(&sq->mon, sq->pub);
    cr_assert(s_port_free(s->events[TU_ORDER], S_WAIT_MS), "%s is still taken",
              s->events[TU_ORDER]);
    cr_assert_neq(zsock_bind(sq->pub, "%s", s->events[TU_ORDER]), -1, "bind %s: %s",
                  s->events[TU_ORDER], zmq_strerror(errno));
    cr_assert_neq(zsock_bind(sq->router, "%s", s->commands[TU_ORDER]), -1, "bind %s: %s",
                  s->commands[TU_ORDER], zmq_strerror(errno));
}

/*  Publishes [type][envelope] as order-service would. */
static void s_squat_send(s_squatter_t *sq, const char *type)
{
    void *pub = zsock_resolve(sq->pub);
    cr_assert_geq(zmq_send(pub, type, strlen(type), ZMQ_SNDMORE), 0);
    cr_assert_geq(zmq_send(pub, sq->buf.data, sq->buf.size, 0), 0);
}

/*  One round of forgery: OrderCancelled of the approved order as the next
    event of the real log, and a heartbeat that says it exists. */
static void s_squat_publish(s_squatter_t *sq, const s_target_t *t)
{
    char id[EDA_NAME_MAX + 24]; /* the epoch, '-' and the seq, as order-service does */
    snprintf(id, sizeof id, "%s-%llu", t->epoch, (unsigned long long)t->last_seq + 1);
    msgpack_sbuffer_clear(&sq->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sq->buf, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = EDA_KIND_EVENT,
                        .type = "OrderCancelled",
                        .id = id,
                        .source = "order-service",
                        .ts = eda_now_us(),
                        .correlation_id = t->order_id,
                        .seq = t->last_seq + 1,
                        .epoch = t->epoch};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 2);
    eda_pack_kv_str(&pk, "order_id", t->order_id);
    eda_pack_kv_str(&pk, "saga", "choreography");
    s_squat_send(sq, "OrderCancelled");

    eda_new_id(id, sizeof id);
    msgpack_sbuffer_clear(&sq->buf);
    hdr = (eda_header_t){.kind = EDA_KIND_HEARTBEAT,
                         .type = "Heartbeat",
                         .id = id,
                         .source = "order-service",
                         .ts = eda_now_us(),
                         .epoch = t->epoch};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 1);
    eda_pack_kv_u64(&pk, "last_seq", t->last_seq + 1);
    s_squat_send(sq, "Heartbeat");
}

/*  Publishes every 100 ms for `ms` (or until `done` says so, when not NULL),
    taking whatever reaches the ROUTER and answering none of it. Returns the
    milliseconds it published. */
static int s_squat_run(s_squatter_t *sq, const s_target_t *t, int ms,
                       bool (*done)(tu_system_t *), tu_system_t *s)
{
    int64_t start = zclock_mono(), deadline = start + ms;
    while (zclock_mono() < deadline) {
        s_squat_publish(sq, t);
        /* The 100 ms between rounds, spent reading the ROUTER. */
        int64_t round = zclock_mono() + 100;
        int64_t left;
        while ((left = round - zclock_mono()) > 0) {
            zmq_pollitem_t item = {zsock_resolve(sq->router), 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, (long)left) <= 0)
                continue;
            zmsg_t *msg = zmsg_recv(sq->router);
            zmsg_destroy(&msg);
            sq->commands_received++;
        }
        s_monitor_read(&sq->mon, 0);
        if (done && done(s))
            break;
    }
    return (int)(zclock_mono() - start);
}

static void s_squat_leave(s_squatter_t *sq)
{
    s_drop(&sq->pub);
    s_drop(&sq->router);
    s_drop(&sq->mon.pair);
    msgpack_sbuffer_destroy(&sq->buf);
}

/*  The forgery has reached customer-service: alice's credit is released. */
static bool s_credit_released(tu_system_t *s)
{
    int64_t reserved = -1;
    return tu_get_customer(s, "alice", &reserved, NULL) == 0 && reserved == 0;
}

/*  Fails saying how far each service got with order-service's events. */
static void s_stuck(tu_system_t *s, const char *when)
{
    char why[sizeof s->why], epoch[EDA_NAME_MAX + 1];
    snprintf(why, sizeof why, "%s", s->why);
    uint64_t published = 0, customer = 0, inventory = 0;
    tu_stat_self(s, TU_ORDER, epoch, &published);
    tu_stat_peer(s, TU_CUSTOMER, TU_ORDER, epoch, &customer);
    tu_stat_peer(s, TU_INVENTORY, TU_ORDER, epoch, &inventory);
    cr_assert_fail("%s: %s; order-service has published #%llu, customer-service has "
                   "applied #%llu of it, inventory-service #%llu",
                   when, why, (unsigned long long)published, (unsigned long long)customer,
                   (unsigned long long)inventory);
}

/*  The attack, without keys and then with them. */
Test(e2e_security, squatter_changes_nothing_with_keys_and_does_without)
{
    /* The control: without keys the forgery works, which proves that this
       test sees the attack when it succeeds. */
    s_target_t t;
    s_squatter_t sq;
    s_prepare(&plain, &t);
    s_squat(&sq, &plain);
    int took = s_squat_run(&sq, &t, S_WAIT_MS, s_credit_released, &plain);
    cr_assert_eq(tu_expect_credit(&plain, "alice", 0, 1000), 0,
                 "without keys the forged OrderCancelled did not release the credit "
                 "within %d ms: %s",
                 took, plain.why);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t applied = 0;
    cr_assert_eq(tu_stat_peer(&plain, TU_CUSTOMER, TU_ORDER, epoch, &applied), 0, "%s",
                 plain.why);
    cr_assert_str_eq(epoch, t.epoch);
    cr_assert_eq(applied, t.last_seq + 1,
                 "customer-service applied #%llu, not the forged #%llu",
                 (unsigned long long)applied, (unsigned long long)t.last_seq + 1);
    cr_assert_gt(sq.mon.succeeded, 0);
    s_squat_leave(&sq);
    cr_assert_eq(tu_system_shutdown(&plain), 0, "%s", plain.why);
    tu_system_fini(&plain);

    /* With keys: the same forgery, for at least 2 s and well past the time
       the control took, changes nothing. */
    cr_assert_eq(tu_system_secure(&sys), 0, "%s", sys.why);
    s_prepare(&sys, &t);
    char before[TU_NSERVICES][EDA_NAME_MAX + 1];
    uint64_t before_seq[TU_NSERVICES];
    for (int i = TU_CUSTOMER; i <= TU_INVENTORY; i++) {
        cr_assert_eq(
            tu_stat_peer(&sys, (tu_service_t)i, TU_ORDER, before[i], &before_seq[i]), 0,
            "%s", sys.why);
        cr_assert_str_eq(before[i], t.epoch);
        cr_assert_eq(before_seq[i], t.last_seq);
    }
    s_squat(&sq, &sys);
    int window = 2000 + 3 * took;
    s_squat_run(&sq, &t, window, NULL, NULL);
    s_monitor_read(&sq.mon, 0);
    cr_assert_gt(sq.mon.accepted, 0,
                 "no service tried the squatter's PUB in %d ms: the test proves nothing",
                 window);
    cr_assert_eq(sq.mon.succeeded, 0, "a service subscribed to the squatter");
    cr_assert_eq(sq.commands_received, 0, "a service sent the squatter a command");
    cr_assert_eq(tu_expect_credit(&sys, "alice", 10, 990), 0,
                 "with keys the forgery changed the credit: %s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 4, 1), 0, "%s", sys.why);
    for (int i = TU_CUSTOMER; i <= TU_INVENTORY; i++) {
        char e[EDA_NAME_MAX + 1];
        uint64_t seq = 0;
        cr_assert_eq(tu_stat_peer(&sys, (tu_service_t)i, TU_ORDER, e, &seq), 0, "%s",
                     sys.why);
        cr_assert_str_eq(e, before[i]);
        cr_assert_eq(seq, before_seq[i],
                     "%s has applied order-service's #%llu, was #%llu",
                     tu_service_name((tu_service_t)i), (unsigned long long)seq,
                     (unsigned long long)before_seq[i]);
    }

    /* The real order-service comes back and its next events are applied.
       The services' connections to the squatter failed their handshakes,
       which libzmq does not retry: this holds only if a service opens
       such a connection again. */
    s_squat_leave(&sq);
    cr_assert(s_port_free(sys.events[TU_ORDER], S_WAIT_MS),
              "the squatter's port is held");
    cr_assert(s_port_free(sys.commands[TU_ORDER], S_WAIT_MS),
              "the squatter's port is held");
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 1, 10}};
    char id[EDA_NAME_MAX + 1];
    cr_assert_eq(tu_place_order(&sys, "alice", items, 1, NULL, id, NULL, NULL), 0, "%s",
                 sys.why);
    tu_order_t o;
    if (tu_wait_order(&sys, id, TU_SETTLE_MS, &o))
        s_stuck(&sys, "after the squatter left and order-service came back");
    cr_assert_str_eq(o.status, "APPROVED");
    cr_assert_eq(tu_get_order(&sys, t.order_id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "APPROVED", "the first order is %s", o.status);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "alice", 20, 980), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

/* --- starting insecurely ----------------------------------------------------- */

/*  The whole of a log file, NUL-terminated, in out[size]. */
static void s_read_log(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
}

Test(e2e_security, missing_secret_certificate_exits_1_naming_it)
{
    static char log[16384];
    cr_assert_eq(tu_system_secure(&sys), 0, "%s", sys.why);
    for (int i = 0; i < TU_NSERVICES; i++) {
        tu_service_t svc = (tu_service_t)i;
        char secret[400];
        snprintf(secret, sizeof secret, "%s/%s.cert_secret", sys.keys_dir,
                 tu_service_name(svc));
        cr_assert_eq(unlink(secret), 0, "unlink %s: %s", secret, strerror(errno));
        cr_assert_neq(tu_system_start(&sys, svc), 0, "%s started without %s",
                      tu_service_name(svc), secret);
        cr_assert(strstr(sys.why, "exited with status 1"), "%s", sys.why);
        s_read_log(sys.log[svc], log, sizeof log);
        cr_assert(strstr(log, secret), "%s's log does not name %s:\n%s",
                  tu_service_name(svc), secret, log);
    }

    /* Unsecured on every interface: it warns, naming the endpoint and
       --keys; its endpoint on loopback (ipc) draws no warning. */
    snprintf(plain.events[TU_CUSTOMER], sizeof plain.events[TU_CUSTOMER],
             "tcp://0.0.0.0:*");
    cr_assert_eq(tu_system_start(&plain, TU_CUSTOMER), 0, "%s", plain.why);
    cr_assert_eq(tu_system_shutdown(&plain), 0, "%s", plain.why);
    s_read_log(plain.log[TU_CUSTOMER], log, sizeof log);
    const char *warning = strstr(log, "tcp://0.0.0.0:*");
    cr_assert(warning && strstr(warning, "--keys"),
              "no warning naming tcp://0.0.0.0:* and --keys:\n%s", log);
    cr_assert_null(strstr(log, plain.commands[TU_CUSTOMER]),
                   "a loopback endpoint drew a warning:\n%s", log);

    /* The same bind with keys: no warning. */
    tu_system_fini(&sys);
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_secure(&sys), 0, "%s", sys.why);
    snprintf(sys.events[TU_CUSTOMER], sizeof sys.events[TU_CUSTOMER], "tcp://0.0.0.0:*");
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
    s_read_log(sys.log[TU_CUSTOMER], log, sizeof log);
    cr_assert_null(strstr(log, "--keys"), "a warning with keys set:\n%s", log);
}
