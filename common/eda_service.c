/*  eda_service: start and stop, the loop, and the delivery rules of DESIGN
    section 4 around each batch. Nothing leaves the process before the
    transaction that produced it commits: new events wait in the outbox,
    commands to peers in the command queue, replies in the reply queue, and
    all three are flushed right after COMMIT.
*/
#include "eda_service_impl.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <dirent.h>
#include <errno.h>
#include <sys/un.h>
#include <unistd.h>

/*  Counts the time one message took to handle, from `start` (usecs). */
void eda_svc_count_latency(eda_service_t *svc, int64_t start)
{
    uint64_t took = (uint64_t)(zclock_usecs() - start);
    svc->stats.handler_us_total += took;
    svc->stats.handled++;
    if (took > svc->stats.handler_us_max)
        svc->stats.handler_us_max = took;
    eda_hist_add(&svc->stats.handler_us, took);
}

/* --- transactions ---------------------------------------------------------- */

/*  Opens the batch's transaction on the first message that needs it. */
int eda_svc_batch_begin(eda_service_t *svc)
{
    if (svc->in_batch)
        return 0;
    if (eda_store_begin(svc->store)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot begin a transaction: %s",
                    eda_store_errmsg(svc->store));
        return -1;
    }
    svc->in_batch = true;
    return 0;
}

int eda_svc_unit_begin(eda_service_t *svc, eda_unit_t kind)
{
    if (eda_svc_batch_begin(svc) || eda_store_txn_lost(svc->store) ||
        (kind == EDA_UNIT_SAVEPOINT && eda_store_savepoint(svc->store)))
        return -1;
    svc->unit = kind;
    svc->unit_changes = eda_store_changes(svc->store);
    svc->outbox_mark = svc->outbox.size;
    svc->commands_mark = svc->commands.size;
    return 0;
}

void eda_svc_unit_end(eda_service_t *svc, bool keep)
{
    if (svc->unit == EDA_UNIT_SAVEPOINT &&
        (keep ? eda_store_release(svc->store) : eda_store_rollback_to(svc->store)))
        eda_log_msg(svc->log, EDA_LOG_ERROR, "savepoint: %s",
                    eda_store_errmsg(svc->store));
    if (keep)
        return;
    svc->outbox.size = svc->outbox_mark;
    svc->commands.size = svc->commands_mark;
    if (svc->unit == EDA_UNIT_BATCH && eda_store_changes(svc->store) != svc->unit_changes)
        svc->batch_undone = true;
}

/*  Publishes [topic][body] on the XPUB. With XPUB_NODROP a send fails when
    a subscriber's queue is full: it is counted (events_dropped) and the
    message sent again without NODROP, so that every other subscriber gets
    it. libzmq then passes that subscriber by, uncounted, until it reads
    again; it finds what it missed as a gap and fetches it by replay. */
