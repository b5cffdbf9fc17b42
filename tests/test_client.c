/*  test_client: eda_client against a tiny ROUTER answered by hand in a
    helper actor: a reply is returned, a timeout resets the socket so a late
    reply is never taken for the next request, stale replies are skipped,
    undecodable and multi-frame replies are refused; eda_new_id is unique.
*/
#include "eda_client.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_WAIT_MS 5000 /* the server's wait for a request */

/*  A scripted server: the ROUTER is bound by the test, then handed to a
    helper actor that runs `script` on it. Results come back in the struct,
    read after zactor_destroy has joined the actor. */
typedef struct s_server s_server_t;
typedef void(s_script_fn)(s_server_t *srv, zsock_t *pipe);
struct s_server {
    zsock_t *router;
    s_script_fn *script;
    char failure[256]; /* "" when the script saw what it expected */
    int requests;
    bool identity_changed;
};

static char s_endpoint[128];
static eda_client_t *s_client;
static zactor_t *s_actor;
static s_server_t s_srv;

static void s_teardown(void)
{
    eda_client_destroy(&s_client);
    zactor_destroy(&s_actor);
    zsock_destroy(&s_srv.router);
}

TestSuite(client, .fini = s_teardown, .timeout = 60);

static void s_server_actor(zsock_t *pipe, void *arg)
{
    s_server_t *srv = arg;
    zsock_signal(pipe, 0);
    srv->script(srv, pipe);
    /* Wait for $TERM. */
    char *cmd = zstr_recv(pipe);
    zstr_free(&cmd);
}

/*  Binds the ROUTER, starts the script and connects the client. */
static void s_start(s_script_fn *script)
{
    static int counter;
    snprintf(s_endpoint, sizeof s_endpoint, "inproc://client-%d-%d", (int)getpid(),
             ++counter);
    memset(&s_srv, 0, sizeof s_srv);
    s_srv.router = zsock_new(ZMQ_ROUTER);
    cr_assert_not_null(s_srv.router);
    zsock_set_linger(s_srv.router, 0);
    cr_assert_eq(zsock_bind(s_srv.router, "%s", s_endpoint), 0);
    s_srv.script = script;
    s_actor = zactor_new(s_server_actor, &s_srv);
    cr_assert_not_null(s_actor);
    s_client = eda_client_new(s_endpoint, "test-client");
    cr_assert_not_null(s_client);
}

/*  Joins the script and asserts that it saw what it expected. */
static void s_finish(void)
{
    zactor_destroy(&s_actor);
    cr_assert_str_eq(s_srv.failure, "", "server: %s", s_srv.failure);
}

static void s_fail(s_server_t *srv, const char *what)
{
    if (!srv->failure[0])
        snprintf(srv->failure, sizeof srv->failure, "%s", what);
}

/*  A request as the ROUTER sees it. */
typedef struct {
    zframe_t *identity;
    char id[EDA_NAME_MAX + 1];
    char type[EDA_NAME_MAX + 1];
} s_request_t;

/*  Waits for one request: 0, or -1 (recorded) on timeout or a bad one. */
static int s_recv(s_server_t *srv, s_request_t *req)
{
    memset(req, 0, sizeof *req);
    zpoller_t *poller = zpoller_new(srv->router, NULL);
    void *ready = zpoller_wait(poller, S_WAIT_MS);
    zpoller_destroy(&poller);
    if (!ready) {
        s_fail(srv, "no request came");
        return -1;
    }
    zmsg_t *msg = zmsg_recv(srv->router);
    if (!msg || zmsg_size(msg) != 2) {
        zmsg_destroy(&msg);
        s_fail(srv, "a request is [identity][envelope]");
        return -1;
    }
    req->identity = zmsg_pop(msg);
    zframe_t *body = zmsg_pop(msg);
    zmsg_destroy(&msg);
    eda_decoder_t *dec = eda_decoder_new();
    eda_envelope_t env;
    int rc = eda_decode(dec, zframe_data(body), zframe_size(body), &env, NULL, 0);
    if (rc == EDA_OK && env.kind == EDA_KIND_COMMAND) {
        memcpy(req->id, env.id, sizeof req->id);
        memcpy(req->type, env.type, sizeof req->type);
    } else
        s_fail(srv, "the request is not a command envelope");
    eda_decoder_destroy(&dec);
    zframe_destroy(&body);
    srv->requests++;
    return rc == EDA_OK ? 0 : -1;
}

