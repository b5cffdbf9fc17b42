/*  eda_fence: a restarted service checks its event log against what its
    peers applied of it (DESIGN section 4, lost commits).

    A database can come back shorter than its peers remember: commits lost
    in a power cut under --sync normal, or a copy restored from a backup.
    The log then hands out again seqs its peers already applied, and they
    would drop every new event as a duplicate. So a service that starts
    with events in its log holds the new ones back (neither published nor
    served by ReplayEvents) until each peer has said how far it applied the
    log, in a heartbeat or a ReplayEvents reply (`applied`). When a peer is
    ahead, the service starts a new event log (a new epoch) that carries
    the held events, logs what may diverge and goes on; the peers, seeing a
    new epoch, start it from seq 0. A peer silent since the start does not
    hold the events back for longer than EDA_SVC_SILENCE_MS.
*/
#include "eda_service_impl.h"

#include "eda_text.h"

#define S_NAMED_MAX 10 /* orders named in one log line */

void eda_fence_start(eda_service_t *svc)
{
    svc->fence_seq = eda_store_committed_seq(svc->store);
    svc->fenced = svc->fence_seq > 0 && svc->npeers > 0;
    if (svc->fenced)
        eda_log_msg(svc->log, EDA_LOG_INFO,
                    "new events wait until each peer says how far it applied this "
                    "log (seq %llu)",
                    (unsigned long long)svc->fence_seq);
}

uint64_t eda_fence_visible(eda_service_t *svc)
{
    return svc->fenced ? svc->fence_seq : eda_store_committed_seq(svc->store);
}

void eda_fence_pack_applied(eda_service_t *svc, msgpack_packer *pk)
{
    eda_pack_key(pk, "applied");
    msgpack_pack_map(pk, svc->npeers);
    for (size_t i = 0; i < svc->npeers; i++)
        eda_pack_kv_u64(pk, svc->peers[i].name, svc->peers[i].committed_seq);
    eda_pack_key(pk, "applied_epoch");
    msgpack_pack_map(pk, svc->npeers);
    for (size_t i = 0; i < svc->npeers; i++)
        eda_pack_kv_str(pk, svc->peers[i].name, svc->peers[i].committed_epoch);
}

bool eda_fence_applied(eda_service_t *svc, const msgpack_object *data, uint64_t *seq)
{
    const msgpack_object *applied = eda_map_get(data, "applied");
    const msgpack_object *epochs = eda_map_get(data, "applied_epoch");
    char epoch[EDA_NAME_MAX + 1] = "";
    *seq = 0;
    if (!applied || eda_get_u64(applied, svc->def->name, seq) != 0)
        return false;
    /* Following another log of ours (or none yet), it has applied nothing
       of this one. */
    if (!epochs || eda_get_str(epochs, svc->def->name, epoch, sizeof epoch) != 0 ||
        !streq(epoch, eda_store_epoch(svc->store)))
        *seq = 0;
    return true;
}

void eda_fence_report(eda_service_t *svc, eda_peer_t *peer, const msgpack_object *data)
{
    uint64_t seq;
    eda_fence_applied(svc, data, &seq);
    peer->reported = true;
    peer->reported_seq = seq;
    if (seq > eda_store_committed_seq(svc->store) && !svc->lost_seq) {
        /* Published events are committed first: a peer can be ahead only
           of a log that lost commits. */
        svc->lost_seq = seq;
        snprintf(svc->lost_by, sizeof svc->lost_by, "%s", peer->name);
    }
}

/*  Appends the event held in `body` to the new log, renumbered: its id, seq
    and epoch are the new log's, everything else is kept. 0 or -1. */
static int s_carry(eda_service_t *svc, const void *body, size_t len)
{
    eda_envelope_t env;
    char why[256];
    if (eda_decode(svc->decoder, body, len, &env, why, sizeof why) != EDA_OK) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "an event of its own log is unreadable: %s",
                    why);
        return -1;
    }
    uint64_t seq = eda_store_next_seq(svc->store);
    char id[EDA_NAME_MAX + 1];
    eda_id_join(id, sizeof id, eda_store_epoch(svc->store), seq);
    eda_header_t hdr = {.kind = EDA_KIND_EVENT,
                        .type = env.type,
                        .id = id,
                        .source = env.source,
                        .ts = env.ts,
                        .correlation_id =
                            env.correlation_id[0] ? env.correlation_id : NULL,
                        .causation_id = env.causation_id[0] ? env.causation_id : NULL,
                        .seq = seq,
                        .epoch = eda_store_epoch(svc->store)};
    msgpack_sbuffer_clear(&svc->event_buf);
    eda_pack_header(&svc->event_pk, &hdr);
    msgpack_pack_object(&svc->event_pk, env.data);
    return eda_store_append(svc->store, env.type, env.correlation_id, svc->event_buf.data,
                            svc->event_buf.size);
}

typedef struct {
    eda_service_t *svc;
    msgpack_sbuffer *into; /* collect: the events' bytes, as arena records */
    char names[S_NAMED_MAX * (EDA_NAME_MAX + 2)];
    size_t named, unnamed;
    uint64_t last;
} s_walk_t;

static void s_collect(uint64_t seq, const void *body, size_t len, void *arg)
{
    s_walk_t *w = arg;
    eda_arena_put(w->into, body, len);
    w->last = seq;
}

/*  Notes the order an event of the old log is about, for the log line. */
static void s_name_order(uint64_t seq, const void *body, size_t len, void *arg)
{
    s_walk_t *w = arg;
    eda_envelope_t env;
    w->last = seq;
    if (eda_decode(w->svc->log_decoder, body, len, &env, NULL, 0) != EDA_OK ||
        !env.correlation_id[0] || strstr(w->names, env.correlation_id))
        return;
    if (w->named == S_NAMED_MAX) {
        w->unnamed++;
        return;
    }
    size_t used = strlen(w->names);
    snprintf(w->names + used, sizeof w->names - used, "%s%s", used ? ", " : "",
             env.correlation_id);
    w->named++;
}

