/*  test_envelope: the wire codec of DESIGN section 2. Round trips of every
    kind, then every way a hostile or broken peer can get a message wrong: the
    decoder must refuse it with BAD_REQUEST or UNSUPPORTED_VERSION, never crash,
    and keep the id so that the refusal can be answered.
*/
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eda_envelope.h"

/* --- helpers ------------------------------------------------------------- */

#define EPOCH "0123456789abcdef"

static eda_decoder_t *s_dec;

static void s_setup(void)
{
    s_dec = eda_decoder_new();
    cr_assert_not_null(s_dec);
}

static void s_teardown(void)
{
    eda_decoder_destroy(&s_dec);
}

/*  Decodes from an exactly-sized heap copy, so that ASan sees any read past
    the end of the message. */
static eda_error_t s_decode(const void *buf, size_t len, eda_envelope_t *env)
{
    char why[256] = "";
    void *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    if (len)
        memcpy(copy, buf, len);
    eda_error_t rc = eda_decode(s_dec, copy, len, env, why, sizeof why);
    free(copy);
    if (rc != EDA_OK)
        cr_assert(why[0] != '\0', "a refusal must give a reason");
    return rc;
}

static int s_check(const void *buf, size_t len)
{
    void *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = eda_msgpack_check(copy, len);
    free(copy);
    return rc;
}

/*  One key of a hand-built envelope. */
typedef enum {
    F_STR,
    F_STRN,
    F_UINT,
    F_INT,
    F_NIL,
    F_BOOL,
    F_MAP,
    F_ARRAY,
    F_FLOAT
} f_type_t;

typedef struct {
    const char *key;
    f_type_t t;
    const char *s; /* F_STR, F_STRN (with n as length) */
    int64_t n;     /* F_UINT, F_INT, F_BOOL, F_STRN */
} field_t;

#define FIELDS_MAX 16

typedef struct {
    field_t f[FIELDS_MAX];
    size_t n;
} fields_t;

static void s_pack_field_value(msgpack_packer *pk, const field_t *f)
{
    switch (f->t) {
    case F_STR:
        eda_pack_str(pk, f->s);
        break;
    case F_STRN:
        msgpack_pack_str_with_body(pk, f->s, (size_t)f->n);
        break;
    case F_UINT:
        msgpack_pack_uint64(pk, (uint64_t)f->n);
        break;
    case F_INT:
        msgpack_pack_int64(pk, f->n);
        break;
    case F_NIL:
        msgpack_pack_nil(pk);
        break;
    case F_BOOL:
        f->n ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case F_MAP:
        /* a small map, e.g. data {"order_id": "o-1"} or error {code, message} */
        if (f->s && strcmp(f->s, "error") == 0) {
            msgpack_pack_map(pk, 2);
            eda_pack_kv_str(pk, "code", "NOT_FOUND");
            eda_pack_kv_str(pk, "message", "no such order");
        } else {
            msgpack_pack_map(pk, 1);
            eda_pack_kv_str(pk, "order_id", "o-1");
        }
        break;
    case F_ARRAY:
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, 1);
        eda_pack_str(pk, "two");
        break;
    case F_FLOAT:
        msgpack_pack_double(pk, 1.0);
        break;
    }
}

static void s_pack_fields(msgpack_sbuffer *sb, const fields_t *fs)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)fs->n);
    for (size_t i = 0; i < fs->n; i++) {
        eda_pack_str(&pk, fs->f[i].key);
        s_pack_field_value(&pk, &fs->f[i]);
    }
}

static void s_remove(fields_t *fs, const char *key)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->f[i].key, key) == 0) {
            memmove(&fs->f[i], &fs->f[i + 1], (fs->n - i - 1) * sizeof fs->f[0]);
            fs->n--;
            return;
        }
    cr_assert_fail("no key %s to remove", key);
}

/*  Replaces key's value, or adds the key when absent. */
static void s_set(fields_t *fs, field_t f)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->f[i].key, f.key) == 0) {
            fs->f[i] = f;
            return;
        }
    cr_assert(fs->n < FIELDS_MAX);
    fs->f[fs->n++] = f;
}

enum { K_EVENT, K_COMMAND, K_REPLY_OK, K_REPLY_ERROR, K_HEARTBEAT, K_COUNT };

static const char *s_variant_names[K_COUNT] = {"event", "command", "reply ok",
                                               "reply error", "heartbeat"};

/*  A valid hand-built envelope of each kind. */
static fields_t s_valid(int variant)
{
    fields_t fs = {.n = 0};
    s_set(&fs, (field_t){"v", F_UINT, NULL, 1});
    switch (variant) {
    case K_EVENT:
        s_set(&fs, (field_t){"kind", F_STR, "event", 0});
        s_set(&fs, (field_t){"type", F_STR, "OrderCreated", 0});
        s_set(&fs, (field_t){"id", F_STR, "ev-1", 0});
        s_set(&fs, (field_t){"source", F_STR, "order-service", 0});
        s_set(&fs, (field_t){"ts", F_UINT, NULL, 1700000000000000});
        s_set(&fs, (field_t){"correlation_id", F_STR, "o-1", 0});
        s_set(&fs, (field_t){"causation_id", F_STR, "cmd-1", 0});
        s_set(&fs, (field_t){"seq", F_UINT, NULL, 7});
        s_set(&fs, (field_t){"epoch", F_STR, EPOCH, 0});
        s_set(&fs, (field_t){"data", F_MAP, NULL, 0});
        break;
    case K_COMMAND:
        s_set(&fs, (field_t){"kind", F_STR, "command", 0});
        s_set(&fs, (field_t){"type", F_STR, "PlaceOrder", 0});
        s_set(&fs, (field_t){"id", F_STR, "cmd-1", 0});
        s_set(&fs, (field_t){"data", F_MAP, NULL, 0});
        break;
    case K_REPLY_OK:
    case K_REPLY_ERROR:
        s_set(&fs, (field_t){"kind", F_STR, "reply", 0});
        s_set(&fs, (field_t){"type", F_STR, "GetOrder", 0});
        s_set(&fs, (field_t){"id", F_STR, "rep-1", 0});
        s_set(&fs, (field_t){"causation_id", F_STR, "cmd-1", 0});
        if (variant == K_REPLY_OK) {
            s_set(&fs, (field_t){"ok", F_BOOL, NULL, 1});
            s_set(&fs, (field_t){"data", F_MAP, NULL, 0});
        } else {
            s_set(&fs, (field_t){"ok", F_BOOL, NULL, 0});
            s_set(&fs, (field_t){"error", F_MAP, "error", 0});
        }
        break;
    case K_HEARTBEAT:
        s_set(&fs, (field_t){"kind", F_STR, "heartbeat", 0});
        s_set(&fs, (field_t){"type", F_STR, "Heartbeat", 0});
        s_set(&fs, (field_t){"id", F_STR, "hb-1", 0});
        s_set(&fs, (field_t){"source", F_STR, "customer-service", 0});
        s_set(&fs, (field_t){"ts", F_UINT, NULL, 1700000000000000});
        s_set(&fs, (field_t){"epoch", F_STR, EPOCH, 0});
        s_set(&fs, (field_t){"data", F_MAP, NULL, 0});
        break;
    }
    return fs;
}

