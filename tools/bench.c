/*  eda bench: drives whole sagas through running services and measures them.
    It creates its own customer and stock item, keeps up to --window orders
    in flight (or paces them at --rate per second), and times each saga from
    the PlaceOrder sent to the OrderApproved or OrderRejected received on
    order-service's event channel. --saga picks the pattern of every order.
*/
#include "bench.h"

#include "eda_client.h"
#include "eda_items.h"
#include "eda_text.h"

#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>

typedef struct {
    int64_t sent_us;
    int64_t replied_us;
} s_saga_t;

/*  What the command line asked for. */
typedef struct {
    long orders;
    long window;
    long rate;        /* orders per second, 0 unpaced */
    const char *saga; /* NULL: order-service's default */
} s_args_t;

bool bench_saga_valid(const char *saga)
{
    return saga && (streq(saga, "choreography") || streq(saga, "orchestration"));
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*  The q-th quantile (0..1) of sorted v[n], in microseconds. */
static int64_t s_quantile(const int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

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

static int s_usage(const char *why)
{
    if (why)
        fprintf(stderr, "eda bench: %s\n", why);
    fprintf(stderr, "usage: eda bench [--orders N] [--window W] [--rate PER_S] "
                    "[--saga choreography|orchestration]\n");
    return 2;
}

/*  Reads the bench options into `args`. 0, or the usage error's exit code 2
    (printed). */
static int s_parse_args(int argc, char **argv, s_args_t *args)
{
    static struct option longopts[] = {{"orders", required_argument, 0, 'n'},
                                       {"window", required_argument, 0, 'w'},
                                       {"rate", required_argument, 0, 'r'},
                                       {"saga", required_argument, 0, 's'},
                                       {0, 0, 0, 0}};
    *args = (s_args_t){.orders = 20000, .window = 500};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's') {
            if (!bench_saga_valid(optarg))
                return s_usage("--saga must be choreography or orchestration");
            args->saga = optarg;
            continue;
        }
        char *end;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        if (c == '?' || !optarg || *end || v < 0 || v > 100000000)
            return s_usage(NULL);
        if (c == 'n')
            args->orders = v;
        else if (c == 'w')
            args->window = v;
        else
            args->rate = v;
    }
    if (optind != argc || args->orders < 1 || args->window < 1)
        return s_usage(NULL);
    return 0;
}

/*  Prints the results: sorts `latency` (done_n sagas) and `reply_latency`
    (`replied` replies) in place. */
static void s_report(const s_args_t *args, bool json, double secs, long done_n,
                     long approved, int64_t *latency, long replied,
                     int64_t *reply_latency)
{
    qsort(latency, (size_t)done_n, sizeof *latency, s_cmp_i64);
    qsort(reply_latency, (size_t)replied, sizeof *reply_latency, s_cmp_i64);
    int64_t p50 = s_quantile(latency, (size_t)done_n, 0.5);
    int64_t p99 = s_quantile(latency, (size_t)done_n, 0.99);
    int64_t max = s_quantile(latency, (size_t)done_n, 1.0);
    int64_t r50 = s_quantile(reply_latency, (size_t)replied, 0.5);
    int64_t r99 = s_quantile(reply_latency, (size_t)replied, 0.99);
    if (json) {
        char saga[32] = "null"; /* no saga asked: order-service's default */
        if (args->saga)
            snprintf(saga, sizeof saga, "\"%s\"", args->saga);
        printf("{\"orders\":%ld,\"approved\":%ld,\"seconds\":%.3f,\"sagas_per_s\":%.0f,"
               "\"saga_p50_us\":%" PRId64 ",\"saga_p99_us\":%" PRId64
               ",\"saga_max_us\":%" PRId64 ",\"reply_p50_us\":%" PRId64
               ",\"reply_p99_us\":%" PRId64 ",\"window\":%ld,\"rate\":%ld,\"saga\":%s}\n",
               done_n, approved, secs, (double)done_n / secs, p50, p99, max, r50, r99,
               args->window, args->rate, saga);
    } else
        printf("%ld sagas (%ld approved) in %.2f s: %.0f sagas/s\n"
               "saga latency   p50 %.2f ms  p99 %.2f ms  max %.2f ms\n"
               "reply latency  p50 %.2f ms  p99 %.2f ms\n"
               "(saga %s, window %ld, rate %s)\n",
               done_n, approved, secs, (double)done_n / secs, (double)p50 / 1000,
               (double)p99 / 1000, (double)max / 1000, (double)r50 / 1000,
               (double)r99 / 1000, args->saga ? args->saga : "order-service's default",
               args->window, args->rate ? "paced" : "unpaced");
}

