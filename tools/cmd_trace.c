/*  cmd_trace: `trace ORDER_ID` asks every service at once for one order's
    events (ReplayEvents with its correlation_id, page after page) and
    order-service for its status (GetOrder), links each event to its cause
    and prints the chain in causal order: as text with the time from each
    step to its cause, as one JSON document, or as a Mermaid sequence
    diagram. A service that does not answer is named as missing (exit 1);
    the rest is printed all the same, and a PENDING order ends with what
    its saga waits for.

    Causal order, not clock order: clocks of three processes (or hosts) do
    not order events, causation_id does. Commands are in no event log, so
    the commands that started a chain are rebuilt from the ids the events
    name (PlaceOrder, CancelOrder), and those of the orchestrator are
    inferred from the participants' events (their saga is "orchestration").

    trace_document gives the --json document to `eda console` (its
    /api/orders/ID), so that the two never differ.
*/
#include "cli.h"

#include "eda_log.h"
#include "eda_text.h"

#include <ctype.h>
#include <czmq.h>
#include <inttypes.h>

#define S_LANES 4 /* ReplayEvents to each service, and GetOrder */
#define S_PAGE  1000

/* --- asking every service at once ------------------------------------------------ */

/*  One request stream: a service's ReplayEvents pages, or the GetOrder. */
typedef struct {
    const char *service;
    bool get_order; /* else ReplayEvents */
    eda_client_t *client;
    uint64_t after; /* the seq of the last event returned */
    bool done;      /* the last page came (or the order) */
    bool refused;   /* GetOrder: NOT_FOUND and the like */
    char why[400];  /* when not done: why */
} s_lane_t;

/*  One step of the chain: an event from a log, or a command rebuilt from
    the events it caused. */
typedef struct {
    bool command;
    bool inferred; /* a command guessed from its outcome, or a link guessed */
    char type[EDA_NAME_MAX + 1];
    char id[EDA_NAME_MAX + 1]; /* "" for an inferred command */
    char source[EDA_NAME_MAX + 1];
    char to[EDA_NAME_MAX + 1]; /* commands: the service that handles it */
    char causation[EDA_NAME_MAX + 1];
    char saga[16];
    uint64_t seq, ts; /* 0 for a command: it is in no log */
    char fields[1024];
    json_t *json; /* the envelope as logged (events) */
    int cause;    /* index of the step that caused it, or -1 */
    int outcome;  /* commands: the event they produced, for the order */
    bool shown;
} s_step_t;

typedef struct {
    s_step_t *steps;
    int n, max;
    char status[32];
    char saga[16];
    s_lane_t lanes[S_LANES];
} s_trace_t;

static s_step_t *s_add(s_trace_t *t)
{
    if (t->n == t->max) {
        int max = t->max ? 2 * t->max : 16;
        s_step_t *steps = realloc(t->steps, (size_t)max * sizeof *steps);
        if (!steps)
            return NULL;
        t->steps = steps;
        t->max = max;
    }
    s_step_t *s = &t->steps[t->n++];
    *s = (s_step_t){.cause = -1, .outcome = -1};
    return s;
}

/*  Sends the lane's next request; false (why set) when it cannot go. */
static bool s_ask(s_lane_t *lane, const char *order_id)
{
    msgpack_packer *pk = eda_client_begin(
        lane->client, lane->get_order ? "GetOrder" : "ReplayEvents", order_id);
    if (lane->get_order) {
        msgpack_pack_map(pk, 1);
        eda_pack_kv_str(pk, "order_id", order_id);
    } else {
        msgpack_pack_map(pk, 3);
        eda_pack_kv_str(pk, "correlation_id", order_id);
        eda_pack_kv_u64(pk, "after_seq", lane->after);
        eda_pack_kv_u64(pk, "limit", S_PAGE);
    }
    if (eda_client_send(lane->client) == 0)
        return true;
    snprintf(lane->why, sizeof lane->why, "cannot send to %s", lane->service);
    return false;
}