/*  Walks the log's events after `after`, up to `until`, with fn. 0 or -1. */
static int s_walk(eda_service_t *svc, uint64_t after, uint64_t until,
                  eda_store_event_fn *fn, s_walk_t *w)
{
    w->last = after;
    while (w->last < until) {
        uint64_t want = until - w->last;
        int n = eda_store_replay(svc->store, w->last,
                                 want < EDA_SVC_REPLAY_LIMIT ? (uint32_t)want
                                                             : EDA_SVC_REPLAY_LIMIT,
                                 SIZE_MAX, fn, w);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
    }
    return 0;
}

/*  Names, for each peer that had not applied the whole old log, the orders
    in the part it will now never get. */
static void s_report_unapplied(eda_service_t *svc)
{
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_peer_t *peer = &svc->peers[i];
        if (!peer->reported || peer->reported_seq >= svc->fence_seq)
            continue;
        s_walk_t w = {.svc = svc};
        if (s_walk(svc, peer->reported_seq, svc->fence_seq, s_name_order, &w))
            return;
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "%s had applied this log up to seq %llu: events %llu to %llu are "
                    "not carried into the new log, and these orders may diverge on "
                    "it: %s%s",
                    peer->name, (unsigned long long)peer->reported_seq,
                    (unsigned long long)peer->reported_seq + 1,
                    (unsigned long long)svc->fence_seq, w.names[0] ? w.names : "none",
                    w.unnamed ? " and more" : "");
    }
}

static void s_release(eda_service_t *svc);

/*  Starts a new event log that carries the events held since the start.
    0, or -1 when the database refused (nothing changed). */
static int s_new_log(eda_service_t *svc)
{
    char old[EDA_EPOCH_LEN + 1];
    snprintf(old, sizeof old, "%s", eda_store_epoch(svc->store));
    uint64_t end = eda_store_committed_seq(svc->store);
    uint64_t held = svc->fenced ? end - svc->fence_seq : 0;
    if (!svc->fenced)
        svc->fence_seq = end; /* found late: what was published stays behind */
    s_report_unapplied(svc);

    msgpack_sbuffer_clear(&svc->tmp);
    s_walk_t w = {.svc = svc, .into = &svc->tmp};
    int rc = eda_store_begin(svc->store);
    if (rc == 0)
        rc = s_walk(svc, svc->fence_seq, end, s_collect, &w);
    if (rc == 0)
        rc = eda_store_new_epoch(svc->store);
    const char *p = svc->tmp.data, *stop = p + svc->tmp.size;
    while (rc == 0 && p < stop) {
        uint32_t len;
        const char *body = eda_arena_get(&p, &len);
        rc = s_carry(svc, body, len);
    }
    if (rc == 0)
        rc = eda_store_commit(svc->store);
    else
        eda_store_rollback(svc->store);
    if (rc) {
        /* Tried again a heartbeat later: nothing is published meanwhile. */
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot start a new event log: %s",
                    eda_store_errmsg(svc->store));
        svc->fenced = true;
        return -1;
    }
    eda_log_msg(svc->log, EDA_LOG_ERROR,
                "%s applied seq %llu of this service's event log (epoch %s), which "
                "ends at seq %llu: the database lost commits (a power cut under --sync "
                "normal, or a restored copy). Events %llu to %llu are gone; the orders "
                "they were about may diverge on %s. New event log: epoch %s, carrying "
                "the %llu events held since the start",
                svc->lost_by, (unsigned long long)svc->lost_seq, old,
                (unsigned long long)svc->fence_seq,
                (unsigned long long)svc->fence_seq + 1, (unsigned long long)svc->lost_seq,
                svc->lost_by, eda_store_epoch(svc->store), (unsigned long long)held);
    svc->fence_seq = 0;
    svc->fenced = true;
    svc->lost_seq = 0;
    s_release(svc);
    return 0;
}

static void s_publish_held(uint64_t seq, const void *body, size_t len, void *arg)
{
    s_walk_t *w = arg;
    eda_envelope_t env;
    w->last = seq;
    if (eda_decode(w->svc->log_decoder, body, len, &env, NULL, 0) == EDA_OK)
        eda_svc_publish_event(w->svc, &env, body, len);
}

/*  Publishes the events held since the start, in order, and lets new ones
    go out as they commit. */
static void s_release(eda_service_t *svc)
{
    svc->fenced = false;
    s_walk_t w = {.svc = svc};
    if (s_walk(svc, svc->fence_seq, eda_store_committed_seq(svc->store), s_publish_held,
               &w))
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot read the events held: %s",
                    eda_store_errmsg(svc->store));
    /* Whatever could not be read goes out with the peers' replay. */
}

void eda_fence_timers(eda_service_t *svc, int64_t now)
{
    if (svc->lost_seq) {
        if (now >= svc->fence_retry_ms && s_new_log(svc))
            svc->fence_retry_ms = now + EDA_SVC_HEARTBEAT_MS;
        return;
    }
    if (!svc->fenced)
        return;
    char waiting[256] = "";
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_peer_t *peer = &svc->peers[i];
        if (peer->reported)
            continue;
        if (!peer->silent)
            return; /* still to hear from */
        size_t used = strlen(waiting);
        snprintf(waiting + used, sizeof waiting - used, "%s%s", used ? ", " : "",
                 peer->name);
    }
    if (waiting[0])
        eda_log_msg(svc->log, EDA_LOG_WARN,
                    "publishing without word from %s on how far it applied this log",
                    waiting);
    s_release(svc);
}