static void s_publish(eda_service_t *svc, const void *topic, size_t tlen,
                      const void *body, size_t blen)
{
    void *pub = zsock_resolve(svc->pub);
    if (zmq_send(pub, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        svc->stats.events_dropped++;
        zsock_set_xpub_nodrop(svc->pub, 0);
        zmq_send(pub, topic, tlen, ZMQ_SNDMORE);
        zsock_set_xpub_nodrop(svc->pub, 1);
    }
    zmq_send(pub, body, blen, 0);
}

void eda_svc_publish_event(eda_service_t *svc, const eda_envelope_t *env,
                           const void *body, size_t blen)
{
    s_publish(svc, env->type, strlen(env->type), body, blen);
    eda_log_flow(svc->log, EDA_FLOW_PUBLISHED, env, NULL);
    svc->stats.events_published++;
}

/*  Publishes the batch's events, unless eda_fence holds them back (they
    are in the log, and go out from there when released). Each one's flow
    line is written from its flow record and its data as packed. */
static void s_publish_outbox(eda_service_t *svc)
{
    const char *p = svc->outbox.data, *end = p + svc->outbox.size;
    bool log = eda_log_enabled(svc->log, EDA_LOG_INFO);
    while (p < end && !svc->fenced) {
        uint32_t blen;
        eda_flow_rec_t flow;
        const char *body = eda_arena_get(&p, &blen);
        eda_arena_get_flow(&p, &flow);
        s_publish(svc, flow.type, strlen(flow.type), body, blen);
        svc->stats.events_published++;
        if (!log)
            continue;
        eda_flow_head_t head = {.type = flow.type,
                                .order = flow.order,
                                .source = svc->def->name,
                                .has_seq = true,
                                .seq = flow.seq};
        eda_log_flow_packed(svc->log, EDA_FLOW_PUBLISHED, &head, body + flow.data,
                            blen - flow.data);
    }
    svc->outbox.size = 0;
}

/*  Commits the batch, then publishes, sends the commands and replies. On a
    failed commit no event or command leaves, the peers' checkpoints are rewound (their
   events come again), and every command of the batch is answered INTERNAL, so that its
    client can retry (PlaceOrder is idempotent by request_id). */
static void s_batch_end(eda_service_t *svc)
{
    if (!svc->in_batch) {
        eda_intake_send_replies(svc); /* commands refused before any handler ran */
        return;
    }
    svc->in_batch = false;
    /* A transaction SQLite rolled back itself must not get its checkpoints
       written: outside a transaction they would commit on their own. */
    int rc = eda_store_txn_lost(svc->store) || svc->batch_undone ? -1 : 0;
    for (size_t i = 0; i < svc->npeers && rc == 0; i++) {
        eda_peer_t *peer = &svc->peers[i];
        if (peer->dirty)
            rc = eda_store_inbox_put(svc->store, peer->name, peer->epoch, peer->last_seq);
    }
    if (rc == 0) {
        /* Timed: its sync (and, past the WAL's cap, a checkpoint) is where a
           saga's latency goes between handlers. */
        int64_t start = zclock_usecs();
        rc = eda_store_commit(svc->store);
        uint64_t took = (uint64_t)(zclock_usecs() - start);
        eda_hist_add(&svc->stats.commit_us, took);
        if (took > svc->stats.commit_us_max)
            svc->stats.commit_us_max = took;
    } else
        eda_store_rollback(svc->store);
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_peer_t *peer = &svc->peers[i];
        if (rc == 0) {
            memcpy(peer->committed_epoch, peer->epoch, sizeof peer->epoch);
            peer->committed_seq = peer->last_seq;
        } else {
            memcpy(peer->epoch, peer->committed_epoch, sizeof peer->epoch);
            peer->last_seq = peer->committed_seq;
        }
        peer->dirty = false;
    }
    if (rc) {
        svc->stats.commits_failed++;
        if (svc->batch_undone)
            eda_log_msg(svc->log, EDA_LOG_ERROR,
                        "batch undone: a handler failed after it wrote (its peers' "
                        "events come again, its commands are answered INTERNAL)");
        else
            eda_log_msg(svc->log, EDA_LOG_ERROR, "commit failed, batch undone: %s",
                        eda_store_errmsg(svc->store));
        svc->batch_undone = false;
        svc->outbox.size = 0;
        svc->commands.size = 0;
        eda_intake_fail_replies(svc);
        eda_intake_send_replies(svc);
        return;
    }
    s_publish_outbox(svc);
    eda_peers_send_commands(svc);
    eda_intake_send_replies(svc);
}

/* --- the loop ------------------------------------------------------------ */

static void s_heartbeat(eda_service_t *svc)
{
    char id[EDA_NAME_MAX + 1];
    eda_new_id(id, sizeof id);
    msgpack_sbuffer_clear(&svc->tmp);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &svc->tmp, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = EDA_KIND_HEARTBEAT,
                        .type = "Heartbeat",
                        .id = id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .epoch = eda_store_epoch(svc->store)};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 3);
    eda_pack_kv_u64(&pk, "last_seq", eda_fence_visible(svc));
    eda_fence_pack_applied(svc, &pk);
    s_publish(svc, "Heartbeat", 9, svc->tmp.data, svc->tmp.size);
}

/*  Frees a buffer that a burst grew past EDA_SVC_BUFFER_KEEP, so memory stays
    flat after it. */
static void s_shrink(msgpack_sbuffer *buf)
{
    if (buf->alloc > EDA_SVC_BUFFER_KEEP) {
        msgpack_sbuffer_destroy(buf);
        msgpack_sbuffer_init(buf);
    }
}

