/*  eda_envelope: the envelope codec. Decoding reads the raw bytes with
    eda_mpread, which checks every count against the bytes left before it
    allocates (a hostile count cannot make it allocate gigabytes), then reads
    the map strictly. Encoding writes the header keys in a fixed order and
    leaves the last value, `data` or `error`, to the caller.
*/
#include "eda_envelope.h"

#include "eda_mpread.h"
#include "eda_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define S_MAX_DEPTH 31 /* msgpack-c's C unpacker holds 32 levels */

struct eda_decoder {
    msgpack_zone zone;
    msgpack_object root; /* the last map decoded */
};

static const char *s_error_names[] = {"OK",        "BAD_REQUEST", "UNKNOWN_COMMAND",
                                      "NOT_FOUND", "CONFLICT",    "UNSUPPORTED_VERSION",
                                      "INTERNAL"};

static const char *s_kind_names[] = {"event", "command", "reply", "heartbeat"};

const char *eda_error_name(eda_error_t code)
{
    if ((size_t)code >= sizeof s_error_names / sizeof s_error_names[0])
        return "INTERNAL";
    return s_error_names[code];
}

const char *eda_kind_name(eda_kind_t kind)
{
    if ((size_t)kind >= sizeof s_kind_names / sizeof s_kind_names[0])
        return "?";
    return s_kind_names[kind];
}

uint64_t eda_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

eda_decoder_t *eda_decoder_new(void)
{
    eda_decoder_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (!msgpack_zone_init(&self->zone, 8192)) {
        free(self);
        return NULL;
    }
    return self;
}

void eda_decoder_destroy(eda_decoder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_zone_destroy(&(*self_p)->zone);
    free(*self_p);
    *self_p = NULL;
}

const msgpack_object *eda_decoder_root(eda_decoder_t *self)
{
    return &self->root;
}

int eda_msgpack_check(const void *buf, size_t len)
{
    eda_mp_t r;
    eda_mp_init(&r, buf, len);
    uint64_t need[S_MAX_DEPTH + 1]; /* values still to read at each depth */
    int depth = 0;
    need[0] = 1;
    while (1) {
        while (depth >= 0 && need[depth] == 0)
            depth--;
        if (depth < 0)
            break;
        need[depth]--;
        msgpack_object o;
        if (!eda_mp_next(&r, &o))
            return -1;
        uint64_t children = o.type == MSGPACK_OBJECT_ARRAY ? o.via.array.size
                            : o.type == MSGPACK_OBJECT_MAP ? 2 * (uint64_t)o.via.map.size
                                                           : 0;
        if (children) {
            if (depth + 1 > S_MAX_DEPTH)
                return -1;
            need[++depth] = children;
        }
    }
    return r.p == r.end ? 0 : -1;
}

/*  Copies a msgpack string into out[size]; -1 if not a string, too long, or
    holding a NUL byte. */
static int s_copy_str(const msgpack_object *o, char *out, size_t size)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    uint32_t n = o->via.str.size;
    if (n >= size || memchr(o->via.str.ptr, '\0', n))
        return -1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
    return 0;
}

/*  True when k is the string name[n]. */
static bool s_key_is_n(const msgpack_object *k, const char *name, size_t n)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/*  The same for a string literal, its length known at compile time. */
#define S_KEY_IS(k, literal) s_key_is_n((k), (literal), sizeof(literal) - 1)

bool eda_key_is(const msgpack_object *k, const char *name)
{
    return name && s_key_is_n(k, name, strlen(name));
}

const msgpack_object *eda_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (s_key_is_n(&map->via.map.ptr[i].key, key, n))
            return &map->via.map.ptr[i].val;
    return NULL;
}

int eda_get_str(const msgpack_object *map, const char *key, char *out, size_t size)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 1;
    return s_copy_str(o, out, size);
}

int eda_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 1;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *out = o->via.u64;
    return 0;
}

int eda_get_i64(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 1;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t)o->via.u64;
    else
        return -1;
    return 0;
}

int eda_get_bool(const msgpack_object *map, const char *key, bool *out)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 1;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = o->via.boolean;
    return 0;
}

/*  Writes the reason a decode failed into why[why_size] (why may be NULL)
    and returns `code`. */