static eda_error_t s_decode_fields(const fields_t *fs, eda_envelope_t *env)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_fields(&sb, fs);
    eda_error_t rc = s_decode(sb.data, sb.size, env);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/*  Packs a full envelope with eda_pack_header and a data map {n: 42}. */
static void s_pack_envelope(msgpack_sbuffer *sb, const eda_header_t *hdr)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    eda_pack_header(&pk, hdr);
    if (hdr->kind == EDA_KIND_REPLY && !hdr->ok)
        eda_pack_error(&pk, EDA_NOT_FOUND, "no such order");
    else {
        msgpack_pack_map(&pk, 1);
        eda_pack_kv_u64(&pk, "n", 42);
    }
}

static const eda_header_t s_event_hdr = {.kind = EDA_KIND_EVENT,
                                         .type = "OrderCreated",
                                         .id = "ev-9",
                                         .source = "order-service",
                                         .ts = 1700000000123456,
                                         .correlation_id = "o-9",
                                         .causation_id = "cmd-9",
                                         .seq = 3,
                                         .epoch = EPOCH};

/* --- round trips --------------------------------------------------------- */

TestSuite(envelope, .init = s_setup, .fini = s_teardown);

Test(envelope, event_round_trip)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &s_event_hdr);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    cr_assert_eq(env.v, 1);
    cr_assert_eq(env.kind, EDA_KIND_EVENT);
    cr_assert_str_eq(env.type, "OrderCreated");
    cr_assert_str_eq(env.id, "ev-9");
    cr_assert_str_eq(env.source, "order-service");
    cr_assert_eq(env.ts, 1700000000123456);
    cr_assert_str_eq(env.correlation_id, "o-9");
    cr_assert_str_eq(env.causation_id, "cmd-9");
    cr_assert(env.has_seq);
    cr_assert_eq(env.seq, 3);
    cr_assert_str_eq(env.epoch, EPOCH);
    cr_assert_eq(env.data.type, MSGPACK_OBJECT_MAP);
    uint64_t n = 0;
    cr_assert_eq(eda_get_u64(&env.data, "n", &n), 0);
    cr_assert_eq(n, 42);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, command_round_trip_with_nil_ids)
{
    eda_header_t hdr = {.kind = EDA_KIND_COMMAND,
                        .type = "PlaceOrder",
                        .id = "cmd-1",
                        .source = "eda",
                        .ts = 5};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &hdr);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    cr_assert_eq(env.kind, EDA_KIND_COMMAND);
    cr_assert_str_eq(env.type, "PlaceOrder");
    cr_assert_str_eq(env.id, "cmd-1");
    cr_assert_str_eq(env.source, "eda");
    cr_assert_eq(env.ts, 5);
    cr_assert_str_eq(env.correlation_id, "");
    cr_assert_str_eq(env.causation_id, "");
    cr_assert_not(env.has_seq, "a command carries no seq");
    cr_assert_str_eq(env.epoch, "", "a command carries no epoch");
    cr_assert_eq(env.ok, -1);
    uint64_t n = 0;
    cr_assert_eq(eda_get_u64(&env.data, "n", &n), 0);
    cr_assert_eq(n, 42);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, reply_ok_round_trip)
{
    eda_header_t hdr = {.kind = EDA_KIND_REPLY,
                        .type = "GetOrder",
                        .id = "rep-1",
                        .source = "order-service",
                        .ts = 7,
                        .correlation_id = "o-1",
                        .causation_id = "cmd-1",
                        .ok = 1};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &hdr);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    cr_assert_eq(env.kind, EDA_KIND_REPLY);
    cr_assert_eq(env.ok, 1);
    cr_assert_str_eq(env.type, "GetOrder");
    cr_assert_str_eq(env.causation_id, "cmd-1");
    cr_assert_eq(env.data.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(env.error.type, MSGPACK_OBJECT_NIL);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, reply_error_round_trip)
{
    eda_header_t hdr = {.kind = EDA_KIND_REPLY,
                        .type = "GetOrder",
                        .id = "rep-2",
                        .source = "order-service",
                        .ts = 7,
                        .causation_id = "cmd-2",
                        .ok = 0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &hdr);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    cr_assert_eq(env.kind, EDA_KIND_REPLY);
    cr_assert_eq(env.ok, 0);
    cr_assert_eq(env.data.type, MSGPACK_OBJECT_NIL, "an error reply carries no data");
    cr_assert_eq(env.error.type, MSGPACK_OBJECT_MAP);
    char code[32] = "", message[64] = "";
    cr_assert_eq(eda_get_str(&env.error, "code", code, sizeof code), 0);
    cr_assert_eq(eda_get_str(&env.error, "message", message, sizeof message), 0);
    cr_assert_str_eq(code, "NOT_FOUND");
    cr_assert_str_eq(message, "no such order");
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, heartbeat_round_trip)
{
    eda_header_t hdr = {.kind = EDA_KIND_HEARTBEAT,
                        .type = "Heartbeat",
                        .id = "hb-1",
                        .source = "inventory-service",
                        .ts = 99,
                        .epoch = EPOCH};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &hdr);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    cr_assert_eq(env.kind, EDA_KIND_HEARTBEAT);
    cr_assert_str_eq(env.type, "Heartbeat");
    cr_assert_str_eq(env.source, "inventory-service");
    cr_assert_str_eq(env.epoch, EPOCH);
    cr_assert_not(env.has_seq);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, hand_built_envelopes_of_every_kind_decode)
{
    static const eda_kind_t kinds[K_COUNT] = {EDA_KIND_EVENT, EDA_KIND_COMMAND,
                                              EDA_KIND_REPLY, EDA_KIND_REPLY,
                                              EDA_KIND_HEARTBEAT};
    for (int k = 0; k < K_COUNT; k++) {
        fields_t fs = s_valid(k);
        eda_envelope_t env;
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK, "%s", s_variant_names[k]);
        cr_assert_eq(env.kind, kinds[k], "%s", s_variant_names[k]);
    }
}