/*  Poll items: the actor pipe, the XPUB (subscriptions to drain), then
    S_FIRST_READ on what a batch reads: the ROUTER, and per peer its SUB,
    its replay DEALER and its command DEALER. */
enum { S_PIPE, S_PUB, S_FIRST_READ };
#define S_FDS_SPARE 4 /* descriptors short of the limit that count as out */
#define S_ITEMS     (S_FIRST_READ + 1 + 3 * EDA_PEERS_MAX)

/*  Reads one message from poll item i without waiting. 1 read, 0 none. */
static int s_recv(eda_service_t *svc, size_t i)
{
    if (i == S_FIRST_READ)
        return eda_intake_recv(svc);
    eda_peer_t *peer = &svc->peers[(i - S_FIRST_READ - 1) / 3];
    switch ((i - S_FIRST_READ - 1) % 3) {
    case 0:
        return eda_peers_recv_event(svc, peer);
    case 1:
        return eda_peers_recv_replay(svc, peer);
    default:
        return eda_peers_recv_reply(svc, peer);
    }
}

/*  Drops the subscription messages an XPUB hands up: nobody reads them, and
    unread they would pile up. */
static void s_drain_subscriptions(eda_service_t *svc)
{
    char buf[256];
    void *pub = zsock_resolve(svc->pub);
    while (zmq_recv(pub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;
}

/*  Runs each of the service's timers that is due as one unit of work in the
    batch. Returns how many ran. */
static uint64_t s_run_timers(eda_service_t *svc, int64_t now)
{
    uint64_t ran = 0;
    for (size_t i = 0; i < svc->ntimers; i++) {
        const eda_timer_t *timer = &svc->def->timers[i];
        if (now < svc->timer_next_ms[i] || eda_store_txn_lost(svc->store) ||
            svc->batch_undone)
            continue;
        svc->timer_next_ms[i] = now + timer->interval_ms;
        eda_ctx_t ctx = {.svc = svc, .command_peer = -1};
        if (eda_svc_unit_begin(svc, EDA_UNIT_BATCH))
            continue;
        int rc = timer->fn(svc->state, &ctx);
        eda_svc_unit_end(svc, rc == 0);
        if (rc)
            eda_log_msg(svc->log, EDA_LOG_ERROR, "timer %zu failed: %s", i,
                        eda_store_errmsg(svc->store));
        ran++;
    }
    return ran;
}

/*  Handles the messages that are ready, up to EDA_SVC_BATCH_MAX, and the
    timers that are due, in one transaction. Only the sockets the poll found
    readable are read, round robin until each is empty, so that no socket
    starves the others and no empty one costs a system call. */
static void s_batch(eda_service_t *svc, const zmq_pollitem_t *items, size_t n)
{
    bool ready[S_ITEMS];
    for (size_t i = S_FIRST_READ; i < n; i++)
        ready[i] = items[i].revents & ZMQ_POLLIN;
    uint64_t count = 0;
    bool any = true;
    /* A transaction SQLite rolled back on its own, or a unit that failed
       after it wrote, ends the batch: it does not commit, and everything
       in it is undone and comes again. */
    while (any && count < EDA_SVC_BATCH_MAX && svc->replies.size < EDA_SVC_QUEUE_SOFT &&
           !eda_store_txn_lost(svc->store) && !svc->batch_undone) {
        any = false;
        for (size_t i = S_FIRST_READ; i < n; i++) {
            if (!ready[i])
                continue;
            int got = s_recv(svc, i);
            ready[i] = got;
            any |= got;
            count += (uint64_t)got;
        }
    }
    uint64_t timers = s_run_timers(svc, zclock_mono());
    if (!count && !timers)
        return;
    s_batch_end(svc);
    s_shrink(&svc->replies);
    s_shrink(&svc->outbox);
    s_shrink(&svc->commands);
    s_shrink(&svc->tmp);
    s_shrink(&svc->reply_buf);
    if (!count)
        return;
    svc->stats.batches++;
    svc->stats.messages += count;
    if (count > svc->stats.batch_max)
        svc->stats.batch_max = count;
}

/*  Counts the descriptors in use, once a heartbeat. Out of them, libzmq
    cannot accept new connections (it keeps trying): the service says so
    once, goes on serving the connections it has, and says when it is
    below the limit again. */
static void s_watch_descriptors(eda_service_t *svc)
{
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files))
        return;
    DIR *dir = opendir("/proc/self/fd");
    uint64_t used = 0;
    if (dir) {
        while (readdir(dir))
            used++;
        closedir(dir);
        used = used > 3 ? used - 3 : 0; /* ".", ".." and the one reading */
    } else if (errno == EMFILE)
        used = (uint64_t)files.rlim_cur; /* not even one to look with */
    else
        return;
    svc->stats.fds_used = used;
    svc->stats.fds_limit = (uint64_t)files.rlim_cur;
    bool full = used + S_FDS_SPARE >= (uint64_t)files.rlim_cur;
    if (full && !svc->fds_full)
        eda_log_msg(svc->log, EDA_LOG_ERROR,
                    "%llu of %llu file descriptors in use: new connections are refused "
                    "until some close",
                    (unsigned long long)used, (unsigned long long)files.rlim_cur);
    else if (!full && svc->fds_full)
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "%llu of %llu file descriptors in use: accepting connections again",
                    (unsigned long long)used, (unsigned long long)files.rlim_cur);
    svc->fds_full = full;
}

