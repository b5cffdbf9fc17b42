/*  eda_mpread: a cursor over msgpack bytes. See the header.
 */
#include "eda_mpread.h"

#include <string.h>

void eda_mp_init(eda_mp_t *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + (data ? len : 0);
}

/*  Takes the next n bytes: their start, or NULL when fewer are left. */
static const uint8_t *s_take(eda_mp_t *r, uint64_t n)
{
    if ((uint64_t)(r->end - r->p) < n)
        return NULL;
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

/*  Reads an n-byte big-endian unsigned integer into *v. */
static bool s_uint(eda_mp_t *r, unsigned n, uint64_t *v)
{
    const uint8_t *at = s_take(r, n);
    if (!at)
        return false;
    *v = 0;
    for (unsigned i = 0; i < n; i++)
        *v = *v << 8 | at[i];
    return true;
}

/*  Reads an n-byte big-endian signed integer into o, as msgpack-c types it
    (a value that is not negative is a positive integer). */
static bool s_int(eda_mp_t *r, unsigned n, msgpack_object *o)
{
    uint64_t u;
    if (!s_uint(r, n, &u))
        return false;
    int64_t v = n == 1   ? (int8_t)u
                : n == 2 ? (int16_t)u
                : n == 4 ? (int32_t)u
                         : (int64_t)u;
    o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.i64 = v; /* the same bits as via.u64 when not negative */
    return true;
}

/*  Takes n bytes of payload into o as a string or binary value. */
static bool s_bytes(eda_mp_t *r, uint64_t n, msgpack_object_type type, msgpack_object *o)
{
    const uint8_t *at = s_take(r, n);
    if (!at)
        return false;
    o->type = type;
    o->via.str.ptr = (const char *)at; /* a bin has the same layout */
    o->via.str.size = (uint32_t)n;
    return true;
}

/*  An extension of n payload bytes: its type byte, then the payload. */
static bool s_ext(eda_mp_t *r, uint64_t n, msgpack_object *o)
{
    const uint8_t *at = s_take(r, n + 1);
    if (!at)
        return false;
    o->type = MSGPACK_OBJECT_EXT;
    o->via.ext.type = (int8_t)at[0];
    o->via.ext.ptr = (const char *)at + 1;
    o->via.ext.size = (uint32_t)n;
    return true;
}

/*  An array or a map of n elements (pairs), which follow: their count is
    checked against the bytes left, each taking one at least. */
static bool s_container(eda_mp_t *r, uint64_t n, msgpack_object_type type,
                        msgpack_object *o)
{
    if ((type == MSGPACK_OBJECT_MAP ? 2 * n : n) > (uint64_t)(r->end - r->p))
        return false;
    o->type = type;
    if (type == MSGPACK_OBJECT_MAP)
        o->via.map = (msgpack_object_map){.size = (uint32_t)n};
    else
        o->via.array = (msgpack_object_array){.size = (uint32_t)n};
    return true;
}

/*  A float of n bytes (4 or 8) into o, as msgpack-c unpacks it. */
static bool s_float(eda_mp_t *r, unsigned n, msgpack_object *o)
{
    uint64_t u;
    if (!s_uint(r, n, &u))
        return false;
    if (n == 4) {
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
    } else {
        memcpy(&o->via.f64, &u, sizeof o->via.f64);
        o->type = MSGPACK_OBJECT_FLOAT64;
    }
    return true;
}

bool eda_mp_next(eda_mp_t *r, msgpack_object *o)
{
    const uint8_t *at = s_take(r, 1);
    if (!at)
        return false;
    uint8_t b = *at;
    uint64_t n;
    if (b <= 0x7f) { /* fixints */
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
        return true;
    }
    if (b >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)b;
        return true;
    }
    if (b <= 0x8f)
        return s_container(r, b & 0x0f, MSGPACK_OBJECT_MAP, o);
    if (b <= 0x9f)
        return s_container(r, b & 0x0f, MSGPACK_OBJECT_ARRAY, o);
    if (b <= 0xbf)
        return s_bytes(r, b & 0x1f, MSGPACK_OBJECT_STR, o);
    switch (b) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return true;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = b == 0xc3;
        return true;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return s_uint(r, 1u << (b - 0xc4), &n) && s_bytes(r, n, MSGPACK_OBJECT_BIN, o);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext: its type byte, then the payload */
        return s_uint(r, 1u << (b - 0xc7), &n) && s_ext(r, n, o);
    case 0xca:
    case 0xcb:
        return s_float(r, b == 0xca ? 4 : 8, o);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        return s_uint(r, 1u << (b - 0xcc), &o->via.u64);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return s_int(r, 1u << (b - 0xd0), o);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext */
        return s_ext(r, 1u << (b - 0xd4), o);
    case 0xd9:
    case 0xda:
    case 0xdb:
        return s_uint(r, 1u << (b - 0xd9), &n) && s_bytes(r, n, MSGPACK_OBJECT_STR, o);
    case 0xdc:
    case 0xdd:
        return s_uint(r, b == 0xdc ? 2 : 4, &n) &&
               s_container(r, n, MSGPACK_OBJECT_ARRAY, o);
    case 0xde:
    case 0xdf:
        return s_uint(r, b == 0xde ? 2 : 4, &n) &&
               s_container(r, n, MSGPACK_OBJECT_MAP, o);
    default: /* 0xc1 is never used */
        return false;
    }
}

bool eda_mp_skip(eda_mp_t *r, int depth)
{
    msgpack_object o;
    if (depth > EDA_MP_DEPTH_MAX || !eda_mp_next(r, &o))
        return false;
    uint64_t n = o.type == MSGPACK_OBJECT_ARRAY ? o.via.array.size
                 : o.type == MSGPACK_OBJECT_MAP ? 2 * (uint64_t)o.via.map.size
                                                : 0;
    for (uint64_t i = 0; i < n; i++)
        if (!eda_mp_skip(r, depth + 1))
            return false;
    return true;
}

/*  Reads one whole value at nesting `depth` into o, its arrays and maps
    allocated from `zone`. */
static bool s_read(eda_mp_t *r, msgpack_zone *zone, msgpack_object *o, int depth)
{
    if (!eda_mp_next(r, o))
        return false;
    bool map = o->type == MSGPACK_OBJECT_MAP;
    if (!map && o->type != MSGPACK_OBJECT_ARRAY)
        return true;
    uint32_t n = map ? o->via.map.size : o->via.array.size;
    if (n == 0) {
        o->via.array.ptr = NULL; /* a map's ptr is at the same place */
        return true;
    }
    if (depth + 1 > EDA_MP_UNPACK_DEPTH)
        return false;
    if (map) {
        msgpack_object_kv *kv = msgpack_zone_malloc(zone, n * sizeof *kv);
        if (!kv)
            return false;
        o->via.map.ptr = kv;
        for (uint32_t i = 0; i < n; i++)
            if (!s_read(r, zone, &kv[i].key, depth + 1) ||
                !s_read(r, zone, &kv[i].val, depth + 1))
                return false;
    } else {
        msgpack_object *items = msgpack_zone_malloc(zone, n * sizeof *items);
        if (!items)
            return false;
        o->via.array.ptr = items;
        for (uint32_t i = 0; i < n; i++)
            if (!s_read(r, zone, &items[i], depth + 1))
                return false;
    }
    return true;
}

bool eda_mp_unpack(const void *data, size_t len, msgpack_zone *zone, msgpack_object *o)
{
    eda_mp_t r;
    eda_mp_init(&r, data, len);
    return data && s_read(&r, zone, o, 0) && r.p == r.end;
}
