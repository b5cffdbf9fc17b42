/*  eda_peers: everything the service does with its peers. Their events come
    on a SUB and are applied in seq order, exactly once (DESIGN section 4);
    a gap, a heartbeat that is ahead or a new epoch is repaired through a
    replay DEALER; commands the service sends them go out on a DEALER of
    their own, whose replies reach the service's reply handlers.
*/
#include "eda_service_impl.h"

#define S_REPLAY_TIMEOUT 1000 /* first wait for a ReplayEvents answer, doubling */
#define S_REPLAY_BACKOFF 8000 /* up to this while the peer stays silent */

/*  The peer named `name`, opened on first use: its SUB, its replay DEALER
    and its inbox checkpoint. NULL (logged) when that fails. */
static eda_peer_t *s_peer(eda_service_t *svc, const char *name)
{
    for (size_t i = 0; i < svc->npeers; i++)
        if (streq(svc->peers[i].name, name))
            return &svc->peers[i];
    assert(svc->npeers < EDA_PEERS_MAX);
    {
        const eda_endpoint_t *ep = eda_config_peer(&svc->cfg, name);
        if (!ep || !ep->events[0] || !ep->commands[0]) {
            eda_log_msg(svc->log, EDA_LOG_ERROR, "no endpoints for peer %s (use --peer)",
                        name);
            return NULL;
        }
        eda_peer_t *peer = &svc->peers[svc->npeers++];
        snprintf(peer->name, sizeof peer->name, "%s", name);
        if (eda_store_inbox_get(svc->store, peer->name, peer->epoch, sizeof peer->epoch,
                                &peer->last_seq))
            return NULL;
        memcpy(peer->committed_epoch, peer->epoch, sizeof peer->epoch);
        peer->committed_seq = peer->last_seq;
        peer->heard_ms = zclock_mono();
        peer->reconnect_wait = EDA_SVC_SILENCE_MS;
        peer->sub = eda_svc_socket(svc, ZMQ_SUB, ep->events, false, name);
        peer->client = eda_client_new(ep->commands, svc->def->name);
        if (peer->client && eda_svc_secure_client(svc, peer->client, name))
            return NULL;
        if (!peer->sub || !peer->client) {
            if (!peer->client)
                eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot connect to %s",
                            ep->commands);
            return NULL;
        }
        return peer;
    }
}

int eda_peers_open(eda_service_t *svc)
{
    for (const eda_handler_t *h = svc->def->handlers; h && h->type; h++)
        if (!s_peer(svc, h->peer))
            return -1;
    for (const eda_reply_handler_t *r = svc->def->replies; r && r->type; r++) {
        eda_peer_t *peer = s_peer(svc, r->peer);
        if (!peer)
            return -1;
        if (!peer->commands) {
            const eda_endpoint_t *ep = eda_config_peer(&svc->cfg, r->peer);
            /* Immediate: a command for a peer that is down is dropped at once
               (its sender's timeout retries it) rather than queued, so a
               returning peer is not met by a burst of stale retries. */
            peer->commands = eda_client_new(ep->commands, svc->def->name);
            if (!peer->commands || eda_client_set_immediate(peer->commands, true) ||
                eda_svc_secure_client(svc, peer->commands, r->peer)) {
                eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot connect to %s",
                            ep->commands);
                return -1;
            }
        }
    }
    return 0;
}

void eda_peers_close(eda_service_t *svc)
{
    for (size_t i = 0; i < svc->npeers; i++) {
        zsock_destroy(&svc->peers[i].sub);
        eda_client_destroy(&svc->peers[i].client);
        eda_client_destroy(&svc->peers[i].commands);
    }
}

/*  The handler for an event of `peer`, or NULL when the service has none
    for its type. */
static const eda_handler_t *s_find_handler(eda_service_t *svc, const char *peer,
                                           const char *type)
{
    for (const eda_handler_t *h = svc->def->handlers; h && h->type; h++)
        if (streq(h->peer, peer) && streq(h->type, type))
            return h;
    return NULL;
}