/*  The engine's own timers: the heartbeat, replay timeouts and retention.
    Returns the monotonic time of the next one. */
static int64_t s_timers(eda_service_t *svc)
{
    int64_t now = zclock_mono();
    if (now >= svc->next_heartbeat_ms) {
        char lost[600];
        if (eda_store_check(svc->store, lost, sizeof lost)) {
            eda_log_msg(svc->log, EDA_LOG_ERROR, "%s: stopping", lost);
            svc->terminated = true;          /* not a poll failure: no such line */
            zstr_send(svc->pipe, "$FAILED"); /* eda_service_main exits 1 */
        }
        if (eda_checkpointer_failed(eda_store_checkpointer(svc->store), lost,
                                    sizeof lost))
            eda_log_msg(svc->log, EDA_LOG_ERROR, "%s (the WAL grows until one succeeds)",
                        lost);
        s_watch_descriptors(svc);
        s_heartbeat(svc);
        svc->next_heartbeat_ms = now + EDA_SVC_HEARTBEAT_MS;
    }
    int64_t next = eda_peers_timers(svc, now);
    int64_t retain = eda_retain_timers(svc, now);
    eda_fence_timers(svc, now);
    if (retain < next)
        next = retain;
    return next < svc->next_heartbeat_ms ? next : svc->next_heartbeat_ms;
}

/*  How long the poll may wait: until the engine's or a service timer's
    next time. */
static long s_poll_timeout(eda_service_t *svc, int64_t next)
{
    for (size_t i = 0; i < svc->ntimers; i++)
        if (svc->timer_next_ms[i] < next)
            next = svc->timer_next_ms[i];
    int64_t now = zclock_mono();
    return next > now ? (long)(next - now) : 0;
}

/*  Adds poll items for a socket that may be absent (a client whose reset
    failed, a peer the service sends no commands): fd -1 is skipped. */
static zmq_pollitem_t s_item(zsock_t *sock)
{
    return sock ? (zmq_pollitem_t){zsock_resolve(sock), 0, ZMQ_POLLIN, 0}
                : (zmq_pollitem_t){NULL, -1, 0, 0};
}

static void s_loop(eda_service_t *svc)
{
    zmq_pollitem_t items[S_ITEMS + EDA_PEERS_MAX]; /* and eda_retain's SUBs */
    int64_t next = zclock_mono();
    while (!svc->terminated) {
        size_t n = 0;
        items[n++] = s_item(svc->pipe);
        items[n++] = s_item(svc->pub);
        items[n++] = s_item(svc->router);
        for (size_t i = 0; i < svc->npeers; i++) {
            eda_peer_t *peer = &svc->peers[i];
            items[n++] = s_item(peer->sub);
            items[n++] = s_item(eda_client_sock(peer->client));
            items[n++] = s_item(peer->commands ? eda_client_sock(peer->commands) : NULL);
        }
        size_t batch_items = n;
        for (size_t i = 0; i < svc->nwatch; i++)
            items[n++] = s_item(eda_retain_sock(svc, i));
        eda_log_flush(svc->log); /* the last batch's lines, before waiting */
        /* Replies waiting for a slow client are tried again soon. */
        long timeout = s_poll_timeout(svc, next);
        if (eda_intake_flush(svc) && timeout > EDA_SVC_BACKLOG_MS)
            timeout = EDA_SVC_BACKLOG_MS;
        int rc = zmq_poll(items, (int)n, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc < 0)
            continue;
        if (items[S_PIPE].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(svc->pipe);
            if (!command || streq(command, "$TERM"))
                svc->terminated = true;
            zstr_free(&command);
        }
        if (items[S_PUB].revents & ZMQ_POLLIN)
            s_drain_subscriptions(svc);
        s_batch(svc, items, batch_items);
        for (size_t i = 0; i < svc->nwatch; i++)
            if (items[batch_items + i].revents & ZMQ_POLLIN)
                while (eda_retain_recv(svc, i))
                    ;
        next = s_timers(svc);
    }
}

