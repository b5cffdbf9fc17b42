/*  eda_service: the loop shared by every service, and the delivery rules of
    DESIGN section 4. Nothing leaves the process before the transaction that
    produced it commits: new events wait in the outbox, replies in the reply
    queue, and both are flushed right after COMMIT.

    Queues in memory (byte arenas, reused across batches):
      outbox   [u32 type_len][type][u32 body_len][body] per event
      replies  [u32 nframes] then [u32 len][bytes] per frame, per reply
*/
#include "eda_service.h"

#include "eda_client.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#define S_BATCH_MAX      512       /* messages handled in one transaction */
#define S_FRAMES_MAX     16        /* frames in one command message */
#define S_ROUTING_MAX    255       /* bytes in one routing frame */
#define S_QUEUE_SOFT     (4 << 20) /* a batch ends once its replies pass this */
#define S_BUFFER_KEEP    (8 << 20) /* buffers grown past this are freed after a batch */
#define S_COMMAND_HWM    10000     /* commands queued per client connection */
#define S_REPLAY_LIMIT   1000      /* events asked for per ReplayEvents */
#define S_REPLAY_BYTES   (512 << 10)
#define S_HEARTBEAT_MS   1000
#define S_REPLAY_TIMEOUT 1000 /* first wait for a ReplayEvents answer, doubling */
#define S_REPLAY_BACKOFF 8000 /* up to this while the peer stays silent */
#define S_HWM            100000

typedef struct {
    char name[64];
    zsock_t *sub;
    eda_client_t *client; /* DEALER to the peer's commands, for replay */
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq; /* last applied, this transaction included */
    char committed_epoch[EDA_NAME_MAX + 1];
    uint64_t committed_seq;
    bool dirty; /* checkpoint to write before commit */
    bool replay_pending;
    int64_t replay_sent_ms;
    int64_t replay_wait_ms; /* how long this request may take */
    uint64_t replay_after;
    char replay_id[EDA_NAME_MAX + 1];
    bool behind; /* its log went backwards: reported once */
} s_peer_t;

typedef struct {
    uint64_t commands, replies, events_published, events_applied, events_ignored;
    uint64_t duplicates, gaps, gaps_repaired, replays_requested, bad_input;
    uint64_t batches, messages, batch_max, handler_us_total, handler_us_max, handled;
    uint64_t replies_dropped, commits_failed;
} s_stats_t;

struct eda_ctx {
    eda_service_t *svc;
    const eda_envelope_t *msg;
    bool replied;
    bool reply_ok;
    bool emitting;
    char emit_type[EDA_NAME_MAX + 1];
};

struct eda_service {
    const eda_service_def_t *def;
    eda_config_t cfg;
    eda_log_t *log;
    eda_store_t *store;
    eda_decoder_t *decoder;     /* incoming messages */
    eda_decoder_t *log_decoder; /* our own output, for the flow log */
    zsock_t *pipe, *router, *pub;
    s_peer_t peers[EDA_PEERS_MAX];
    size_t npeers;
    void *state;
    msgpack_sbuffer reply_buf, event_buf, tmp;
    msgpack_packer reply_pk, event_pk;
    msgpack_sbuffer outbox, replies;
    size_t outbox_mark; /* outbox size at the message's savepoint */
    bool in_batch;
    bool terminated;
    int64_t started_ms, next_heartbeat_ms;
    s_stats_t stats;
};

static void s_arena_u32(msgpack_sbuffer *a, uint32_t v)
{
    msgpack_sbuffer_write(a, (const char *)&v, sizeof v);
}

