/*  eda_retain: --retain-events N (DESIGN section 4, retention). The log
    keeps its newest N events at least, and every event a subscribing peer
    has not applied yet: its heartbeats say how far it is (`applied`).

    A service hears the heartbeats of the peers it follows on their SUBs.
    A peer that follows this service without being followed by it
    (inventory-service follows customer-service, not the other way) is
    heard on a SUB of its own here that takes its heartbeats only. Until
    every configured peer has been heard once since the start, nothing is
    deleted: one that is down may be far behind.
*/
#include "eda_service_impl.h"

/*  Small chunks often: a delete holds up the batches behind it for its
    length, and the log must shrink as fast as a busy service writes it
    (100,000 events a second at most here; order-service writes two a
    saga). */
#define S_FORGET_MAX 10000 /* events deleted in one transaction */
#define S_RETAIN_MS  100   /* between two */

/*  The watch on `name`, or NULL when it is not watched. */
static eda_watch_t *s_watch(eda_service_t *svc, const char *name)
{
    for (size_t i = 0; i < svc->nwatch; i++)
        if (streq(svc->watch[i].name, name))
            return &svc->watch[i];
    return NULL;
}

static bool s_followed(eda_service_t *svc, const char *name)
{
    for (size_t i = 0; i < svc->npeers; i++)
        if (streq(svc->peers[i].name, name))
            return true;
    return false;
}

int eda_retain_open(eda_service_t *svc)
{
    if (!svc->cfg.retain_events)
        return 0;
    for (size_t i = 0; i < svc->cfg.npeers; i++) {
        const eda_endpoint_t *ep = &svc->cfg.peers[i];
        if (streq(ep->name, svc->def->name) || !ep->events[0])
            continue;
        eda_watch_t *w = &svc->watch[svc->nwatch++];
        snprintf(w->name, sizeof w->name, "%s", ep->name);
        if (s_followed(svc, ep->name))
            continue; /* heard on the SUB that takes its events */
        w->sub = eda_svc_socket(svc, ZMQ_SUB, ep->events, false, ep->name);
        if (!w->sub)
            return -1;
        zsock_set_unsubscribe(w->sub, "");
        zsock_set_subscribe(w->sub, "Heartbeat");
    }
    return 0;
}

void eda_retain_close(eda_service_t *svc)
{
    for (size_t i = 0; i < svc->nwatch; i++)
        zsock_destroy(&svc->watch[i].sub);
}

void eda_retain_report(eda_service_t *svc, const char *peer, const msgpack_object *data)
{
    eda_watch_t *w = s_watch(svc, peer);
    if (!w)
        return;
    w->heard = true;
    /* Following another log of ours, it will ask for this one from seq 0. */
    w->subscribes = eda_fence_applied(svc, data, &w->applied);
}

int eda_retain_recv(eda_service_t *svc, size_t i)
{
    eda_watch_t *w = &svc->watch[i];
    zmsg_t *msg = w->sub ? zmsg_recv_nowait(w->sub) : NULL;
    if (!msg)
        return 0;
    eda_envelope_t env;
    zframe_t *body = zmsg_last(msg);
    if (zmsg_size(msg) == 2 &&
        eda_decode(svc->decoder, zframe_data(body), zframe_size(body), &env, NULL, 0) ==
            EDA_OK &&
        env.kind == EDA_KIND_HEARTBEAT && streq(env.source, w->name))
        eda_retain_report(svc, w->name, &env.data);
    zmsg_destroy(&msg);
    return 1;
}

zsock_t *eda_retain_sock(eda_service_t *svc, size_t i)
{
    return svc->watch[i].sub;
}

/*  Deletes the next chunk of what no one needs any more. Returns true
    when more is left than one chunk took. */
static bool s_forget(eda_service_t *svc)
{
    uint64_t keep = svc->cfg.retain_events;
    uint64_t last = eda_store_committed_seq(svc->store);
    if (last <= keep || svc->fenced)
        return false;
    uint64_t upto = last - keep;
    for (size_t i = 0; i < svc->nwatch; i++) {
        const eda_watch_t *w = &svc->watch[i];
        if (!w->heard)
            return false; /* it may be down and far behind: keep everything */
        if (w->subscribes && w->applied < upto)
            upto = w->applied;
    }
    uint64_t first = eda_store_first_seq(svc->store);
    if (upto < first)
        return false;
    bool more = upto - first >= S_FORGET_MAX;
    if (more)
        upto = first + S_FORGET_MAX - 1;
    if (eda_store_forget(svc->store, upto))
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot delete old events: %s",
                    eda_store_errmsg(svc->store));
    return more;
}

int64_t eda_retain_timers(eda_service_t *svc, int64_t now)
{
    if (!svc->cfg.retain_events)
        return INT64_MAX;
    if (now >= svc->retain_next_ms) {
        svc->retain_more = s_forget(svc);
        svc->retain_next_ms = now + S_RETAIN_MS;
    }
    /* With nothing more to delete now, the loop need not wake for it: it
       looks again after the next batch or heartbeat. */
    return svc->retain_more ? svc->retain_next_ms : INT64_MAX;
}