/*  Whether the handler takes this event: 1 yes, 0 it belongs to another saga
    pattern than the handler's, -1 its data.saga is not a string. */
static int s_saga_matches(const eda_handler_t *handler, const eda_envelope_t *env)
{
    const msgpack_object *saga = eda_map_get(&env->data, "saga");
    if (!handler->saga || !saga || saga->type == MSGPACK_OBJECT_NIL)
        return 1;
    if (saga->type != MSGPACK_OBJECT_STR)
        return -1;
    return saga->via.str.size == strlen(handler->saga) &&
           memcmp(saga->via.str.ptr, handler->saga, saga->via.str.size) == 0;
}

/*  Gives up on the request in flight. A late answer to it is told apart by
    its causation_id and ignored; the socket is kept, since making a new one
    at run time could fail (and czmq would abort) when descriptors run out. */
static void s_abandon_replay(eda_peer_t *peer)
{
    peer->replay_pending = false;
}

/*  Asks the peer for the events after the last one applied, unless a request
    is already out. */
void eda_peers_request_replay(eda_service_t *svc, eda_peer_t *peer)
{
    if (peer->replay_pending)
        return;
    if (zclock_mono() < peer->replay_not_before) {
        peer->replay_wanted = true; /* eda_peers_timers asks when it may */
        return;
    }
    peer->replay_wanted = false;
    peer->replay_after = peer->epoch[0] ? peer->last_seq : 0;
    msgpack_packer *pk = eda_client_begin(peer->client, "ReplayEvents", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", peer->replay_after);
    eda_pack_kv_u64(pk, "limit", EDA_SVC_REPLAY_LIMIT);
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
static int s_offer_event(eda_service_t *svc, eda_peer_t *peer, const eda_envelope_t *env)
{
    if (!streq(env->epoch, peer->epoch)) {
        eda_peers_request_replay(svc, peer);
        return -1;
    }
    if (env->seq <= peer->last_seq) {
        svc->stats.duplicates++;
        return 0;
    }
    if (env->seq > peer->last_seq + 1) {
        svc->stats.gaps++;
        eda_peers_request_replay(svc, peer);
        return -1;
    }
    const eda_handler_t *handler = s_find_handler(svc, peer->name, env->type);
    int take = handler ? s_saga_matches(handler, env) : 0;
    if (take < 0) {
        svc->stats.bad_input++;
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "skipped %s #%llu from %s: saga is not a string", env->type,
                    (unsigned long long)env->seq, peer->name);
    }
    if (take > 0) {
        eda_ctx_t ctx = {.svc = svc, .msg = env, .command_peer = -1};
        int64_t start = zclock_usecs();
        if (eda_svc_unit_begin(svc, EDA_UNIT_BATCH))
            return -1;
        int rc = handler->fn(svc->state, &ctx);
        eda_svc_unit_end(svc, rc == 0);
        eda_svc_count_latency(svc, start);
        if (rc) {
            eda_log_msg(svc->log, EDA_LOG_ERROR, "could not apply %s #%llu from %s: %s",
                        env->type, (unsigned long long)env->seq, peer->name,
                        eda_store_errmsg(svc->store));
            return -1;
        }
        svc->stats.events_applied++;
        eda_log_flow(svc->log, EDA_FLOW_APPLIED, env, NULL);
    } else if (eda_svc_batch_begin(svc) == 0) /* its checkpoint commits too */
        svc->stats.events_ignored += take == 0;
    else
        return -1;
    peer->last_seq = env->seq;
    peer->dirty = true;
    return 1;
}

/*  Reads one message from a peer's SUB without waiting: an event or a
    heartbeat. Returns 1 when one was read, 0 when none was waiting. */
/*  The peer's SUB brought a readable message: it is alive. */
static void s_heard(eda_service_t *svc, eda_peer_t *peer)
{
    peer->heard_ms = zclock_mono();
    peer->reconnect_wait = EDA_SVC_SILENCE_MS;
    peer->reconnect_ms = 0;
    if (peer->silent)
        eda_log_msg(svc->log, EDA_LOG_INFO, "%s is heard again", peer->name);
    peer->silent = false;
}

/*  A peer silent for EDA_SVC_SILENCE_MS (no heartbeat) is down, cut off, or
    was impersonated on its port when we connected (libzmq gives up a
    connection whose handshake failed): connect again to its events and its
    commands, then again after a growing wait while it stays silent. */
static int64_t s_check_silence(eda_service_t *svc, eda_peer_t *peer, int64_t now)
{
    if (now - peer->heard_ms < EDA_SVC_SILENCE_MS)
        return peer->heard_ms + EDA_SVC_SILENCE_MS;
    if (now < peer->reconnect_ms)
        return peer->reconnect_ms;
    const eda_endpoint_t *ep = eda_config_peer(&svc->cfg, peer->name);
    if (!peer->silent)
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "no heartbeat from %s for %d s (events %s): connecting to it again",
                    peer->name, EDA_SVC_SILENCE_MS / 1000, ep->events);
    peer->silent = true;
    zsock_disconnect(peer->sub, "%s", ep->events);
    if (zsock_connect(peer->sub, "%s", ep->events))
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot connect to %s", ep->events);
    eda_client_reconnect(peer->client);
    if (peer->commands)
        eda_client_reconnect(peer->commands);
    peer->reconnect_ms = now + peer->reconnect_wait;
    peer->reconnect_wait = peer->reconnect_wait * 2 < EDA_SVC_RECONNECT_MAX
                               ? peer->reconnect_wait * 2
                               : EDA_SVC_RECONNECT_MAX;
    return peer->reconnect_ms;
}

