/*  eda_builtins: the commands every service answers itself: Ping, Stats
    and ReplayEvents (its event log, exact bytes, for gap repair).
*/
#include "eda_service_impl.h"
#include "eda_text.h"

static int s_cmd_ping(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "service", svc->def->name);
    eda_pack_kv_str(pk, "version", EDA_VERSION);
    eda_pack_kv_u64(pk, "uptime_s", (uint64_t)(zclock_mono() - svc->started_ms) / 1000);
    return 0;
}

static int s_cmd_stats(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    eda_svc_stats_t *s = &svc->stats;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 39 + (svc->def->stats ? 1 : 0));
    eda_pack_kv_str(pk, "service", svc->def->name);
    eda_pack_kv_str(pk, "epoch", eda_store_epoch(svc->store));
    eda_pack_kv_u64(pk, "last_seq", eda_store_next_seq(svc->store) - 1);
    eda_pack_kv_u64(pk, "uptime_s", (uint64_t)(zclock_mono() - svc->started_ms) / 1000);
    eda_pack_kv_u64(pk, "commands_in", s->commands);
    eda_pack_kv_u64(pk, "replies_out", s->replies);
    eda_pack_kv_u64(pk, "replies_dropped", s->replies_dropped);
    eda_pack_kv_u64(pk, "events_published", s->events_published);
    eda_pack_kv_u64(pk, "events_applied", s->events_applied);
    eda_pack_kv_u64(pk, "events_ignored", s->events_ignored);
    eda_pack_kv_u64(pk, "duplicates_dropped", s->duplicates);
    eda_pack_kv_u64(pk, "gaps_detected", s->gaps);
    eda_pack_kv_u64(pk, "gaps_repaired", s->gaps_repaired);
    eda_pack_kv_u64(pk, "replays_requested", s->replays_requested);
    eda_pack_kv_u64(pk, "bad_input", s->bad_input);
    eda_pack_kv_u64(pk, "commits_failed", s->commits_failed);
    eda_pack_kv_u64(pk, "batches", s->batches);
    eda_pack_kv_u64(pk, "batch_max", s->batch_max);
    eda_pack_kv_u64(pk, "batch_avg_x100",
                    s->batches ? s->messages * 100 / s->batches : 0);
    eda_pack_kv_u64(pk, "handler_us_avg",
                    s->handled ? s->handler_us_total / s->handled : 0);
    eda_pack_kv_u64(pk, "handler_us_p50", eda_hist_quantile(&s->handler_us, 0.5));
    eda_pack_kv_u64(pk, "handler_us_p99", eda_hist_quantile(&s->handler_us, 0.99));
    eda_pack_kv_u64(pk, "handler_us_max", s->handler_us_max);
    eda_pack_kv_u64(pk, "commit_us_p50", eda_hist_quantile(&s->commit_us, 0.5));
    eda_pack_kv_u64(pk, "commit_us_p99", eda_hist_quantile(&s->commit_us, 0.99));
    eda_pack_kv_u64(pk, "commit_us_max", s->commit_us_max);
    eda_checkpointer_stats_t wal =
        eda_checkpointer_stats(eda_store_checkpointer(svc->store));
    eda_pack_kv_u64(pk, "wal_pages", wal.wal_pages);
    eda_pack_kv_u64(pk, "wal_restarts", wal.restarts);
    eda_pack_kv_u64(pk, "wal_checkpoints", wal.runs);
    eda_pack_kv_u64(pk, "wal_checkpoint_waits", wal.waits);
    eda_pack_kv_u64(pk, "wal_checkpoint_failures", wal.failures);
    eda_pack_kv_u64(pk, "commands_sent", s->commands_sent);
    eda_pack_kv_u64(pk, "commands_dropped", s->commands_dropped);
    eda_pack_kv_u64(pk, "replies_received", s->replies_received);
    eda_pack_kv_u64(pk, "events_dropped", s->events_dropped);
    eda_pack_kv_u64(pk, "fds_used", s->fds_used);
    eda_pack_kv_u64(pk, "fds_limit", s->fds_limit);
    eda_pack_kv_u64(pk, "reply_backlog_bytes", svc->backlog_bytes);
    if (svc->def->stats) {
        eda_pack_key(pk, "own");
        svc->def->stats(svc->state, pk);
    }
    eda_pack_key(pk, "peers");
    msgpack_pack_map(pk, svc->npeers);
    for (size_t i = 0; i < svc->npeers; i++) {
        eda_pack_key(pk, svc->peers[i].name);
        msgpack_pack_map(pk, 2);
        eda_pack_kv_str(pk, "epoch", svc->peers[i].epoch);
        eda_pack_kv_u64(pk, "last_seq", svc->peers[i].last_seq);
    }
    return 0;
}

static void s_collect_event(uint64_t seq, const void *body, size_t len, void *arg)
{
    (void)seq;
    eda_arena_put(arg, body, len);
}