/* --- start and stop --------------------------------------------------------- */

/*  True when another process accepts connections on ipc:// `endpoint`: a
    bind there would silently take its socket file over (TCP refuses a
    second bind by itself). A file nobody listens on is stale: libzmq
    replaces it. */
static bool s_ipc_taken(const char *endpoint)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strncmp(endpoint, "ipc://", 6) != 0 ||
        strlen(endpoint + 6) >= sizeof addr.sun_path)
        return false;
    strcpy(addr.sun_path, endpoint + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool taken = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0)
        close(fd);
    return taken;
}

/*  What to do about a failed bind, for the log line: "" when nothing useful
    can be said. */
static const char *s_bind_hint(bool bind, int err)
{
    if (!bind)
        return "";
    switch (err) {
    case EADDRINUSE:
        return " (another service, or an earlier run, holds it: stop it, or give "
               "another port with --events/--commands)";
    case EADDRNOTAVAIL:
        return " (no interface of this host has that address: use 127.0.0.1, 0.0.0.0 "
               "or one of its addresses)";
    case ENOENT:
        return " (the folder of the ipc:// path does not exist: create it)";
    case EACCES:
        return " (not allowed: a port below 1024, or a folder this user cannot write)";
    default:
        return "";
    }
}

zsock_t *eda_svc_socket(eda_service_t *svc, int type, const char *endpoint, bool bind,
                        const char *server)
{
    if (bind && s_ipc_taken(endpoint)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR,
                    "cannot bind %s: another process is bound to it (another instance "
                    "of this service? stop it, or give other endpoints)",
                    endpoint);
        return NULL;
    }
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, type == ZMQ_XPUB ? 200 : 0);
    zsock_set_maxmsgsize(sock, EDA_MAX_MSG);
    zsock_set_sndhwm(sock, type == ZMQ_ROUTER ? EDA_SVC_ROUTER_HWM : EDA_SVC_HWM);
    /* ZMTP heartbeats on the connections it makes: one whose other end
       vanished without closing it (a host crash, a cut link) is dropped and
       made again. Not on its own bound sockets: a client or subscriber that
       does not read would miss the pongs and be cut, rather than kept
       within its bounds and counted (section 2 of the protocol). */
    if (!bind) {
        zsock_set_heartbeat_ivl(sock, EDA_SVC_HEARTBEAT_MS);
        zsock_set_heartbeat_timeout(sock, EDA_SVC_SILENCE_MS);
    }
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1); /* a full client: EAGAIN, see eda_intake */
    if (type == ZMQ_XPUB)
        zsock_set_xpub_nodrop(sock, 1); /* a full subscriber: counted, see s_publish */
    zsock_set_rcvhwm(sock, type == ZMQ_ROUTER ? EDA_SVC_COMMAND_HWM : EDA_SVC_HWM);
    if (type == ZMQ_SUB)
        zsock_set_subscribe(sock, "");
    char why[512];
    if (svc->keys && bind)
        eda_keys_server(svc->keys, sock);
    else if (svc->keys && eda_keys_client(svc->keys, sock, server, why, sizeof why)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "%s", why);
        zsock_destroy(&sock);
        return NULL;
    }
    int rc =
        bind ? zsock_bind(sock, "%s", endpoint) : zsock_connect(sock, "%s", endpoint);
    if (rc == -1) {
        int err = errno;
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot %s %s: %s%s",
                    bind ? "bind" : "connect to", endpoint, zmq_strerror(err),
                    s_bind_hint(bind, err));
        zsock_destroy(&sock);
    } else if (bind && !svc->keys && !eda_endpoint_is_local(endpoint))
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "%s is reachable from other hosts and --keys is not set: anyone who "
                    "can reach it can command, subscribe and publish",
                    endpoint);
    return sock;
}

