/*  eda bench: drives whole sagas through running services and measures them.
    It creates its own customer and stock item, keeps up to --window orders
    in flight (or paces them at --rate per second), and times each saga from
    the PlaceOrder sent to the OrderApproved or OrderRejected received on
    order-service's event channel. --saga picks the pattern of every order.
    Every PlaceOrder carries a request_id of the run and the order's index, so
    that an order with no reply, or no outcome seen, for 2x --timeout is safely
    sent again: order-service answers a repeat with the first order's id and
    its current status. A bench thus lives through a restart of order-service
    and through the events its SUB missed meanwhile.
*/
#include "bench.h"
#include "cli.h"

#include "eda_client.h"
#include "eda_items.h"
#include "eda_text.h"
#include "latency.h"

#include <czmq.h>
#include <inttypes.h>
#include <math.h>

/*  One order of the run, by its index. */
typedef struct {
    int64_t sent_us; /* its first PlaceOrder */
    int64_t last_us; /* its last PlaceOrder, or the reply to it */
    bool replied;
    bool done; /* its outcome is known */
} s_saga_t;

/*  A refusal's "CODE: message", escaped for the terminal, into out[size]. */
static const char *s_refusal(const eda_envelope_t *reply, char *out, size_t size)
{
    const msgpack_object *code = eda_map_get(&reply->error, "code");
    const msgpack_object *message = eda_map_get(&reply->error, "message");
    char c[4 * 32 + 1] = "?";
    if (code && code->type == MSGPACK_OBJECT_STR)
        eda_escape(c, sizeof c, code->via.str.ptr, code->via.str.size);
    size_t len = (size_t)snprintf(out, size, "%s: ", c);
    if (len < size && message && message->type == MSGPACK_OBJECT_STR)
        eda_escape(out + len, size - len, message->via.str.ptr, message->via.str.size);
    return out;
}

/*  Sends one command and waits for its ok reply. 0, or -1 with a message. */
static int s_setup_call(eda_client_t *client, int timeout_ms, const char *what)
{
    eda_envelope_t reply = {.ok = -1};
    char why[256] = "", refusal[512];
    if (eda_client_call(client, timeout_ms, &reply, why, sizeof why) || reply.ok != 1) {
        fprintf(stderr, "eda bench: %s failed: %s\n", what,
                reply.ok == 0 ? s_refusal(&reply, refusal, sizeof refusal) : why);
        return -1;
    }
    return 0;
}

/*  One run: its orders, what came back for them, and the counts. */
typedef struct {
    const bench_args_t *args;
    eda_client_t *oc; /* to order-service */
    char tag[16];     /* this run's, in its ids */
    char customer_id[32];
    eda_item_t item;
    s_saga_t *sagas;        /* [orders], by index */
    int64_t *latency;       /* [done_n]: first PlaceOrder to outcome */
    int64_t *reply_latency; /* [replied]: first PlaceOrder to first reply */
    zhashx_t *by_command;   /* PlaceOrder id -> index + 1, until answered */
    zhashx_t *by_order;     /* order id -> index + 1, outcome not seen yet */
    zhashx_t *early;        /* order id -> when its outcome came << 1 | approved,
                               for outcomes seen before the reply */
    long sent, replied, done_n, approved, resent;
    long oldest;       /* every order before it is done */
    int64_t resend_us; /* an open order silent this long is sent again */
    int64_t progress;  /* when the last reply or outcome came */
} s_run_t;

/*  Sends PlaceOrder for order i, the first time or again, with the same
    request_id. 0, or -1 when it cannot be queued now. */
static int s_place(s_run_t *run, long i)
{
    char request_id[48];
    snprintf(request_id, sizeof request_id, "%s-%ld", run->tag, i);
    msgpack_packer *pk = eda_client_begin(run->oc, "PlaceOrder", NULL);
    msgpack_pack_map(pk, run->args->saga ? 4 : 3);
    eda_pack_kv_str(pk, "customer_id", run->customer_id);
    eda_pack_key(pk, "items");
    eda_items_pack(pk, &run->item, 1, true);
    eda_pack_kv_str(pk, "request_id", request_id);
    if (run->args->saga)
        eda_pack_kv_str(pk, "saga", run->args->saga);
    if (eda_client_send(run->oc))
        return -1;
    zhashx_insert(run->by_command, eda_client_last_id(run->oc),
                  (void *)(intptr_t)(i + 1));
    run->sagas[i].last_us = zclock_usecs();
    return 0;
}