Test(envelope, decoder_is_reusable_after_success_and_failure)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &s_event_hdr);
    eda_envelope_t env;
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
        cr_assert_str_eq(env.id, "ev-9");
        cr_assert_eq(s_decode(sb.data, sb.size - 1, &env), EDA_BAD_REQUEST);
        cr_assert_str_eq(env.type, "", "a failed decode must not leave an old type");
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, data_outlives_the_input_buffer)
{
    /* The header promises `data` until the next decode: a caller may free the
       frame it decoded (eda_client closes its zmq message) and read on. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    eda_pack_header(&pk, &s_event_hdr);
    msgpack_pack_map(&pk, 2);
    eda_pack_kv_str(&pk, "order_id", "o-123");
    eda_pack_key(&pk, "blob");
    msgpack_pack_bin_with_body(&pk, "\x01\x02\x03", 3);
    char *frame = malloc(sb.size);
    cr_assert_not_null(frame);
    memcpy(frame, sb.data, sb.size);
    eda_envelope_t env;
    cr_assert_eq(eda_decode(s_dec, frame, sb.size, &env, NULL, 0), EDA_OK);
    memset(frame, 0xee, sb.size);
    free(frame);
    char order_id[16] = "";
    cr_assert_eq(eda_get_str(&env.data, "order_id", order_id, sizeof order_id), 0);
    cr_assert_str_eq(order_id, "o-123");
    const msgpack_object *blob = eda_map_get(&env.data, "blob");
    cr_assert_not_null(blob);
    cr_assert_eq(blob->type, MSGPACK_OBJECT_BIN);
    cr_assert_eq(memcmp(blob->via.bin.ptr, "\x01\x02\x03", 3), 0);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, why_may_be_null)
{
    eda_envelope_t env;
    cr_assert_eq(eda_decode(s_dec, "\x90", 1, &env, NULL, 0), EDA_BAD_REQUEST);
    cr_assert_eq(eda_decode(s_dec, "", 0, &env, NULL, 0), EDA_BAD_REQUEST);
}

Test(envelope, names_of_codes_and_kinds)
{
    cr_assert_str_eq(eda_error_name(EDA_OK), "OK");
    cr_assert_str_eq(eda_error_name(EDA_BAD_REQUEST), "BAD_REQUEST");
    cr_assert_str_eq(eda_error_name(EDA_UNKNOWN_COMMAND), "UNKNOWN_COMMAND");
    cr_assert_str_eq(eda_error_name(EDA_NOT_FOUND), "NOT_FOUND");
    cr_assert_str_eq(eda_error_name(EDA_CONFLICT), "CONFLICT");
    cr_assert_str_eq(eda_error_name(EDA_UNSUPPORTED_VERSION), "UNSUPPORTED_VERSION");
    cr_assert_str_eq(eda_error_name(EDA_INTERNAL), "INTERNAL");
    cr_assert_str_eq(eda_error_name((eda_error_t)99), "INTERNAL");
    cr_assert_str_eq(eda_kind_name(EDA_KIND_EVENT), "event");
    cr_assert_str_eq(eda_kind_name(EDA_KIND_COMMAND), "command");
    cr_assert_str_eq(eda_kind_name(EDA_KIND_REPLY), "reply");
    cr_assert_str_eq(eda_kind_name(EDA_KIND_HEARTBEAT), "heartbeat");
}

/* --- framing failures ---------------------------------------------------- */

Test(envelope, empty_buffer_is_bad_request)
{
    eda_envelope_t env;
    cr_assert_eq(s_decode("", 0, &env), EDA_BAD_REQUEST);
}

Test(envelope, truncated_at_every_offset_is_bad_request)
{
    for (int k = 0; k < K_COUNT; k++) {
        fields_t fs = s_valid(k);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        s_pack_fields(&sb, &fs);
        for (size_t len = 0; len < sb.size; len++) {
            eda_envelope_t env;
            cr_assert_eq(s_decode(sb.data, len, &env), EDA_BAD_REQUEST,
                         "%s cut at %zu of %zu", s_variant_names[k], len, sb.size);
            cr_assert_eq(s_check(sb.data, len), -1);
        }
        eda_envelope_t env;
        cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(envelope, trailing_bytes_are_bad_request)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_envelope(&sb, &s_event_hdr);
    size_t one = sb.size;
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_BAD_REQUEST);
    /* two whole envelopes back to back are not one message either */
    sb.size = one;
    s_pack_envelope(&sb, &s_event_hdr);
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_BAD_REQUEST);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, not_a_map_is_bad_request)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xc0", 1}, /* nil */
        {"\x01", 1}, /* 1 */
        {"\xa3"
         "abc",
         4},                             /* "abc" */
        {"\x92\x01\x02", 3},             /* [1, 2] */
        {"\x91\x81\xa1v\x01", 5},        /* [{v: 1}] */
        {"\xc4\x02\x81\x00", 4},         /* bin */
        {"\xcb\x3f\xf0\0\0\0\0\0\0", 9}, /* 1.0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eda_envelope_t env;
        cr_assert_eq(s_check(cases[i].bytes, cases[i].len), 0, "case %zu is msgpack", i);
        cr_assert_eq(s_decode(cases[i].bytes, cases[i].len, &env), EDA_BAD_REQUEST,
                     "case %zu", i);
    }
}

Test(envelope, non_string_key_is_bad_request)
{
    fields_t fs = s_valid(K_COMMAND);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)fs.n + 1);
    for (size_t i = 0; i < fs.n; i++) {
        eda_pack_str(&pk, fs.f[i].key);
        s_pack_field_value(&pk, &fs.f[i]);
    }
    msgpack_pack_uint64(&pk, 7); /* key 7 */
    eda_pack_str(&pk, "x");
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_BAD_REQUEST);
    cr_assert_str_eq(env.id, "cmd-1", "the id is kept for the reply");
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, oversized_message_is_refused_and_1_mib_accepted)
{
    /* A command whose data holds one big bin; grown to exactly 1 MiB, then by
       one byte more. */
    size_t bin = EDA_MAX_MSG - 200;
    char *blob = calloc(1, EDA_MAX_MSG + 16);
    cr_assert_not_null(blob);
    msgpack_sbuffer sb;
    for (int pass = 0; pass < 3; pass++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        eda_header_t hdr = {.kind = EDA_KIND_COMMAND, .type = "Big", .id = "big-1"};
        eda_pack_header(&pk, &hdr);
        msgpack_pack_map(&pk, 1);
        eda_pack_key(&pk, "blob");
        msgpack_pack_bin_with_body(&pk, blob, bin);
        if (pass == 0) {
            bin += EDA_MAX_MSG - sb.size; /* aim at exactly 1 MiB */
            msgpack_sbuffer_destroy(&sb);
            continue;
        }
        eda_envelope_t env;
        if (pass == 1) {
            cr_assert_eq(sb.size, EDA_MAX_MSG);
            cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK, "1 MiB is allowed");
            bin++;
        } else {
            cr_assert_eq(sb.size, EDA_MAX_MSG + 1);
            cr_assert_eq(s_check(sb.data, sb.size), 0, "well-formed, only too big");
            cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_BAD_REQUEST);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    free(blob);
}

/* --- keys ---------------------------------------------------------------- */

/*  The keys each kind must carry (DESIGN section 2). */
static const char *s_required[K_COUNT][10] = {
    [K_EVENT] = {"v", "kind", "type", "id", "data", "source", "seq", "epoch", "ts", NULL},
    [K_COMMAND] = {"v", "kind", "type", "id", "data", NULL},
    [K_REPLY_OK] = {"v", "kind", "type", "id", "ok", "data", NULL},
    [K_REPLY_ERROR] = {"v", "kind", "type", "id", "ok", "error", NULL},
    [K_HEARTBEAT] = {"v", "kind", "type", "id", "data", "source", "epoch", NULL},
};

Test(envelope, missing_required_key_is_bad_request)
{
    for (int k = 0; k < K_COUNT; k++)
        for (int i = 0; s_required[k][i]; i++) {
            fields_t fs = s_valid(k);
            s_remove(&fs, s_required[k][i]);
            eda_envelope_t env;
            cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "%s without %s",
                         s_variant_names[k], s_required[k][i]);
        }
}

