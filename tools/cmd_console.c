/*  cmd_console: `console` serves the live console over HTTP (libmicrohttpd):
    one self-contained page (tools/console.html, embedded at build time), the
    live events as Server-Sent Events, an order's trace document, every
    service's Stats as Prometheus text, and a health check.

    Two sides, one lock between them. The hub (this thread, the only one that
    touches its ZeroMQ sockets: czmq sockets are not thread-safe) subscribes
    to every service like `eda watch`, puts the events in causal order the
    same way (an effect is held until its cause passed, or CAUSAL_HOLD_MS) and
    appends each as one line of JSON to a ring; it asks every service for
    Stats once a second and keeps the last answer. The HTTP side (one thread
    per connection) reads the ring and the answers under the lock. Each
    browser has its own cursor into the ring: one that reads slowly falls
    behind, skips what was overwritten (counted) and never holds up the hub,
    which never waits for anyone; the SUBs' high-water mark and the services'
    PUBs drop for a slow subscriber, so the services never slow down either.

    /api/orders/ID and /healthz ask the services from the HTTP thread with
    sockets of their own (trace_document, cli_ask_all), as `eda trace` and
    `eda ping` do: on demand, never on the hub's sockets.
*/
#include "causal.h"
#include "cli.h"

#include "console_html.h" /* s_console_html[], generated from console.html */
#include "eda_text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <czmq.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>

#define S_RING        4096 /* events kept for the browsers */
#define S_BACKLOG     256  /* of them sent first to a browser that connects */
#define S_STATS_MS    1000 /* how often every service is asked for Stats */
#define S_IDLE_MS     1000 /* an idle event stream sends a comment this often */
#define S_CONNECTIONS 64   /* HTTP connections at once (a thread each) */
#define S_FAMILIES    128  /* metric names in /metrics */

/* --- what the hub hands to the HTTP threads ---------------------------------- */

/*  One event in the ring: its number in the stream and its JSON line. */
typedef struct {
    uint64_t seq;
    char *text;
} s_slot_t;

/*  A service as last seen by the hub. */
typedef struct {
    json_t *stats; /* the last Stats reply's data, or NULL */
    bool up;       /* the last Stats was answered */
    int64_t heard; /* zclock_mono of its last event or heartbeat; 0 never */
    char why[256]; /* when not up: why */
} s_seen_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t more; /* an event was added, or stopping */
    s_slot_t ring[S_RING];
    uint64_t next; /* the seq the next event gets; ring[seq % S_RING] */
    bool stopping;
    s_seen_t seen[CLI_SERVICES];
    uint64_t dropped; /* events browsers skipped, falling behind */
    int streams;      /* event streams open */
} s_shared_t;

/*  What every HTTP request gets. */
typedef struct {
    cli_t *o;
    s_shared_t *shared;
} s_server_t;

/* --- the hub: SUBs, causal order, Stats -------------------------------------- */

typedef struct {
    cli_t *o;
    s_shared_t *shared;
    zsock_t *sub[CLI_SERVICES];
    eda_client_t *stats[CLI_SERVICES];
    int64_t asked[CLI_SERVICES]; /* zclock_mono of the Stats in flight; 0 none */
    int64_t next_stats;
    causal_t *causal;       /* puts the events in causal order */
    eda_decoder_t *decoder; /* for what arrives, before it is ordered */
} s_hub_t;

/*  Appends one JSON line to the ring (takes `text`) and wakes the streams. */
static void s_append(s_shared_t *sh, char *text)
{
    pthread_mutex_lock(&sh->lock);
    s_slot_t *slot = &sh->ring[sh->next % S_RING];
    free(slot->text);
    slot->text = text;
    slot->seq = sh->next++;
    pthread_cond_broadcast(&sh->more);
    pthread_mutex_unlock(&sh->lock);
}

/*  Takes one event passed on in causal order: into the ring as its
    envelope in JSON. */
static void s_emit(void *arg, int lane, const eda_envelope_t *env,
                   const msgpack_object *root, const char *mark)
{
    (void)lane, (void)env, (void)mark;
    s_hub_t *h = arg;
    json_t *json = cli_json(root);
    char *text = json ? cli_json_text(json) : NULL;
    json_decref(json);
    if (text)
        s_append(h->shared, text); /* out of memory: this one is lost, not the rest */
}