/*  Keeps the events of one ReplayEvents page. Returns how many came, or -1
    when memory runs out. */
static int s_take_page(s_trace_t *t, s_lane_t *lane, const eda_envelope_t *reply,
                       const char *order_id, eda_decoder_t *decoder)
{
    const msgpack_object *events = eda_map_get(&reply->data, "events");
    if (!events || events->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    int came = 0;
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *bin = &events->via.array.ptr[i];
        eda_envelope_t env;
        if (bin->type != MSGPACK_OBJECT_BIN ||
            eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, &env, NULL, 0))
            continue;
        came++;
        if (env.seq > lane->after)
            lane->after = env.seq;
        if (!streq(env.correlation_id, order_id))
            continue; /* the index answers for this order only; be sure */
        s_step_t *s = s_add(t);
        if (!s)
            return -1;
        snprintf(s->type, sizeof s->type, "%s", env.type);
        snprintf(s->id, sizeof s->id, "%s", env.id);
        snprintf(s->source, sizeof s->source, "%s", env.source);
        snprintf(s->causation, sizeof s->causation, "%s", env.causation_id);
        eda_get_str(&env.data, "saga", s->saga, sizeof s->saga);
        s->seq = env.seq;
        s->ts = env.ts;
        eda_log_fields(&env.data, "order_id", s->fields, sizeof s->fields);
        s->json = cli_json(eda_decoder_root(decoder));
        if (!s->json)
            return -1;
    }
    return came;
}

/*  Handles the reply waiting on lane `lane`: keeps what it holds and asks
    for the next page while pages hold events. */
static int s_on_reply(s_trace_t *t, s_lane_t *lane, const char *order_id,
                      eda_decoder_t *decoder)
{
    eda_envelope_t reply;
    int rc = eda_client_recv(lane->client, &reply);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        snprintf(lane->why, sizeof lane->why, "an undecodable reply");
        lane->done = lane->refused = true;
        return 0;
    }
    if (reply.ok != 1) {
        cli_refusal(&reply, lane->why, sizeof lane->why);
        lane->done = lane->refused = true;
        return 0;
    }
    if (lane->get_order) {
        cli_raw(&reply.data, "status", "?", t->status, sizeof t->status);
        if (!t->saga[0])
            cli_raw(&reply.data, "saga", "", t->saga, sizeof t->saga);
        lane->done = true;
        return 0;
    }
    int came = s_take_page(t, lane, &reply, order_id, decoder);
    if (came < 0)
        return -1;
    if (came == 0)
        lane->done = true; /* the contract's end: a page with no event */
    else if (!s_ask(lane, order_id))
        lane->done = lane->refused = true;
    return 0;
}

/*  Asks every service for the order's events and order-service for the
    order, all at once under one deadline: a service down costs the wait
    once. A lane not done when it passes is missing. */
static int s_gather(cli_t *o, s_trace_t *t, const char *order_id)
{
    zpoller_t *poller = zpoller_new(NULL);
    eda_decoder_t *decoder = eda_decoder_new();
    if (!poller || !decoder) {
        zpoller_destroy(&poller);
        eda_decoder_destroy(&decoder);
        return -1;
    }
    for (int i = 0; i < S_LANES; i++) {
        s_lane_t *lane = &t->lanes[i];
        lane->service = i < CLI_SERVICES ? cli_services[i] : "order-service";
        lane->get_order = i == CLI_SERVICES;
        snprintf(lane->why, sizeof lane->why, "no reply within %d ms", o->timeout_ms);
        lane->client = cli_connect(o, lane->service, lane->why, sizeof lane->why);
        if (!lane->client)
            continue; /* its why says so */
        if (!s_ask(lane, order_id))
            eda_client_destroy(&lane->client);
        else
            zpoller_add(poller, eda_client_sock(lane->client));
    }
    int64_t deadline = zclock_mono() + o->timeout_ms;
    int rc = 0;
    while (rc == 0 && !zsys_interrupted) {
        bool waiting = false;
        for (int i = 0; i < S_LANES; i++)
            waiting |= t->lanes[i].client && !t->lanes[i].done;
        int64_t left = deadline - zclock_mono();
        if (!waiting || left <= 0)
            break;
        void *ready = zpoller_wait(poller, (int)left);
        if (!ready)
            break;
        for (int i = 0; i < S_LANES && rc == 0; i++) {
            s_lane_t *lane = &t->lanes[i];
            if (lane->client && !lane->done && eda_client_sock(lane->client) == ready)
                rc = s_on_reply(t, lane, order_id, decoder);
        }
    }
    for (int i = 0; i < S_LANES; i++)
        eda_client_destroy(&t->lanes[i].client);
    zpoller_destroy(&poller);
    eda_decoder_destroy(&decoder);
    return rc;
}