static uint32_t s_read_u32(const char **p)
{
    uint32_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/*  Appends one record to an arena: [u32 len][bytes]. */
static void s_arena_put(msgpack_sbuffer *a, const void *data, size_t len)
{
    s_arena_u32(a, (uint32_t)len);
    msgpack_sbuffer_write(a, data, len);
}

/*  Reads the record at *p, moving *p past it: returns its bytes. */
static const char *s_arena_get(const char **p, uint32_t *len)
{
    *len = s_read_u32(p);
    const char *data = *p;
    *p += *len;
    return data;
}

/* --- handler context ------------------------------------------------------ */

const eda_envelope_t *eda_ctx_msg(eda_ctx_t *ctx)
{
    return ctx->msg;
}

eda_store_t *eda_ctx_store(eda_ctx_t *ctx)
{
    return ctx->svc->store;
}

eda_store_t *eda_service_store(eda_service_t *svc)
{
    return svc->store;
}

eda_log_t *eda_ctx_log(eda_ctx_t *ctx)
{
    return ctx->svc->log;
}

eda_log_t *eda_service_log(eda_service_t *svc)
{
    return svc->log;
}

const eda_config_t *eda_service_config(eda_service_t *svc)
{
    return &svc->cfg;
}

static void s_reply_header(eda_ctx_t *ctx, bool ok)
{
    eda_service_t *svc = ctx->svc;
    char id[EDA_NAME_MAX + 1];
    eda_new_id(id, sizeof id);
    msgpack_sbuffer_clear(&svc->reply_buf);
    eda_header_t hdr = {.kind = EDA_KIND_REPLY,
                        .type = ctx->msg->type[0] ? ctx->msg->type : "Unknown",
                        .id = id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .correlation_id = ctx->msg->correlation_id,
                        .causation_id = ctx->msg->id,
                        .ok = ok};
    eda_pack_header(&svc->reply_pk, &hdr);
    ctx->replied = true;
    ctx->reply_ok = ok;
}

msgpack_packer *eda_ctx_reply(eda_ctx_t *ctx)
{
    s_reply_header(ctx, true);
    return &ctx->svc->reply_pk;
}

int eda_ctx_error(eda_ctx_t *ctx, eda_error_t code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    s_reply_header(ctx, false);
    eda_pack_error(&ctx->svc->reply_pk, code, message);
    return 0;
}

msgpack_packer *eda_ctx_emit(eda_ctx_t *ctx, const char *type, const char *order_id)
{
    eda_service_t *svc = ctx->svc;
    assert(!ctx->emitting);
    uint64_t seq = eda_store_next_seq(svc->store);
    char id[EDA_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s-%llu", eda_store_epoch(svc->store),
             (unsigned long long)seq);
    msgpack_sbuffer_clear(&svc->event_buf);
    eda_header_t hdr = {.kind = EDA_KIND_EVENT,
                        .type = type,
                        .id = id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .correlation_id = order_id,
                        .causation_id = ctx->msg ? ctx->msg->id : NULL,
                        .seq = seq,
                        .epoch = eda_store_epoch(svc->store)};
    eda_pack_header(&svc->event_pk, &hdr);
    snprintf(ctx->emit_type, sizeof ctx->emit_type, "%s", type);
    ctx->emitting = true;
    return &svc->event_pk;
}

int eda_ctx_emit_end(eda_ctx_t *ctx)
{
    eda_service_t *svc = ctx->svc;
    assert(ctx->emitting);
    ctx->emitting = false;
    msgpack_sbuffer *ev = &svc->event_buf;
    const char *type = ctx->emit_type;
    if (eda_store_append(svc->store, type, ev->data, ev->size)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot log event %s: %s", type,
                    eda_store_errmsg(svc->store));
        return -1;
    }
    s_arena_put(&svc->outbox, type, strlen(type));
    s_arena_put(&svc->outbox, ev->data, ev->size);
    return 0;
}

int eda_ctx_choreography_order(eda_ctx_t *ctx, char *order_id, size_t size)
{
    const msgpack_object *data = &ctx->msg->data;
    char saga[32] = "";
    if (eda_get_str(data, "order_id", order_id, size) != 0 || !order_id[0])
        return -1;
    int has_saga = eda_get_str(data, "saga", saga, sizeof saga);
    if (has_saga < 0)
        return -1;
    return has_saga == 1 || streq(saga, "choreography") ? 1 : 0;
}

int eda_ctx_bad_event(eda_ctx_t *ctx, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    ctx->svc->stats.bad_input++;
    eda_log_msg(ctx->svc->log, EDA_LOG_WARN, "skipped %s #%llu from %s: %s",
                ctx->msg->type, (unsigned long long)ctx->msg->seq, ctx->msg->source, why);
    return 0;
}

/*  Counts the time one message took to handle, from `start` (usecs). */
static void s_count_latency(eda_service_t *svc, int64_t start)
{
    uint64_t took = (uint64_t)(zclock_usecs() - start);
    svc->stats.handler_us_total += took;
    svc->stats.handled++;
    if (took > svc->stats.handler_us_max)
        svc->stats.handler_us_max = took;
}

/* --- transactions ---------------------------------------------------------- */

/*  Opens the batch's transaction on the first message that needs it. */
static int s_batch_begin(eda_service_t *svc)
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

/*  Starts one message's unit of work: a savepoint. */
static int s_unit_begin(eda_service_t *svc)
{
    if (s_batch_begin(svc) || eda_store_txn_lost(svc->store) ||
        eda_store_savepoint(svc->store))
        return -1;
    svc->outbox_mark = svc->outbox.size;
    return 0;
}

/*  Ends one message's unit of work: keeps it, or undoes its changes and the
    events it emitted. */
static void s_unit_end(eda_service_t *svc, bool keep)
{
    if (keep ? eda_store_release(svc->store) : eda_store_rollback_to(svc->store))
        eda_log_msg(svc->log, EDA_LOG_ERROR, "savepoint: %s",
                    eda_store_errmsg(svc->store));
    if (!keep)
        svc->outbox.size = svc->outbox_mark;
}

static void s_publish_outbox(eda_service_t *svc)
{
    void *pub = zsock_resolve(svc->pub);
    const char *p = svc->outbox.data, *end = p + svc->outbox.size;
    while (p < end) {
        uint32_t tlen, blen;
        const char *type = s_arena_get(&p, &tlen);
        const char *body = s_arena_get(&p, &blen);
        zmq_send(pub, type, tlen, ZMQ_SNDMORE);
        zmq_send(pub, body, blen, 0);
        eda_envelope_t env;
        if (eda_log_enabled(svc->log, EDA_LOG_INFO) &&
            eda_decode(svc->log_decoder, body, blen, &env, NULL, 0) == EDA_OK)
            eda_log_flow(svc->log, EDA_FLOW_PUBLISHED, &env, NULL);
        svc->stats.events_published++;
    }
    svc->outbox.size = 0;
}