static void s_finish(s_run_t *run, long i, int64_t at_us, bool approved)
{
    run->sagas[i].done = true;
    run->latency[run->done_n++] = at_us - run->sagas[i].sent_us;
    run->approved += approved;
}

/*  Takes a reply to a PlaceOrder, first or repeated: a repeat's status may
    already be the outcome. Returns 0, or -1 (printed) on a refusal. */
static int s_on_reply(s_run_t *run, const eda_envelope_t *env)
{
    char order_id[EDA_NAME_MAX + 1] = "", status[16] = "";
    if (env->ok != 1 ||
        eda_get_str(&env->data, "order_id", order_id, sizeof order_id) != 0) {
        char refusal[512] = "no order_id in the reply";
        fprintf(stderr, "eda bench: PlaceOrder refused: %s\n",
                env->ok == 1 ? refusal : s_refusal(env, refusal, sizeof refusal));
        return -1;
    }
    long i = (long)(intptr_t)zhashx_lookup(run->by_command, env->causation_id) - 1;
    if (i < 0)
        return 0; /* a reply already had */
    zhashx_delete(run->by_command, env->causation_id);
    s_saga_t *saga = &run->sagas[i];
    int64_t now = run->progress = zclock_usecs();
    if (saga->done)
        return 0;
    if (!saga->replied)
        run->reply_latency[run->replied++] = now - saga->sent_us;
    saga->replied = true;
    saga->last_us = now;
    eda_get_str(&env->data, "status", status, sizeof status);
    intptr_t seen = (intptr_t)zhashx_lookup(run->early, order_id);
    if (seen) { /* the outcome overtook the reply */
        s_finish(run, i, seen >> 1, seen & 1);
        zhashx_delete(run->early, order_id);
    } else if (status[0] && !streq(status, "PENDING")) { /* a repeat, settled */
        s_finish(run, i, now, streq(status, "APPROVED"));
        zhashx_delete(run->by_order, order_id);
    } else
        zhashx_insert(run->by_order, order_id, (void *)(intptr_t)(i + 1));
    return 0;
}

/*  Takes an OrderApproved or OrderRejected. */
static void s_on_outcome(s_run_t *run, const eda_envelope_t *env)
{
    intptr_t i = (intptr_t)zhashx_lookup(run->by_order, env->correlation_id);
    bool ok = streq(env->type, "OrderApproved");
    run->progress = zclock_usecs();
    if (i > 0) {
        zhashx_delete(run->by_order, env->correlation_id);
        if (!run->sagas[i - 1].done)
            s_finish(run, i - 1, run->progress, ok);
    } else /* the time, and whether approved, in the low bit */
        zhashx_insert(run->early, env->correlation_id,
                      (void *)(intptr_t)(run->progress << 1 | ok));
}

/*  Sends again every open order silent for resend_us: one with no reply
    (order-service may have died with it), and one answered whose outcome
    has not come (the event may have gone by while the SUB reconnected: the
    reply to the repeat tells the status). */
static void s_resend_due(s_run_t *run, int64_t now)
{
    while (run->oldest < run->sent && run->sagas[run->oldest].done)
        run->oldest++;
    for (long i = run->oldest; i < run->sent; i++) {
        if (run->sagas[i].done || now - run->sagas[i].last_us < run->resend_us)
            continue;
        if (s_place(run, i))
            break; /* the queue is full: next round */
        run->resent++;
    }
}