/*  Whether the service's events were all read. */
static bool s_reached(const s_trace_t *t, const char *service)
{
    for (int i = 0; i < CLI_SERVICES; i++)
        if (streq(t->lanes[i].service, service))
            return t->lanes[i].done && !t->lanes[i].refused;
    return true;
}

/* --- linking each step to its cause ------------------------------------------- */

/*  The first event of `type` (and of an orchestrated saga when `orch`), or -1. */
static int s_find(const s_trace_t *t, const char *type, bool orch)
{
    for (int i = 0; i < t->n; i++)
        if (!t->steps[i].command && streq(t->steps[i].type, type) &&
            (!orch || streq(t->steps[i].saga, "orchestration")))
            return i;
    return -1;
}

static int s_find_id(const s_trace_t *t, const char *id)
{
    for (int i = 0; id[0] && i < t->n; i++)
        if (streq(t->steps[i].id, id))
            return i;
    return -1;
}

/*  Adds the command that produced event `e`: with its id when the event
    names it (one step for the events of one command), else inferred.
    Returns its index, or -1 when memory runs out. */
static int s_command(s_trace_t *t, int e, const char *type, const char *from,
                     const char *to, bool inferred)
{
    int known = inferred ? -1 : s_find_id(t, t->steps[e].causation);
    if (known >= 0 && t->steps[known].command)
        return known;
    s_step_t *c = s_add(t);
    if (!c)
        return -1;
    s_step_t *ev = &t->steps[e]; /* after s_add: steps may have moved */
    c->command = true;
    c->inferred = inferred;
    snprintf(c->type, sizeof c->type, "%s", type);
    snprintf(c->id, sizeof c->id, "%s", inferred ? "" : ev->causation);
    snprintf(c->source, sizeof c->source, "%s", from);
    snprintf(c->to, sizeof c->to, "%s", to);
    c->outcome = e;
    return t->n - 1;
}

/*  The command an orchestrated participant event came from, and the step
    of the saga it followed (its causation_id, a reply or the timer, is in
    no log). */
static const struct {
    const char *event, *command, *to;
} s_orchestrated[] = {
    {"CreditReserved", "ReserveCredit", "customer-service"},
    {"CreditRejected", "ReserveCredit", "customer-service"},
    {"CreditReleased", "ReleaseCredit", "customer-service"},
    {"StockReserved", "ReserveStock", "inventory-service"},
    {"StockRejected", "ReserveStock", "inventory-service"},
    {"StockReleased", "ReleaseStock", "inventory-service"},
};

/*  What the orchestrator was handling when it sent `command` (section 9.1):
    the first ReserveCredit leaves with the OrderCreated, ReserveStock after
    the credit's reply, ReleaseStock with a cancellation or the deadline,
    ReleaseCredit after the stock was released or the order rejected. */
static int s_saga_step_cause(const s_trace_t *t, const char *command)
{
    int i = -1;
    if (streq(command, "ReserveCredit"))
        i = s_find(t, "OrderCreated", false);
    else if (streq(command, "ReserveStock"))
        i = s_find(t, "CreditReserved", true);
    else if (streq(command, "ReleaseStock") &&
             (i = s_find(t, "OrderCancelled", false)) < 0)
        i = s_find(t, "OrderRejected", false);
    else if (streq(command, "ReleaseCredit") &&
             (i = s_find(t, "StockReleased", false)) < 0)
        i = s_find(t, "OrderRejected", false);
    return i;
}

