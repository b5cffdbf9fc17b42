/*  cmd_ops: the operator's commands. ping and stats ask every service at
    once, under one deadline, so that services that are down cost one
    --timeout together and each shows as a DOWN row; bench drives sagas
    (bench.c); keys makes CURVE certificates.
*/
#include "bench.h"
#include "cli.h"

#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>

/*  The services `ping` or `stats` asks: the one named, or all. Returns how
    many, or -CLI_USAGE (printed). */
static int s_services(const cli_args_t *args, const char **services)
{
    char why[256];
    if (args->noperands > 1)
        return -cli_usage_error(args, "names at most one SERVICE");
    if (args->noperands == 0) {
        memcpy(services, cli_services, sizeof cli_services);
        return CLI_SERVICES;
    }
    if (!(services[0] = cli_service(args->operands[0], why, sizeof why)))
        return -cli_usage_error(args, "%s", why);
    return 1;
}

#define S_KEY_WIDTH_MAX 32 /* a longer key pushes only its own value right */

/*  Prints each key of a reply's data on its own line, escaped: strings as
    text, other values as JSON, the values in one column. */
static void s_print_fields(const msgpack_object *data)
{
    bool map = data->type == MSGPACK_OBJECT_MAP;
    int width = 0;
    for (uint32_t i = 0; map && i < data->via.map.size; i++) {
        const msgpack_object *k = &data->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && (int)k->via.str.size > width)
            width = k->via.str.size < S_KEY_WIDTH_MAX ? (int)k->via.str.size
                                                      : S_KEY_WIDTH_MAX;
    }
    for (uint32_t i = 0; map && i < data->via.map.size; i++) {
        const msgpack_object *k = &data->via.map.ptr[i].key;
        const msgpack_object *v = &data->via.map.ptr[i].val;
        char key[CLI_SHOWN] = "?", value[4096];
        if (k->type == MSGPACK_OBJECT_STR)
            eda_escape(key, sizeof key, k->via.str.ptr, k->via.str.size);
        json_t *json = v->type == MSGPACK_OBJECT_STR ? NULL : cli_json(v);
        char *text = json ? cli_json_text(json) : NULL;
        if (v->type == MSGPACK_OBJECT_STR)
            eda_escape(value, sizeof value, v->via.str.ptr, v->via.str.size);
        printf("  %-*s %s\n", width, key, text ? text : value);
        free(text);
        json_decref(json);
    }
}

/*  A service that did not answer (or refused), as one JSON object. */
static int s_print_down_json(const cli_answer_t *a, const char *endpoint)
{
    char refusal[512];
    json_t *row = json_object();
    json_object_set_new(row, "service", json_string(a->service));
    json_object_set_new(row, "up", json_false());
    json_object_set_new(row, "endpoint", json_string(endpoint));
    json_object_set_new(row, "error",
                        json_string(a->answered
                                        ? cli_refusal(&a->reply, refusal, sizeof refusal)
                                        : a->why));
    return cli_print_json_value(row);
}

/*  Prints one service's row of `ping`; 0 when it is up. */
static int s_print_ping(cli_t *cli, const cli_answer_t *a)
{
    const char *endpoint = eda_config_peer(&cli->cfg, a->service)->commands;
    char why[512], shown[4 * sizeof why];
    bool up = a->answered && a->reply.ok == 1;
    if (up && cli->json) {
        json_t *row = cli_json(&a->reply.data);
        json_object_set_new(row, "up", json_true());
        json_object_set_new(row, "rtt_us", json_integer(a->rtt_us));
        json_object_set_new(row, "endpoint", json_string(endpoint));
        return cli_print_json_value(row);
    }
    if (!up && cli->json) {
        s_print_down_json(a, endpoint);
        return CLI_FAILED;
    }
    if (up) {
        char version[CLI_SHOWN];
        printf("%-18s up %6" PRId64 " s  version %s  %.1f ms  %s\n", a->service,
               cli_i64(&a->reply.data, "uptime_s"),
               cli_str(&a->reply.data, "version", version, sizeof version),
               (double)a->rtt_us / 1000.0, endpoint);
        return 0;
    }
    const char *reason = a->answered ? cli_refusal(&a->reply, why, sizeof why) : a->why;
    printf("%-18s DOWN  %s  %s\n", a->service, cli_esc(reason, shown, sizeof shown),
           endpoint);
    return CLI_FAILED;
}

int cmd_ping(cli_t *cli, const cli_args_t *args)
{
    const char *services[CLI_SERVICES];
    int n = s_services(args, services);
    if (n < 0)
        return -n;
    cli_answer_t answers[CLI_SERVICES];
    cli_ask_all(cli, "Ping", services, (size_t)n, cli->timeout_ms, answers);
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (s_print_ping(cli, &answers[i]))
            rc = CLI_FAILED;
    cli_answers_free(answers, (size_t)n);
    return rc;
}

int cmd_stats(cli_t *cli, const cli_args_t *args)
{
    const char *services[CLI_SERVICES];
    int n = s_services(args, services);
    if (n < 0)
        return -n;
    cli_answer_t answers[CLI_SERVICES];
    cli_ask_all(cli, "Stats", services, (size_t)n, cli->timeout_ms, answers);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const cli_answer_t *a = &answers[i];
        char why[512], shown[4 * sizeof why];
        if (a->answered && a->reply.ok == 1 && cli->json)
            rc |= cli_print_json(&a->reply.data);
        else if (a->answered && a->reply.ok == 1) {
            printf("%s\n", a->service);
            s_print_fields(&a->reply.data);
        } else if (cli->json) {
            s_print_down_json(a, eda_config_peer(&cli->cfg, a->service)->commands);
            rc = CLI_FAILED;
        } else {
            const char *reason =
                a->answered ? cli_refusal(&a->reply, why, sizeof why) : a->why;
            printf("%s DOWN  %s\n", a->service, cli_esc(reason, shown, sizeof shown));
            rc = CLI_FAILED;
        }
    }
    cli_answers_free(answers, (size_t)n);
    return rc ? CLI_FAILED : 0;
}

int cmd_bench(cli_t *cli, const cli_args_t *args)
{
    static const char *const sagas[] = {"choreography", "orchestration"};
    int64_t orders = 20000, window = 500, rate = 0;
    const char *saga = cli_opt(args, "saga");
    if (saga && !(saga = cli_match(saga, sagas, 2, false)))
        return cli_usage_error(args, "--saga must be choreography or orchestration");
    if (args->noperands)
        return cli_usage_error(args, "takes no operands, only options");
    int rc = cli_opt_i64(args, "orders", 1, 100000000, &orders);
    if (rc == 0)
        rc = cli_opt_i64(args, "window", 1, 100000000, &window);
    if (rc == 0)
        rc = cli_opt_i64(args, "rate", 0, 100000000, &rate);
    bench_args_t b = {
        .orders = (long)orders, .window = (long)window, .rate = (long)rate, .saga = saga};
    return rc ? rc : bench_main(&cli->cfg, cli->keys, cli->timeout_ms, cli->json, &b);
}

int cmd_keys(cli_t *cli, const cli_args_t *args)
{
    (void)cli;
    if (args->noperands != 2 || !streq(args->operands[0], "init"))
        return cli_usage_error(args, "wants init DIR");
    char why[1200];
    if (eda_keys_init(args->operands[1], why, sizeof why))
        return cli_fail("%s", why);
    printf("keys for order-service, customer-service, inventory-service and client "
           "in %s\n"
           "give each host its own NAME.cert_secret and every NAME.cert\n",
           args->operands[1]);
    return 0;
}