int eda_peers_recv_event(eda_service_t *svc, eda_peer_t *peer)
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
    if (rc == EDA_OK)
        s_heard(svc, peer);
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
            eda_peers_request_replay(svc, peer);
        /* Behind what we applied, in the same log: it lost committed events
           (a restored backup, a power cut). Its eda_fence starts a new log
           when it reads our `applied`. */
        bool behind = same && last < peer->committed_seq;
        if (behind && !peer->behind)
            eda_log_msg(svc->log, EDA_LOG_WARN,
                        "%s reports last_seq %llu, behind the %llu applied from its log "
                        "%s: it lost events, and should start a new log",
                        peer->name, (unsigned long long)last,
                        (unsigned long long)peer->committed_seq, peer->epoch);
        eda_fence_report(svc, peer, &env.data);
        eda_retain_report(svc, peer->name, &env.data);
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
/*  After a reply that brought nothing new (a gap, another epoch, a
    last_seq it does not reach, an event it could not skip), the next
    request waits 100 ms, then twice as long each time up to
    S_REPLAY_BACKOFF: no reply a peer can send makes a storm of requests. A
    reply that applies an event ends the wait. */
static void s_replay_quiet(eda_peer_t *peer, bool progress)
{
    if (progress) {
        peer->replay_quiet = 0;
        peer->replay_not_before = 0;
        return;
    }
    peer->replay_quiet = peer->replay_quiet ? peer->replay_quiet * 2 : 100;
    if (peer->replay_quiet > S_REPLAY_BACKOFF)
        peer->replay_quiet = S_REPLAY_BACKOFF;
    peer->replay_not_before = zclock_mono() + peer->replay_quiet;
}

/*  A replayed event that cannot be read, in the place of the next seq to
    apply: it is counted, logged, and skipped with its seq, so that the
    stream goes on (its effect is lost: the peer's log holds it damaged).
    Returns true when it was skipped. */
