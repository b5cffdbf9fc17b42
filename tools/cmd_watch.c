/*  cmd_watch: `watch` follows every service's events live, one lane per
    service.
*/
#include "cli.h"

#include "eda_log.h"
#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>

/* --- watch ----------------------------------------------------------------- */

static int s_lane(const char *service)
{
    for (int i = 0; i < CLI_SERVICES; i++)
        if (streq(service, cli_services[i]))
            return i;
    return -1;
}

/*  Prints one event in its service's lane. */
static void s_print_lane(const eda_envelope_t *env, bool colour)
{
    static const char *colours[CLI_SERVICES] = {"\033[36m", "\033[35m", "\033[33m"};
    int lane = s_lane(env->source);
    time_t secs = (time_t)(env->ts / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char fields[2048], type[CLI_SHOWN], order[CLI_SHOWN];
    eda_log_fields(&env->data, "order_id", fields, sizeof fields);
    printf("%02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(env->ts % 1000000 / 1000));
    for (int i = 0; i < CLI_SERVICES; i++)
        printf("%s", i == lane ? "●  " : "│  ");
    printf(
        "%s%-16s%s %-20s #%-5" PRIu64 " %s\n", colour && lane >= 0 ? colours[lane] : "",
        cli_esc(env->type, type, sizeof type), colour && lane >= 0 ? "\033[0m" : "",
        env->correlation_id[0] ? cli_esc(env->correlation_id, order, sizeof order) : "-",
        env->seq, fields);
    fflush(stdout);
}

int cmd_watch(cli_t *o, const cli_args_t *args)
{
    int64_t count = 0;
    bool heartbeats = cli_flag(args, "heartbeats");
    int rc = cli_opt_i64(args, "count", 1, INT64_MAX, &count);
    if (rc)
        return rc;
    if (args->noperands)
        return cli_usage_error(args, "takes no operands, only options");
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub)
        return cli_fail("cannot create a socket");
    zsock_set_subscribe(sub, "");
    zsock_set_maxmsgsize(sub, EDA_MAX_MSG);
    for (int i = 0; i < CLI_SERVICES; i++) {
        /* One SUB, several servers: each one's key is set before its connect. */
        const eda_endpoint_t *ep = eda_config_peer(&o->cfg, cli_services[i]);
        char why[512] = "";
        if (ep && ((o->keys &&
                    eda_keys_client(o->keys, sub, cli_services[i], why, sizeof why)) ||
                   zsock_connect(sub, "%s", ep->events))) {
            zsock_destroy(&sub);
            return cli_fail("cannot connect to %s %s", ep->events, why);
        }
    }
    bool colour = !o->json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (!o->json)
        printf("%-12s %-9s%-9s%-6s\n", "time", "order", "customer", "inventory");
    fflush(stdout);
    eda_decoder_t *decoder = eda_decoder_new();
    int64_t seen = 0;
    while (!zsys_interrupted && (count == 0 || seen < count)) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            break;
        zframe_t *body = zmsg_size(msg) == 2 ? zmsg_last(msg) : NULL;
        eda_envelope_t env;
        if (body &&
            eda_decode(decoder, zframe_data(body), zframe_size(body), &env, NULL, 0) ==
                EDA_OK &&
            (env.kind == EDA_KIND_EVENT || heartbeats)) {
            if (o->json)
                cli_print_json(eda_decoder_root(decoder));
            else
                s_print_lane(&env, colour);
            seen += env.kind == EDA_KIND_EVENT;
        }
        zmsg_destroy(&msg);
    }
    eda_decoder_destroy(&decoder);
    zsock_destroy(&sub);
    return 0;
}