/*  Packs an ok reply caused by `causation` (NULL: nil) with data {marker}. */
static void s_pack_reply(msgpack_sbuffer *buf, const char *type, const char *causation,
                         const char *marker)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = EDA_KIND_REPLY,
                        .type = type,
                        .id = "srv-1",
                        .source = "fake-service",
                        .ts = eda_now_us(),
                        .causation_id = causation,
                        .ok = 1};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 1);
    eda_pack_kv_str(&pk, "marker", marker);
}

/*  Sends [identity][body] (plus an extra frame when `extra`). */
static void s_send(s_server_t *srv, zframe_t *identity, const void *body, size_t len,
                   const char *extra)
{
    zmsg_t *msg = zmsg_new();
    zmsg_append(msg, &(zframe_t *){zframe_dup(identity)});
    zmsg_addmem(msg, body, len);
    if (extra)
        zmsg_addstr(msg, extra);
    zmsg_send(&msg, srv->router);
}

static void s_reply(s_server_t *srv, zframe_t *identity, const char *type,
                    const char *causation, const char *marker)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    s_pack_reply(&buf, type, causation, marker);
    s_send(srv, identity, buf.data, buf.size, NULL);
    msgpack_sbuffer_destroy(&buf);
}

/*  The client's side: begins a command of `type` with data {}. */
static void s_begin(const char *type)
{
    msgpack_packer *pk = eda_client_begin(s_client, type, NULL);
    msgpack_pack_map(pk, 0);
}

static void s_expect_marker(const eda_envelope_t *reply, const char *marker)
{
    char got[64] = "";
    cr_assert_eq(eda_get_str(&reply->data, "marker", got, sizeof got), 0);
    cr_assert_str_eq(got, marker);
}

/* --- a reply ----------------------------------------------------------------------- */

static void s_script_answer(s_server_t *srv, zsock_t *pipe)
{
    (void)pipe;
    s_request_t req;
    if (s_recv(srv, &req))
        return;
    if (strcmp(req.type, "Ping") != 0)
        s_fail(srv, "expected a Ping");
    s_reply(srv, req.identity, "Ping", req.id, "pong");
    zframe_destroy(&req.identity);
}

Test(client, call_returns_the_reply)
{
    s_start(s_script_answer);
    s_begin("Ping");
    eda_envelope_t reply;
    char why[256] = "";
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(reply.kind, EDA_KIND_REPLY);
    cr_assert_eq(reply.ok, 1);
    cr_assert_str_eq(reply.type, "Ping");
    cr_assert_str_eq(reply.causation_id, eda_client_last_id(s_client));
    s_expect_marker(&reply, "pong");
    s_finish();
    cr_assert_eq(s_srv.requests, 1);
}

/* --- a timeout -----------------------------------------------------------------------
 */

/*  Holds the first request until the client has given up on it (the test
    says "late" on the pipe), answers it then, twice (once with its id, once
    with a nil causation_id, which a client takes as its own), then answers
    the second request. */
static void s_script_late(s_server_t *srv, zsock_t *pipe)
{
    s_request_t first, second;
    if (s_recv(srv, &first))
        return;
    char *go = zstr_recv(pipe);
    bool late = go && strcmp(go, "late") == 0;
    zstr_free(&go);
    if (!late) {
        s_fail(srv, "expected 'late' on the pipe");
        zframe_destroy(&first.identity);
        return;
    }
    s_reply(srv, first.identity, "Ping", first.id, "late");
    s_reply(srv, first.identity, "Ping", NULL, "late-nil");
    if (s_recv(srv, &second) == 0) {
        srv->identity_changed = !zframe_eq(first.identity, second.identity);
        s_reply(srv, second.identity, "Ping", second.id, "fresh");
        zframe_destroy(&second.identity);
    }
    zframe_destroy(&first.identity);
}

Test(client, timeout_resets_so_a_late_reply_is_never_taken)
{
    s_start(s_script_late);
    s_begin("Ping");
    eda_envelope_t reply;
    char why[256] = "";
    int64_t start = zclock_mono();
    cr_assert_eq(eda_client_call(s_client, 200, &reply, why, sizeof why), -1);
    int64_t took = zclock_mono() - start;
    cr_assert_geq(took, 190, "gave up after %lld ms", (long long)took);
    cr_assert_lt(took, 2000, "gave up after %lld ms", (long long)took);
    cr_assert_neq(why[0], '\0', "no reason given");
    cr_assert_not_null(strstr(why, s_endpoint), "the reason names the endpoint: %s", why);

    zstr_send(s_actor, "late");
    s_begin("Ping");
    why[0] = '\0';
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), 0, "%s",
                 why);
    s_expect_marker(&reply, "fresh");
    cr_assert_str_eq(reply.causation_id, eda_client_last_id(s_client));
    s_finish();
    cr_assert(s_srv.identity_changed, "the socket was not reopened after the timeout");
}