static bool s_skip_unreadable(eda_service_t *svc, eda_peer_t *peer, uint64_t seq,
                              const char *why)
{
    svc->stats.bad_input++;
    if (seq != peer->last_seq + 1) {
        eda_log_msg(svc->log, EDA_LOG_WARN, "malformed replayed event from %s: %s",
                    peer->name, why);
        return false;
    }
    eda_log_msg(svc->log, EDA_LOG_ERROR,
                "skipped event #%llu of %s: it cannot be read (%s); the stream goes on",
                (unsigned long long)seq, peer->name, why);
    if (eda_svc_batch_begin(svc))
        return false;
    peer->last_seq = seq;
    peer->dirty = true;
    return true;
}

static void s_apply_replay(eda_service_t *svc, eda_peer_t *peer,
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
        s_replay_quiet(peer, false);
        return;
    }
    eda_fence_report(svc, peer, &reply->data);
    eda_retain_report(svc, peer->name, &reply->data);
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
            s_replay_quiet(peer, false); /* an epoch that keeps changing waits */
            eda_peers_request_replay(svc, peer);
            return;
        }
    }
    bool applied = false, failed = false;
    /* Fruitless until it applies something: a gap found below asks again
       only after the quiet wait. */
    s_replay_quiet(peer, false);
    /* The events of a reply are the seqs after the one asked from, in order. */
    uint64_t seq = peer->replay_after;
    for (uint32_t i = 0; i < events->via.array.size && !failed; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        eda_envelope_t env;
        char why[256] = "";
        const char *unreadable = NULL;
        seq++;
        if (bin->type != MSGPACK_OBJECT_BIN)
            unreadable = "not a binary";
        else if (eda_decode(svc->decoder, bin->via.bin.ptr, bin->via.bin.size, &env, why,
                            sizeof why) != EDA_OK)
            unreadable = why;
        else if (env.kind != EDA_KIND_EVENT || !streq(env.source, peer->name))
            unreadable = "not an event of this peer";
        if (unreadable) {
            bool skipped = s_skip_unreadable(svc, peer, seq, unreadable);
            failed = !skipped;
            applied |= skipped;
            continue;
        }
        int rc = s_offer_event(svc, peer, &env);
        failed = rc < 0;
        applied |= rc == 1;
    }
    if (applied) {
        svc->stats.gaps_repaired++;
        s_replay_quiet(peer, true);
    }
    /* The rest at once when this reply brought something; else after the
       quiet wait (a heartbeat or the timer asks again). */
    if (peer->last_seq < last)
        eda_peers_request_replay(svc, peer);
}

/*  Reads one reply on a peer's DEALER without waiting. 1 when one was read. */
int eda_peers_recv_replay(eda_service_t *svc, eda_peer_t *peer)
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
        bool gone = streq(code, "NOT_FOUND");
        /* Asked again only after the quiet wait, and said once. */
        s_replay_quiet(peer, false);
        if (gone && !peer->gone)
            eda_log_msg(svc->log, EDA_LOG_ERROR,
                        "%s no longer keeps the events after #%llu that this service "
                        "needs (--retain-events): rebuild this service from a fresh "
                        "database",
                        peer->name, (unsigned long long)peer->replay_after);
        else if (!gone)
            eda_log_msg(svc->log, EDA_LOG_WARN, "%s refused ReplayEvents: %s", peer->name,
                        code);
        peer->gone = gone;
        return 1;
    }
    peer->gone = false; /* answered: a later refusal is said again */
    s_apply_replay(svc, peer, &reply);
    return 1;
}

/* --- commands to peers, and their replies ------------------------------------ */