/*  Links every event to its cause: an event of this order named by its
    causation_id, else the command it names or that can be inferred. */
static int s_link(s_trace_t *t)
{
    int events = t->n;
    bool orch = streq(t->saga, "orchestration");
    for (int e = 0; e < events; e++) {
        s_step_t *ev = &t->steps[e];
        int cause = s_find_id(t, ev->causation);
        if (cause >= 0 && cause < events) {
            ev->cause = cause;
            continue;
        }
        int c = -2; /* -2: no command made it; s_command may move steps */
        if (streq(ev->type, "OrderCreated"))
            c = s_command(t, e, "PlaceOrder", "client", "order-service", false);
        else if (streq(ev->type, "OrderCancelled"))
            c = s_command(t, e, "CancelOrder", "client", "order-service", false);
        else
            for (size_t k = 0; k < sizeof s_orchestrated / sizeof *s_orchestrated; k++)
                if (c == -2 && streq(t->steps[e].type, s_orchestrated[k].event) &&
                    (streq(t->steps[e].saga, "orchestration") ||
                     (!t->steps[e].saga[0] && orch))) {
                    c = s_command(t, e, s_orchestrated[k].command, "order-service",
                                  s_orchestrated[k].to, true);
                    if (c >= 0)
                        t->steps[c].cause =
                            s_saga_step_cause(t, s_orchestrated[k].command);
                }
        if (c == -1)
            return -1;
        if (c >= 0) {
            t->steps[e].cause = c;
            continue;
        }
        /* The orchestrator decides on a participant's reply, which no log
           holds: the participant's event stands for it. Nil: the deadline. */
        ev = &t->steps[e];
        if (streq(ev->saga, "orchestration") && ev->causation[0]) {
            if (streq(ev->type, "OrderApproved"))
                ev->cause = s_find(t, "StockReserved", true);
            else if (streq(ev->type, "OrderRejected") &&
                     (ev->cause = s_find(t, "StockRejected", true)) < 0)
                ev->cause = s_find(t, "CreditRejected", true);
            ev->inferred = ev->cause >= 0;
        }
    }
    return 0;
}

/*  The order steps are sorted by when a tie leaves a choice: (source, seq)
    of the event, a command just before the event it produced. Never ts. */
static int s_tie(const s_trace_t *t, int a, int b)
{
    const s_step_t *x = &t->steps[a], *y = &t->steps[b];
    const s_step_t *kx = x->command && x->outcome >= 0 ? &t->steps[x->outcome] : x;
    const s_step_t *ky = y->command && y->outcome >= 0 ? &t->steps[y->outcome] : y;
    int by_source = strcmp(kx->source, ky->source);
    if (by_source)
        return by_source;
    if (kx->seq != ky->seq)
        return kx->seq < ky->seq ? -1 : 1;
    return (int)y->command - (int)x->command;
}

/*  A topological order of the causation graph (Kahn's, the least step by
    s_tie first among those whose cause is shown) into order[t->n]. */
static void s_causal_order(s_trace_t *t, int *order)
{
    for (int k = 0; k < t->n; k++) {
        int best = -1;
        for (int i = 0; i < t->n; i++) {
            const s_step_t *s = &t->steps[i];
            if (s->shown || (s->cause >= 0 && !t->steps[s->cause].shown))
                continue;
            if (best < 0 || s_tie(t, i, best) < 0)
                best = i;
        }
        for (int i = 0; best < 0 && i < t->n; i++)
            if (!t->steps[i].shown)
                best = i; /* a cycle (ids reused): shown anyway */
        t->steps[best].shown = true;
        order[k] = best;
    }
}

/*  The nearest step up the chain that has a time (commands have none). */
static const s_step_t *s_timed_cause(const s_trace_t *t, const s_step_t *s)
{
    for (int hops = 0; s->cause >= 0 && hops < t->n; hops++) {
        s = &t->steps[s->cause];
        if (s->ts)
            return s;
    }
    return NULL;
}