Test(envelope, optional_keys_may_be_absent)
{
    /* source, ts, correlation_id and causation_id are optional on a command */
    fields_t fs = s_valid(K_COMMAND);
    eda_envelope_t env;
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK);
    cr_assert_str_eq(env.source, "");
    cr_assert_eq(env.ts, 0);
    /* an event's correlation and causation are optional too */
    fs = s_valid(K_EVENT);
    s_remove(&fs, "correlation_id");
    s_remove(&fs, "causation_id");
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK);
}

Test(envelope, required_strings_may_not_be_empty)
{
    static const char *keys[] = {"type", "id", "source", "epoch"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        fields_t fs = s_valid(K_EVENT);
        s_set(&fs, (field_t){keys[i], F_STR, "", 0});
        eda_envelope_t env;
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "empty %s", keys[i]);
    }
}

Test(envelope, event_seq_zero_is_bad_request)
{
    fields_t fs = s_valid(K_EVENT);
    s_set(&fs, (field_t){"seq", F_UINT, NULL, 0});
    eda_envelope_t env;
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "seq starts at 1");
}

/*  Which value types each known key accepts. */
typedef struct {
    const char *key;
    bool str, uint, nil, map, boolean;
} key_types_t;

static const key_types_t s_key_types[] = {
    {"kind", .str = true},
    {"type", .str = true},
    {"id", .str = true},
    {"source", .str = true, .nil = true},
    {"correlation_id", .str = true, .nil = true},
    {"causation_id", .str = true, .nil = true},
    {"epoch", .str = true, .nil = true},
    {"ts", .uint = true, .nil = true}, /* nil is absent: see below */
    {"seq", .uint = true, .nil = true},
    {"data", .map = true, .nil = true},
    {"error", .map = true, .nil = true},
    {"ok", .boolean = true},
    {"v", .uint = true},
};

Test(envelope, wrong_type_for_each_key_is_bad_request)
{
    static const field_t wrong[] = {
        {NULL, F_STR, "1", 0},    {NULL, F_UINT, NULL, 5},  {NULL, F_INT, NULL, -5},
        {NULL, F_NIL, NULL, 0},   {NULL, F_BOOL, NULL, 1},  {NULL, F_MAP, NULL, 0},
        {NULL, F_ARRAY, NULL, 0}, {NULL, F_FLOAT, NULL, 0},
    };
    for (int k = 0; k < K_COUNT; k++)
        for (size_t i = 0; i < sizeof s_key_types / sizeof s_key_types[0]; i++)
            for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
                const key_types_t *kt = &s_key_types[i];
                f_type_t t = wrong[w].t;
                bool accepted = (t == F_STR && kt->str) || (t == F_UINT && kt->uint) ||
                                (t == F_NIL && kt->nil) || (t == F_MAP && kt->map) ||
                                (t == F_BOOL && kt->boolean);
                if (accepted)
                    continue;
                fields_t fs = s_valid(k);
                field_t f = wrong[w];
                f.key = kt->key;
                s_set(&fs, f);
                eda_envelope_t env;
                cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST,
                             "%s with %s of type %d", s_variant_names[k], kt->key,
                             (int)t);
            }
}

Test(envelope, nil_ts_and_seq_are_absent_fine_for_a_command_not_an_event)
{
    eda_envelope_t env;
    fields_t fs = s_valid(K_COMMAND);
    s_set(&fs, (field_t){"ts", F_NIL, NULL, 0});
    s_set(&fs, (field_t){"seq", F_NIL, NULL, 0});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK);
    cr_assert_not(env.has_seq);

    fs = s_valid(K_EVENT);
    s_set(&fs, (field_t){"ts", F_NIL, NULL, 0});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    fs = s_valid(K_EVENT);
    s_set(&fs, (field_t){"seq", F_NIL, NULL, 0});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
}

Test(envelope, reply_ok_must_match_its_payload)
{
    /* ok true without data, ok false without error */
    fields_t fs = s_valid(K_REPLY_OK);
    s_set(&fs, (field_t){"data", F_NIL, NULL, 0});
    eda_envelope_t env;
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    fs = s_valid(K_REPLY_ERROR);
    s_set(&fs, (field_t){"error", F_NIL, NULL, 0});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
}

Test(envelope, strings_over_64_bytes_or_with_nul_are_bad_request)
{
    char s64[65], s65[66];
    memset(s64, 'x', 64);
    s64[64] = '\0';
    memset(s65, 'y', 65);
    s65[65] = '\0';
    static const char *keys[] = {"type",           "id",           "source",
                                 "correlation_id", "causation_id", "epoch"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        eda_envelope_t env;
        fields_t fs = s_valid(K_EVENT);
        s_set(&fs, (field_t){keys[i], F_STR, s64, 0});
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK, "64 bytes of %s fit", keys[i]);

        fs = s_valid(K_EVENT);
        s_set(&fs, (field_t){keys[i], F_STR, s65, 0});
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "65 bytes of %s",
                     keys[i]);

        fs = s_valid(K_EVENT);
        s_set(&fs, (field_t){keys[i], F_STRN, "ab\0cd", 5});
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "NUL in %s", keys[i]);
    }
    /* the decoded 64-byte string is whole and terminated */
    fields_t fs = s_valid(K_EVENT);
    s_set(&fs, (field_t){"id", F_STR, s64, 0});
    eda_envelope_t env;
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK);
    cr_assert_str_eq(env.id, s64);
}

Test(envelope, unknown_kind_is_bad_request)
{
    static const char *kinds[] = {"request",
                                  "EVENT",
                                  "events",
                                  "",
                                  "even",
                                  "heartbeat2",
                                  "a-very-long-kind-name-over-sixteen-bytes"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        fields_t fs = s_valid(K_COMMAND);
        s_set(&fs, (field_t){"kind", F_STR, kinds[i], 0});
        eda_envelope_t env;
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "kind '%s'", kinds[i]);
    }
}

/* --- version ------------------------------------------------------------- */

Test(envelope, v_missing_or_not_uint_is_bad_request)
{
    eda_envelope_t env;
    fields_t fs = s_valid(K_COMMAND);
    s_remove(&fs, "v");
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    static const field_t bad[] = {{"v", F_STR, "1", 0},   {"v", F_INT, NULL, -1},
                                  {"v", F_NIL, NULL, 0},  {"v", F_FLOAT, NULL, 0},
                                  {"v", F_BOOL, NULL, 1}, {"v", F_MAP, NULL, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fs = s_valid(K_COMMAND);
        s_set(&fs, bad[i]);
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST, "v of type %d",
                     (int)bad[i].t);
    }
}