static void s_send_replies(eda_service_t *svc)
{
    void *router = zsock_resolve(svc->router);
    const char *p = svc->replies.data, *end = p + svc->replies.size;
    while (p < end) {
        uint32_t nframes = s_read_u32(&p);
        bool sent = true;
        for (uint32_t i = 0; i < nframes; i++) {
            uint32_t len;
            const char *frame = s_arena_get(&p, &len);
            int flags = ZMQ_DONTWAIT | (i + 1 < nframes ? ZMQ_SNDMORE : 0);
            if (sent && zmq_send(router, frame, len, flags) < 0)
                sent = false; /* the client is gone or not reading: drop it */
        }
        if (sent)
            svc->stats.replies++;
        else
            svc->stats.replies_dropped++;
    }
    svc->replies.size = 0;
}

/*  Turns every queued reply into an INTERNAL error, keeping its routing
    frames: the batch they answer was not committed, so none of them may
    report a change. Can't fail (msgpack buffers abort on out of memory). */
static void s_fail_replies(eda_service_t *svc)
{
    msgpack_sbuffer failed;
    msgpack_sbuffer_init(&failed);
    const char *p = svc->replies.data, *end = p + svc->replies.size;
    while (p < end) {
        uint32_t nframes = s_read_u32(&p);
        s_arena_u32(&failed, nframes);
        uint32_t len;
        for (uint32_t i = 0; i + 1 < nframes; i++) {
            const char *frame = s_arena_get(&p, &len);
            s_arena_put(&failed, frame, len);
        }
        const char *body = s_arena_get(&p, &len);
        eda_envelope_t reply, command = {0};
        if (eda_decode(svc->log_decoder, body, len, &reply, NULL, 0) == EDA_OK) {
            memcpy(command.type, reply.type, sizeof command.type);
            memcpy(command.correlation_id, reply.correlation_id,
                   sizeof reply.correlation_id);
            memcpy(command.id, reply.causation_id, sizeof command.id);
        }
        eda_ctx_t ctx = {.svc = svc, .msg = &command};
        eda_ctx_error(&ctx, EDA_INTERNAL, "not done: the database could not commit");
        s_arena_put(&failed, svc->reply_buf.data, svc->reply_buf.size);
    }
    msgpack_sbuffer_destroy(&svc->replies);
    svc->replies = failed;
}

/*  Commits the batch, then publishes and replies. On a failed commit no
    event leaves, the peers' checkpoints are rewound (their events come
    again), and every command of the batch is answered INTERNAL, so that its
    client can retry (PlaceOrder is idempotent by request_id). */
static void s_batch_end(eda_service_t *svc)
{
    if (!svc->in_batch) {
        s_send_replies(svc); /* commands refused before any handler ran */
        return;
    }
    svc->in_batch = false;
    /* A transaction SQLite rolled back itself must not get its checkpoints
       written: outside a transaction they would commit on their own. */
    int rc = eda_store_txn_lost(svc->store) ? -1 : 0;
    for (size_t i = 0; i < svc->npeers && rc == 0; i++) {
        s_peer_t *peer = &svc->peers[i];
        if (peer->dirty)
            rc = eda_store_inbox_put(svc->store, peer->name, peer->epoch, peer->last_seq);
    }
    if (rc == 0)
        rc = eda_store_commit(svc->store);
    else
        eda_store_rollback(svc->store);
    for (size_t i = 0; i < svc->npeers; i++) {
        s_peer_t *peer = &svc->peers[i];
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
        eda_log_msg(svc->log, EDA_LOG_ERROR, "commit failed, batch undone: %s",
                    eda_store_errmsg(svc->store));
        svc->outbox.size = 0;
        s_fail_replies(svc);
        s_send_replies(svc);
        return;
    }
    s_publish_outbox(svc);
    s_send_replies(svc);
}

/* --- built-in commands ----------------------------------------------------- */

static int s_cmd_ping(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "service", svc->def->name);
    eda_pack_kv_str(pk, "version", EDA_VERSION);
    eda_pack_kv_u64(pk, "uptime_s", (uint64_t)(zclock_mono() - svc->started_ms) / 1000);
    return 0;
}

static int s_cmd_stats(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    s_stats_t *s = &svc->stats;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 22);
    eda_pack_kv_str(pk, "service", svc->def->name);
    eda_pack_kv_str(pk, "epoch", eda_store_epoch(svc->store));
    eda_pack_kv_u64(pk, "last_seq", eda_store_next_seq(svc->store) - 1);
    eda_pack_kv_u64(pk, "uptime_s", (uint64_t)(zclock_mono() - svc->started_ms) / 1000);
    eda_pack_kv_u64(pk, "commands_in", s->commands);
    eda_pack_kv_u64(pk, "replies_out", s->replies);
    eda_pack_kv_u64(pk, "replies_dropped", s->replies_dropped);
    eda_pack_kv_u64(pk, "events_published", s->events_published);
    eda_pack_kv_u64(pk, "events_applied", s->events_applied);
    eda_pack_kv_u64(pk, "events_ignored", s->events_ignored);
    eda_pack_kv_u64(pk, "duplicates_dropped", s->duplicates);
    eda_pack_kv_u64(pk, "gaps_detected", s->gaps);
    eda_pack_kv_u64(pk, "gaps_repaired", s->gaps_repaired);
    eda_pack_kv_u64(pk, "replays_requested", s->replays_requested);
    eda_pack_kv_u64(pk, "bad_input", s->bad_input);
    eda_pack_kv_u64(pk, "commits_failed", s->commits_failed);
    eda_pack_kv_u64(pk, "batches", s->batches);
    eda_pack_kv_u64(pk, "batch_max", s->batch_max);
    eda_pack_kv_u64(pk, "batch_avg_x100",
                    s->batches ? s->messages * 100 / s->batches : 0);
    eda_pack_kv_u64(pk, "handler_us_avg",
                    s->handled ? s->handler_us_total / s->handled : 0);
    eda_pack_kv_u64(pk, "handler_us_max", s->handler_us_max);
    eda_pack_key(pk, "peers");
    msgpack_pack_map(pk, svc->npeers);
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_pack_key(pk, svc->peers[i].name);
        msgpack_pack_map(pk, 2);
        eda_pack_kv_str(pk, "epoch", svc->peers[i].epoch);
        eda_pack_kv_u64(pk, "last_seq", svc->peers[i].last_seq);
    }
    return 0;
}

