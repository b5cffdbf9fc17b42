/*  eda_ctx: what a handler may do with the message in hand: read it, reply,
    emit events into the outbox, queue commands to peers. Everything it
    queues leaves the process only after the batch commits.
*/
#include "eda_service_impl.h"

#include "eda_text.h"

#include <stdarg.h>

const eda_envelope_t *eda_ctx_msg(eda_ctx_t *ctx)
{
    return ctx->msg;
}

eda_store_t *eda_ctx_store(eda_ctx_t *ctx)
{
    return ctx->svc->store;
}

eda_store_t *eda_service_store(eda_service_t *svc)
{
    return svc->store;
}

eda_log_t *eda_ctx_log(eda_ctx_t *ctx)
{
    return ctx->svc->log;
}

eda_log_t *eda_service_log(eda_service_t *svc)
{
    return svc->log;
}

const eda_config_t *eda_service_config(eda_service_t *svc)
{
    return &svc->cfg;
}

static void s_reply_header(eda_ctx_t *ctx, bool ok)
{
    eda_service_t *svc = ctx->svc;
    assert(ctx->msg); /* a timer has nobody to answer */
    char id[EDA_NAME_MAX + 1];
    eda_new_id(id, sizeof id);
    msgpack_sbuffer_clear(&svc->reply_buf);
    eda_header_t hdr = {.kind = EDA_KIND_REPLY,
                        .type = ctx->msg->type[0] ? ctx->msg->type : "Unknown",
                        .id = id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .correlation_id = ctx->msg->correlation_id,
                        .causation_id = ctx->msg->id,
                        .ok = ok};
    eda_pack_header(&svc->reply_pk, &hdr);
    ctx->reply_data = (uint32_t)svc->reply_buf.size;
    ctx->replied = true;
    ctx->reply_ok = ok;
}

msgpack_packer *eda_ctx_reply(eda_ctx_t *ctx)
{
    s_reply_header(ctx, true);
    return &ctx->svc->reply_pk;
}

int eda_ctx_error(eda_ctx_t *ctx, eda_error_t code, const char *fmt, ...)
{
    char *message = ctx->svc->reply_message; /* kept for the flow line */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof ctx->svc->reply_message, fmt, ap);
    va_end(ap);
    s_reply_header(ctx, false);
    eda_pack_error(&ctx->svc->reply_pk, code, message);
    ctx->reply_code = code;
    return 0;
}

msgpack_packer *eda_ctx_emit(eda_ctx_t *ctx, const char *type, const char *order_id)
{
    eda_service_t *svc = ctx->svc;
    assert(!ctx->emitting);
    uint64_t seq = eda_store_next_seq(svc->store);
    char id[EDA_NAME_MAX + 1];
    eda_id_join(id, sizeof id, eda_store_epoch(svc->store), seq);
    msgpack_sbuffer_clear(&svc->event_buf);
    eda_header_t hdr = {.kind = EDA_KIND_EVENT,
                        .type = type,
                        .id = id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .correlation_id = order_id,
                        .causation_id = ctx->msg ? ctx->msg->id : NULL,
                        .seq = seq,
                        .epoch = eda_store_epoch(svc->store)};
    eda_pack_header(&svc->event_pk, &hdr);
    eda_copy(ctx->emit_type, sizeof ctx->emit_type, type);
    eda_copy(ctx->emit_order, sizeof ctx->emit_order, order_id);
    ctx->emit_seq = seq;
    ctx->emit_data = (uint32_t)svc->event_buf.size;
    ctx->emitting = true;
    return &svc->event_pk;
}

int eda_ctx_emit_end(eda_ctx_t *ctx)
{
    eda_service_t *svc = ctx->svc;
    assert(ctx->emitting);
    ctx->emitting = false;
    msgpack_sbuffer *ev = &svc->event_buf;
    const char *type = ctx->emit_type;
    if (eda_store_append(svc->store, type, ctx->emit_order, ev->data, ev->size)) {
        eda_log_msg(svc->log, EDA_LOG_ERROR, "cannot log event %s: %s", type,
                    eda_store_errmsg(svc->store));
        return -1;
    }
    eda_arena_put(&svc->outbox, ev->data, ev->size);
    eda_flow_rec_t flow = {.seq = ctx->emit_seq,
                           .data = ctx->emit_data,
                           .type = type,
                           .order = ctx->emit_order};
    eda_arena_put_flow(&svc->outbox, &flow);
    return 0;
}

int eda_ctx_order_id(eda_ctx_t *ctx, char *order_id, size_t size)
{
    order_id[0] = '\0';
    if (!ctx->msg || eda_get_str(&ctx->msg->data, "order_id", order_id, size) != 0)
        return -1;
    return order_id[0] ? 0 : -1;
}

/*  The index of `peer` when the service has a command client for it, or -1. */
static int s_command_peer(eda_service_t *svc, const char *peer)
{
    for (size_t i = 0; i < svc->npeers; i++)
        if (streq(svc->peers[i].name, peer) && svc->peers[i].commands)
            return (int)i;
    return -1;
}

msgpack_packer *eda_ctx_command(eda_ctx_t *ctx, const char *peer, const char *type,
                                const char *order_id)
{
    eda_service_t *svc = ctx->svc;
    int index = s_command_peer(svc, peer);
    assert(index >= 0 && !ctx->emitting);
    if (index < 0)
        return NULL;
    ctx->command_peer = index;
    eda_new_id(ctx->command_id, sizeof ctx->command_id);
    msgpack_sbuffer_clear(&svc->command_buf);
    eda_header_t hdr = {.kind = EDA_KIND_COMMAND,
                        .type = type,
                        .id = ctx->command_id,
                        .source = svc->def->name,
                        .ts = eda_now_us(),
                        .correlation_id = order_id,
                        .causation_id = ctx->msg ? ctx->msg->id : NULL};
    eda_pack_header(&svc->command_pk, &hdr);
    eda_copy(ctx->command_type, sizeof ctx->command_type, type);
    eda_copy(ctx->command_order, sizeof ctx->command_order, order_id);
    ctx->command_data = (uint32_t)svc->command_buf.size;
    return &svc->command_pk;
}

const char *eda_ctx_command_id(eda_ctx_t *ctx)
{
    return ctx->command_id;
}

void eda_ctx_command_end(eda_ctx_t *ctx)
{
    eda_service_t *svc = ctx->svc;
    assert(ctx->command_peer >= 0);
    eda_arena_u32(&svc->commands, (uint32_t)ctx->command_peer);
    eda_arena_put(&svc->commands, svc->command_buf.data, svc->command_buf.size);
    eda_flow_rec_t flow = {.data = ctx->command_data,
                           .type = ctx->command_type,
                           .order = ctx->command_order};
    eda_arena_put_flow(&svc->commands, &flow);
    ctx->command_peer = -1;
}

int eda_ctx_bad_event(eda_ctx_t *ctx, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    ctx->svc->stats.bad_input++;
    eda_log_msg(ctx->svc->log, EDA_LOG_WARN, "skipped %s #%llu from %s: %s",
                ctx->msg ? ctx->msg->type : "timer",
                (unsigned long long)(ctx->msg ? ctx->msg->seq : 0),
                ctx->msg ? ctx->msg->source : "-", why);
    return 0;
}
