/*  eda_intake: commands in and replies out. A command message is read from
    the ROUTER whole, its routing frames are copied into the reply queue, the
    handler runs under a savepoint, and its reply is queued behind them, to
    be sent after the batch commits (or turned into INTERNAL when it does
    not).
*/
#include "eda_service_impl.h"

#include "eda_text.h"

#define S_FRAMES_MAX  16  /* frames in one command message */
#define S_ROUTING_MAX 255 /* bytes in one routing frame */

static const eda_command_t *s_find_command(const eda_command_t *table, const char *type)
{
    for (; table && table->type; table++)
        if (streq(table->type, type))
            return table;
    return NULL;
}

/*  Handles one decoded (or undecodable) command and queues its reply behind
    the routing frames already in the reply queue. */
static void s_handle_command(eda_service_t *svc, const void *body, size_t len,
                             const char *frame_error)
{
    eda_envelope_t env;
    eda_ctx_t ctx = {.svc = svc, .msg = &env, .command_peer = -1};
    char why[256];
    int64_t start = zclock_usecs();
    svc->stats.commands++;
    eda_error_t rc = EDA_BAD_REQUEST;
    bool builtin = false;
    if (frame_error) {
        memset(&env, 0, sizeof env);
        eda_copy(why, sizeof why, frame_error);
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
        const eda_command_t *cmd = s_find_command(eda_builtin_commands, env.type);
        builtin = cmd != NULL;
        if (!cmd)
            cmd = s_find_command(svc->def->commands, env.type);
        if (!cmd)
            eda_ctx_error(&ctx, EDA_UNKNOWN_COMMAND, "%s has no command '%s'",
                          svc->def->name, env.type);
        else if (eda_svc_unit_begin(svc, cmd->undo == EDA_CMD_CHECKS_FIRST
                                             ? EDA_UNIT_BATCH
                                             : EDA_UNIT_SAVEPOINT))
            eda_ctx_error(&ctx, EDA_INTERNAL, "database unavailable");
        else {
            int hrc = cmd->fn(svc->state, &ctx);
            bool refused = hrc == 0 && ctx.replied && !ctx.reply_ok;
            if (hrc || !ctx.replied)
                eda_ctx_error(&ctx, EDA_INTERNAL, "%s failed: %s", env.type,
                              eda_store_errmsg(svc->store));
            bool undone = svc->batch_undone;
            eda_svc_unit_end(svc, ctx.reply_ok);
            if (refused && svc->batch_undone && !undone)
                eda_log_msg(svc->log, EDA_LOG_ERROR,
                            "%s refused after it wrote: its batch is undone (a command "
                            "marked EDA_CMD_CHECKS_FIRST must refuse before it writes)",
                            env.type);
        }
    }
    eda_arena_put(&svc->replies, svc->reply_buf.data, svc->reply_buf.size);

    /* Ping, Stats and ReplayEvents are plumbing, not event flow. The line
       is written from the command and the reply as the handler built it. */
    if (eda_log_enabled(svc->log, builtin ? EDA_LOG_DEBUG : EDA_LOG_INFO) &&
        rc == EDA_OK) {
        char order[EDA_NAME_MAX + 1]; /* else the reply's data.order_id */
        eda_log_order_id(&env, NULL, order, sizeof order);
        eda_flow_head_t head = {.type = env.type,
                                .order = order,
                                .source = env.source,
                                .has_seq = env.has_seq,
                                .seq = env.seq,
                                .error_code =
                                    ctx.reply_ok ? NULL : eda_error_name(ctx.reply_code),
                                .error_message = svc->reply_message};
        eda_log_flow_packed(svc->log, EDA_FLOW_COMMAND, &head,
                            svc->reply_buf.data + ctx.reply_data,
                            svc->reply_buf.size - ctx.reply_data);
    }
    eda_svc_count_latency(svc, start);
}

/*  Reads one command message from the ROUTER without waiting. Returns 1 when
    one was handled, 0 when none was waiting. */