/*  Takes one message of lane `lane` (takes `body`): a heartbeat only says
    the service is there; an event goes to be put in causal order. */
static void s_take(s_hub_t *h, int lane, zframe_t **body)
{
    eda_envelope_t env;
    if (eda_decode(h->decoder, zframe_data(*body), zframe_size(*body), &env, NULL, 0) ||
        env.kind != EDA_KIND_EVENT) {
        zframe_destroy(body);
        return;
    }
    causal_offer(h->causal, lane, body, &env, true);
}

/*  Reads what has come on lane `lane`'s SUB, a bounded batch. */
static void s_drain_sub(s_hub_t *h, int lane)
{
    int k = 0;
    zframe_t *body;
    for (; k < 256 && cli_recv_event(h->sub[lane], &body); k++)
        if (body)
            s_take(h, lane, &body);
    if (k > 0) {
        pthread_mutex_lock(&h->shared->lock);
        h->shared->seen[lane].heard = zclock_mono();
        pthread_mutex_unlock(&h->shared->lock);
    }
}

/*  Records lane `lane`'s Stats outcome: the reply's data (NULL: none). */
static void s_seen(s_hub_t *h, int lane, json_t *stats, const char *why)
{
    s_seen_t *s = &h->shared->seen[lane];
    pthread_mutex_lock(&h->shared->lock);
    s->up = stats != NULL;
    if (stats) {
        json_decref(s->stats);
        s->stats = stats;
    }
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
    pthread_mutex_unlock(&h->shared->lock);
}

/*  Takes the Stats reply waiting on lane `lane`'s client. */
static void s_on_stats(s_hub_t *h, int lane)
{
    eda_envelope_t reply;
    int rc = eda_client_recv(h->stats[lane], &reply);
    if (rc == 1)
        return;
    h->asked[lane] = 0;
    char why[256];
    if (rc < 0)
        s_seen(h, lane, NULL, "an undecodable reply");
    else if (reply.ok != 1)
        s_seen(h, lane, NULL, cli_refusal(&reply, why, sizeof why));
    else
        s_seen(h, lane, cli_json(&reply.data), NULL);
}

/*  Once a second: asks each service for Stats, unless its last request is
    still within --timeout. One unanswered past it marks the service down
    and is dropped (a reset), so requests never pile up for a service that
    is away; with ZMQ_IMMEDIATE a service down refuses the send at once. */
static void s_ask_stats(s_hub_t *h)
{
    int64_t now = zclock_mono();
    if (now < h->next_stats)
        return;
    h->next_stats = now + S_STATS_MS;
    for (int i = 0; i < CLI_SERVICES; i++) {
        char why[256];
        if (!h->stats[i])
            continue;
        if (h->asked[i] && now - h->asked[i] < h->o->timeout_ms)
            continue;
        if (h->asked[i]) {
            snprintf(why, sizeof why, "no Stats reply within %d ms", h->o->timeout_ms);
            s_seen(h, i, NULL, why);
            eda_client_reset(h->stats[i]);
            h->asked[i] = 0;
        }
        msgpack_packer *pk = eda_client_begin(h->stats[i], "Stats", NULL);
        msgpack_pack_map(pk, 0);
        if (eda_client_send(h->stats[i]) == 0)
            h->asked[i] = now;
        else
            s_seen(h, i, NULL, "not connected");
    }
}

/*  Connects lane `i`'s SUB and Stats client. 0, or CLI_FAILED (printed). */
static int s_hub_connect(s_hub_t *h, int i)
{
    const char *name = cli_services[i];
    const eda_endpoint_t *ep = eda_config_peer(&h->o->cfg, name);
    if (!ep)
        return cli_fail("no endpoint for %s", name);
    h->sub[i] = zsock_new(ZMQ_SUB);
    if (!h->sub[i])
        return cli_fail("cannot create a socket");
    zsock_set_linger(h->sub[i], 0);
    zsock_set_rcvhwm(h->sub[i], CLI_SUB_HWM);
    zsock_set_maxmsgsize(h->sub[i], EDA_MAX_MSG);
    zsock_set_subscribe(h->sub[i], "");
    char why[512] = "";
    if ((h->o->keys && eda_keys_client(h->o->keys, h->sub[i], name, why, sizeof why)) ||
        zsock_connect(h->sub[i], "%s", ep->events))
        return cli_fail("cannot connect to %s %s", ep->events, why);
    h->stats[i] = eda_client_new(ep->commands, "eda-console");
    if (!h->stats[i] ||
        (h->o->keys && eda_client_secure(h->stats[i], h->o->keys, name)) ||
        eda_client_set_immediate(h->stats[i], true))
        return cli_fail("cannot connect to %s", ep->commands);
    return 0;
}