void eda_peers_send_commands(eda_service_t *svc)
{
    const char *p = svc->commands.data, *end = p + svc->commands.size;
    bool log = eda_log_enabled(svc->log, EDA_LOG_INFO);
    while (p < end) {
        eda_peer_t *peer = &svc->peers[eda_arena_read_u32(&p)];
        uint32_t len;
        eda_flow_rec_t flow;
        const char *body = eda_arena_get(&p, &len);
        eda_arena_get_flow(&p, &flow);
        zsock_t *sock = eda_client_sock(peer->commands);
        /* Not queued (the peer is not connected, a full queue): the
           sender's timeout and retry cover it, as for a lost message. */
        bool sent = sock && zmq_send(zsock_resolve(sock), body, len, ZMQ_DONTWAIT) >= 0;
        if (sent)
            svc->stats.commands_sent++;
        else
            svc->stats.commands_dropped++;
        if (!log)
            continue;
        eda_flow_head_t head = {
            .type = flow.type, .order = flow.order, .source = svc->def->name};
        if (sent) /* from the flow record and the data as packed */
            eda_log_flow_packed(svc->log, EDA_FLOW_SENT, &head, body + flow.data,
                                len - flow.data);
        else
            eda_log_msg(svc->log, EDA_LOG_INFO, "%s: %s not sent: %s is not connected",
                        flow.order, flow.type, peer->name);
    }
    svc->commands.size = 0;
}

static eda_reply_fn *s_find_reply(eda_service_t *svc, const char *peer, const char *type)
{
    for (const eda_reply_handler_t *r = svc->def->replies; r && r->type; r++)
        if (streq(r->peer, peer) && streq(r->type, type))
            return r->fn;
    return NULL;
}

int eda_peers_recv_reply(eda_service_t *svc, eda_peer_t *peer)
{
    eda_envelope_t reply;
    int rc = peer->commands ? eda_client_recv(peer->commands, &reply) : 1;
    if (rc == 1)
        return 0;
    eda_reply_fn *fn = rc == 0 ? s_find_reply(svc, peer->name, reply.type) : NULL;
    if (!fn) {
        svc->stats.bad_input++;
        if (rc < 0)
            eda_log_msg(svc->log, EDA_LOG_WARN,
                        "dropped a reply from %s: not one frame holding a reply",
                        peer->name);
        else
            eda_log_msg(svc->log, EDA_LOG_WARN,
                        "dropped a reply from %s: %s is no command sent there",
                        peer->name, reply.type[0] ? reply.type : "(no type)");
        return 1;
    }
    svc->stats.replies_received++;
    eda_ctx_t ctx = {.svc = svc, .msg = &reply, .command_peer = -1};
    int64_t start = zclock_usecs();
    if (eda_svc_unit_begin(svc, EDA_UNIT_BATCH))
        return 1;
    int hrc = fn(svc->state, &ctx);
    eda_svc_unit_end(svc, hrc == 0);
    eda_svc_count_latency(svc, start);
    if (hrc)
        eda_log_msg(svc->log, EDA_LOG_ERROR, "could not handle the %s reply from %s: %s",
                    reply.type, peer->name, eda_store_errmsg(svc->store));
    return 1;
}

int64_t eda_peers_timers(eda_service_t *svc, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_peer_t *peer = &svc->peers[i];
        if (peer->replay_pending && now - peer->replay_sent_ms >= peer->replay_wait_ms) {
            /* No answer: the peer is down, restarted or slow. Ask again,
               and give the next request twice as long. */
            int64_t wait = peer->replay_wait_ms * 2;
            s_abandon_replay(peer);
            eda_peers_request_replay(svc, peer);
            peer->replay_wait_ms = wait < S_REPLAY_BACKOFF ? wait : S_REPLAY_BACKOFF;
        }
        if (peer->replay_pending && peer->replay_sent_ms + peer->replay_wait_ms < next)
            next = peer->replay_sent_ms + peer->replay_wait_ms;
        if (peer->replay_wanted && !peer->replay_pending) {
            if (now >= peer->replay_not_before)
                eda_peers_request_replay(svc, peer);
            else if (peer->replay_not_before < next)
                next = peer->replay_not_before;
        }
        int64_t silence = s_check_silence(svc, peer, now);
        if (silence < next)
            next = silence;
    }
    return next;
}