int eda_intake_recv(eda_service_t *svc)
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
    eda_arena_u32(&svc->replies, (uint32_t)routing + 1);
    for (int i = 0; i < routing; i++)
        eda_arena_put(&svc->replies, zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]));
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

/* --- the reply queue --------------------------------------------------------

   Replies go out with ZMQ_ROUTER_MANDATORY: a client whose queue in the
   ROUTER is full (it does not read) makes zmq_send fail with EAGAIN, and the
   reply then waits in that client's backlog, in order, with the replies
   that follow it; a backlog past EDA_SVC_BACKLOG_MAX bytes drops further
   replies (counted). A client that is gone (EHOSTUNREACH) loses them. */

typedef struct {
    zlistx_t *replies; /* of zmsg_t, oldest first */
    size_t bytes;
    bool dropping; /* reported once */
} s_backlog_t;

void eda_intake_backlog_destroy(void **item)
{
    s_backlog_t *backlog = *item;
    if (!backlog)
        return;
    zmsg_t *msg;
    while ((msg = zlistx_detach(backlog->replies, NULL)))
        zmsg_destroy(&msg);
    zlistx_destroy(&backlog->replies);
    free(backlog);
    *item = NULL;
}

/*  The backlog key of a client: its identity frame in hex. */
static void s_key(const void *identity, size_t len, char *key)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = identity;
    for (size_t i = 0; i < len; i++) {
        key[2 * i] = hex[b[i] >> 4];
        key[2 * i + 1] = hex[b[i] & 15];
    }
    key[2 * len] = '\0';
}

/*  Sends one reply of `n` frames without waiting: 0 sent, or the errno of
    the first frame (EAGAIN: the client's queue is full; else it is gone). */
static int s_send(void *router, zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_msg_send(&frames[i], router, flags) < 0)
            return i == 0 ? errno : EHOSTUNREACH;
    }
    return 0;
}

/*  Sends a reply kept as a zmsg. 0 or the errno of s_send. */
static int s_send_msg(void *router, zmsg_t *msg)
{
    zmq_msg_t frames[16];
    size_t n = 0;
    for (zframe_t *f = zmsg_first(msg); f && n < 16; f = zmsg_next(msg)) {
        zmq_msg_init_size(&frames[n], zframe_size(f));
        memcpy(zmq_msg_data(&frames[n]), zframe_data(f), zframe_size(f));
        n++;
    }
    int rc = s_send(router, frames, n);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

/*  Appends a reply (n frames in `frames`) to the backlog of `key`, or drops
    it when the backlog is full. */
static void s_defer(eda_service_t *svc, const char *key, zmq_msg_t *frames, size_t n)
{
    s_backlog_t *backlog = zhashx_lookup(svc->backlogs, key);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += zmq_msg_size(&frames[i]);
    if (!backlog) {
        backlog = calloc(1, sizeof *backlog);
        backlog->replies = zlistx_new();
        zhashx_insert(svc->backlogs, key, backlog);
    }
    if (backlog->bytes + bytes > EDA_SVC_BACKLOG_MAX) {
        svc->stats.replies_dropped++;
        if (!backlog->dropping)
            eda_log_msg(svc->log, EDA_LOG_WARN,
                        "a client is not reading its replies: %zu bytes wait for it; "
                        "its further replies are dropped",
                        backlog->bytes);
        backlog->dropping = true;
        return;
    }
    zmsg_t *msg = zmsg_new();
    for (size_t i = 0; i < n; i++)
        zmsg_addmem(msg, zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]));
    zlistx_add_end(backlog->replies, msg);
    backlog->bytes += bytes;
    svc->backlog_bytes += bytes;
}