int bench_main(const eda_config_t *cfg, eda_keys_t *keys, int timeout_ms, bool json,
               int argc, char **argv)
{
    s_args_t args;
    int usage = s_parse_args(argc, argv, &args);
    if (usage)
        return usage;
    long orders = args.orders, window = args.window, rate = args.rate;

    const eda_endpoint_t *order = eda_config_peer(cfg, "order-service");
    const eda_endpoint_t *customer = eda_config_peer(cfg, "customer-service");
    const eda_endpoint_t *inventory = eda_config_peer(cfg, "inventory-service");
    char tag[16], customer_id[32], sku[32];
    eda_new_id(tag, sizeof tag);
    snprintf(customer_id, sizeof customer_id, "bench-%.8s", tag);
    snprintf(sku, sizeof sku, "bench-%.8s", tag);

    /* Its own customer and stock, enough for every order. */
    eda_client_t *cc = eda_client_new(customer->commands, "eda-bench");
    eda_client_t *ic = eda_client_new(inventory->commands, "eda-bench");
    eda_client_t *oc = eda_client_new(order->commands, "eda-bench");
    zsock_t *sub = zsock_new(ZMQ_SUB);
    s_saga_t *sagas = calloc((size_t)orders, sizeof *sagas);
    int64_t *latency = calloc((size_t)orders, sizeof *latency);
    int64_t *reply_latency = calloc((size_t)orders, sizeof *reply_latency);
    zhashx_t *by_order = zhashx_new(); /* order id -> saga index + 1 */
    zhashx_t *early = zhashx_new();    /* order id -> when its outcome came,
                                          for outcomes seen before the reply */
    int rc = 1;
    if (!cc || !ic || !oc || !sub || !sagas || !latency || !reply_latency || !by_order ||
        !early)
        goto done;
    char why[512];
    if (keys && (eda_client_secure(cc, keys, "customer-service") ||
                 eda_client_secure(ic, keys, "inventory-service") ||
                 eda_client_secure(oc, keys, "order-service") ||
                 eda_keys_client(keys, sub, "order-service", why, sizeof why))) {
        fprintf(stderr, "eda bench: cannot use the keys in %s\n", cfg->keys);
        goto done;
    }
    msgpack_packer *pk = eda_client_begin(cc, "CreateCustomer", NULL);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_pack_kv_str(pk, "name", "bench");
    eda_pack_kv_i64(pk, "credit_limit", (int64_t)orders * 100);
    if (s_setup_call(cc, timeout_ms, "CreateCustomer"))
        goto done;
    pk = eda_client_begin(ic, "AddStock", NULL);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", orders);
    if (s_setup_call(ic, timeout_ms, "AddStock"))
        goto done;

    /* Subscribe, and wait for a heartbeat: then the SUB is surely joined. */
    zsock_set_subscribe(sub, "OrderApproved");
    zsock_set_subscribe(sub, "OrderRejected");
    zsock_set_subscribe(sub, "Heartbeat");
    zsock_set_rcvhwm(sub, 0);
    if (zsock_connect(sub, "%s", order->events)) {
        fprintf(stderr, "eda bench: cannot connect to %s\n", order->events);
        goto done;
    }
    zpoller_t *poller = zpoller_new(sub, NULL);
    bool joined = zpoller_wait(poller, 3000) == sub;
    zpoller_destroy(&poller);
    if (!joined) {
        fprintf(stderr, "eda bench: no heartbeat from order-service within 3 s\n");
        goto done;
    }
    zmsg_t *hb = zmsg_recv(sub);
    zmsg_destroy(&hb);

    eda_decoder_t *decoder = eda_decoder_new();
    eda_item_t item = {.qty = 1, .price = 100};
    snprintf(item.sku, sizeof item.sku, "%s", sku);
    long sent = 0, replied = 0, done_n = 0, approved = 0;
    int64_t start = zclock_usecs(), progress = start;
    while (done_n < orders && !zsys_interrupted) {
        int64_t now = zclock_usecs();
        /* Send while the window and the pace allow. */
        while (sent < orders && sent - done_n < window &&
               (rate == 0 || sent < (now - start) * rate / 1000000 + 1)) {
            char request_id[48];
            snprintf(request_id, sizeof request_id, "%s-%ld", tag, sent);
            pk = eda_client_begin(oc, "PlaceOrder", NULL);
            msgpack_pack_map(pk, args.saga ? 4 : 3);
            eda_pack_kv_str(pk, "customer_id", customer_id);
            eda_pack_key(pk, "items");
            eda_items_pack(pk, &item, 1, true);
            eda_pack_kv_str(pk, "request_id", request_id);
            if (args.saga)
                eda_pack_kv_str(pk, "saga", args.saga);
            if (eda_client_send(oc))
                break;
            sagas[sent++].sent_us = zclock_usecs();
        }
        zmq_pollitem_t items[] = {{zsock_resolve(eda_client_sock(oc)), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve(sub), 0, ZMQ_POLLIN, 0}};
        long wait_ms = rate && sent < orders ? 1 : 1000;
        if (zmq_poll(items, 2, wait_ms) < 0)
            break;
        eda_envelope_t env;
        while (eda_client_recv(oc, &env) == 0) {
            char order_id[EDA_NAME_MAX + 1] = "";
            if (env.ok != 1 ||
                eda_get_str(&env.data, "order_id", order_id, sizeof order_id) != 0) {
                char refusal[512] = "no order_id in the reply";
                fprintf(stderr, "eda bench: PlaceOrder refused: %s\n",
                        env.ok == 1 ? refusal : s_refusal(&env, refusal, sizeof refusal));
                goto done_decoder;
            }
            /* Replies come back in the order the commands went. */
            sagas[replied].replied_us = zclock_usecs();
            reply_latency[replied] = sagas[replied].replied_us - sagas[replied].sent_us;
            intptr_t seen = (intptr_t)zhashx_lookup(early, order_id);
            if (seen) { /* the outcome overtook the reply */
                latency[done_n++] = (seen >> 1) - sagas[replied].sent_us;
                approved += seen & 1;
                zhashx_delete(early, order_id);
            } else
                zhashx_insert(by_order, order_id, (void *)(intptr_t)(replied + 1));
            replied++;
            progress = zclock_usecs();
        }
        zmsg_t *msg;
        while ((items[1].revents & ZMQ_POLLIN) && (msg = zmsg_recv_nowait(sub))) {
            zframe_t *body = zmsg_last(msg);
            if (zmsg_size(msg) == 2 &&
                eda_decode(decoder, zframe_data(body), zframe_size(body), &env, NULL,
                           0) == EDA_OK &&
                env.kind == EDA_KIND_EVENT) {
                intptr_t i = (intptr_t)zhashx_lookup(by_order, env.correlation_id);
                bool ok = streq(env.type, "OrderApproved");
                progress = zclock_usecs();
                if (i > 0) {
                    latency[done_n++] = progress - sagas[i - 1].sent_us;
                    approved += ok;
                    zhashx_delete(by_order, env.correlation_id);
                } else /* the time, and whether approved, in the low bit */
                    zhashx_insert(early, env.correlation_id,
                                  (void *)(intptr_t)(progress << 1 | ok));
            }
            zmsg_destroy(&msg);
        }
        if (zclock_usecs() - progress > (int64_t)timeout_ms * 1000) {
            fprintf(stderr, "eda bench: stalled at %ld of %ld sagas (saga %s)\n", done_n,
                    orders, args.saga ? args.saga : "order-service's default");
            goto done_decoder;
        }
    }
    double secs = (double)(zclock_usecs() - start) / 1e6;
    s_report(&args, json, secs, done_n, approved, latency, replied, reply_latency);
    rc = done_n == orders ? 0 : 1;
done_decoder:
    eda_decoder_destroy(&decoder);
done:
    zhashx_destroy(&by_order);
    zhashx_destroy(&early);
    free(reply_latency);
    free(latency);
    free(sagas);
    zsock_destroy(&sub);
    eda_client_destroy(&oc);
    eda_client_destroy(&ic);
    eda_client_destroy(&cc);
    return rc;
}
