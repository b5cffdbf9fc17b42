/*  cmd_trace: `trace ORDER_ID` gathers one order's events from every
    event log and prints them in causal order, or as a sequence diagram.
*/
#include "cli.h"

#include "eda_log.h"
#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>

/* --- trace ----------------------------------------------------------------- */

typedef struct {
    char *body; /* the event's envelope bytes */
    size_t len;
    eda_envelope_t env;
    int depth;
} s_traced_t;

static int s_by_ts(const void *a, const void *b)
{
    const s_traced_t *x = a, *y = b;
    return x->env.ts < y->env.ts ? -1 : x->env.ts > y->env.ts;
}

/*  Reads the whole event log of `service` and keeps the events of
    `order_id`. Returns 0, or 1 (printed) when the service does not answer. */
static int s_collect(cli_t *o, const char *service, const char *order_id, zlistx_t *found)
{
    eda_client_t *client = cli_client(o, service);
    if (!client)
        return 1;
    eda_decoder_t *decoder = eda_decoder_new();
    uint64_t after = 0, last = 1;
    int rc = 0;
    while (rc == 0 && after < last) {
        msgpack_packer *pk = eda_client_begin(client, "ReplayEvents", NULL);
        msgpack_pack_map(pk, 2);
        eda_pack_kv_u64(pk, "after_seq", after);
        eda_pack_kv_u64(pk, "limit", 1000);
        eda_envelope_t reply;
        rc = cli_call(client, service, o->timeout_ms, &reply);
        const msgpack_object *events = rc ? NULL : eda_map_get(&reply.data, "events");
        if (rc || !events || events->type != MSGPACK_OBJECT_ARRAY ||
            eda_get_u64(&reply.data, "last_seq", &last) != 0)
            break;
        uint64_t before = after;
        for (uint32_t i = 0; i < events->via.array.size; i++) {
            const msgpack_object *bin = &events->via.array.ptr[i];
            eda_envelope_t env;
            if (bin->type != MSGPACK_OBJECT_BIN ||
                eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, &env, NULL, 0))
                continue;
            after = env.seq;
            char data_order[EDA_NAME_MAX + 1] = "";
            eda_get_str(&env.data, "order_id", data_order, sizeof data_order);
            if (!streq(env.correlation_id, order_id) && !streq(data_order, order_id))
                continue;
            s_traced_t *t = calloc(1, sizeof *t);
            if (!t || !(t->body = malloc(bin->via.bin.size))) {
                free(t);
                rc = cli_fail("out of memory");
                break;
            }
            memcpy(t->body, bin->via.bin.ptr, bin->via.bin.size);
            t->len = bin->via.bin.size;
            zlistx_add_end(found, t);
        }
        if (after == before)
            break; /* nothing readable in this page: the rest cannot be reached */
    }
    eda_decoder_destroy(&decoder);
    eda_client_destroy(&client);
    return rc;
}

int cmd_trace(cli_t *o, const cli_args_t *args)
{
    bool mermaid = cli_flag(args, "mermaid");
    if (args->noperands != 1)
        return cli_usage_error(args, "needs one ORDER_ID");
    const char *order_id = args->operands[0];
    zlistx_t *found = zlistx_new();
    int rc = 0;
    for (int i = 0; i < CLI_SERVICES && rc == 0; i++)
        rc = s_collect(o, cli_services[i], order_id, found);
    size_t n = zlistx_size(found);
    s_traced_t *all = calloc(n ? n : 1, sizeof *all);
    eda_decoder_t *decoder = eda_decoder_new();
    if (!all || !decoder) {
        free(all);
        eda_decoder_destroy(&decoder);
        zlistx_destroy(&found);
        return cli_fail("out of memory");
    }
    size_t k = 0;
    for (s_traced_t *t = zlistx_first(found); t; t = zlistx_next(found)) {
        all[k] = *t;
        eda_decode(decoder, all[k].body, all[k].len, &all[k].env, NULL, 0);
        all[k].env.data.type = MSGPACK_OBJECT_NIL; /* re-read below, zone is reused */
        free(t);
        k++;
    }
    qsort(all, n, sizeof *all, s_by_ts);
    /* Depth in the causal chain: one more than the event that caused it. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (streq(all[i].env.causation_id, all[j].env.id))
                all[i].depth = all[j].depth + 1;
    if (rc == 0 && n == 0)
        rc = cli_fail("no events for order %s", order_id);
    if (rc == 0 && mermaid) {
        printf("sequenceDiagram\n    participant client\n");
        for (int i = 0; i < CLI_SERVICES; i++)
            printf("    participant %s\n", cli_services[i]);
        for (size_t i = 0; i < n; i++) {
            eda_envelope_t *e = &all[i].env;
            char source[CLI_SHOWN], type[CLI_SHOWN], cause[CLI_SHOWN], to[CLI_SHOWN];
            cli_esc(e->source, source, sizeof source);
            cli_esc(e->type, type, sizeof type);
            if (all[i].depth == 0) {
                size_t len = strlen(e->causation_id);
                eda_escape(cause, sizeof cause, e->causation_id, len < 8 ? len : 8);
                printf("    client->>%s: command %s\n", source, cause);
            }
            bool reacted = false;
            for (size_t j = i + 1; j < n; j++)
                if (streq(all[j].env.causation_id, e->id)) {
                    printf("    %s-)%s: %s #%" PRIu64 "\n", source,
                           cli_esc(all[j].env.source, to, sizeof to), type, e->seq);
                    reacted = true;
                    break;
                }
            if (!reacted)
                printf("    Note over %s: %s #%" PRIu64 "\n", source, type, e->seq);
        }
    } else if (rc == 0) {
        char id_shown[CLI_SHOWN];
        if (!o->json)
            printf("order %s: %zu events\n", cli_esc(order_id, id_shown, sizeof id_shown),
                   n);
        for (size_t i = 0; i < n; i++) {
            eda_envelope_t env;
            eda_decode(decoder, all[i].body, all[i].len, &env, NULL, 0);
            if (o->json) {
                cli_print_json(eda_decoder_root(decoder));
                continue;
            }
            char fields[2048], source[CLI_SHOWN], type[CLI_SHOWN];
            eda_log_fields(&env.data, "order_id", fields, sizeof fields);
            time_t secs = (time_t)(env.ts / 1000000);
            struct tm tm;
            localtime_r(&secs, &tm);
            printf("  %02d:%02d:%02d.%03d %*s%s %-17s %-15s #%-4" PRIu64 " %s\n",
                   tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(env.ts % 1000000 / 1000),
                   all[i].depth * 2, "", all[i].depth ? "└─" : "●",
                   cli_esc(env.source, source, sizeof source),
                   cli_esc(env.type, type, sizeof type), env.seq, fields);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(all[i].body);
    free(all);
    eda_decoder_destroy(&decoder);
    zlistx_destroy(&found);
    return rc;
}
