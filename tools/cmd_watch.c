/*  cmd_watch: `watch` follows every service's events live, one lane per
    service, in causal order.

    One SUB per service, so that what arrives (events, heartbeats) is known
    to come from that service's endpoint, whatever its envelope says. The
    three streams are merged on arrival, which is not causal order: a
    customer-service reaction can overtake the order-service event that
    caused it. So an event whose causation_id names an event ("<epoch>-<seq>")
    not yet passed on is held until that cause passes, or CAUSAL_HOLD_MS, then
    shown marked. A causation_id that names a command (not in any log) makes
    the event a root: it is shown at once.

    Filters (--order, --type) apply at the end, after ordering: an event
    filtered out still releases the events it caused.

    Above S_SUMMARY_RATE events per second the flow is summarised (one line
    per service each second, counts by type) rather than printed, and the
    SUBs have a high-water mark: a slow terminal makes this client drop
    events, never the services slow down (their PUBs drop for a slow
    subscriber anyway).

    A service heard from (event or heartbeat) by no message for S_SILENT_MS is
    named on a status line on stderr, and again when it comes back.
*/
#include "causal.h"
#include "cli.h"

#include "eda_log.h"
#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>
#include <strings.h>

#define S_SILENT_MS    3000 /* no heartbeat for this long: not reachable */
#define S_SUMMARY_RATE 500  /* events/s above which the flow is summarised */
#define S_TYPES        32   /* event types counted per service in a summary */
#define S_LAST_MAX     100000

/*  One event type's count in the current second. */
typedef struct {
    char type[EDA_NAME_MAX + 1];
    uint64_t n;
} s_count_t;

/*  One service: its SUB, when it was last heard, and what was seen of it. */
typedef struct {
    const char *name;
    const char *endpoint;
    zsock_t *sub;
    int64_t heard; /* zclock_mono of its last message; 0 never */
    bool down;     /* named as not reachable, not heard since */
    char replay_epoch[EDA_NAME_MAX + 1];
    uint64_t replayed; /* --last: live events of replay_epoch up to this are old */
    s_count_t counts[S_TYPES];
    int ncounts;
    uint64_t total; /* events counted this second */
} s_lane_t;

typedef struct {
    cli_t *o;
    bool colour, heartbeats;
    const char *order, *type; /* filters, or NULL */
    int64_t count, shown;     /* --count (0: no end), and events shown */
    s_lane_t lanes[CLI_SERVICES];
    causal_t *causal;       /* puts the events in causal order */
    eda_decoder_t *decoder; /* for what arrives, before it is ordered */
    bool summarising;
    int64_t second;         /* zclock_mono when the current second began */
    uint64_t second_events; /* events arrived in it */
} s_watch_t;

static const char *s_colours[CLI_SERVICES] = {"\033[36m", "\033[35m", "\033[33m"};

/* --- showing ------------------------------------------------------------------ */