static void s_collect_event(uint64_t seq, const void *body, size_t len, void *arg)
{
    (void)seq;
    s_arena_put(arg, body, len);
}

static int s_cmd_replay(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    const msgpack_object *data = &ctx->msg->data;
    uint64_t after = 0, limit = 100;
    if (eda_get_u64(data, "after_seq", &after) < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "after_seq must be an unsigned integer");
    if (eda_get_u64(data, "limit", &limit) < 0 || limit < 1 || limit > S_REPLAY_LIMIT)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "limit must be an integer from 1 to %d", S_REPLAY_LIMIT);
    if (after > INT64_MAX)
        after = INT64_MAX;
    msgpack_sbuffer_clear(&svc->tmp);
    int n = eda_store_replay(svc->store, after, (uint32_t)limit, S_REPLAY_BYTES,
                             s_collect_event, &svc->tmp);
    if (n < 0)
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "epoch", eda_store_epoch(svc->store));
    eda_pack_kv_u64(pk, "last_seq", eda_store_next_seq(svc->store) - 1);
    eda_pack_key(pk, "events");
    msgpack_pack_array(pk, (size_t)n);
    const char *p = svc->tmp.data;
    for (int i = 0; i < n; i++) {
        uint32_t len;
        const char *event = s_arena_get(&p, &len);
        msgpack_pack_bin_with_body(pk, event, len);
    }
    return 0;
}

static const eda_command_t s_builtins[] = {{"Ping", s_cmd_ping},
                                           {"Stats", s_cmd_stats},
                                           {"ReplayEvents", s_cmd_replay},
                                           {NULL, NULL}};

static eda_command_fn *s_find_command(const eda_command_t *table, const char *type)
{
    for (; table && table->type; table++)
        if (streq(table->type, type))
            return table->fn;
    return NULL;
}

/* --- commands ------------------------------------------------------------- */

/*  Handles one decoded (or undecodable) command and queues its reply behind
    the routing frames already in the reply queue. */
static void s_handle_command(eda_service_t *svc, const void *body, size_t len,
                             const char *frame_error)
{
    eda_envelope_t env;
    eda_ctx_t ctx = {.svc = svc, .msg = &env};
    char why[256];
    int64_t start = zclock_usecs();
    svc->stats.commands++;
    eda_error_t rc = EDA_BAD_REQUEST;
    bool builtin = false;
    if (frame_error) {
        memset(&env, 0, sizeof env);
        snprintf(why, sizeof why, "%s", frame_error);
    } else
        rc = eda_decode(svc->decoder, body, len, &env, why, sizeof why);
    if (rc == EDA_OK && env.kind != EDA_KIND_COMMAND) {
        rc = EDA_BAD_REQUEST;
        snprintf(why, sizeof why, "kind must be 'command', not '%s'",
                 eda_kind_name(env.kind));
    }
    if (rc != EDA_OK) {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN, "refused a command: %s: %s",
                    eda_error_name(rc), why);
        eda_ctx_error(&ctx, rc, "%s", why);
    } else {
        eda_command_fn *fn = s_find_command(s_builtins, env.type);
        builtin = fn != NULL;
        if (!fn)
            fn = s_find_command(svc->def->commands, env.type);
        if (!fn)
            eda_ctx_error(&ctx, EDA_UNKNOWN_COMMAND, "%s has no command '%s'",
                          svc->def->name, env.type);
        else if (s_unit_begin(svc))
            eda_ctx_error(&ctx, EDA_INTERNAL, "database unavailable");
        else {
            int hrc = fn(svc->state, &ctx);
            if (hrc || !ctx.replied)
                eda_ctx_error(&ctx, EDA_INTERNAL, "%s failed: %s", env.type,
                              eda_store_errmsg(svc->store));
            s_unit_end(svc, ctx.reply_ok);
        }
    }
    s_arena_put(&svc->replies, svc->reply_buf.data, svc->reply_buf.size);

    /* Ping, Stats and ReplayEvents are plumbing, not event flow. */
    if (eda_log_enabled(svc->log, builtin ? EDA_LOG_DEBUG : EDA_LOG_INFO) &&
        rc == EDA_OK) {
        eda_envelope_t reply;
        if (eda_decode(svc->log_decoder, svc->reply_buf.data, svc->reply_buf.size, &reply,
                       NULL, 0) == EDA_OK)
            eda_log_flow(svc->log, EDA_FLOW_COMMAND, &env, &reply);
    }
    s_count_latency(svc, start);
}