int eda_svc_secure_client(eda_service_t *svc, eda_client_t *client, const char *server)
{
    if (!svc->keys || eda_client_secure(client, svc->keys, server) == 0)
        return 0;
    eda_log_msg(svc->log, EDA_LOG_ERROR,
                "cannot speak CURVE to %s: no readable %s/%s.cert", server, svc->cfg.keys,
                server);
    return -1;
}

/*  Loads the service's keys and starts the authenticator, when --keys is
    set. 0, or -1 (logged). */
static int s_secure(eda_service_t *svc)
{
    char why[1024];
    if (!svc->cfg.keys[0])
        return 0;
    svc->keys = eda_keys_new(svc->cfg.keys, svc->def->name, why, sizeof why);
    if (svc->keys && eda_keys_authenticate(svc->keys, why, sizeof why) == 0)
        return 0;
    eda_log_msg(svc->log, EDA_LOG_ERROR, "%s", why);
    return -1;
}

/*  Unbinds, then closes: libzmq frees an endpoint that is only closed a
    moment later, on its I/O thread, so binding it again at once (a restart)
    could fail with "Address already in use". */
static void s_close_bound(zsock_t **sock_p)
{
    if (!*sock_p)
        return;
    char *endpoint = zsock_last_endpoint(*sock_p);
    if (endpoint && *endpoint)
        zsock_unbind(*sock_p, "%s", endpoint);
    zstr_free(&endpoint);
    zsock_destroy(sock_p);
}

static void s_destroy(eda_service_t **self_p)
{
    eda_service_t *svc = *self_p;
    if (!svc)
        return;
    if (svc->state && svc->def->stop)
        svc->def->stop(&svc->state);
    eda_peers_close(svc);
    eda_retain_close(svc);
    eda_intake_close(svc);
    s_close_bound(&svc->router);
    s_close_bound(&svc->pub);
    eda_store_destroy(&svc->store);
    eda_keys_destroy(&svc->keys);
    eda_decoder_destroy(&svc->decoder);
    eda_decoder_destroy(&svc->log_decoder);
    msgpack_sbuffer_destroy(&svc->reply_buf);
    msgpack_sbuffer_destroy(&svc->event_buf);
    msgpack_sbuffer_destroy(&svc->command_buf);
    msgpack_sbuffer_destroy(&svc->tmp);
    msgpack_sbuffer_destroy(&svc->outbox);
    msgpack_sbuffer_destroy(&svc->replies);
    msgpack_sbuffer_destroy(&svc->commands);
    eda_log_destroy(&svc->log);
    free(svc);
    *self_p = NULL;
}