Test(envelope, other_versions_are_unsupported)
{
    static const int64_t versions[] = {0, 2, 3, 255, 65536, (int64_t)UINT64_MAX};
    for (int k = 0; k < K_COUNT; k++)
        for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
            fields_t fs = s_valid(k);
            s_set(&fs, (field_t){"v", F_UINT, NULL, versions[i]});
            eda_envelope_t env;
            cr_assert_eq(s_decode_fields(&fs, &env), EDA_UNSUPPORTED_VERSION,
                         "%s with v=%llu", s_variant_names[k],
                         (unsigned long long)versions[i]);
            cr_assert_str_eq(env.id, fs.f[3].s, "the id is kept for the reply");
        }
}

Test(envelope, a_refusal_still_knows_the_id_and_type)
{
    eda_envelope_t env;
    fields_t fs = s_valid(K_COMMAND);
    s_set(&fs, (field_t){"v", F_UINT, NULL, 2});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_UNSUPPORTED_VERSION);
    cr_assert_str_neq(env.id, "");
    cr_assert_str_neq(env.type, "", "the reply could not echo the command's type");
}

Test(envelope, version_is_checked_before_anything_else)
{
    eda_envelope_t env;
    /* v=2 alone */
    fields_t fs = {.n = 0};
    s_set(&fs, (field_t){"v", F_UINT, NULL, 2});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_UNSUPPORTED_VERSION);

    /* v=2, every other key broken, and v packed last */
    fs = (fields_t){.n = 0};
    s_set(&fs, (field_t){"kind", F_UINT, NULL, 9});
    s_set(&fs, (field_t){"type", F_ARRAY, NULL, 0});
    s_set(&fs, (field_t){"id", F_STR, "x-1", 0});
    s_set(&fs, (field_t){"seq", F_STR, "seven", 0});
    s_set(&fs, (field_t){"data", F_STR, "not a map", 0});
    s_set(&fs, (field_t){"ok", F_UINT, NULL, 3});
    s_set(&fs, (field_t){"v", F_UINT, NULL, 2});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_UNSUPPORTED_VERSION);
    cr_assert_str_eq(env.id, "x-1");

    /* v=2 in a map that also has a non-string key */
    const char raw[] = "\x83\x01\x02\xa1v\x02\xa2id\xa3x-2";
    cr_assert_eq(s_decode(raw, sizeof raw - 1, &env), EDA_UNSUPPORTED_VERSION);
    cr_assert_str_eq(env.id, "x-2");
}

/* --- tolerance ----------------------------------------------------------- */

Test(envelope, unknown_keys_are_ignored)
{
    for (int k = 0; k < K_COUNT; k++) {
        fields_t fs = s_valid(k);
        s_set(&fs, (field_t){"zz_future", F_ARRAY, NULL, 0});
        s_set(&fs, (field_t){"priority", F_FLOAT, NULL, 0});
        s_set(&fs, (field_t){"trace", F_MAP, NULL, 0});
        s_set(&fs, (field_t){"Kind", F_UINT, NULL, 5}); /* keys are case-sensitive */
        eda_envelope_t env;
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK, "%s", s_variant_names[k]);
    }
    /* an unknown key holding an ext value */
    fields_t fs = s_valid(K_COMMAND);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (uint32_t)fs.n + 1);
    for (size_t i = 0; i < fs.n; i++) {
        eda_pack_str(&pk, fs.f[i].key);
        s_pack_field_value(&pk, &fs.f[i]);
    }
    eda_pack_str(&pk, "x-ext");
    msgpack_pack_ext_with_body(&pk, "\x01\x02\x03", 3, 42);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_OK);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, nil_correlation_and_causation_are_accepted)
{
    for (int k = 0; k < K_COUNT; k++) {
        fields_t fs = s_valid(k);
        s_set(&fs, (field_t){"correlation_id", F_NIL, NULL, 0});
        s_set(&fs, (field_t){"causation_id", F_NIL, NULL, 0});
        eda_envelope_t env;
        cr_assert_eq(s_decode_fields(&fs, &env), EDA_OK, "%s", s_variant_names[k]);
        cr_assert_str_eq(env.correlation_id, "");
        cr_assert_str_eq(env.causation_id, "");
    }
}

Test(envelope, id_is_kept_when_decoding_fails_later)
{
    /* the broken key comes before the id in the map */
    eda_envelope_t env;
    fields_t fs = {.n = 0};
    s_set(&fs, (field_t){"v", F_UINT, NULL, 1});
    s_set(&fs, (field_t){"kind", F_STR, "command", 0});
    s_set(&fs, (field_t){"data", F_ARRAY, NULL, 0});
    s_set(&fs, (field_t){"type", F_STR, "PlaceOrder", 0});
    s_set(&fs, (field_t){"id", F_STR, "cmd-77", 0});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    cr_assert_str_eq(env.id, "cmd-77");

    /* v missing */
    fs = s_valid(K_COMMAND);
    s_remove(&fs, "v");
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    cr_assert_str_eq(env.id, "cmd-1");

    /* kind missing */
    fs = s_valid(K_COMMAND);
    s_remove(&fs, "kind");
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    cr_assert_str_eq(env.id, "cmd-1");

    /* an id that cannot be read leaves "" */
    fs = s_valid(K_COMMAND);
    s_set(&fs, (field_t){"id", F_UINT, NULL, 12});
    cr_assert_eq(s_decode_fields(&fs, &env), EDA_BAD_REQUEST);
    cr_assert_str_eq(env.id, "");
}

/* --- eda_msgpack_check --------------------------------------------------- */

Test(envelope, check_refuses_huge_counts_in_a_few_bytes)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *what;
    } cases[] = {
        {"\xdf\xff\xff\xff\xff", 5, "map32 of 4G entries"},
        {"\xdf\xff\xff\xff\xff\x01\x02\x03\x04", 9, "map32 of 4G entries, some bytes"},
        {"\xdd\xff\xff\xff\xff", 5, "array32 of 4G entries"},
        {"\xdd\xff\xff\xff\xff\xc0\xc0\xc0", 8, "array32 of 4G entries, some bytes"},
        {"\xde\xff\xff\xc0\xc0", 5, "map16 of 65535 entries"},
        {"\xdc\xff\xff\xc0", 4, "array16 of 65535 entries"},
        {"\xdb\xff\xff\xff\xff"
         "abc",
         8, "str32 of 4 GiB"},
        {"\xda\xff\xff"
         "abc",
         6, "str16 of 64 KiB"},
        {"\xd9\xff"
         "abc",
         5, "str8 of 255"},
        {"\xc6\xff\xff\xff\xff"
         "abc",
         8, "bin32 of 4 GiB"},
        {"\xc9\xff\xff\xff\xff\x01"
         "abc",
         9, "ext32 of 4 GiB"},
        {"\x81\xa1v\xdd\xff\xff\xff\xff", 8, "nested array32"},
        {"\xdf\x00\x00\x00\x01\xa1v", 7, "map32 of 1 entry missing its value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(s_check(cases[i].bytes, cases[i].len), -1, "%s", cases[i].what);
        eda_envelope_t env;
        cr_assert_eq(s_decode(cases[i].bytes, cases[i].len, &env), EDA_BAD_REQUEST, "%s",
                     cases[i].what);
    }
}