/* --- what a PENDING order waits for -------------------------------------------- */

/*  The saga's next expected event (section 8, 9.1) into out[size], with
    ": unreachable" when the service that would publish it did not answer. */
static void s_waiting(const s_trace_t *t, char *out, size_t size)
{
    bool orch = streq(t->saga, "orchestration");
    const char *what, *from;
    if (s_find(t, "CreditRejected", false) >= 0 || s_find(t, "StockRejected", false) >= 0)
        what = "OrderRejected", from = "order-service";
    else if (s_find(t, "CreditReserved", false) < 0)
        what = orch ? "the ReserveCredit reply (CreditReserved or CreditRejected)"
                    : "CreditReserved or CreditRejected",
        from = "customer-service";
    else if (s_find(t, "StockReserved", false) < 0)
        what = orch ? "the ReserveStock reply (StockReserved or StockRejected)"
                    : "StockReserved or StockRejected",
        from = "inventory-service";
    else
        what = "OrderApproved", from = "order-service";
    snprintf(out, size, "waiting for %s from %s%s", what, from,
             s_reached(t, from) ? "" : ": unreachable");
}

/* --- printing -------------------------------------------------------------------- */

static void s_print_text(const s_trace_t *t, const int *order, const char *order_id,
                         const char *waiting)
{
    char shown[CLI_SHOWN], status[CLI_SHOWN], saga[CLI_SHOWN];
    printf("order %s: %s (%s)\n", cli_esc(order_id, shown, sizeof shown),
           cli_esc(t->status, status, sizeof status),
           t->saga[0] ? cli_esc(t->saga, saga, sizeof saga) : "saga unknown");
    for (int k = 0; k < t->n; k++) {
        const s_step_t *s = &t->steps[order[k]];
        char type[CLI_SHOWN], source[CLI_SHOWN], to[CLI_SHOWN], cause[2 * CLI_SHOWN],
            delta[48] = "";
        cli_esc(s->type, type, sizeof type);
        cli_esc(s->source, source, sizeof source);
        if (s->cause >= 0)
            snprintf(cause, sizeof cause, "after %s%s",
                     cli_esc(t->steps[s->cause].type, to, sizeof to),
                     s->inferred && !s->command ? " (its reply)" : "");
        else if (s->command)
            snprintf(cause, sizeof cause, "%s", s->inferred ? "" : "from a client");
        else if (!s->causation[0])
            snprintf(cause, sizeof cause, "no cause named (the saga deadline)");
        else
            snprintf(cause, sizeof cause, "after %.40s (not found)",
                     cli_esc(s->causation, to, sizeof to));
        const s_step_t *timed = s->ts ? s_timed_cause(t, s) : NULL;
        if (timed)
            snprintf(delta, sizeof delta, "%+.1f ms",
                     ((double)s->ts - (double)timed->ts) / 1000.0);
        if (s->command)
            printf("  command %-16s %s -> %s%s  %s\n", type, source,
                   cli_esc(s->to, to, sizeof to), s->inferred ? " (inferred)" : "",
                   cause);
        else
            printf("  event   %-16s %-17s #%-4" PRIu64 " %10s  %-26s %s\n", type, source,
                   s->seq, delta, cause, s->fields);
    }
    for (int i = 0; i < CLI_SERVICES; i++)
        if (!s_reached(t, t->lanes[i].service)) {
            char why[4 * sizeof t->lanes[i].why];
            printf("missing: the events of %s: unreachable (%s)\n", t->lanes[i].service,
                   cli_esc(t->lanes[i].why, why, sizeof why));
        }
    if (waiting[0])
        printf("%s\n", waiting);
}

static const char *const *s_reactors(const s_step_t *s);

/*  The --json document (and the console's /api/orders/ID): each event's
    envelope as logged plus `consumers`, the services that react to it (as
    the Mermaid arrows show), for a diagram drawn elsewhere. */