/*  The hub's loop, until SIGINT or SIGTERM. */
static void s_hub_run(s_hub_t *h)
{
    while (!zsys_interrupted) {
        zmq_pollitem_t items[2 * CLI_SERVICES];
        int who[2 * CLI_SERVICES], n = 0;
        for (int i = 0; i < CLI_SERVICES; i++) {
            items[n] = (zmq_pollitem_t){zsock_resolve(h->sub[i]), 0, ZMQ_POLLIN, 0};
            who[n++] = i;
            zsock_t *sock = eda_client_sock(h->stats[i]);
            if (sock) {
                items[n] = (zmq_pollitem_t){zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
                who[n++] = CLI_SERVICES + i;
            }
        }
        int64_t now = zclock_mono(), wait = h->next_stats - now;
        if (causal_next(h->causal) - now < wait)
            wait = causal_next(h->causal) - now;
        wait = wait < 0 ? 0 : wait > 100 ? 100 : wait;
        if (zmq_poll(items, n, (long)wait) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; k++)
            if (items[k].revents & ZMQ_POLLIN) {
                if (who[k] < CLI_SERVICES)
                    s_drain_sub(h, who[k]);
                else
                    s_on_stats(h, who[k] - CLI_SERVICES);
            }
        causal_expire(h->causal, zclock_mono());
        s_ask_stats(h);
    }
}

/* --- HTTP: responses -------------------------------------------------------------- */

/*  Queues a response of `len` bytes of `body` (copied) with `type`. */
static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status,
                               const char *type, const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_reply_text(struct MHD_Connection *conn, unsigned status,
                                    const char *text)
{
    return s_reply(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

/*  Queues `value` (stolen) as JSON; 500 when it is NULL. */
static enum MHD_Result s_reply_json(struct MHD_Connection *conn, unsigned status,
                                    json_t *value)
{
    char *text = value ? cli_json_text(value) : NULL;
    json_decref(value);
    if (!text)
        return s_reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    enum MHD_Result rc = s_reply(conn, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

/*  The page. Its script and style are inline and it loads nothing: the
    policy says so to the browser too. */
static enum MHD_Result s_page(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof s_console_html, (void *)s_console_html, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; connect-src 'self'; "
                            "img-src data:; base-uri 'none'; form-action 'none'");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* --- HTTP: /api/events -------------------------------------------------------------- */

/*  One browser's event stream: its cursor into the ring, and the text being
    written. */
typedef struct {
    s_shared_t *shared;
    uint64_t cursor;
    char *out;
    size_t len, off;
    bool greeted;
} s_stream_t;

/*  A new string, printf-style, or NULL when memory runs out. */
static char *s_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *s_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = len < 0 ? NULL : malloc((size_t)len + 1);
    if (text) {
        va_start(ap, fmt);
        vsnprintf(text, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return text;
}

/*  Waits up to S_IDLE_MS for the stream's next event and makes its text:
    "id: N\ndata: JSON\n\n", a comment for what was skipped or to keep the
    connection checked, or NULL when the console stops. */
static char *s_next_text(s_stream_t *c)
{
    s_shared_t *sh = c->shared;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += S_IDLE_MS / 1000;
    pthread_mutex_lock(&sh->lock);
    while (c->cursor == sh->next && !sh->stopping)
        if (pthread_cond_timedwait(&sh->more, &sh->lock, &until))
            break;
    bool stopping = sh->stopping;
    char *text = NULL;
    if (!stopping && c->cursor != sh->next && sh->next - c->cursor > S_RING) {
        uint64_t skipped = sh->next - S_RING - c->cursor;
        sh->dropped += skipped;
        c->cursor = sh->next - S_RING;
        text = s_format(": %" PRIu64 " events dropped: this client is slow\n\n", skipped);
    } else if (!stopping && c->cursor != sh->next) {
        const s_slot_t *slot = &sh->ring[c->cursor % S_RING];
        text = s_format("id: %" PRIu64 "\ndata: %s\n\n", slot->seq, slot->text);
        c->cursor++;
    }
    pthread_mutex_unlock(&sh->lock);
    /* Idle, or out of memory: a comment keeps the connection checked. */
    return stopping ? NULL : text ? text : strdup(":\n\n");
}

/*  libmicrohttpd asks for the stream's next bytes (in this connection's own
    thread, so waiting here holds up nobody else). */
static ssize_t s_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_stream_t *c = cls;
    if (c->off == c->len) {
        free(c->out);
        c->out = c->greeted ? s_next_text(c) : strdup("retry: 1000\n\n");
        c->greeted = true; /* the headers leave with the first bytes */
        c->off = 0;
        c->len = c->out ? strlen(c->out) : 0;
        if (!c->out)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = c->len - c->off < max ? c->len - c->off : max;
    memcpy(buf, c->out + c->off, n);
    c->off += n;
    return (ssize_t)n;
}

static void s_stream_free(void *cls)
{
    s_stream_t *c = cls;
    pthread_mutex_lock(&c->shared->lock);
    c->shared->streams--;
    pthread_mutex_unlock(&c->shared->lock);
    free(c->out);
    free(c);
}

/*  Starts an event stream: from the event after Last-Event-ID when the
    browser reconnects and it is still in the ring, else with the last
    S_BACKLOG events, so that a page shows the recent flow at once. */
static enum MHD_Result s_events(s_server_t *srv, struct MHD_Connection *conn)
{
    s_stream_t *c = calloc(1, sizeof *c);
    if (!c)
        return s_reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    c->shared = srv->shared;
    const char *last =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    int64_t resume = -1;
    if (last && cli_parse_i64(last, 0, INT64_MAX, &resume))
        resume = -1;
    pthread_mutex_lock(&srv->shared->lock);
    uint64_t next = srv->shared->next;
    uint64_t oldest = next > S_RING ? next - S_RING : 0;
    c->cursor = next > S_BACKLOG ? next - S_BACKLOG : 0;
    if (resume >= 0 && (uint64_t)resume < next)
        c->cursor = (uint64_t)resume + 1 > oldest ? (uint64_t)resume + 1 : oldest;
    srv->shared->streams++;
    pthread_mutex_unlock(&srv->shared->lock);
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, s_stream_read, c, s_stream_free);
    if (!r) {
        s_stream_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* --- HTTP: /api/stats, /metrics, /healthz ------------------------------------------ */

/*  {services: [{service, up, why, heard_ms_ago, stats}], streams, dropped}. */
static enum MHD_Result s_stats_json(s_server_t *srv, struct MHD_Connection *conn)
{
    s_shared_t *sh = srv->shared;
    json_t *services = json_array();
    int64_t now = zclock_mono();
    pthread_mutex_lock(&sh->lock);
    for (int i = 0; services && i < CLI_SERVICES; i++) {
        const s_seen_t *s = &sh->seen[i];
        json_array_append_new(
            services,
            json_pack("{s:s, s:b, s:s?, s:I, s:O?}", "service", cli_services[i], "up",
                      s->up, "why", s->up ? NULL : s->why, "heard_ms_ago",
                      (json_int_t)(s->heard ? now - s->heard : -1), "stats", s->stats));
    }
    json_t *doc = json_pack("{s:o, s:I, s:i, s:I}", "services", services, "events",
                            (json_int_t)sh->next, "streams", sh->streams, "dropped",
                            (json_int_t)sh->dropped);
    pthread_mutex_unlock(&sh->lock);
    return s_reply_json(conn, MHD_HTTP_OK, doc);
}

/*  Stats keys that are levels, not counts: gauges, without _total. Every
    average, percentile and maximum is one. */
static bool s_gauge(const char *key)
{
    static const char *const gauges[] = {"last_seq",       "uptime_s",
                                         "batch_avg_x100", "fds_used",
                                         "fds_limit",      "reply_backlog_bytes",
                                         "wal_pages",      "sagas_in_flight"};
    for (size_t i = 0; i < sizeof gauges / sizeof *gauges; i++)
        if (streq(key, gauges[i]))
            return true;
    static const char *const suffixes[] = {"_avg", "_p50", "_p99", "_max"};
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t n = strlen(suffixes[i]);
        if (len > n && streq(key + len - n, suffixes[i]))
            return true;
    }
    return false;
}

/*  A key from the wire becomes part of a metric name only when it is one
    already: [a-z0-9_], not empty. */
static bool s_metric_name(const char *key)
{
    if (!key[0] || strlen(key) > EDA_NAME_MAX)
        return false;
    for (const char *c = key; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_'))
            return false;
    return true;
}

/*  A Prometheus label value: backslash, quote and newline escaped. */
static void s_label(zchunk_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            zchunk_extend(out, "\\", 1);
        if (*s == '\n')
            zchunk_extend(out, "\\n", 2);
        else
            zchunk_extend(out, s, 1);
    }
}

/*  The integer keys of a service's Stats and of its `own` map, as metric
    families: adds each new name to names[*n]. */
static void s_families(json_t *stats, const char **names, int *n)
{
    json_t *maps[2] = {stats, json_object_get(stats, "own")};
    for (int m = 0; m < 2; m++) {
        const char *key;
        json_t *v;
        json_object_foreach(maps[m], key, v)
        {
            bool known = false;
            for (int i = 0; i < *n; i++)
                known |= streq(names[i], key);
            if (!known && json_is_integer(v) && s_metric_name(key) && *n < S_FAMILIES)
                names[(*n)++] = key;
        }
    }
}

/*  One family: its TYPE line and every service's sample. */
static void s_family(zchunk_t *out, s_shared_t *sh, const char *key)
{
    bool gauge = s_gauge(key);
    char line[512];
    snprintf(line, sizeof line, "# TYPE eda_%s%s %s\n", key, gauge ? "" : "_total",
             gauge ? "gauge" : "counter");
    zchunk_extend(out, line, strlen(line));
    for (int i = 0; i < CLI_SERVICES; i++) {
        json_t *stats = sh->seen[i].stats;
        json_t *v = json_object_get(stats, key);
        if (!json_is_integer(v))
            v = json_object_get(json_object_get(stats, "own"), key);
        if (!sh->seen[i].up || !json_is_integer(v))
            continue;
        snprintf(line, sizeof line, "eda_%s%s{service=\"%s\"} %" JSON_INTEGER_FORMAT "\n",
                 key, gauge ? "" : "_total", cli_services[i], json_integer_value(v));
        zchunk_extend(out, line, strlen(line));
    }
}

/*  Each peer position a service reports: eda_peer_last_seq{service, peer}. */
static void s_peer_positions(zchunk_t *out, s_shared_t *sh)
{
    const char *head = "# TYPE eda_peer_last_seq gauge\n";
    zchunk_extend(out, head, strlen(head));
    for (int i = 0; i < CLI_SERVICES; i++) {
        const char *peer;
        json_t *pos;
        if (!sh->seen[i].up)
            continue;
        json_object_foreach(json_object_get(sh->seen[i].stats, "peers"), peer, pos)
        {
            json_t *seq = json_object_get(pos, "last_seq");
            if (!json_is_integer(seq))
                continue;
            char line[256];
            snprintf(line, sizeof line, "eda_peer_last_seq{service=\"%s\",peer=\"",
                     cli_services[i]);
            zchunk_extend(out, line, strlen(line));
            s_label(out, peer);
            snprintf(line, sizeof line, "\"} %" JSON_INTEGER_FORMAT "\n",
                     json_integer_value(seq));
            zchunk_extend(out, line, strlen(line));
        }
    }
}

/*  Every service's last Stats in the Prometheus text format: eda_up for
    each, then each counter as eda_NAME_total and each level as eda_NAME,
    one family at a time (the format wants a family's samples together). */
static enum MHD_Result s_metrics(s_server_t *srv, struct MHD_Connection *conn)
{
    s_shared_t *sh = srv->shared;
    zchunk_t *out = zchunk_new(NULL, 16 * 1024);
    if (!out)
        return s_reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    const char *up = "# HELP eda_up Whether the service answered the console's last "
                     "Stats.\n# TYPE eda_up gauge\n";
    zchunk_extend(out, up, strlen(up));
    pthread_mutex_lock(&sh->lock);
    const char *names[S_FAMILIES];
    int n = 0;
    for (int i = 0; i < CLI_SERVICES; i++) {
        char line[128];
        snprintf(line, sizeof line, "eda_up{service=\"%s\"} %d\n", cli_services[i],
                 sh->seen[i].up);
        zchunk_extend(out, line, strlen(line));
        if (sh->seen[i].up)
            s_families(sh->seen[i].stats, names, &n);
    }
    for (int k = 0; k < n; k++)
        s_family(out, sh, names[k]);
    s_peer_positions(out, sh);
    pthread_mutex_unlock(&sh->lock);
    enum MHD_Result rc = s_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4",
                                 zchunk_data(out), zchunk_size(out));
    zchunk_destroy(&out);
    return rc;
}

/*  200 when every service answers Ping now (asked at once, within
    --timeout), else 503 naming those that do not and why. */
static enum MHD_Result s_healthz(s_server_t *srv, struct MHD_Connection *conn)
{
    cli_answer_t answers[CLI_SERVICES];
    cli_ask_all(srv->o, "Ping", cli_services, CLI_SERVICES, srv->o->timeout_ms, answers);
    char text[2048] = "", why[512], shown[4 * sizeof why];
    size_t len = 0;
    for (int i = 0; i < CLI_SERVICES; i++) {
        const cli_answer_t *a = &answers[i];
        if (a->answered && a->reply.ok == 1)
            continue;
        const char *reason =
            a->answered ? cli_refusal(&a->reply, why, sizeof why) : a->why;
        len += (size_t)snprintf(text + len, len < sizeof text ? sizeof text - len : 0,
                                "%s%s (%s)", len ? ", " : "down: ", a->service,
                                cli_esc(reason, shown, sizeof shown));
    }
    cli_answers_free(answers, CLI_SERVICES);
    if (len == 0)
        return s_reply_text(conn, MHD_HTTP_OK,
                            "ok: order-service, customer-service and inventory-service "
                            "answer Ping\n");
    if (len >= sizeof text - 1)
        len = sizeof text - 2;
    text[len] = '\n';
    text[len + 1] = '\0';
    return s_reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text);
}

/* --- HTTP: /api/orders/ID ---------------------------------------------------------- */

/*  The trace document of `eda --json trace ID`: 200 (also when a service
    did not answer: the document names it in `missing`), 404 when no
    service holds an event of the order, 400 for an id no order can have. */
static enum MHD_Result s_order(s_server_t *srv, struct MHD_Connection *conn,
                               const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > EDA_NAME_MAX || !eda_printable(id, len))
        return s_reply_json(conn, MHD_HTTP_BAD_REQUEST,
                            json_pack("{s:s}", "error", "not an order id"));
    int status;
    json_t *doc = trace_document(srv->o, id, &status);
    if (doc)
        return s_reply_json(conn, MHD_HTTP_OK, doc);
    if (status < 0)
        return s_reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return s_reply_json(
        conn, MHD_HTTP_NOT_FOUND,
        json_pack("{s:s, s:s}", "error", "no events for this order", "order_id", id));
}

/* --- HTTP: routing ----------------------------------------------------------------- */

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **req_cls)
{
    (void)version, (void)upload_data;
    static int s_first;
    if (!*req_cls) {
        *req_cls = &s_first; /* the headers came; answer on the next call */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* a body nobody asked for: passed by */
        return MHD_YES;
    }
    s_server_t *srv = cls;
    if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
        return s_reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    if (streq(url, "/") || streq(url, "/index.html"))
        return s_page(conn);
    if (streq(url, "/api/events"))
        return s_events(srv, conn);
    if (streq(url, "/api/stats"))
        return s_stats_json(srv, conn);
    if (strncmp(url, "/api/orders/", 12) == 0)
        return s_order(srv, conn, url + 12);
    if (streq(url, "/metrics"))
        return s_metrics(srv, conn);
    if (streq(url, "/healthz"))
        return s_healthz(srv, conn);
    return s_reply_text(conn, MHD_HTTP_NOT_FOUND,
                        "not found: try /, /api/events, /api/stats, /api/orders/ID, "
                        "/metrics, /healthz\n");
}

/* --- console ------------------------------------------------------------------------ */

/*  Reads HOST:PORT (or [V6]:PORT) into an address. 0, or CLI_USAGE
    (printed). */
static int s_listen_addr(const cli_args_t *args, const char *listen,
                         struct sockaddr_storage *addr, bool *v6)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']')
        listen++, hlen -= 2;
    int64_t port;
    if (!colon || hlen == 0 || hlen >= sizeof host ||
        cli_parse_i64(colon + 1, 0, 65535, &port))
        return cli_usage_error(args, "--listen wants HOST:PORT, e.g. 127.0.0.1:8088");
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
                    *found = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &found);
    if (rc || !found || found->ai_addrlen > sizeof *addr) {
        if (found)
            freeaddrinfo(found);
        return cli_usage_error(args, "--listen: cannot resolve '%s': %s", host,
                               rc ? gai_strerror(rc) : "no address");
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *v6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    return 0;
}

