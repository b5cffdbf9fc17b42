/*  fuzz_envelope: eda_decode on any bytes. An envelope that decodes is packed
    again with eda_pack_header and decoded a second time: both decodes must
    agree field by field, and packing the second must give the same bytes.
    eda_msgpack_to_json must stay inside any buffer and agree with a larger one.
*/
#include "eda_envelope.h"
#include "fuzz_check.h"

#include <stdint.h>

/*  Checks what eda_decode promises of an envelope it accepted. */
static void s_check_accepted(const eda_envelope_t *env)
{
    const char *strs[] = {env->type,           env->id,           env->source,
                          env->correlation_id, env->causation_id, env->epoch};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        FUZZ_CHECK(fuzz_terminated(strs[i], EDA_NAME_MAX + 1), "a string overran");
    FUZZ_CHECK(env->v == EDA_PROTOCOL_VERSION, "accepted another version");
    FUZZ_CHECK(env->kind <= EDA_KIND_HEARTBEAT, "kind out of range");
    FUZZ_CHECK(env->type[0] && env->id[0], "accepted without type or id");
    bool needs_data = env->kind != EDA_KIND_REPLY || env->ok == 1;
    FUZZ_CHECK(!needs_data || env->data.type == MSGPACK_OBJECT_MAP, "data is not a map");
    if (env->kind == EDA_KIND_EVENT || env->kind == EDA_KIND_HEARTBEAT)
        FUZZ_CHECK(env->source[0] && env->epoch[0], "event without source or epoch");
    if (env->kind == EDA_KIND_EVENT)
        FUZZ_CHECK(env->has_seq && env->seq > 0, "event without seq");
    if (env->kind == EDA_KIND_REPLY) {
        FUZZ_CHECK(env->ok == 0 || env->ok == 1, "reply without ok");
        FUZZ_CHECK(env->ok || env->error.type == MSGPACK_OBJECT_MAP, "error not a map");
    }
}

/*  Packs `env` as a service would: the header, then data or error as read. */
static void s_pack(msgpack_sbuffer *sb, const eda_envelope_t *env)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = env->kind,
                        .type = env->type,
                        .id = env->id,
                        .source = env->source,
                        .ts = env->ts,
                        .correlation_id = env->correlation_id,
                        .causation_id = env->causation_id,
                        .seq = env->seq,
                        .epoch = env->epoch,
                        .ok = env->ok == 1};
    eda_pack_header(&pk, &hdr);
    if (env->kind == EDA_KIND_REPLY && env->ok != 1) {
        eda_pack_key(&pk, "error");
        msgpack_pack_object(&pk, env->error);
    } else
        msgpack_pack_object(&pk, env->data);
}

/*  The header fields that survive a round trip for the envelope's kind. */
static void s_check_same(const eda_envelope_t *a, const eda_envelope_t *b)
{
    FUZZ_CHECK(a->kind == b->kind, "kind changed");
    FUZZ_CHECK(strcmp(a->type, b->type) == 0, "type changed");
    FUZZ_CHECK(strcmp(a->id, b->id) == 0, "id changed");
    FUZZ_CHECK(strcmp(a->source, b->source) == 0, "source changed");
    FUZZ_CHECK(strcmp(a->correlation_id, b->correlation_id) == 0, "correlation changed");
    FUZZ_CHECK(strcmp(a->causation_id, b->causation_id) == 0, "causation changed");
    FUZZ_CHECK(a->ts == b->ts, "ts changed");
    if (a->kind == EDA_KIND_EVENT)
        FUZZ_CHECK(a->seq == b->seq && b->has_seq, "seq changed");
    if (a->kind == EDA_KIND_EVENT || a->kind == EDA_KIND_HEARTBEAT)
        FUZZ_CHECK(strcmp(a->epoch, b->epoch) == 0, "epoch changed");
    if (a->kind == EDA_KIND_REPLY)
        FUZZ_CHECK(a->ok == b->ok, "ok changed");
}

/*  Renders `root` as JSON into a roomy buffer and into a small one of
    1 + `cut` bytes: each result is a C string of the length returned, and
    the small one is the start of the roomy one, cut at most a token short
    of the buffer's end. */