Test(envelope, check_accepts_every_well_formed_type)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\x00", 1},
        {"\x7f", 1},
        {"\xe0", 1},
        {"\xff", 1},
        {"\xc0", 1},
        {"\xc2", 1},
        {"\xc3", 1},
        {"\xcc\x01", 2},
        {"\xcd\x01\x02", 3},
        {"\xce\x01\x02\x03\x04", 5},
        {"\xcf\x01\x02\x03\x04\x05\x06\x07\x08", 9},
        {"\xd0\x01", 2},
        {"\xd1\x01\x02", 3},
        {"\xd2\x01\x02\x03\x04", 5},
        {"\xd3\x01\x02\x03\x04\x05\x06\x07\x08", 9},
        {"\xca\x01\x02\x03\x04", 5},
        {"\xcb\x01\x02\x03\x04\x05\x06\x07\x08", 9},
        {"\xa0", 1},
        {"\xa2hi", 3},
        {"\xd9\x02hi", 4},
        {"\xda\x00\x02hi", 5},
        {"\xdb\x00\x00\x00\x02hi", 7},
        {"\xc4\x02hi", 4},
        {"\xc5\x00\x02hi", 5},
        {"\xc6\x00\x00\x00\x02hi", 7},
        {"\x90", 1},
        {"\x80", 1},
        {"\xdc\x00\x01\xc0", 4},
        {"\xdd\x00\x00\x00\x01\xc0", 6},
        {"\xde\x00\x01\xa1k\xc0", 6},
        {"\xdf\x00\x00\x00\x01\xa1k\xc0", 8},
        {"\x82\xa1"
         "a\x91\x01\xa1"
         "b\x80",
         8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(s_check(cases[i].bytes, cases[i].len), 0, "case %zu", i);
        /* and each of them cut short is refused */
        for (size_t cut = 0; cut < cases[i].len; cut++)
            cr_assert_eq(s_check(cases[i].bytes, cut), -1, "case %zu cut at %zu", i, cut);
    }
}

Test(envelope, check_handles_every_ext_and_fixext)
{
    /* fixext 1, 2, 4, 8, 16: a type byte, then exactly that many bytes */
    static const uint8_t fixext[] = {0xd4, 0xd5, 0xd6, 0xd7, 0xd8};
    static const size_t fixlen[] = {1, 2, 4, 8, 16};
    uint8_t buf[64];
    for (size_t i = 0; i < 5; i++) {
        memset(buf, 0x55, sizeof buf);
        buf[0] = fixext[i];
        buf[1] = 7; /* ext type */
        size_t whole = 2 + fixlen[i];
        cr_assert_eq(s_check(buf, whole), 0, "fixext %zu", fixlen[i]);
        cr_assert_eq(s_check(buf, whole - 1), -1, "fixext %zu short", fixlen[i]);
        cr_assert_eq(s_check(buf, whole + 1), -1, "fixext %zu long", fixlen[i]);
    }
    /* ext 8, 16, 32: length, type, data */
    static const struct {
        const char *bytes;
        size_t len;
    } ext[] = {
        {"\xc7\x03\x05"
         "abc",
         6},
        {"\xc7\x00\x05", 3},
        {"\xc8\x00\x03\x05"
         "abc",
         7},
        {"\xc9\x00\x00\x00\x03\x05"
         "abc",
         9},
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        cr_assert_eq(s_check(ext[i].bytes, ext[i].len), 0, "ext case %zu", i);
        for (size_t cut = 0; cut < ext[i].len; cut++)
            cr_assert_eq(s_check(ext[i].bytes, cut), -1, "ext case %zu cut at %zu", i,
                         cut);
    }
    /* an ext whose type byte is missing */
    cr_assert_eq(s_check("\xc7\x00", 2), -1);
}

Test(envelope, check_refuses_reserved_byte_c1)
{
    cr_assert_eq(s_check("\xc1", 1), -1);
    cr_assert_eq(s_check("\x91\xc1", 2), -1);
    cr_assert_eq(s_check("\x81\xa1v\xc1", 4), -1);
    eda_envelope_t env;
    cr_assert_eq(s_decode("\x81\xa1v\xc1", 4, &env), EDA_BAD_REQUEST);
}

static size_t s_nest(uint8_t *buf, int depth)
{
    for (int i = 0; i < depth; i++)
        buf[i] = 0x91; /* array of one */
    buf[depth] = 0xc0;
    return (size_t)depth + 1;
}

Test(envelope, check_refuses_deep_nesting)
{
    uint8_t buf[256];
    size_t n = s_nest(buf, 100);
    cr_assert_eq(s_check(buf, n), -1, "100 deep");
    n = s_nest(buf, 20);
    cr_assert_eq(s_check(buf, n), 0, "20 deep is fine");
    /* "nested at most 32 deep": 31 containers around a value, and no more */
    n = s_nest(buf, 31);
    cr_assert_eq(s_check(buf, n), 0);
    n = s_nest(buf, 32);
    cr_assert_eq(s_check(buf, n), -1);
    /* whatever the check lets through, msgpack-c can unpack */
    for (int d = 1; d < 64; d++) {
        n = s_nest(buf, d);
        if (s_check(buf, n) != 0)
            continue;
        msgpack_zone zone;
        msgpack_zone_init(&zone, 1024);
        msgpack_object obj;
        size_t off = 0;
        cr_assert_eq(msgpack_unpack((const char *)buf, n, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS, "depth %d", d);
        msgpack_zone_destroy(&zone);
    }
    /* 100 deep inside an envelope's data */
    fields_t fs = s_valid(K_COMMAND);
    s_remove(&fs, "data");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_pack_fields(&sb, &fs);
    sb.data[0]++; /* one more key in the fixmap */
    msgpack_sbuffer_write(&sb,
                          "\xa4"
                          "data",
                          5);
    n = s_nest(buf, 100);
    buf[0] = 0x81; /* a map {"": [[[...]]]} */
    memmove(buf + 2, buf + 1, n - 1);
    buf[1] = 0xa0;
    msgpack_sbuffer_write(&sb, (const char *)buf, n + 1);
    eda_envelope_t env;
    cr_assert_eq(s_decode(sb.data, sb.size, &env), EDA_BAD_REQUEST);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, check_refuses_empty_and_trailing)
{
    cr_assert_eq(s_check("", 0), -1);
    cr_assert_eq(s_check("\xc0\xc0", 2), -1);
    cr_assert_eq(s_check("\x90\x90", 2), -1);
}

/* --- getters ------------------------------------------------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_zone zone;
    msgpack_object map;
} getter_map_t;

static void s_getter_map(getter_map_t *g)
{
    msgpack_sbuffer_init(&g->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &g->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 13);
    eda_pack_kv_str(&pk, "s", "abc");
    eda_pack_kv_strn(&pk, "nul", "a\0b", 3);
    eda_pack_kv_str(&pk, "empty", "");
    eda_pack_kv_u64(&pk, "u", 5);
    eda_pack_kv_i64(&pk, "neg", -5);
    eda_pack_kv_u64(&pk, "big", UINT64_MAX);
    eda_pack_kv_u64(&pk, "i64max", INT64_MAX);
    eda_pack_kv_i64(&pk, "i64min", INT64_MIN);
    eda_pack_kv_nil(&pk, "nil");
    eda_pack_kv_bool(&pk, "t", true);
    eda_pack_kv_bool(&pk, "f", false);
    eda_pack_key(&pk, "float");
    msgpack_pack_double(&pk, 1.5);
    eda_pack_key(&pk, "arr");
    msgpack_pack_array(&pk, 0);
    msgpack_zone_init(&g->zone, 1024);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack(g->sb.data, g->sb.size, &off, &g->zone, &g->map),
                 MSGPACK_UNPACK_SUCCESS);
}

static void s_getter_map_free(getter_map_t *g)
{
    msgpack_zone_destroy(&g->zone);
    msgpack_sbuffer_destroy(&g->sb);
}

Test(envelope, get_str)
{
    getter_map_t g;
    s_getter_map(&g);
    char out[8] = "keep";
    cr_assert_eq(eda_get_str(&g.map, "s", out, sizeof out), 0);
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(eda_get_str(&g.map, "empty", out, sizeof out), 0);
    cr_assert_str_eq(out, "");

    strcpy(out, "keep");
    cr_assert_eq(eda_get_str(&g.map, "absent", out, sizeof out), 1);
    cr_assert_str_eq(out, "keep", "absent leaves the output untouched");
    cr_assert_eq(eda_get_str(&g.map, "nil", out, sizeof out), 1);
    cr_assert_str_eq(out, "keep", "nil leaves the output untouched");

    cr_assert_eq(eda_get_str(&g.map, "u", out, sizeof out), -1);
    cr_assert_eq(eda_get_str(&g.map, "t", out, sizeof out), -1);
    cr_assert_eq(eda_get_str(&g.map, "arr", out, sizeof out), -1);
    cr_assert_eq(eda_get_str(&g.map, "nul", out, sizeof out), -1);

    /* "abc" needs 4 bytes: fits in 4, not in 3 */
    char small[4];
    cr_assert_eq(eda_get_str(&g.map, "s", small, 4), 0);
    cr_assert_str_eq(small, "abc");
    cr_assert_eq(eda_get_str(&g.map, "s", small, 3), -1);
    s_getter_map_free(&g);
}