/*  Prints the address the server listens on ("console: http://HOST:PORT/",
    the port it was given when --listen said 0), for a person or a script. */
static void s_print_url(struct MHD_Daemon *d, const struct sockaddr_storage *addr,
                        bool v6)
{
    char host[INET6_ADDRSTRLEN] = "?";
    const void *raw = v6 ? (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)addr)->sin_addr;
    inet_ntop(v6 ? AF_INET6 : AF_INET, raw, host, sizeof host);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("console: http://%s%s%s:%u/\n", v6 ? "[" : "", host, v6 ? "]" : "",
           info ? (unsigned)info->port : 0);
    fflush(stdout);
}

static void s_shared_free(s_shared_t *sh)
{
    for (int i = 0; i < S_RING; i++)
        free(sh->ring[i].text);
    for (int i = 0; i < CLI_SERVICES; i++)
        json_decref(sh->seen[i].stats);
    pthread_cond_destroy(&sh->more);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

static void s_hub_free(s_hub_t *h)
{
    causal_destroy(&h->causal);
    for (int i = 0; i < CLI_SERVICES; i++) {
        zsock_destroy(&h->sub[i]);
        eda_client_destroy(&h->stats[i]);
    }
    eda_decoder_destroy(&h->decoder);
    free(h);
}

int cmd_console(cli_t *o, const cli_args_t *args)
{
    const char *listen = cli_opt(args, "listen");
    struct sockaddr_storage addr;
    bool v6 = false;
    if (args->noperands)
        return cli_usage_error(args, "takes no operands, only options");
    int rc = s_listen_addr(args, listen ? listen : "127.0.0.1:8088", &addr, &v6);
    if (rc)
        return rc;
    s_shared_t *sh = calloc(1, sizeof *sh);
    s_hub_t *h = calloc(1, sizeof *h);
    if (!sh || !h || !(h->decoder = eda_decoder_new()) ||
        !(h->causal = causal_new(CLI_SERVICES, CAUSAL_HOLD_MS, s_emit, h))) {
        free(sh);
        if (h)
            s_hub_free(h);
        return cli_fail("out of memory");
    }
    pthread_mutex_init(&sh->lock, NULL);
    pthread_cond_init(&sh->more, NULL);
    h->o = o;
    h->shared = sh;
    for (int i = 0; i < CLI_SERVICES; i++)
        snprintf(sh->seen[i].why, sizeof sh->seen[i].why, "not asked yet");
    for (int i = 0; i < CLI_SERVICES && rc == 0; i++)
        rc = s_hub_connect(h, i);
    s_server_t srv = {o, sh};
    struct MHD_Daemon *d = NULL;
    if (rc == 0) {
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                                 MHD_USE_INTERNAL_POLLING_THREAD |
                                 (v6 ? MHD_USE_IPv6 : 0),
                             0, NULL, NULL, s_handle, &srv, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONNECTIONS,
                             MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
        if (!d)
            rc = cli_fail("cannot listen on %s: %s", listen ? listen : "127.0.0.1:8088",
                          errno ? strerror(errno) : "libmicrohttpd refused");
    }
    if (rc == 0) {
        s_print_url(d, &addr, v6);
        s_hub_run(h);
    }
    /* The streams end first (they wait on `more`), then the server joins
       its threads, then what they read can go. */
    pthread_mutex_lock(&sh->lock);
    sh->stopping = true;
    pthread_cond_broadcast(&sh->more);
    pthread_mutex_unlock(&sh->lock);
    if (d)
        MHD_stop_daemon(d);
    s_hub_free(h);
    s_shared_free(sh);
    return rc;
}