static eda_error_t s_fail(char *why, size_t why_size, eda_error_t code, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));
static eda_error_t s_fail(char *why, size_t why_size, eda_error_t code, const char *fmt,
                          ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*  Reads one optional string field of the envelope: nil leaves "". */
static int s_env_str(const msgpack_object *v, char *out)
{
    if (v->type == MSGPACK_OBJECT_NIL) {
        out[0] = '\0';
        return 0;
    }
    return s_copy_str(v, out, EDA_NAME_MAX + 1);
}

eda_error_t eda_decode(eda_decoder_t *self, const void *buf, size_t len,
                       eda_envelope_t *env, char *why, size_t why_size)
{
    memset(env, 0, sizeof *env);
    self->root.type = MSGPACK_OBJECT_NIL;
    env->ok = -1;
    env->data.type = MSGPACK_OBJECT_NIL;
    env->error.type = MSGPACK_OBJECT_NIL;
    if (len == 0)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "empty message");
    if (len > EDA_MAX_MSG)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "message over 1 MiB");

    msgpack_zone_clear(&self->zone);
    /* Strings and bins point into the bytes read: read a copy held by the
       zone, so that `data` outlives the caller's buffer. */
    char *copy = msgpack_zone_malloc(&self->zone, len);
    if (!copy)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "out of memory");
    memcpy(copy, buf, len);
    msgpack_object root;
    if (!eda_mp_unpack(copy, len, &self->zone, &root))
        return s_fail(why, why_size, EDA_BAD_REQUEST,
                      "not one well-formed msgpack value");
    if (root.type != MSGPACK_OBJECT_MAP)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "envelope is not a map");
    self->root = root;

    /* The id first, so that even a refused message can be answered by id. */
    const msgpack_object *id = eda_map_get(&root, "id");
    if (id)
        s_env_str(id, env->id);
    const msgpack_object *type = eda_map_get(&root, "type");
    if (type)
        s_env_str(type, env->type);

    /* Then the version, before anything else is judged. */
    const msgpack_object *v = eda_map_get(&root, "v");
    if (!v)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key 'v'");
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "'v' is not an unsigned integer");
    env->v = v->via.u64;
    if (env->v != EDA_PROTOCOL_VERSION)
        return s_fail(why, why_size, EDA_UNSUPPORTED_VERSION,
                      "protocol version not supported (this side speaks 1)");

    bool has_kind = false, has_ts = false, has_ok = false;
    for (uint32_t i = 0; i < root.via.map.size; i++) {
        const msgpack_object *k = &root.via.map.ptr[i].key;
        const msgpack_object *val = &root.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return s_fail(why, why_size, EDA_BAD_REQUEST, "envelope key is not a string");
        int rc = 0;
        const char *bad = NULL;
        if (S_KEY_IS(k, "kind")) {
            char kind[16];
            rc = s_copy_str(val, kind, sizeof kind);
            has_kind = true;
            if (rc == 0) {
                rc = -1;
                for (size_t j = 0; j < sizeof s_kind_names / sizeof s_kind_names[0]; j++)
                    if (strcmp(kind, s_kind_names[j]) == 0) {
                        env->kind = (eda_kind_t)j;
                        rc = 0;
                    }
            }
            bad = "kind";
        } else if (S_KEY_IS(k, "type"))
            rc = s_copy_str(val, env->type, sizeof env->type), bad = "type";
        else if (S_KEY_IS(k, "id"))
            rc = s_copy_str(val, env->id, sizeof env->id), bad = "id";
        else if (S_KEY_IS(k, "source"))
            rc = s_env_str(val, env->source), bad = "source";
        else if (S_KEY_IS(k, "correlation_id"))
            rc = s_env_str(val, env->correlation_id), bad = "correlation_id";
        else if (S_KEY_IS(k, "causation_id"))
            rc = s_env_str(val, env->causation_id), bad = "causation_id";
        else if (S_KEY_IS(k, "epoch"))
            rc = s_env_str(val, env->epoch), bad = "epoch";
        else if (val->type == MSGPACK_OBJECT_NIL &&
                 (S_KEY_IS(k, "ts") || S_KEY_IS(k, "seq")))
            ; /* nil is absent: judged below for the kinds that need them */
        else if (S_KEY_IS(k, "ts")) {
            rc = val->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? 0 : -1, bad = "ts";
            env->ts = val->via.u64;
            has_ts = true;
        } else if (S_KEY_IS(k, "seq")) {
            rc = val->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? 0 : -1, bad = "seq";
            env->seq = val->via.u64;
            env->has_seq = true;
        } else if (S_KEY_IS(k, "data")) {
            rc = val->type == MSGPACK_OBJECT_MAP || val->type == MSGPACK_OBJECT_NIL ? 0
                                                                                    : -1;
            env->data = *val;
            bad = "data";
        } else if (S_KEY_IS(k, "ok")) {
            rc = val->type == MSGPACK_OBJECT_BOOLEAN ? 0 : -1, bad = "ok";
            if (rc == 0) /* via.boolean of another type is not a valid bool */
                env->ok = val->via.boolean;
            has_ok = true;
        } else if (S_KEY_IS(k, "error")) {
            rc = val->type == MSGPACK_OBJECT_MAP || val->type == MSGPACK_OBJECT_NIL ? 0
                                                                                    : -1;
            env->error = *val;
            bad = "error";
        }
        if (rc)
            return s_fail(why, why_size, EDA_BAD_REQUEST,
                          "key '%s' has the wrong type or is too long", bad);
    }

    if (!has_kind)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "kind");
    if (!env->type[0])
        return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "type");
    if (!env->id[0])
        return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "id");
    bool needs_data = env->kind != EDA_KIND_REPLY || env->ok == 1;
    if (needs_data && env->data.type != MSGPACK_OBJECT_MAP)
        return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "data");
    if (env->kind == EDA_KIND_EVENT || env->kind == EDA_KIND_HEARTBEAT) {
        if (!env->source[0])
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "source");
        if (!env->epoch[0])
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "epoch");
    }
    if (env->kind == EDA_KIND_EVENT) {
        if (!env->has_seq || env->seq == 0)
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "seq");
        if (!has_ts)
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "ts");
    }
    if (env->kind == EDA_KIND_REPLY) {
        if (!has_ok)
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "ok");
        if (!env->ok && env->error.type != MSGPACK_OBJECT_MAP)
            return s_fail(why, why_size, EDA_BAD_REQUEST, "missing key '%s'", "error");
    }
    return EDA_OK;
}