/*  Prints the results: sorts run->latency and run->reply_latency in place. */
static void s_report(const s_run_t *run, bool json, double secs)
{
    const bench_args_t *args = run->args;
    long done_n = run->done_n, approved = run->approved, resent = run->resent;
    int64_t *latency = run->latency, *reply_latency = run->reply_latency;
    latency_t sagas = latency_figures(latency, (size_t)done_n);
    latency_t replies = latency_figures(reply_latency, (size_t)run->replied);
    int64_t p50 = sagas.p50, p99 = sagas.p99, max = sagas.max;
    int64_t r50 = replies.p50, r99 = replies.p99;
    if (json) /* a saga of null: order-service's default */
        cli_print_json_figures(json_pack(
            "{sI sI sf sI sI sI sI sI sI sI sI sI ss?}", "orders", (json_int_t)done_n,
            "approved", (json_int_t)approved, "seconds", round(secs * 1000) / 1000,
            "sagas_per_s", (json_int_t)((double)done_n / secs + 0.5), "saga_p50_us",
            (json_int_t)p50, "saga_p99_us", (json_int_t)p99, "saga_max_us",
            (json_int_t)max, "reply_p50_us", (json_int_t)r50, "reply_p99_us",
            (json_int_t)r99, "resent", (json_int_t)resent, "window",
            (json_int_t)args->window, "rate", (json_int_t)args->rate, "saga",
            args->saga));
    else
        printf("%ld sagas (%ld approved) in %.2f s: %.0f sagas/s\n"
               "saga latency   p50 %.2f ms  p99 %.2f ms  max %.2f ms\n"
               "reply latency  p50 %.2f ms  p99 %.2f ms\n"
               "PlaceOrder resent %ld times (no reply, or no outcome seen)\n"
               "(saga %s, window %ld, rate %s)\n",
               done_n, approved, secs, (double)done_n / secs, (double)p50 / 1000,
               (double)p99 / 1000, (double)max / 1000, (double)r50 / 1000,
               (double)r99 / 1000, resent,
               args->saga ? args->saga : "order-service's default", args->window,
               args->rate ? "paced" : "unpaced");
}

/*  Creates the run's customer and stock item, enough for every order. 0 or
    -1 (printed). */