/*  Reads one command message from the ROUTER without waiting. Returns 1 when
    one was handled, 0 when none was waiting. */
static int s_recv_command(eda_service_t *svc)
{
    void *router = zsock_resolve(svc->router);
    zmq_msg_t frames[S_FRAMES_MAX];
    int n = 0;
    bool more = true, too_many = false;
    while (more && n < S_FRAMES_MAX) {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], router, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&frames[n]);
            if (n == 0)
                return 0;
            break;
        }
        more = zmq_msg_more(&frames[n++]);
    }
    while (more) { /* past S_FRAMES_MAX: read and drop the rest */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = zmq_msg_recv(&extra, router, 0) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        too_many = true;
    }
    /* ZMQ_MAXMSGSIZE bounds a frame, not a message: big routing frames would
       be copied into the reply queue and echoed back, so they are refused. */
    for (int i = 1; i < n - 1 && !too_many; i++)
        too_many = zmq_msg_size(&frames[i]) > S_ROUTING_MAX;
    /* Routing frames first; s_handle_command appends the reply body. A
       refused frame list gets its reply back on the identity frame alone. */
    int routing = too_many ? 1 : n - 1;
    s_arena_u32(&svc->replies, (uint32_t)routing + 1);
    for (int i = 0; i < routing; i++)
        s_arena_put(&svc->replies, zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]));
    if (too_many)
        s_handle_command(svc, NULL, 0,
                         "more than 16 frames, or a routing frame over 255 bytes");
    else
        s_handle_command(svc, zmq_msg_data(&frames[n - 1]), zmq_msg_size(&frames[n - 1]),
                         NULL);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return 1;
}

/* --- peers' events ---------------------------------------------------------- */

static eda_event_fn *s_find_handler(eda_service_t *svc, const char *peer,
                                    const char *type)
{
    for (const eda_handler_t *h = svc->def->handlers; h && h->type; h++)
        if (streq(h->peer, peer) && streq(h->type, type))
            return h->fn;
    return NULL;
}

/*  Gives up on the request in flight: a fresh socket, so that a late answer
    to it is never read. */
static void s_abandon_replay(s_peer_t *peer)
{
    eda_client_reset(peer->client);
    peer->replay_pending = false;
}

/*  Asks the peer for the events after the last one applied, unless a request
    is already out. */