static void s_time(uint64_t ts)
{
    time_t secs = (time_t)(ts / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    printf("%02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(ts % 1000000 / 1000));
}

static void s_gutter(int lane)
{
    for (int i = 0; i < CLI_SERVICES; i++)
        printf("%s", i == lane ? "●  " : "│  ");
}

/*  Prints one event (or heartbeat) in its service's lane; `root` is its
    whole map, for --json. */
static void s_print(const s_watch_t *w, const eda_envelope_t *env,
                    const msgpack_object *root, int lane, const char *mark)
{
    if (w->o->json) {
        cli_print_json(root);
        fflush(stdout);
        return;
    }
    char fields[2048], type[CLI_SHOWN], order[CLI_SHOWN];
    eda_log_fields(&env->data, "order_id", fields, sizeof fields);
    s_time(env->ts);
    s_gutter(lane);
    printf("%s%-16s%s %-20s #%-5" PRIu64 " %s%s%s\n", w->colour ? s_colours[lane] : "",
           cli_esc(env->type, type, sizeof type), w->colour ? "\033[0m" : "",
           env->correlation_id[0] ? cli_esc(env->correlation_id, order, sizeof order)
                                  : "-",
           env->seq, fields, mark ? "  " : "", mark ? mark : "");
    fflush(stdout);
}

static bool s_passes(const s_watch_t *w, const eda_envelope_t *env)
{
    return (!w->order || streq(env->correlation_id, w->order)) &&
           (!w->type || strcasecmp(env->type, w->type) == 0);
}

/*  Counts an event for this second's summary line of its lane. */
static void s_count(s_lane_t *lane, const char *type)
{
    lane->total++;
    for (int i = 0; i < lane->ncounts; i++)
        if (streq(lane->counts[i].type, type)) {
            lane->counts[i].n++;
            return;
        }
    /* Past S_TYPES types the rest are in the total only: a flood of made-up
       types must not grow this. */
    if (lane->ncounts < S_TYPES) {
        snprintf(lane->counts[lane->ncounts].type, sizeof lane->counts[0].type, "%s",
                 type);
        lane->counts[lane->ncounts++].n = 1;
    }
}

/*  Prints one line per service that had events this second, and starts
    the next. */
static void s_print_summary(s_watch_t *w)
{
    for (int i = 0; i < CLI_SERVICES; i++) {
        s_lane_t *lane = &w->lanes[i];
        if (!lane->total)
            continue;
        if (w->o->json) {
            json_t *types = json_object();
            for (int k = 0; k < lane->ncounts; k++)
                json_object_set_new(types, lane->counts[k].type,
                                    json_integer((json_int_t)lane->counts[k].n));
            cli_print_json_value(json_pack("{s:s, s:I, s:o}", "summary", lane->name,
                                           "events", (json_int_t)lane->total, "types",
                                           types));
        } else {
            s_time((uint64_t)zclock_time() * 1000);
            s_gutter(i);
            printf("%s%" PRIu64 " events%s:", w->colour ? s_colours[i] : "", lane->total,
                   w->colour ? "\033[0m" : "");
            for (int k = 0; k < lane->ncounts; k++) {
                char type[CLI_SHOWN];
                printf(" %s %" PRIu64, cli_esc(lane->counts[k].type, type, sizeof type),
                       lane->counts[k].n);
            }
            printf("\n");
        }
        lane->total = 0;
        lane->ncounts = 0;
    }
    fflush(stdout);
}

/* --- causal order --------------------------------------------------------------- */

/*  Takes one event passed on in causal order: shown (or counted) when it
    passes the filters (one filtered out still releases its effects). */
static void s_emit(void *arg, int lane, const eda_envelope_t *env,
                   const msgpack_object *root, const char *mark)
{
    s_watch_t *w = arg;
    if ((w->count == 0 || w->shown < w->count) && s_passes(w, env)) {
        if (w->summarising)
            s_count(&w->lanes[lane], env->type);
        else
            s_print(w, env, root, lane, mark);
        w->shown++;
    }
}

/*  Takes one message from lane `lane` (takes `body`). `live`: from the SUB,
    else from --last's replay. */
static void s_take(s_watch_t *w, int lane, zframe_t **body, bool live)
{
    s_lane_t *l = &w->lanes[lane];
    eda_envelope_t env;
    if (eda_decode(w->decoder, zframe_data(*body), zframe_size(*body), &env, NULL, 0)) {
        zframe_destroy(body);
        return;
    }
    if (env.kind == EDA_KIND_HEARTBEAT) {
        if (w->heartbeats && !w->summarising && live)
            s_print(w, &env, eda_decoder_root(w->decoder), lane, NULL);
        zframe_destroy(body);
        return;
    }
    if (env.kind != EDA_KIND_EVENT ||
        (live && streq(env.epoch, l->replay_epoch) && env.seq <= l->replayed)) {
        zframe_destroy(body); /* not an event, or shown by the replay already */
        return;
    }
    w->second_events++;
    causal_offer(w->causal, lane, body, &env, !w->summarising);
}

/* --- reachability ------------------------------------------------------------- */

/*  Names the services silent for S_SILENT_MS, once, and those back. */
static void s_check_reachable(s_watch_t *w, int64_t start)
{
    int64_t now = zclock_mono();
    char line[2048] = "";
    size_t len = 0;
    for (int i = 0; i < CLI_SERVICES; i++) {
        s_lane_t *l = &w->lanes[i];
        int64_t since = l->heard ? l->heard : start;
        if (l->down || now - since < S_SILENT_MS)
            continue;
        l->down = true;
        char ep[CLI_SHOWN];
        len += (size_t)snprintf(line + len, len < sizeof line ? sizeof line - len : 0,
                                "%s%s (%s)", len ? ", " : "", l->name,
                                cli_esc(l->endpoint, ep, sizeof ep));
    }
    if (len)
        fprintf(stderr, "eda watch: not reachable: %s (no heartbeat for %d s)\n", line,
                S_SILENT_MS / 1000);
}

static void s_heard(s_watch_t *w, int lane)
{
    s_lane_t *l = &w->lanes[lane];
    l->heard = zclock_mono();
    if (l->down) {
        l->down = false;
        fprintf(stderr, "eda watch: %s is back\n", l->name);
    }
}

/* --- rate ------------------------------------------------------------------------ */

/*  Switches to summaries as soon as a second holds more than S_SUMMARY_RATE
    events, and back after a whole second under half of it. */
static void s_rate(s_watch_t *w)
{
    int64_t now = zclock_mono();
    if (!w->summarising && w->second_events > S_SUMMARY_RATE) {
        w->summarising = true;
        causal_expire(w->causal, INT64_MAX); /* counted now: no order in a count */
        if (!w->o->json)
            printf("-- more than %d events/s: one line per service each second, "
                   "counts by type --\n",
                   S_SUMMARY_RATE);
    }
    if (now - w->second < 1000)
        return;
    if (w->summarising)
        s_print_summary(w);
    if (w->summarising && w->second_events < S_SUMMARY_RATE / 2) {
        w->summarising = false;
        if (!w->o->json)
            printf("-- back to each event --\n");
    }
    fflush(stdout);
    w->second = now;
    w->second_events = 0;
}

/* --- --last ---------------------------------------------------------------------- */

typedef struct {
    zframe_t *body;
    uint64_t ts;
    int lane;
} s_past_t;

static int s_by_ts(const void *a, const void *b)
{
    const s_past_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/*  Reads the last `n` events of lane `lane`'s log into past (grown), over
    `client` (connected to that service, and kept). */
static int s_replay(s_watch_t *w, int lane, eda_client_t *client, uint64_t n,
                    s_past_t **past, size_t *npast, size_t *cap)
{
    s_lane_t *l = &w->lanes[lane];
    uint64_t after = INT64_MAX, last = 0;
    bool first = true;
    int rc = 0;
    while (rc == 0 && (first || after < last)) {
        msgpack_packer *pk = eda_client_begin(client, "ReplayEvents", NULL);
        msgpack_pack_map(pk, 2);
        eda_pack_kv_u64(pk, "after_seq", after);
        eda_pack_kv_u64(pk, "limit", first ? 1 : 1000);
        eda_envelope_t reply;
        rc = cli_call(client, l->name, w->o->timeout_ms, &reply);
        const msgpack_object *events = rc ? NULL : eda_map_get(&reply.data, "events");
        if (rc || !events || events->type != MSGPACK_OBJECT_ARRAY ||
            eda_get_u64(&reply.data, "last_seq", &last) != 0) {
            rc = rc ? rc : cli_fail("%s: a ReplayEvents reply without events", l->name);
            break;
        }
        if (first) {
            /* The first call only learns where the log ends. */
            cli_raw(&reply.data, "epoch", "", l->replay_epoch, sizeof l->replay_epoch);
            l->replayed = last;
            after = last > n ? last - n : 0;
            first = false;
            continue;
        }
        uint64_t before = after;
        for (uint32_t i = 0; i < events->via.array.size; i++) {
            const msgpack_object *bin = &events->via.array.ptr[i];
            eda_envelope_t env;
            if (bin->type != MSGPACK_OBJECT_BIN ||
                eda_decode(w->decoder, bin->via.bin.ptr, bin->via.bin.size, &env, NULL,
                           0))
                continue;
            after = env.seq;
            if (env.seq > l->replayed)
                break; /* past where the replay said the log ends */
            if (*npast == *cap) {
                size_t more = *cap ? 2 * *cap : 256;
                s_past_t *grown = realloc(*past, more * sizeof *grown);
                if (!grown)
                    return cli_fail("out of memory");
                *past = grown;
                *cap = more;
            }
            (*past)[(*npast)++] =
                (s_past_t){zframe_new(bin->via.bin.ptr, bin->via.bin.size), env.ts, lane};
        }
        if (after == before)
            break; /* nothing readable in this page: the rest cannot be reached */
    }
    return rc;
}

/*  Shows the last `n` events of each service, in causal order. The
    services are pinged all at once first, so that each one down costs
    the wait once in all, not once each; the clients that were answered
    then read the logs. */
static int s_last(s_watch_t *w, uint64_t n)
{
    s_past_t *past = NULL;
    size_t npast = 0, cap = 0;
    int rc = 0;
    cli_answer_t up[CLI_SERVICES];
    cli_ask_all(w->o, "Ping", cli_services, CLI_SERVICES, w->o->timeout_ms, up);
    for (int i = 0; i < CLI_SERVICES; i++) {
        if (!up[i].answered) /* a failed connect's reason names the endpoint */
            rc = cli_fail(
                "%s: %s%s%s (is it running? try eda ping)", up[i].service, up[i].why,
                up[i].client ? " at " : "",
                up[i].client ? eda_config_peer(&w->o->cfg, up[i].service)->commands : "");
        else if (s_replay(w, i, up[i].client, n, &past, &npast, &cap))
            rc = CLI_FAILED; /* said; the others are still worth showing */
    }
    cli_answers_free(up, CLI_SERVICES);
    /* Time order across the logs is close to causal; holding does the rest. */
    qsort(past, npast, sizeof *past, s_by_ts);
    for (size_t i = 0; i < npast; i++)
        s_take(w, past[i].lane, &past[i].body, false);
    causal_expire(w->causal, INT64_MAX);
    free(past);
    w->second_events = 0; /* the past is not a rate */
    return rc;
}

/* --- watch ------------------------------------------------------------------- */

int cmd_watch(cli_t *o, const cli_args_t *args)
{
    s_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return cli_fail("out of memory");
    w->o = o;
    w->heartbeats = cli_flag(args, "heartbeats");
    w->order = cli_opt(args, "order");
    w->type = cli_opt(args, "type");
    int64_t last = -1;
    int rc = cli_opt_i64(args, "count", 1, INT64_MAX, &w->count);
    if (!rc)
        rc = cli_opt_i64(args, "last", 0, S_LAST_MAX, &last);
    if (!rc && args->noperands)
        rc = cli_usage_error(args, "takes no operands, only options");
    if (rc) {
        free(w);
        return rc;
    }
    w->decoder = eda_decoder_new();
    w->causal = causal_new(CLI_SERVICES, CAUSAL_HOLD_MS, s_emit, w);
    zpoller_t *poller = zpoller_new(NULL);
    for (int i = 0; i < CLI_SERVICES && rc == 0; i++) {
        s_lane_t *l = &w->lanes[i];
        const eda_endpoint_t *ep = eda_config_peer(&o->cfg, cli_services[i]);
        l->name = cli_services[i];
        l->endpoint = ep ? ep->events : "(no endpoint)";
        l->sub = zsock_new(ZMQ_SUB);
        if (!l->sub || !poller || !w->decoder || !w->causal) {
            rc = cli_fail("cannot create a socket");
            break;
        }
        zsock_set_linger(l->sub, 0);
        zsock_set_rcvhwm(l->sub, CLI_SUB_HWM);
        zsock_set_maxmsgsize(l->sub, EDA_MAX_MSG);
        zsock_set_subscribe(l->sub, "");
        char why[512] = "";
        if (ep && ((o->keys &&
                    eda_keys_client(o->keys, l->sub, cli_services[i], why, sizeof why)) ||
                   zsock_connect(l->sub, "%s", ep->events)))
            rc = cli_fail("cannot connect to %s %s", ep->events, why);
        zpoller_add(poller, l->sub);
    }
    w->colour = !o->json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (rc == 0 && !o->json)
        printf("%-12s %-9s%-9s%-6s\n", "time", "order", "customer", "inventory");
    fflush(stdout);
    /* The SUBs are connected first, so nothing published during the replay
       is missed; what the replay showed is skipped when it comes live. */
    if (rc == 0 && last > 0)
        s_last(w, (uint64_t)last); /* a service it could not read is said */
    int64_t start = zclock_mono();
    w->second = start;
    while (rc == 0 && !zsys_interrupted && (w->count == 0 || w->shown < w->count)) {
        int64_t wait = causal_next(w->causal) - zclock_mono();
        void *ready = zpoller_wait(poller, wait < 0 ? 0 : wait > 100 ? 100 : (int)wait);
        if (!ready && zpoller_terminated(poller))
            break;
        /* Drain what has come on every SUB, a bounded batch each. */
        for (int i = 0; i < CLI_SERVICES; i++) {
            zframe_t *body;
            for (int k = 0; k < 256 && cli_recv_event(w->lanes[i].sub, &body); k++) {
                s_heard(w, i);
                if (body)
                    s_take(w, i, &body, true);
                s_rate(w);
            }
        }
        causal_expire(w->causal, zclock_mono());
        s_rate(w);
        s_check_reachable(w, start);
    }
    if (w->summarising)
        s_print_summary(w);
    causal_destroy(&w->causal);
    for (int i = 0; i < CLI_SERVICES; i++)
        zsock_destroy(&w->lanes[i].sub);
    zpoller_destroy(&poller);
    eda_decoder_destroy(&w->decoder);
    free(w);
    return rc;
}