void eda_intake_send_replies(eda_service_t *svc)
{
    void *router = zsock_resolve(svc->router);
    const char *p = svc->replies.data, *end = p + svc->replies.size;
    zmq_msg_t frames[S_FRAMES_MAX];
    char key[2 * S_ROUTING_MAX + 1];
    while (p < end) {
        uint32_t n = eda_arena_read_u32(&p);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len;
            const char *frame = eda_arena_get(&p, &len);
            zmq_msg_init_size(&frames[i], len);
            memcpy(zmq_msg_data(&frames[i]), frame, len);
        }
        s_key(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), key);
        /* Behind a backlog, a reply waits its turn: replies stay in order. */
        int rc = zhashx_lookup(svc->backlogs, key) ? EAGAIN : s_send(router, frames, n);
        if (rc == 0)
            svc->stats.replies++;
        else if (rc == EAGAIN)
            s_defer(svc, key, frames, n);
        else
            svc->stats.replies_dropped++; /* the client is gone */
        for (uint32_t i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    svc->replies.size = 0;
}

bool eda_intake_flush(eda_service_t *svc)
{
    if (zhashx_size(svc->backlogs) == 0)
        return false;
    void *router = zsock_resolve(svc->router);
    zlistx_t *keys = zhashx_keys(svc->backlogs);
    for (const char *key = zlistx_first(keys); key; key = zlistx_next(keys)) {
        s_backlog_t *backlog = zhashx_lookup(svc->backlogs, key);
        zmsg_t *msg;
        int rc = 0;
        while (rc == 0 && (msg = zlistx_first(backlog->replies))) {
            rc = s_send_msg(router, msg);
            if (rc == EAGAIN)
                break;
            if (rc == 0)
                svc->stats.replies++;
            else
                svc->stats.replies_dropped += zlistx_size(backlog->replies);
            size_t bytes = zmsg_content_size(msg);
            backlog->bytes -= bytes;
            svc->backlog_bytes -= bytes;
            zlistx_detach(backlog->replies, NULL);
            zmsg_destroy(&msg);
            if (rc) { /* gone: the rest of its backlog goes too */
                svc->backlog_bytes -= backlog->bytes;
                zhashx_delete(svc->backlogs, key);
                backlog = NULL;
            }
        }
        if (backlog && zlistx_size(backlog->replies) == 0)
            zhashx_delete(svc->backlogs, key);
    }
    zlistx_destroy(&keys);
    return zhashx_size(svc->backlogs) > 0;
}

void eda_intake_close(eda_service_t *svc)
{
    zhashx_destroy(&svc->backlogs);
    svc->backlog_bytes = 0;
}

/*  Turns every queued reply into an INTERNAL error, keeping its routing
    frames: the batch they answer was not committed, so none of them may
    report a change. Can't fail (msgpack buffers abort on out of memory). */
void eda_intake_fail_replies(eda_service_t *svc)
{
    msgpack_sbuffer failed;
    msgpack_sbuffer_init(&failed);
    const char *p = svc->replies.data, *end = p + svc->replies.size;
    while (p < end) {
        uint32_t nframes = eda_arena_read_u32(&p);
        eda_arena_u32(&failed, nframes);
        uint32_t len;
        for (uint32_t i = 0; i + 1 < nframes; i++) {
            const char *frame = eda_arena_get(&p, &len);
            eda_arena_put(&failed, frame, len);
        }
        const char *body = eda_arena_get(&p, &len);
        eda_envelope_t reply, command = {0};
        if (eda_decode(svc->log_decoder, body, len, &reply, NULL, 0) == EDA_OK) {
            memcpy(command.type, reply.type, sizeof command.type);
            memcpy(command.correlation_id, reply.correlation_id,
                   sizeof reply.correlation_id);
            memcpy(command.id, reply.causation_id, sizeof command.id);
        }
        eda_ctx_t ctx = {.svc = svc, .msg = &command, .command_peer = -1};
        eda_ctx_error(&ctx, EDA_INTERNAL, "not done: the database could not commit");
        eda_arena_put(&failed, svc->reply_buf.data, svc->reply_buf.size);
    }
    msgpack_sbuffer_destroy(&svc->replies);
    svc->replies = failed;
}