static int s_cmd_replay(void *state, eda_ctx_t *ctx)
{
    (void)state;
    eda_service_t *svc = ctx->svc;
    const msgpack_object *data = &ctx->msg->data;
    uint64_t after = 0, limit = 100;
    if (eda_get_u64(data, "after_seq", &after) < 0)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "after_seq must be an unsigned integer");
    if (eda_get_u64(data, "limit", &limit) < 0 || limit < 1 ||
        limit > EDA_SVC_REPLAY_LIMIT)
        return eda_ctx_error(ctx, EDA_BAD_REQUEST,
                             "limit must be an integer from 1 to %d",
                             EDA_SVC_REPLAY_LIMIT);
    char order[EDA_NAME_MAX + 1] = "";
    if (eda_get_str(data, "correlation_id", order, sizeof order) < 0 ||
        !eda_printable(order, strlen(order)))
        return eda_ctx_error(
            ctx, EDA_BAD_REQUEST,
            "correlation_id must be a string of printable characters, at "
            "most %d bytes",
            EDA_NAME_MAX);
    /* Only what the peers may see: not the events eda_fence holds back. */
    uint64_t last = eda_fence_visible(svc);
    uint64_t first = eda_store_first_seq(svc->store);
    if (!order[0] && after < first - 1) /* first is at least 1 */
        return eda_ctx_error(ctx, EDA_NOT_FOUND,
                             "events before #%llu are no longer kept (--retain-events): "
                             "a subscriber this far behind must be rebuilt from a fresh "
                             "database",
                             (unsigned long long)first);
    msgpack_sbuffer_clear(&svc->tmp);
    int n = 0;
    if (order[0] && after < last)
        n = eda_store_replay_order(svc->store, order, after, last, (uint32_t)limit,
                                   EDA_SVC_REPLAY_BYTES, s_collect_event, &svc->tmp);
    else if (after < last)
        n = eda_store_replay(svc->store, after,
                             (uint32_t)(limit < last - after ? limit : last - after),
                             EDA_SVC_REPLAY_BYTES, s_collect_event, &svc->tmp);
    if (n < 0)
        return -1;
    msgpack_packer *pk = eda_ctx_reply(ctx);
    msgpack_pack_map(pk, 6);
    eda_pack_kv_str(pk, "epoch", eda_store_epoch(svc->store));
    eda_pack_kv_u64(pk, "last_seq", last);
    eda_pack_kv_u64(pk, "first_seq", first);
    eda_fence_pack_applied(svc, pk);
    eda_pack_key(pk, "events");
    msgpack_pack_array(pk, (size_t)n);
    const char *p = svc->tmp.data;
    for (int i = 0; i < n; i++) {
        uint32_t len;
        const char *event = eda_arena_get(&p, &len);
        msgpack_pack_bin_with_body(pk, event, len);
    }
    return 0;
}

int eda_builtins_index_log(eda_service_t *svc)
{
    enum { CHUNK = 1000 };
    sqlite3_stmt *todo = eda_store_prepare(
        svc->store, "SELECT seq, body FROM eda_event_log WHERE correlation_id IS NULL"
                    " ORDER BY seq LIMIT 1000");
    sqlite3_stmt *set = eda_store_prepare(
        svc->store, "UPDATE eda_event_log SET correlation_id = ? WHERE seq = ?");
    /* On the heap: services may start side by side in one process. */
    struct s_row {
        int64_t seq;
        char order[EDA_NAME_MAX + 1];
    } *rows = malloc(CHUNK * sizeof *rows);
    if (!rows || !todo || !set || eda_store_begin(svc->store)) {
        free(rows);
        return -1;
    }
    uint64_t total = 0;
    int n, rc = 0;
    do {
        /* Read a chunk, then write it: no update under a running scan. */
        n = 0;
        while (n < CHUNK && sqlite3_step(todo) == SQLITE_ROW) {
            eda_envelope_t env;
            rows[n].seq = sqlite3_column_int64(todo, 0);
            rows[n].order[0] = '\0'; /* unreadable: no order, never asked again */
            if (eda_decode(svc->decoder, sqlite3_column_blob(todo, 1),
                           (size_t)sqlite3_column_bytes(todo, 1), &env, NULL,
                           0) == EDA_OK)
                snprintf(rows[n].order, sizeof rows[n].order, "%s", env.correlation_id);
            n++;
        }
        sqlite3_reset(todo);
        for (int i = 0; i < n && rc == 0; i++) {
            sqlite3_bind_text(set, 1, rows[i].order, -1, SQLITE_STATIC);
            sqlite3_bind_int64(set, 2, rows[i].seq);
            rc = eda_store_exec(set);
        }
        total += (uint64_t)n;
    } while (n == CHUNK && rc == 0);
    free(rows);
    if (rc || eda_store_commit(svc->store)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot index the event log by order: %s",
                    eda_store_errmsg(svc->store));
        if (eda_store_in_txn(svc->store))
            eda_store_rollback(svc->store);
        return -1;
    }
    if (total)
        eda_log_msg(svc->log, EDA_LOG_INFO, "indexed %llu logged events by order",
                    (unsigned long long)total);
    return 0;
}

const eda_command_t eda_builtin_commands[] = {
    {"Ping", s_cmd_ping, EDA_CMD_CHECKS_FIRST},
    {"Stats", s_cmd_stats, EDA_CMD_CHECKS_FIRST},
    {"ReplayEvents", s_cmd_replay, EDA_CMD_CHECKS_FIRST},
    {0}};