static void s_request_replay(eda_service_t *svc, s_peer_t *peer)
{
    if (peer->replay_pending)
        return;
    peer->replay_after = peer->epoch[0] ? peer->last_seq : 0;
    msgpack_packer *pk = eda_client_begin(peer->client, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", peer->replay_after);
    eda_pack_kv_u64(pk, "limit", S_REPLAY_LIMIT);
    snprintf(peer->replay_id, sizeof peer->replay_id, "%s",
             eda_client_last_id(peer->client));
    peer->replay_pending = true;
    peer->replay_sent_ms = zclock_mono();
    peer->replay_wait_ms = S_REPLAY_TIMEOUT;
    svc->stats.replays_requested++;
    if (eda_client_send(peer->client))
        eda_log_msg(svc->log, EDA_LOG_DEBUG, "replay request to %s not queued",
                    peer->name);
    eda_log_msg(svc->log, EDA_LOG_DEBUG, "asked %s for events after #%llu", peer->name,
                (unsigned long long)peer->replay_after);
}

/*  Applies one event of `peer` if it is the next in seq order. Returns 1 when
    applied, 0 when dropped as a duplicate, -1 on a gap or an error (a replay
    is then asked for). */
static int s_offer_event(eda_service_t *svc, s_peer_t *peer, const eda_envelope_t *env)
{
    if (!streq(env->epoch, peer->epoch)) {
        s_request_replay(svc, peer);
        return -1;
    }
    if (env->seq <= peer->last_seq) {
        svc->stats.duplicates++;
        return 0;
    }
    if (env->seq > peer->last_seq + 1) {
        svc->stats.gaps++;
        s_request_replay(svc, peer);
        return -1;
    }
    eda_event_fn *fn = s_find_handler(svc, peer->name, env->type);
    if (fn) {
        eda_ctx_t ctx = {.svc = svc, .msg = env};
        int64_t start = zclock_usecs();
        if (s_unit_begin(svc))
            return -1;
        int rc = fn(svc->state, &ctx);
        s_unit_end(svc, rc == 0);
        s_count_latency(svc, start);
        if (rc) {
            eda_log_msg(svc->log, EDA_LOG_ERROR, "could not apply %s #%llu from %s: %s",
                        env->type, (unsigned long long)env->seq, peer->name,
                        eda_store_errmsg(svc->store));
            return -1;
        }
        svc->stats.events_applied++;
        eda_log_flow(svc->log, EDA_FLOW_APPLIED, env, NULL);
    } else if (s_batch_begin(svc) == 0) /* its checkpoint commits too */
        svc->stats.events_ignored++;
    else
        return -1;
    peer->last_seq = env->seq;
    peer->dirty = true;
    return 1;
}

/*  Reads one message from a peer's SUB without waiting: an event or a
    heartbeat. Returns 1 when one was read, 0 when none was waiting. */
static int s_recv_event(eda_service_t *svc, s_peer_t *peer)
{
    void *sub = zsock_resolve(peer->sub);
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    int got = 0;
    if (zmq_msg_recv(&topic, sub, ZMQ_DONTWAIT) < 0)
        goto done;
    got = 1;
    int frames = 1;
    if (zmq_msg_more(&topic) && zmq_msg_recv(&body, sub, 0) >= 0)
        frames++;
    while (zmq_msg_more(frames == 1 ? &topic : &body)) { /* drain extras */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        int rc = zmq_msg_recv(&extra, sub, 0);
        bool again = rc >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        frames++;
        if (!again)
            break;
    }
    char why[256];
    eda_envelope_t env;
    eda_error_t rc = frames == 2 ? eda_decode(svc->decoder, zmq_msg_data(&body),
                                              zmq_msg_size(&body), &env, why, sizeof why)
                                 : EDA_BAD_REQUEST;
    if (frames != 2)
        snprintf(why, sizeof why, "%d frames, not 2", frames);
    else if (rc == EDA_OK && !streq(env.source, peer->name)) {
        rc = EDA_BAD_REQUEST;
        snprintf(why, sizeof why, "source '%s' on %s's channel", env.source, peer->name);
    } else if (rc == EDA_OK &&
               (zmq_msg_size(&topic) != strlen(env.type) ||
                memcmp(zmq_msg_data(&topic), env.type, strlen(env.type)))) {
        rc = EDA_BAD_REQUEST;
        snprintf(why, sizeof why, "topic does not match type '%s'", env.type);
    }
    if (rc != EDA_OK) {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN, "dropped a message from %s: %s", peer->name,
                    why);
    } else if (env.kind == EDA_KIND_HEARTBEAT) {
        uint64_t last = 0;
        eda_get_u64(&env.data, "last_seq", &last);
        bool same = streq(env.epoch, peer->epoch);
        /* A live peer that has left a request unanswered for a while lost
           it (it restarted after taking it): ask again now, not after the
           backoff. */
        if (peer->replay_pending &&
            zclock_mono() - peer->replay_sent_ms >= S_REPLAY_TIMEOUT) {
            s_abandon_replay(peer);
        }
        if (!same || last > peer->last_seq)
            s_request_replay(svc, peer);
        /* Behind what we applied, in the same log: it lost committed events
           (a restored backup, a power cut); its next seqs will be dropped. */
        bool behind = same && last < peer->committed_seq;
        if (behind && !peer->behind)
            eda_log_msg(svc->log, EDA_LOG_ERROR,
                        "%s reports last_seq %llu, behind the %llu applied from its log "
                        "%s: it lost events; recreate its log to recover",
                        peer->name, (unsigned long long)last,
                        (unsigned long long)peer->committed_seq, peer->epoch);
        peer->behind = behind;
    } else if (env.kind == EDA_KIND_EVENT)
        s_offer_event(svc, peer, &env);
    else {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN, "dropped a %s from %s's event channel",
                    eda_kind_name(env.kind), peer->name);
    }
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return got;
}

/*  Applies the events of a ReplayEvents reply. */
static void s_apply_replay(eda_service_t *svc, s_peer_t *peer,
                           const eda_envelope_t *reply)
{
    char epoch[EDA_NAME_MAX + 1] = "";
    uint64_t last = 0;
    const msgpack_object *events = eda_map_get(&reply->data, "events");
    if (eda_get_str(&reply->data, "epoch", epoch, sizeof epoch) != 0 || !epoch[0] ||
        eda_get_u64(&reply->data, "last_seq", &last) != 0 || !events ||
        events->type != MSGPACK_OBJECT_ARRAY) {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN, "malformed ReplayEvents reply from %s",
                    peer->name);
        return;
    }
    if (!streq(epoch, peer->epoch)) {
        if (peer->epoch[0])
            eda_log_msg(
                svc->log, EDA_LOG_WARN,
                "%s has a new event log (epoch %s, was %s): starting it from seq 0",
                peer->name, epoch, peer->epoch);
        snprintf(peer->epoch, sizeof peer->epoch, "%s", epoch);
        peer->last_seq = 0;
        peer->dirty = true;
        if (peer->replay_after != 0) {
            s_request_replay(svc, peer);
            return;
        }
    }
    bool applied = false, failed = false;
    for (uint32_t i = 0; i < events->via.array.size && !failed; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        eda_envelope_t env;
        char why[256];
        if (bin->type != MSGPACK_OBJECT_BIN ||
            eda_decode(svc->decoder, bin->via.bin.ptr, bin->via.bin.size, &env, why,
                       sizeof why) != EDA_OK ||
            env.kind != EDA_KIND_EVENT || !streq(env.source, peer->name)) {
            svc->stats.bad_input++;
            eda_log_msg(svc->log, EDA_LOG_WARN, "malformed replayed event from %s",
                        peer->name);
            failed = true;
            break;
        }
        int rc = s_offer_event(svc, peer, &env);
        failed = rc < 0;
        applied |= rc == 1;
    }
    if (applied)
        svc->stats.gaps_repaired++;
    /* The rest at once; after a failure, only when the next heartbeat says
       so, a second later, rather than asking again in a tight loop. */
    if (peer->last_seq < last && !failed)
        s_request_replay(svc, peer);
}