static json_t *s_document(const s_trace_t *t, const int *order, const char *order_id,
                          const char *waiting)
{
    json_t *chain = json_array(), *missing = json_array();
    for (int k = 0; chain && k < t->n; k++) {
        const s_step_t *s = &t->steps[order[k]];
        if (!s->command) {
            json_t *consumers = json_array();
            for (const char *const *to = s_reactors(s); consumers && *to; to++)
                json_array_append_new(consumers, json_string(*to));
            json_object_set_new(s->json, "consumers", consumers);
            json_array_append(chain, s->json);
            continue;
        }
        /* A command as far as it is known: no log holds it. */
        json_array_append_new(chain, json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:b}",
                                               "kind", "command", "type", s->type, "id",
                                               s->id[0] ? s->id : NULL, "source",
                                               s->source, "to", s->to, "correlation_id",
                                               order_id, "inferred", s->inferred));
    }
    for (int i = 0; missing && i < CLI_SERVICES; i++)
        if (!s_reached(t, t->lanes[i].service))
            json_array_append_new(missing,
                                  json_pack("{s:s, s:s}", "service", t->lanes[i].service,
                                            "why", t->lanes[i].why));
    return json_pack("{s:s, s:s, s:s?, s:o, s:o, s:s?}", "order_id", order_id, "status",
                     t->status, "saga", t->saga[0] ? t->saga : NULL, "chain", chain,
                     "missing", missing, "waiting", waiting[0] ? waiting : NULL);
}

/*  A Mermaid participant for a service name ("order" for order-service):
    names with '-' or arrows in them break the diagram, aliases do not. */
static const char *s_alias(const char *service)
{
    if (streq(service, "order-service"))
        return "order";
    if (streq(service, "customer-service"))
        return "customer";
    if (streq(service, "inventory-service"))
        return "inventory";
    return "client";
}

/*  Text from the wire made safe for a Mermaid label: letters, digits,
    spaces and a few marks pass, the rest (';' ends a statement, '#' starts
    an entity, newlines...) becomes '_'. */
static const char *s_label(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; s[k] && k + 1 < size; k++)
        out[k] = isalnum((unsigned char)s[k]) || strchr("-_.,:() ", s[k]) ? s[k] : '_';
    out[k] = '\0';
    return out;
}

/*  The services that react to a choreographed event (section 8). */
static const char *const *s_consumers(const char *type)
{
    static const char *const order_events[] = {"customer-service", "inventory-service",
                                               NULL};
    static const char *const credit_reserved[] = {"inventory-service", NULL};
    static const char *const to_order[] = {"order-service", NULL};
    static const char *const none[] = {NULL};
    if (streq(type, "OrderCreated") || streq(type, "OrderRejected") ||
        streq(type, "OrderCancelled"))
        return order_events;
    if (streq(type, "CreditReserved"))
        return credit_reserved;
    if (streq(type, "CreditRejected") || streq(type, "StockReserved") ||
        streq(type, "StockRejected"))
        return to_order;
    return none;
}

/*  Who reacts to event `s`: nobody to an orchestrated one (those are for
    observers), else its choreography consumers. */
static const char *const *s_reactors(const s_step_t *s)
{
    static const char *const none[] = {NULL};
    return streq(s->saga, "orchestration") ? none : s_consumers(s->type);
}

static void s_print_mermaid(const s_trace_t *t, const int *order, const char *waiting)
{
    printf("sequenceDiagram\n    participant client\n");
    for (int i = 0; i < CLI_SERVICES; i++)
        printf("    participant %s as %s\n", s_alias(cli_services[i]), cli_services[i]);
    for (int k = 0; k < t->n; k++) {
        const s_step_t *s = &t->steps[order[k]];
        char type[2 * EDA_NAME_MAX];
        s_label(s->type, type, sizeof type);
        if (s->command) {
            printf("    %s->>%s: %s\n", s_alias(s->source), s_alias(s->to), type);
            continue;
        }
        const char *const *to = s_reactors(s);
        if (!to[0])
            printf("    Note over %s: %s seq %" PRIu64 "\n", s_alias(s->source), type,
                   s->seq);
        for (int i = 0; to[i]; i++)
            printf("    %s-->>%s: %s seq %" PRIu64 "\n", s_alias(s->source),
                   s_alias(to[i]), type, s->seq);
    }
    for (int i = 0; i < CLI_SERVICES; i++)
        if (!s_reached(t, cli_services[i]))
            printf("    Note over %s: unreachable\n", s_alias(cli_services[i]));
    if (waiting[0]) {
        char label[256];
        printf("    Note over order: %s\n", s_label(waiting, label, sizeof label));
    }
}