/* --- encoding ------------------------------------------------------------ */

void eda_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) { /* a fixstr, as msgpack-c packs it: head and body in one write */
        char fix[32];
        fix[0] = (char)(0xa0 | n);
        memcpy(fix + 1, s, n);
        pk->callback(pk->data, fix, n + 1);
        return;
    }
    msgpack_pack_str_with_body(pk, s, n);
}

void eda_pack_raw(msgpack_packer *pk, const void *packed, size_t len)
{
    pk->callback(pk->data, packed, len);
}

void eda_pack_key(msgpack_packer *pk, const char *key)
{
    eda_pack_str(pk, key);
}

void eda_pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    eda_pack_str(pk, key);
    if (value)
        eda_pack_str(pk, value);
    else
        msgpack_pack_nil(pk);
}

void eda_pack_kv_strn(msgpack_packer *pk, const char *key, const char *value, size_t len)
{
    eda_pack_str(pk, key);
    msgpack_pack_str_with_body(pk, value, len);
}

void eda_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t value)
{
    eda_pack_str(pk, key);
    msgpack_pack_uint64(pk, value);
}

void eda_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t value)
{
    eda_pack_str(pk, key);
    msgpack_pack_int64(pk, value);
}

void eda_pack_kv_nil(msgpack_packer *pk, const char *key)
{
    eda_pack_str(pk, key);
    msgpack_pack_nil(pk);
}

void eda_pack_kv_bool(msgpack_packer *pk, const char *key, bool value)
{
    eda_pack_str(pk, key);
    if (value)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void s_pack_opt_str(msgpack_packer *pk, const char *key, const char *value)
{
    eda_pack_kv_str(pk, key, value && *value ? value : NULL);
}

void eda_pack_header(msgpack_packer *pk, const eda_header_t *hdr)
{
    bool event = hdr->kind == EDA_KIND_EVENT;
    bool has_epoch = hdr->epoch && (event || hdr->kind == EDA_KIND_HEARTBEAT);
    bool reply = hdr->kind == EDA_KIND_REPLY;
    /* v kind type id source ts correlation_id causation_id + last value */
    uint32_t n = 9 + (event ? 1 : 0) + (has_epoch ? 1 : 0) + (reply ? 1 : 0);
    msgpack_pack_map(pk, n);
    eda_pack_kv_u64(pk, "v", EDA_PROTOCOL_VERSION);
    eda_pack_kv_str(pk, "kind", eda_kind_name(hdr->kind));
    eda_pack_kv_str(pk, "type", hdr->type);
    eda_pack_kv_str(pk, "id", hdr->id);
    s_pack_opt_str(pk, "source", hdr->source);
    eda_pack_kv_u64(pk, "ts", hdr->ts);
    s_pack_opt_str(pk, "correlation_id", hdr->correlation_id);
    s_pack_opt_str(pk, "causation_id", hdr->causation_id);
    if (event)
        eda_pack_kv_u64(pk, "seq", hdr->seq);
    if (has_epoch)
        eda_pack_kv_str(pk, "epoch", hdr->epoch);
    if (reply)
        eda_pack_kv_bool(pk, "ok", hdr->ok);
    if (!reply || hdr->ok)
        eda_pack_key(pk, "data");
}

void eda_pack_error(msgpack_packer *pk, eda_error_t code, const char *message)
{
    eda_pack_key(pk, "error");
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "code", eda_error_name(code));
    eda_pack_kv_str(pk, "message", message ? message : "");
}

/* --- JSON rendering ------------------------------------------------------ */

/*  One renderer for the whole library: eda_text's, whose escaping keeps any
    string valid JSON. */
size_t eda_msgpack_to_json(const msgpack_object *obj, char *out, size_t size)
{
    size_t n = eda_json(obj, out, size);
    return n < size ? n : size ? strlen(out) : 0;
}