/* --- a stale reply
 * ---------------------------------------------------------------------- */

/*  Two requests come (the first sent without waiting for its reply); both
    are answered in order, so the older reply arrives first. */
static void s_script_stale(s_server_t *srv, zsock_t *pipe)
{
    (void)pipe;
    s_request_t first, second;
    if (s_recv(srv, &first))
        return;
    if (s_recv(srv, &second) == 0) {
        s_reply(srv, first.identity, "Stats", first.id, "stale");
        s_reply(srv, second.identity, "Ping", second.id, "fresh");
        zframe_destroy(&second.identity);
    }
    zframe_destroy(&first.identity);
}

Test(client, a_stale_reply_is_skipped)
{
    s_start(s_script_stale);
    s_begin("Stats");
    cr_assert_eq(eda_client_send(s_client), 0);
    char older[EDA_NAME_MAX + 1];
    snprintf(older, sizeof older, "%s", eda_client_last_id(s_client));
    s_begin("Ping");
    cr_assert_str_neq(eda_client_last_id(s_client), older);
    eda_envelope_t reply;
    char why[256] = "";
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), 0, "%s",
                 why);
    s_expect_marker(&reply, "fresh");
    cr_assert_str_eq(reply.type, "Ping");
    s_finish();
}

/* --- refused replies
 * -------------------------------------------------------------------- */

/*  Answers the first request with garbage, the second with an event (not a
    reply), the third with a reply plus an extra frame, the fourth properly. */
static void s_script_bad(s_server_t *srv, zsock_t *pipe)
{
    (void)pipe;
    s_request_t req;
    if (s_recv(srv, &req))
        return;
    s_send(srv, req.identity, "\xc1not msgpack", 12, NULL);
    zframe_destroy(&req.identity);

    if (s_recv(srv, &req))
        return;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = EDA_KIND_EVENT,
                        .type = "Ping",
                        .id = "e-1",
                        .source = "fake-service",
                        .ts = eda_now_us(),
                        .causation_id = req.id,
                        .seq = 1,
                        .epoch = "a1b2c3d4e5f60718"};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 0);
    s_send(srv, req.identity, buf.data, buf.size, NULL);
    zframe_destroy(&req.identity);

    if (s_recv(srv, &req))
        return;
    msgpack_sbuffer_clear(&buf);
    s_pack_reply(&buf, "Ping", req.id, "two-frames");
    s_send(srv, req.identity, buf.data, buf.size, "extra");
    zframe_destroy(&req.identity);

    if (s_recv(srv, &req) == 0) {
        s_reply(srv, req.identity, "Ping", req.id, "fine");
        zframe_destroy(&req.identity);
    }
    msgpack_sbuffer_destroy(&buf);
}

Test(client, undecodable_non_reply_and_multi_frame_replies_are_refused)
{
    s_start(s_script_bad);
    eda_envelope_t reply;
    char why[256];

    s_begin("Ping");
    why[0] = '\0';
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), -1,
                 "garbage taken for a reply");
    cr_assert_not_null(strstr(why, "undecodable"), "%s", why);

    s_begin("Ping");
    why[0] = '\0';
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), -1,
                 "an event taken for a reply");
    cr_assert_neq(why[0], '\0');

    s_begin("Ping");
    why[0] = '\0';
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), -1,
                 "a two-frame reply was taken");
    cr_assert_neq(why[0], '\0');

    /* The extra frame was drained: the next call gets its own reply. */
    s_begin("Ping");
    why[0] = '\0';
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), 0, "%s",
                 why);
    s_expect_marker(&reply, "fine");
    s_finish();
}

/*  The server answers a command it cannot read with causation_id nil
    (docs/protocol.md section 3): the client takes that as its reply. */
static void s_script_nil(s_server_t *srv, zsock_t *pipe)
{
    (void)pipe;
    s_request_t req;
    if (s_recv(srv, &req))
        return;
    s_reply(srv, req.identity, "Unknown", NULL, "nil");
    zframe_destroy(&req.identity);
}