/* --- trace ----------------------------------------------------------------- */

/*  Gathers the order's events, links them and puts them in causal order
    (*order, t->n of them; free both with s_free), with what a PENDING
    order waits for in waiting[size]. 0, or -1 when memory runs out. */
static int s_build(cli_t *o, s_trace_t *t, const char *order_id, int **order,
                   char *waiting, size_t size)
{
    waiting[0] = '\0';
    *order = NULL;
    if (s_gather(o, t, order_id))
        return -1;
    /* The order's pattern as its own events say, GetOrder's if none came. */
    int created = s_find(t, "OrderCreated", false);
    if (created >= 0 && t->steps[created].saga[0])
        snprintf(t->saga, sizeof t->saga, "%s", t->steps[created].saga);
    if (s_link(t) || !(*order = calloc((size_t)(t->n ? t->n : 1), sizeof **order)))
        return -1;
    s_causal_order(t, *order);
    if (streq(t->status, "PENDING"))
        s_waiting(t, waiting, size);
    return 0;
}

static void s_free(s_trace_t *t, int *order)
{
    free(order);
    for (int i = 0; i < t->n; i++)
        json_decref(t->steps[i].json);
    free(t->steps);
}

static bool s_missing(const s_trace_t *t)
{
    bool missing = false;
    for (int i = 0; i < CLI_SERVICES; i++)
        missing |= !s_reached(t, t->lanes[i].service);
    return missing;
}

json_t *trace_document(cli_t *o, const char *order_id, int *status)
{
    s_trace_t t = {.status = "unknown"};
    int *order;
    char waiting[300];
    json_t *doc = NULL;
    *status = -1;
    if (s_build(o, &t, order_id, &order, waiting, sizeof waiting) == 0) {
        bool missing = s_missing(&t);
        *status = missing ? CLI_FAILED : CLI_OK;
        if (t.n > 0 || missing)
            doc = s_document(&t, order, order_id, waiting);
        if (!doc && (t.n > 0 || missing))
            *status = -1;
    }
    s_free(&t, order);
    return doc;
}

int cmd_trace(cli_t *o, const cli_args_t *args)
{
    bool mermaid = cli_flag(args, "mermaid");
    if (args->noperands != 1)
        return cli_usage_error(args, "needs one ORDER_ID");
    const char *order_id = args->operands[0];
    if (mermaid && o->json)
        return cli_usage_error(args, "--mermaid and --json: choose one");
    s_trace_t t = {.status = "unknown"};
    int *order;
    char waiting[300];
    int rc = s_build(o, &t, order_id, &order, waiting, sizeof waiting) == 0
                 ? 0
                 : cli_fail("out of memory");
    bool missing = s_missing(&t);
    s_lane_t *get = &t.lanes[CLI_SERVICES];
    if (rc == 0 && t.n == 0 && !missing)
        rc = cli_fail("no events for order %s%s%s", order_id, get->refused ? ": " : "",
                      get->refused ? get->why : "");
    if (rc == 0) {
        if (mermaid)
            s_print_mermaid(&t, order, waiting);
        else if (o->json)
            rc = cli_print_json_value(s_document(&t, order, order_id, waiting));
        else
            s_print_text(&t, order, order_id, waiting);
        if (rc == 0 && missing)
            rc = CLI_FAILED;
    }
    s_free(&t, order);
    return rc;
}