/*  Reads one reply on a peer's DEALER without waiting. 1 when one was read. */
static int s_recv_replay(eda_service_t *svc, s_peer_t *peer)
{
    eda_envelope_t reply;
    int rc = eda_client_recv(peer->client, &reply);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN, "undecodable reply from %s", peer->name);
        return 1;
    }
    if (!peer->replay_pending || !streq(reply.causation_id, peer->replay_id))
        return 1; /* an answer to a request given up on */
    peer->replay_pending = false;
    if (reply.ok != 1) {
        char code[32] = "";
        eda_get_str(&reply.error, "code", code, sizeof code);
        eda_log_msg(svc->log, EDA_LOG_WARN, "%s refused ReplayEvents: %s", peer->name,
                    code);
        return 1;
    }
    s_apply_replay(svc, peer, &reply);
    return 1;
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
    msgpack_pack_map(&pk, 1);
    eda_pack_kv_u64(&pk, "last_seq", eda_store_committed_seq(svc->store));
    void *pub = zsock_resolve(svc->pub);
    zmq_send(pub, "Heartbeat", 9, ZMQ_SNDMORE);
    zmq_send(pub, svc->tmp.data, svc->tmp.size, 0);
}

/*  Frees a buffer that a burst grew past S_BUFFER_KEEP, so memory stays
    flat after it. */
static void s_shrink(msgpack_sbuffer *buf)
{
    if (buf->alloc > S_BUFFER_KEEP) {
        msgpack_sbuffer_destroy(buf);
        msgpack_sbuffer_init(buf);
    }
}

/*  Handles the messages that are ready, up to S_BATCH_MAX, in one
    transaction. Only the sockets the poll found readable are read, round
    robin until each is empty, so that no socket starves the others and no
    empty one costs a system call. items[] is laid out as in s_loop. */
static void s_batch(eda_service_t *svc, const zmq_pollitem_t *items, size_t n)
{
    bool ready[2 + 2 * EDA_PEERS_MAX];
    for (size_t i = 1; i < n; i++)
        ready[i] = items[i].revents & ZMQ_POLLIN;
    uint64_t count = 0;
    bool any = true;
    /* A transaction SQLite rolled back on its own ends the batch: its
       commit fails, and everything in it is undone and comes again. */
    while (any && count < S_BATCH_MAX && svc->replies.size < S_QUEUE_SOFT &&
           !eda_store_txn_lost(svc->store)) {
        any = false;
        for (size_t i = 1; i < n; i++) {
            if (!ready[i])
                continue;
            s_peer_t *peer = i >= 2 ? &svc->peers[(i - 2) / 2] : NULL;
            int got = !peer   ? s_recv_command(svc)
                      : i % 2 ? s_recv_replay(svc, peer)
                              : s_recv_event(svc, peer);
            ready[i] = got;
            any |= got;
            count += (uint64_t)got;
        }
    }
    if (!count)
        return;
    s_batch_end(svc);
    s_shrink(&svc->replies);
    s_shrink(&svc->outbox);
    s_shrink(&svc->tmp);
    s_shrink(&svc->reply_buf);
    svc->stats.batches++;
    svc->stats.messages += count;
    if (count > svc->stats.batch_max)
        svc->stats.batch_max = count;
}

static void s_timers(eda_service_t *svc)
{
    int64_t now = zclock_mono();
    if (now >= svc->next_heartbeat_ms) {
        s_heartbeat(svc);
        svc->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    }
    for (size_t i = 0; i < svc->npeers; i++) {
        s_peer_t *peer = &svc->peers[i];
        if (peer->replay_pending && now - peer->replay_sent_ms >= peer->replay_wait_ms) {
            /* No answer: the peer is down, restarted or slow. Fresh socket,
               ask again, and give the next request twice as long. */
            int64_t wait = peer->replay_wait_ms * 2;
            s_abandon_replay(peer);
            s_request_replay(svc, peer);
            peer->replay_wait_ms = wait < S_REPLAY_BACKOFF ? wait : S_REPLAY_BACKOFF;
        }
    }
}

static int64_t s_next_timeout(eda_service_t *svc)
{
    int64_t now = zclock_mono();
    int64_t next = svc->next_heartbeat_ms;
    for (size_t i = 0; i < svc->npeers; i++)
        if (svc->peers[i].replay_pending &&
            svc->peers[i].replay_sent_ms + svc->peers[i].replay_wait_ms < next)
            next = svc->peers[i].replay_sent_ms + svc->peers[i].replay_wait_ms;
    return next > now ? next - now : 0;
}

static void s_loop(eda_service_t *svc)
{
    zmq_pollitem_t items[2 + 2 * EDA_PEERS_MAX];
    while (!svc->terminated) {
        size_t n = 0;
        items[n++] = (zmq_pollitem_t){zsock_resolve(svc->pipe), 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){zsock_resolve(svc->router), 0, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < svc->npeers; i++) {
            items[n++] =
                (zmq_pollitem_t){zsock_resolve(svc->peers[i].sub), 0, ZMQ_POLLIN, 0};
            /* A client whose reset failed has no socket until the next try:
               fd -1 is skipped by poll. */
            zsock_t *client = eda_client_sock(svc->peers[i].client);
            items[n++] = client
                             ? (zmq_pollitem_t){zsock_resolve(client), 0, ZMQ_POLLIN, 0}
                             : (zmq_pollitem_t){NULL, -1, 0, 0};
        }
        eda_log_flush(svc->log); /* the last batch's lines, before waiting */
        int rc = zmq_poll(items, (int)n, (long)s_next_timeout(svc));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc < 0)
            continue;
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(svc->pipe);
            if (!command || streq(command, "$TERM"))
                svc->terminated = true;
            zstr_free(&command);
        }
        s_batch(svc, items, n);
        s_timers(svc);
    }
}