static int s_setup(s_run_t *run, eda_client_t *cc, eda_client_t *ic, const char *sku,
                   int timeout_ms)
{
    msgpack_packer *pk = eda_client_begin(cc, "CreateCustomer", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", run->customer_id);
    eda_pack_kv_str(pk, "name", "bench");
    eda_pack_kv_i64(pk, "credit_limit", (int64_t)run->args->orders * 100);
    if (s_setup_call(cc, timeout_ms, "CreateCustomer"))
        return -1;
    pk = eda_client_begin(ic, "AddStock", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", run->args->orders);
    return s_setup_call(ic, timeout_ms, "AddStock");
}

/*  Subscribes to order-service's outcomes and waits for a heartbeat: then
    the SUB is surely joined. 0 or -1 (printed). */
static int s_subscribe(zsock_t *sub, const char *events)
{
    zsock_set_subscribe(sub, "OrderApproved");
    zsock_set_subscribe(sub, "OrderRejected");
    zsock_set_subscribe(sub, "Heartbeat");
    zsock_set_rcvhwm(sub, 0);
    if (zsock_connect(sub, "%s", events)) {
        fprintf(stderr, "eda bench: cannot connect to %s\n", events);
        return -1;
    }
    zpoller_t *poller = zpoller_new(sub, NULL);
    bool joined = zpoller_wait(poller, 3000) == sub;
    zpoller_destroy(&poller);
    if (!joined) {
        fprintf(stderr, "eda bench: no heartbeat from order-service within 3 s\n");
        return -1;
    }
    zmsg_t *hb = zmsg_recv(sub);
    zmsg_destroy(&hb);
    return 0;
}

/*  Places the orders, takes the replies and outcomes, resends the silent
    ones, and reports (also when interrupted). Returns 0 when every saga
    completed, 1 otherwise. */
static int s_drive(s_run_t *run, zsock_t *sub, bool json)
{
    const bench_args_t *args = run->args;
    /* Nothing at all from order-service for three rounds of resends. */
    const int64_t stall_us = 3 * run->resend_us;
    eda_decoder_t *decoder = eda_decoder_new();
    if (!decoder)
        return 1;
    int rc = 1;
    int64_t start = zclock_usecs(), scanned = start;
    run->progress = start;
    while (run->done_n < args->orders && !zsys_interrupted) {
        int64_t now = zclock_usecs();
        /* Send while the window and the pace allow. */
        while (
            run->sent < args->orders && run->sent - run->done_n < args->window &&
            (args->rate == 0 || run->sent < (now - start) * args->rate / 1000000 + 1)) {
            if (s_place(run, run->sent))
                break;
            run->sagas[run->sent].sent_us = run->sagas[run->sent].last_us;
            run->sent++;
        }
        if (now - scanned >= 100000) { /* a scan of the open orders, 10 a second */
            s_resend_due(run, now);
            scanned = now;
        }
        zmq_pollitem_t items[] = {
            {zsock_resolve(eda_client_sock(run->oc)), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(sub), 0, ZMQ_POLLIN, 0}};
        long wait_ms = args->rate && run->sent < args->orders ? 1 : 100;
        if (zmq_poll(items, 2, wait_ms) < 0)
            break;
        eda_envelope_t env;
        while (eda_client_recv(run->oc, &env) == 0)
            if (s_on_reply(run, &env))
                goto done;
        zmsg_t *msg;
        while ((items[1].revents & ZMQ_POLLIN) && (msg = zmsg_recv_nowait(sub))) {
            zframe_t *body = zmsg_last(msg);
            if (zmsg_size(msg) == 2 &&
                eda_decode(decoder, zframe_data(body), zframe_size(body), &env, NULL,
                           0) == EDA_OK &&
                env.kind == EDA_KIND_EVENT)
                s_on_outcome(run, &env);
            zmsg_destroy(&msg);
        }
        if (zclock_usecs() - run->progress > stall_us) {
            fprintf(stderr,
                    "eda bench: stalled at %ld of %ld sagas (saga %s): nothing from "
                    "order-service for %.1f s\n",
                    run->done_n, args->orders,
                    args->saga ? args->saga : "order-service's default",
                    (double)stall_us / 1e6);
            goto done;
        }
    }
    s_report(run, json, (double)(zclock_usecs() - start) / 1e6);
    rc = run->done_n == args->orders ? 0 : 1;
done:
    eda_decoder_destroy(&decoder);
    return rc;
}

int bench_main(const eda_config_t *cfg, eda_keys_t *keys, int timeout_ms, bool json,
               const bench_args_t *args)
{
    const eda_endpoint_t *order = eda_config_peer(cfg, "order-service");
    const eda_endpoint_t *customer = eda_config_peer(cfg, "customer-service");
    const eda_endpoint_t *inventory = eda_config_peer(cfg, "inventory-service");
    /* A reply later than twice the timeout is taken as lost. */
    s_run_t run = {.args = args, .resend_us = 2 * (int64_t)timeout_ms * 1000};
    char sku[32];
    eda_new_id(run.tag, sizeof run.tag);
    snprintf(run.customer_id, sizeof run.customer_id, "bench-%.8s", run.tag);
    snprintf(sku, sizeof sku, "bench-%.8s", run.tag);
    run.item = (eda_item_t){.qty = 1, .price = 100};
    snprintf(run.item.sku, sizeof run.item.sku, "%s", sku);

    eda_client_t *cc = eda_client_new(customer->commands, "eda-bench");
    eda_client_t *ic = eda_client_new(inventory->commands, "eda-bench");
    run.oc = eda_client_new(order->commands, "eda-bench");
    zsock_t *sub = zsock_new(ZMQ_SUB);
    run.sagas = calloc((size_t)args->orders, sizeof *run.sagas);
    run.latency = calloc((size_t)args->orders, sizeof *run.latency);
    run.reply_latency = calloc((size_t)args->orders, sizeof *run.reply_latency);
    run.by_command = zhashx_new();
    run.by_order = zhashx_new();
    run.early = zhashx_new();
    int rc = 1;
    if (!cc || !ic || !run.oc || !sub || !run.sagas || !run.latency ||
        !run.reply_latency || !run.by_command || !run.by_order || !run.early)
        goto done;
    char why[512];
    if (keys && (eda_client_secure(cc, keys, "customer-service") ||
                 eda_client_secure(ic, keys, "inventory-service") ||
                 eda_client_secure(run.oc, keys, "order-service") ||
                 eda_keys_client(keys, sub, "order-service", why, sizeof why))) {
        fprintf(stderr, "eda bench: cannot use the keys in %s\n", cfg->keys);
        goto done;
    }
    if (s_setup(&run, cc, ic, sku, timeout_ms) == 0 &&
        s_subscribe(sub, order->events) == 0)
        rc = s_drive(&run, sub, json);
done:
    zhashx_destroy(&run.by_command);
    zhashx_destroy(&run.by_order);
    zhashx_destroy(&run.early);
    free(run.reply_latency);
    free(run.latency);
    free(run.sagas);
    zsock_destroy(&sub);
    eda_client_destroy(&run.oc);
    eda_client_destroy(&ic);
    eda_client_destroy(&cc);
    return rc;
}