static eda_service_t *s_new(const eda_service_def_t *def, const eda_config_t *cfg,
                            zsock_t *pipe)
{
    eda_service_t *svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->def = def;
    svc->cfg = *cfg;
    if (!svc->cfg.options) /* a caller that declared none gets the defaults */
        eda_config_declare(&svc->cfg, def->options);
    svc->pipe = pipe;
    svc->started_ms = zclock_mono();
    msgpack_sbuffer_init(&svc->reply_buf);
    msgpack_sbuffer_init(&svc->event_buf);
    msgpack_sbuffer_init(&svc->command_buf);
    msgpack_sbuffer_init(&svc->tmp);
    msgpack_sbuffer_init(&svc->outbox);
    msgpack_sbuffer_init(&svc->replies);
    msgpack_sbuffer_init(&svc->commands);
    svc->backlogs = zhashx_new();
    zhashx_set_destructor(svc->backlogs, eda_intake_backlog_destroy);
    msgpack_packer_init(&svc->reply_pk, &svc->reply_buf, msgpack_sbuffer_write);
    msgpack_packer_init(&svc->event_pk, &svc->event_buf, msgpack_sbuffer_write);
    msgpack_packer_init(&svc->command_pk, &svc->command_buf, msgpack_sbuffer_write);
    for (const eda_timer_t *t = def->timers; t && t->fn; t++) {
        assert(svc->ntimers < EDA_SVC_TIMERS_MAX);
        svc->timer_next_ms[svc->ntimers++] = svc->started_ms + t->interval_ms;
    }
    svc->log = eda_log_new(def->name, cfg->log_format, cfg->log_level, stderr);
    if (svc->log && def->colour)
        eda_log_set_colour(svc->log, def->colour);
    svc->decoder = eda_decoder_new();
    svc->log_decoder = eda_decoder_new();
    if (!svc->log || !svc->decoder || !svc->log_decoder) {
        s_destroy(&svc);
        return NULL;
    }
    char why[512];
    const eda_endpoint_t *self = eda_config_peer(cfg, def->name);
    svc->store = eda_store_new(cfg->db, def->schema, cfg->sync, why, sizeof why);
    if (!svc->store)
        eda_log_msg(svc->log, EDA_LOG_ERROR, "%s", why);
    else if (!self)
        eda_log_msg(svc->log, EDA_LOG_ERROR, "no endpoints for %s", def->name);
    else if (s_secure(svc) == 0 &&
             (svc->pub = eda_svc_socket(svc, ZMQ_XPUB, self->events, true, NULL)) &&
             (svc->router =
                  eda_svc_socket(svc, ZMQ_ROUTER, self->commands, true, NULL)) &&
             eda_peers_open(svc) == 0 && eda_retain_open(svc) == 0 &&
             eda_builtins_index_log(svc) == 0) {
        if ((svc->state = def->start(svc)))
            return svc;
        eda_log_msg(svc->log, EDA_LOG_ERROR, "%s could not start (database: %s)",
                    def->name, eda_store_errmsg(svc->store));
    }
    s_destroy(&svc);
    return NULL;
}

void eda_service_actor(zsock_t *pipe, void *args)
{
    eda_service_args_t *a = args;
    eda_service_t *svc = s_new(a->def, a->cfg, pipe);
    a->status = svc ? 0 : -1;
    zsock_signal(pipe, 0);
    if (!svc)
        return;
    eda_log_msg(svc->log, EDA_LOG_INFO, "ready: events %s, commands %s, db %s, epoch %s",
                eda_config_peer(&svc->cfg, svc->def->name)->events,
                eda_config_peer(&svc->cfg, svc->def->name)->commands, svc->cfg.db,
                eda_store_epoch(svc->store));
    eda_fence_start(svc);
    for (size_t i = 0; i < svc->npeers; i++)
        eda_peers_request_replay(svc, &svc->peers[i]); /* catch up first */
    svc->next_heartbeat_ms = zclock_mono();
    s_loop(svc);
    s_batch_end(svc);
    if (!svc->terminated) {
        /* The loop broke on its own: tell whoever waits for the actor. */
        eda_log_msg(svc->log, EDA_LOG_ERROR, "poll failed: %s", zmq_strerror(errno));
        zstr_send(svc->pipe, "$FAILED");
    }
    eda_log_msg(svc->log, EDA_LOG_INFO, "stopped");
    s_destroy(&svc);
}

int eda_service_main(const eda_service_def_t *def, int argc, char **argv,
                     const char *usage)
{
    eda_config_t cfg;
    char why[512];
    int rc = eda_config_from_args(&cfg, def->name, def->options, argc, argv, usage, why,
                                  sizeof why);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", def->name, why);
        return 2;
    }
    /* Every connection costs a descriptor: take all the system allows. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    /* Threads started from here on (the actor, libzmq's I/O threads) inherit
       a mask without SIGINT and SIGTERM, so the signal reaches this thread and
       interrupts its wait below. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    zsys_init();
    zsys_set_logstream(NULL); /* czmq's own chatter is not our event flow */
    eda_service_args_t args = {.def = def, .cfg = &cfg};
    zactor_t *actor = zactor_new(eda_service_actor, &args);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (!actor || args.status != 0) {
        zactor_destroy(&actor);
        return 1;
    }
    /* The actor stops on $TERM: wait here until a signal says so, or the
       actor says it failed. */
    int exit_code = 0;
    while (!zsys_interrupted && exit_code == 0) {
        char *msg = zstr_recv(actor);
        if (!msg)
            break;
        if (streq(msg, "$FAILED"))
            exit_code = 1;
        zstr_free(&msg);
    }
    zactor_destroy(&actor);
    return exit_code;
}