Test(client, a_reply_with_nil_causation_is_taken)
{
    s_start(s_script_nil);
    s_begin("Ping");
    eda_envelope_t reply;
    char why[256] = "";
    cr_assert_eq(eda_client_call(s_client, S_WAIT_MS, &reply, why, sizeof why), 0, "%s",
                 why);
    s_expect_marker(&reply, "nil");
    s_finish();
}

/* --- the async side
 * ------------------------------------------------------------------------ */

Test(client, recv_without_a_reply_returns_1)
{
    s_start(s_script_answer);
    eda_envelope_t reply;
    cr_assert_eq(eda_client_recv(s_client, &reply), 1);
    s_begin("Ping");
    cr_assert_eq(eda_client_send(s_client), 0);
    /* Poll the socket as a service loop does, then take the reply. */
    zpoller_t *poller = zpoller_new(eda_client_sock(s_client), NULL);
    void *ready = zpoller_wait(poller, S_WAIT_MS);
    zpoller_destroy(&poller);
    cr_assert_not_null(ready);
    cr_assert_eq(eda_client_recv(s_client, &reply), 0);
    s_expect_marker(&reply, "pong");
    cr_assert_eq(eda_client_recv(s_client, &reply), 1);
    s_finish();
}

Test(client, new_and_destroy)
{
    cr_assert_null(eda_client_new("nonsense", "x"));
    cr_assert_null(eda_client_new("bogus://x", "x"));
    eda_client_t *c = eda_client_new("inproc://client-nobody-here", "x");
    cr_assert_not_null(c);
    cr_assert_eq(eda_client_reset(c), 0);
    eda_client_destroy(&c);
    cr_assert_null(c);
    eda_client_destroy(&c);
    eda_client_destroy(NULL);
}

/* --- ids
 * --------------------------------------------------------------------------------- */

static int s_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

#define S_IDS    100000
#define S_ID_LEN (EDA_NAME_MAX + 1)

Test(client, new_id_is_unique_over_100000_calls)
{
    char(*ids)[S_ID_LEN] = malloc(S_IDS * S_ID_LEN);
    cr_assert_not_null(ids);
    for (int i = 0; i < S_IDS; i++) {
        eda_new_id(ids[i], S_ID_LEN);
        size_t n = strlen(ids[i]);
        cr_assert(n > 0 && n < S_ID_LEN, "id %d: '%s'", i, ids[i]);
    }
    qsort(ids, S_IDS, S_ID_LEN, s_cmp);
    for (int i = 1; i < S_IDS; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
    free(ids);
}

#define S_THREADS 4

static void *s_draw_ids(void *arg)
{
    char(*ids)[S_ID_LEN] = arg;
    for (int i = 0; i < S_IDS / S_THREADS; i++)
        eda_new_id(ids[i], S_ID_LEN);
    return NULL;
}

Test(client, new_id_is_unique_across_threads)
{
    char(*ids)[S_ID_LEN] = malloc(S_IDS * S_ID_LEN);
    cr_assert_not_null(ids);
    pthread_t threads[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        cr_assert_eq(
            pthread_create(&threads[t], NULL, s_draw_ids, ids + t * (S_IDS / S_THREADS)),
            0);
    for (int t = 0; t < S_THREADS; t++)
        pthread_join(threads[t], NULL);
    qsort(ids, S_IDS, S_ID_LEN, s_cmp);
    for (int i = 1; i < S_IDS; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
    free(ids);
}

/*  An endpoint where a socket of the wrong type listens (a PUB): libzmq
    drops the connection after the handshake, and a DEALER with no
    connection blocks in a plain send. The call still gives up on time. */
Test(client, a_peer_of_the_wrong_type_times_out_instead_of_hanging)
{
    zsock_t *pub = zsock_new(ZMQ_PUB);
    cr_assert_not_null(pub);
    int port = zsock_bind(pub, "tcp://127.0.0.1:*");
    cr_assert_gt(port, 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    s_client = eda_client_new(endpoint, "test-client");
    cr_assert_not_null(s_client);
    eda_envelope_t reply;
    char why[256] = "";
    for (int i = 0; i < 5; i++) {
        s_begin("Ping");
        int64_t start = zclock_mono();
        cr_assert_eq(eda_client_call(s_client, 300, &reply, why, sizeof why), -1);
        int64_t took = zclock_mono() - start;
        cr_assert_lt(took, 3000, "call %d gave up after %lld ms", i, (long long)took);
        cr_assert_not_null(strstr(why, endpoint), "the reason names the endpoint: %s",
                           why);
    }
    zsock_destroy(&pub);
}