static void s_check_json(const msgpack_object *root, size_t in_len, uint8_t cut)
{
    size_t big = 16 * in_len + 256, small = 1 + (size_t)cut;
    char *full = malloc(big), *part = malloc(small);
    FUZZ_CHECK(full && part, "out of memory");
    size_t n = eda_msgpack_to_json(root, full, big);
    FUZZ_CHECK(n < big && strlen(full) == n, "JSON length is wrong");
    size_t m = eda_msgpack_to_json(root, part, small);
    FUZZ_CHECK(m < small && strlen(part) == m, "cut JSON length is wrong");
    if (n < big - 1) {
        /* cut where the buffer ends, or a little before: never inside an
           escape, a number or a token */
        FUZZ_CHECK(n < small ? m == n : m <= small - 1 && m + 32 >= small - 1,
                   "cut JSON has the wrong length");
        FUZZ_CHECK(memcmp(part, full, m) == 0, "cut JSON differs from the whole");
    }
    free(full);
    free(part);
}

/*  Packs `first` (decoded by its own decoder), decodes the bytes with
    `second`, and checks that nothing moved. */
static void s_round_trip(const eda_envelope_t *first, eda_decoder_t *second)
{
    msgpack_sbuffer once, twice;
    msgpack_sbuffer_init(&once);
    msgpack_sbuffer_init(&twice);
    s_pack(&once, first);
    FUZZ_CHECK(eda_msgpack_check(once.data, once.size) == 0, "packed bytes not msgpack");

    eda_envelope_t again;
    char why[256] = "";
    eda_error_t rc = eda_decode(second, once.data, once.size, &again, why, sizeof why);
    if (rc != EDA_OK)
        fprintf(stderr, "re-encoded envelope refused: %s\n", why);
    FUZZ_CHECK(rc == EDA_OK, "a re-encoded envelope must decode");
    s_check_accepted(&again);
    s_check_same(first, &again);

    s_pack(&twice, &again);
    FUZZ_CHECK(once.size == twice.size && memcmp(once.data, twice.data, once.size) == 0,
               "packing a decoded envelope is not stable");
    msgpack_sbuffer_destroy(&once);
    msgpack_sbuffer_destroy(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eda_decoder_t *first = eda_decoder_new(), *second = eda_decoder_new();
    FUZZ_CHECK(first && second, "out of memory");

    /* Without a reason buffer, and with one byte of it, the verdict is the
       same. */
    eda_envelope_t env;
    eda_error_t quiet = eda_decode(first, data, size, &env, NULL, 0);
    char tiny[1] = {'x'};
    FUZZ_CHECK(eda_decode(first, data, size, &env, tiny, sizeof tiny) == quiet,
               "verdict depends on the reason buffer");
    FUZZ_CHECK(tiny[0] == '\0' || quiet == EDA_OK, "reason overran one byte");

    char why[256] = "";
    eda_error_t rc = eda_decode(first, data, size, &env, why, sizeof why);
    FUZZ_CHECK(rc == quiet, "verdict changed between two decodes");
    FUZZ_CHECK(rc == EDA_OK || rc == EDA_BAD_REQUEST || rc == EDA_UNSUPPORTED_VERSION,
               "unexpected error code");
    FUZZ_CHECK(fuzz_terminated(env.id, sizeof env.id), "id overran on refusal");
    FUZZ_CHECK(fuzz_terminated(env.type, sizeof env.type), "type overran on refusal");
    if (rc != EDA_OK)
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    else {
        s_check_accepted(&env);
        s_round_trip(&env, second);
    }

    const msgpack_object *root = eda_decoder_root(first);
    FUZZ_CHECK(root->type == MSGPACK_OBJECT_NIL || root->type == MSGPACK_OBJECT_MAP,
               "root is neither nil nor a map");
    if (root->type == MSGPACK_OBJECT_MAP) {
        s_check_json(root, size, data[size - 1]);
        char s[EDA_NAME_MAX + 1];
        uint64_t u;
        int64_t i;
        bool b;
        (void)eda_get_str(root, "id", s, sizeof s);
        (void)eda_get_u64(root, "ts", &u);
        (void)eda_get_i64(root, "seq", &i);
        (void)eda_get_bool(root, "ok", &b);
    }
    eda_decoder_destroy(&first);
    eda_decoder_destroy(&second);
    FUZZ_CHECK(first == NULL && second == NULL, "destroy must null the pointer");
    return 0;
}