/* --- start and stop --------------------------------------------------------- */

static zsock_t *s_socket(eda_service_t *svc, int type, const char *endpoint, bool bind)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, type == ZMQ_PUB ? 200 : 0);
    zsock_set_maxmsgsize(sock, EDA_MAX_MSG);
    zsock_set_sndhwm(sock, S_HWM);
    zsock_set_rcvhwm(sock, type == ZMQ_ROUTER ? S_COMMAND_HWM : S_HWM);
    if (type == ZMQ_SUB)
        zsock_set_subscribe(sock, "");
    int rc =
        bind ? zsock_bind(sock, "%s", endpoint) : zsock_connect(sock, "%s", endpoint);
    if (rc == -1) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot %s %s: %s",
                    bind ? "bind" : "connect to", endpoint, zmq_strerror(errno));
        zsock_destroy(&sock);
    }
    return sock;
}

/*  Adds every peer named in the handler table, once. */
static int s_add_peers(eda_service_t *svc)
{
    for (const eda_handler_t *h = svc->def->handlers; h && h->type; h++) {
        bool known = false;
        for (size_t i = 0; i < svc->npeers; i++)
            known |= streq(svc->peers[i].name, h->peer);
        if (known)
            continue;
        const eda_endpoint_t *ep = eda_config_peer(&svc->cfg, h->peer);
        if (!ep || !ep->events[0] || !ep->commands[0]) {
            eda_log_msg(svc->log, EDA_LOG_ERROR, "no endpoints for peer %s (use --peer)",
                        h->peer);
            return -1;
        }
        s_peer_t *peer = &svc->peers[svc->npeers++];
        snprintf(peer->name, sizeof peer->name, "%s", h->peer);
        if (eda_store_inbox_get(svc->store, peer->name, peer->epoch, sizeof peer->epoch,
                                &peer->last_seq))
            return -1;
        memcpy(peer->committed_epoch, peer->epoch, sizeof peer->epoch);
        peer->committed_seq = peer->last_seq;
        peer->sub = s_socket(svc, ZMQ_SUB, ep->events, false);
        peer->client = eda_client_new(ep->commands, svc->def->name);
        if (!peer->sub || !peer->client) {
            if (!peer->client)
                eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot connect to %s",
                            ep->commands);
            return -1;
        }
    }
    return 0;
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
    for (size_t i = 0; i < svc->npeers; i++) {
        zsock_destroy(&svc->peers[i].sub);
        eda_client_destroy(&svc->peers[i].client);
    }
    s_close_bound(&svc->router);
    s_close_bound(&svc->pub);
    eda_store_destroy(&svc->store);
    eda_decoder_destroy(&svc->decoder);
    eda_decoder_destroy(&svc->log_decoder);
    msgpack_sbuffer_destroy(&svc->reply_buf);
    msgpack_sbuffer_destroy(&svc->event_buf);
    msgpack_sbuffer_destroy(&svc->tmp);
    msgpack_sbuffer_destroy(&svc->outbox);
    msgpack_sbuffer_destroy(&svc->replies);
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
    svc->pipe = pipe;
    svc->started_ms = zclock_mono();
    msgpack_sbuffer_init(&svc->reply_buf);
    msgpack_sbuffer_init(&svc->event_buf);
    msgpack_sbuffer_init(&svc->tmp);
    msgpack_sbuffer_init(&svc->outbox);
    msgpack_sbuffer_init(&svc->replies);
    msgpack_packer_init(&svc->reply_pk, &svc->reply_buf, msgpack_sbuffer_write);
    msgpack_packer_init(&svc->event_pk, &svc->event_buf, msgpack_sbuffer_write);
    svc->log = eda_log_new(def->name, cfg->log_format, cfg->log_level, stderr);
    svc->decoder = eda_decoder_new();
    svc->log_decoder = eda_decoder_new();
    if (!svc->log || !svc->decoder || !svc->log_decoder) {
        s_destroy(&svc);
        return NULL;
    }
    char why[512];
    const eda_endpoint_t *self = eda_config_peer(cfg, def->name);
    svc->store = eda_store_new(cfg->db, def->schema, why, sizeof why);
    if (!svc->store)
        eda_log_msg(svc->log, EDA_LOG_ERROR, "%s", why);
    else if (!self)
        eda_log_msg(svc->log, EDA_LOG_ERROR, "no endpoints for %s", def->name);
    else if ((svc->pub = s_socket(svc, ZMQ_PUB, self->events, true)) &&
             (svc->router = s_socket(svc, ZMQ_ROUTER, self->commands, true)) &&
             s_add_peers(svc) == 0) {
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
    for (size_t i = 0; i < svc->npeers; i++)
        s_request_replay(svc, &svc->peers[i]); /* catch up before anything else */
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
    int rc = eda_config_from_args(&cfg, def->name, argc, argv, usage, why, sizeof why);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", def->name, why);
        return 2;
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