Test(envelope, get_u64)
{
    getter_map_t g;
    s_getter_map(&g);
    uint64_t v = 77;
    cr_assert_eq(eda_get_u64(&g.map, "u", &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(eda_get_u64(&g.map, "big", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    v = 77;
    cr_assert_eq(eda_get_u64(&g.map, "absent", &v), 1);
    cr_assert_eq(eda_get_u64(&g.map, "nil", &v), 1);
    cr_assert_eq(v, 77);
    cr_assert_eq(eda_get_u64(&g.map, "neg", &v), -1, "a negative number is not a u64");
    cr_assert_eq(eda_get_u64(&g.map, "s", &v), -1);
    cr_assert_eq(eda_get_u64(&g.map, "float", &v), -1);
    cr_assert_eq(eda_get_u64(&g.map, "t", &v), -1);
    s_getter_map_free(&g);
}

Test(envelope, get_i64)
{
    getter_map_t g;
    s_getter_map(&g);
    int64_t v = 77;
    cr_assert_eq(eda_get_i64(&g.map, "neg", &v), 0);
    cr_assert_eq(v, -5);
    cr_assert_eq(eda_get_i64(&g.map, "u", &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(eda_get_i64(&g.map, "i64max", &v), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(eda_get_i64(&g.map, "i64min", &v), 0);
    cr_assert_eq(v, INT64_MIN);
    v = 77;
    cr_assert_eq(eda_get_i64(&g.map, "absent", &v), 1);
    cr_assert_eq(eda_get_i64(&g.map, "nil", &v), 1);
    cr_assert_eq(eda_get_i64(&g.map, "big", &v), -1, "2^64-1 does not fit in int64");
    cr_assert_eq(eda_get_i64(&g.map, "s", &v), -1);
    cr_assert_eq(eda_get_i64(&g.map, "float", &v), -1);
    cr_assert_eq(v, 77);
    s_getter_map_free(&g);
}

Test(envelope, get_bool)
{
    getter_map_t g;
    s_getter_map(&g);
    bool b = false;
    cr_assert_eq(eda_get_bool(&g.map, "t", &b), 0);
    cr_assert(b);
    cr_assert_eq(eda_get_bool(&g.map, "f", &b), 0);
    cr_assert_not(b);
    b = true;
    cr_assert_eq(eda_get_bool(&g.map, "absent", &b), 1);
    cr_assert_eq(eda_get_bool(&g.map, "nil", &b), 1);
    cr_assert(b);
    cr_assert_eq(eda_get_bool(&g.map, "u", &b), -1);
    cr_assert_eq(eda_get_bool(&g.map, "s", &b), -1);
    s_getter_map_free(&g);
}

Test(envelope, getters_on_a_non_map)
{
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    char out[8];
    uint64_t u;
    cr_assert_null(eda_map_get(&nil, "s"));
    cr_assert_null(eda_map_get(NULL, "s"));
    cr_assert_eq(eda_get_str(&nil, "s", out, sizeof out), 1);
    cr_assert_eq(eda_get_u64(NULL, "u", &u), 1);
}

/* --- JSON ---------------------------------------------------------------- */

/*  Unpacks `bytes` and renders it in a buffer of `size`. */
static size_t s_to_json(const char *bytes, size_t len, char *out, size_t size)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object obj;
    size_t off = 0;
    cr_assert_eq(msgpack_unpack(bytes, len, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    size_t n = eda_msgpack_to_json(&obj, out, size);
    msgpack_zone_destroy(&zone);
    return n;
}

static msgpack_sbuffer s_json_sample(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    eda_pack_kv_u64(&pk, "n", 42);
    eda_pack_kv_i64(&pk, "neg", -7);
    eda_pack_kv_strn(&pk, "s", "q\"\\\n\x01/\xc3\xa9", 8);
    eda_pack_key(&pk, "list");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_nil(&pk);
    eda_pack_key(&pk, "deep");
    msgpack_pack_map(&pk, 1);
    eda_pack_key(&pk, "a");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    eda_pack_key(&pk, "bin");
    msgpack_pack_bin_with_body(&pk, "xyz", 3);
    eda_pack_key(&pk, "f");
    msgpack_pack_double(&pk, 1.5);
    return sb;
}

static const char s_json_expected[] =
    "{\"n\":42,\"neg\":-7,\"s\":\"q\\\"\\\\\\u000a\\u0001/\xc3\xa9\","
    "\"list\":[true,false,null],\"deep\":{\"a\":[[],{}]},"
    "\"bin\":{\"bin\":3},\"f\":1.5}";

Test(envelope, json_renders_escapes_and_nesting)
{
    msgpack_sbuffer sb = s_json_sample();
    char out[512];
    size_t n = s_to_json(sb.data, sb.size, out, sizeof out);
    cr_assert_str_eq(out, s_json_expected);
    cr_assert_eq(n, strlen(s_json_expected));
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, json_non_string_keys_are_quoted)
{
    char out[64];
    s_to_json("\x82\x01\xa1x\xff\xc3", 6, out, sizeof out);
    cr_assert_str_eq(out, "{\"1\":\"x\",\"-1\":true}");
}

Test(envelope, json_truncates_to_the_buffer)
{
    msgpack_sbuffer sb = s_json_sample();
    size_t full = strlen(s_json_expected);
    for (size_t size = 1; size <= full + 1; size++) {
        char *out = malloc(size + 8);
        cr_assert_not_null(out);
        memset(out, '#', size + 8);
        size_t n = s_to_json(sb.data, sb.size, out, size);
        /* cut at the end of the buffer, or before the escape, number or
           token that would not fit whole (none is 32 bytes long) */
        cr_assert(n <= size - 1 && n + 32 >= size - 1, "%zu written in %zu", n, size);
        cr_assert_eq(out[n], '\0');
        cr_assert_eq(strncmp(out, s_json_expected, n), 0, "a prefix of the whole");
        cr_assert_eq(out[size], '#', "nothing written past the buffer (size %zu)", size);
        free(out);
    }
    /* size 0 writes nothing */
    char canary = '#';
    cr_assert_eq(s_to_json(sb.data, sb.size, &canary, 0), 0);
    cr_assert_eq(canary, '#');
    msgpack_sbuffer_destroy(&sb);
}

/* --- random input -------------------------------------------------------- */

/*  A fixed-seed xorshift generator: the same inputs on every run. */
static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static void s_assert_sane(eda_error_t rc, const eda_envelope_t *env, const char *what,
                          size_t i)
{
    cr_assert(rc == EDA_OK || rc == EDA_BAD_REQUEST || rc == EDA_UNSUPPORTED_VERSION,
              "%s %zu: decode returned %d", what, i, (int)rc);
    /* every string field stays terminated inside its buffer */
    cr_assert(memchr(env->id, '\0', sizeof env->id));
    cr_assert(memchr(env->type, '\0', sizeof env->type));
    cr_assert(memchr(env->source, '\0', sizeof env->source));
    cr_assert(memchr(env->epoch, '\0', sizeof env->epoch));
    if (rc == EDA_OK) {
        cr_assert(env->type[0] && env->id[0], "%s %zu: OK without type or id", what, i);
        cr_assert_eq(env->v, 1);
    }
}

Test(envelope, random_bytes_never_crash_the_decoder)
{
    /* Random bytes, biased towards msgpack headers so that some parse. */
    static const uint8_t headers[] = {
        0x80, 0x81, 0x85, 0x8f, 0x90, 0x93, 0xa1, 0xa2, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
        0xc7, 0xca, 0xcc, 0xcf, 0xd4, 0xd8, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0x01, 0xff};
    uint8_t buf[96];
    for (size_t i = 0; i < 4000; i++) {
        size_t len = (size_t)(s_rand() % sizeof buf);
        for (size_t j = 0; j < len; j++) {
            uint64_t r = s_rand();
            buf[j] = r % 3 ? (uint8_t)(r >> 8) : headers[(r >> 8) % sizeof headers];
        }
        eda_envelope_t env;
        eda_error_t rc = s_decode(buf, len, &env);
        s_assert_sane(rc, &env, "random buffer", i);
        if (rc == EDA_OK)
            cr_assert_eq(s_check(buf, len), 0);
    }
}

Test(envelope, mutated_envelopes_never_crash_the_decoder)
{
    uint8_t buf[512];
    size_t ok = 0;
    for (size_t i = 0; i < 4000; i++) {
        fields_t fs = s_valid((int)(i % K_COUNT));
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        s_pack_fields(&sb, &fs);
        cr_assert(sb.size < sizeof buf / 2);
        size_t len = sb.size;
        memcpy(buf, sb.data, len);
        msgpack_sbuffer_destroy(&sb);
        int edits = 1 + (int)(s_rand() % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = s_rand();
            size_t at = (size_t)((r >> 8) % len);
            switch (r % 5) {
            case 0:
                buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8));
                break; /* flip a bit */
            case 1:
                buf[at] = (uint8_t)(r >> 32);
                break; /* set a byte */
            case 2:    /* cut */
                len = at;
                break;
            case 3: /* insert a byte */
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = (uint8_t)(r >> 32);
                    len++;
                }
                break;
            case 4: /* delete a byte */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
            if (len == 0)
                break;
        }
        eda_envelope_t env;
        eda_error_t rc = s_decode(buf, len, &env);
        s_assert_sane(rc, &env, "mutation", i);
        ok += rc == EDA_OK;
    }
    /* some mutations (a changed string byte) leave a valid envelope */
    cr_assert_gt(ok, 0);
}

/*  Packs a random msgpack value, of a depth of at most `depth`. */
static void s_random_value(msgpack_packer *pk, int depth)
{
    static const char *strs[] = {"event", "command", "reply", "heartbeat",
                                 "",      "x",       EPOCH,   "order-service"};
    uint64_t r = s_rand();
    switch (r % (depth > 0 ? 10 : 8)) {
    case 0:
        msgpack_pack_uint64(pk, (r >> 8) % 4);
        break;
    case 1:
        msgpack_pack_uint64(pk, r >> 4);
        break;
    case 2:
        msgpack_pack_int64(pk, -(int64_t)((r >> 8) % 1000) - 1);
        break;
    case 3:
        msgpack_pack_nil(pk);
        break;
    case 4:
        (r >> 8) & 1 ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case 5:
        eda_pack_str(pk, strs[(r >> 8) % 8]);
        break;
    case 6:
        msgpack_pack_double(pk, 0.5);
        break;
    case 7:
        msgpack_pack_bin_with_body(pk, "bin", 3);
        break;
    case 8: {
        uint32_t n = (uint32_t)((r >> 8) % 4);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            s_random_value(pk, depth - 1);
        break;
    }
    default: {
        uint32_t n = (uint32_t)((r >> 8) % 4);
        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            s_random_value(pk, depth - 1);
            s_random_value(pk, depth - 1);
        }
        break;
    }
    }
}

Test(envelope, random_well_formed_maps_never_crash_the_decoder)
{
    /* Maps of the envelope's own keys holding values of random types: these
       get past the structure check and exercise every key's type checks. */
    static const char *keys[] = {
        "v",     "kind", "type", "id",    "source",         "ts",          "seq",
        "epoch", "data", "ok",   "error", "correlation_id", "causation_id"};
    size_t nkeys = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < 4000; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        uint32_t n = (uint32_t)(s_rand() % (nkeys + 2));
        msgpack_pack_map(&pk, n);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t r = s_rand();
            if (r % 16 == 0)
                s_random_value(&pk, 0); /* a key of any type */
            else
                eda_pack_str(&pk, keys[(r >> 8) % nkeys]);
            if (strcmp(keys[(r >> 8) % nkeys], "v") == 0 && r % 3)
                msgpack_pack_uint64(&pk, 1); /* mostly the right version */
            else
                s_random_value(&pk, 3);
        }
        eda_envelope_t env;
        eda_error_t rc = s_decode(sb.data, sb.size, &env);
        s_assert_sane(rc, &env, "random map", i);
        msgpack_sbuffer_destroy(&sb);
    }
}
