/*  eda_text: one escaping engine for three forms (text, quoted text, JSON)
    and a JSON renderer built on it. Output goes through a sink that writes
    whole pieces only (an escape, a UTF-8 character, a token) and, once one
    does not fit, writes nothing more but keeps counting what the whole
    would need.
*/
#include "eda_text.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef enum { S_TEXT, S_QUOTED, S_JSON } s_mode_t;

typedef struct {
    char *out;
    size_t size;
    size_t len;     /* bytes written */
    size_t need;    /* bytes the whole output needs */
    size_t reserve; /* bytes kept free for a closing quote */
    bool full;      /* a piece did not fit: nothing more is written */
    bool in_key;    /* rendering a map key that is not a string: quote it */
} s_sink_t;

static const char s_hex[] = "0123456789abcdef";

/*  Appends piece s[n] whole, or marks the sink full. */
static void s_put(s_sink_t *k, const char *s, size_t n)
{
    k->need += n;
    if (k->full || k->len + n + k->reserve >= k->size) {
        k->full = true;
        return;
    }
    memcpy(k->out + k->len, s, n);
    k->len += n;
    k->out[k->len] = '\0';
}

/*  Appends a piece of JSON; inside a key that is not a string, with its
    quotes and backslashes escaped once more. Pieces are at most 48 bytes. */
static void s_unit(s_sink_t *k, const char *s, size_t n)
{
    if (!k->in_key) {
        s_put(k, s, n);
        return;
    }
    char twice[96];
    size_t m = 0;
    for (size_t i = 0; i < n && m + 2 <= sizeof twice; i++) {
        if (s[i] == '"' || s[i] == '\\')
            twice[m++] = '\\';
        twice[m++] = s[i];
    }
    s_put(k, twice, m);
}

/*  The length of the valid UTF-8 character at s[0..left) (lead byte >=
    0x80), with its code point in *cp; 0 when the bytes are not UTF-8
    (overlong forms, surrogates and values past U+10FFFF included). */
static size_t s_utf8(const unsigned char *s, size_t left, uint32_t *cp)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    uint32_t v;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, v = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
        hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07;
        lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* past U+10FFFF */
    } else
        return 0;
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
            return 0;
        v = v << 6 | (b & 0x3f);
    }
    *cp = v;
    return n;
}

/*  Writes the escape of value c into unit: \xNN, or \u00NN in JSON.
    Returns its length. */
static size_t s_byte_escape(unsigned int c, s_mode_t mode, char *unit)
{
    size_t n = 0;
    unit[n++] = '\\';
    if (mode == S_JSON) {
        memcpy(unit + n, "u00", 3);
        n += 3;
    } else
        unit[n++] = 'x';
    unit[n++] = s_hex[(c >> 4) & 0xf];
    unit[n++] = s_hex[c & 0xf];
    return n;
}

/*  Appends in[len] escaped in `mode`, quotes not included. */
static void s_put_escaped(s_sink_t *k, const char *in, size_t len, s_mode_t mode)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp = c;
        size_t seq = c < 0x80 ? 1 : s_utf8(s + i, len - i, &cp);
        char unit[8];
        size_t n;
        if (c == '\\' || (c == '"' && mode != S_TEXT)) {
            unit[0] = '\\';
            unit[1] = (char)c;
            n = 2;
        } else if (seq == 0 || c < 0x20 || c == 0x7f) {
            n = s_byte_escape(c, mode, unit); /* a control, or not UTF-8 */
            seq = 1;
        } else if (cp >= 0x80 && cp < 0xa0) { /* C1, always two bytes */
            n = mode == S_JSON ? s_byte_escape(cp, mode, unit)
                               : s_byte_escape(s[i], mode, unit) +
                                     s_byte_escape(s[i + 1], mode, unit + 4);
        } else {
            memcpy(unit, s + i, seq);
            n = seq;
        }
        s_unit(k, unit, n);
        i += seq;
    }
}

/*  One escaped text, between quotes unless `mode` is S_TEXT. */
static size_t s_escape(char *out, size_t size, const char *in, size_t len, s_mode_t mode)
{
    s_sink_t k = {.out = out, .size = size};
    if (size)
        out[0] = '\0';
    if (mode == S_TEXT) {
        s_put_escaped(&k, in, len, mode);
        return k.need;
    }
    k.reserve = 1; /* the closing quote is always written */
    s_put(&k, "\"", 1);
    bool opened = k.len == 1;
    s_put_escaped(&k, in, len, mode);
    k.need++;
    if (opened) {
        out[k.len++] = '"';
        out[k.len] = '\0';
    }
    return k.need;
}

size_t eda_escape(char *out, size_t size, const char *in, size_t len)
{
    return s_escape(out, size, in, len, S_TEXT);
}

size_t eda_escape_quoted(char *out, size_t size, const char *in, size_t len)
{
    return s_escape(out, size, in, len, S_QUOTED);
}

size_t eda_escape_json(char *out, size_t size, const char *in, size_t len)
{
    return s_escape(out, size, in, len, S_JSON);
}

bool eda_printable(const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        uint32_t cp = s[i];
        size_t seq = cp < 0x80 ? 1 : s_utf8(s + i, len - i, &cp);
        if (seq == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return false;
        i += seq;
    }
    return true;
}

/* --- JSON ------------------------------------------------------------------ */

static void s_json(s_sink_t *k, const msgpack_object *o);

static void s_json_str(s_sink_t *k, const char *s, size_t n)
{
    s_unit(k, "\"", 1);
    s_put_escaped(k, s, n, S_JSON);
    s_unit(k, "\"", 1);
}

static void s_json_map(s_sink_t *k, const msgpack_object *o)
{
    s_unit(k, "{", 1);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        if (i)
            s_unit(k, ",", 1);
        const msgpack_object *key = &o->via.map.ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR)
            s_json_str(k, key->via.str.ptr, key->via.str.size);
        else { /* JSON keys are strings: this one's rendering, quoted */
            s_unit(k, "\"", 1);
            bool was = k->in_key;
            k->in_key = true;
            s_json(k, key);
            k->in_key = was;
            s_unit(k, "\"", 1);
        }
        s_unit(k, ":", 1);
        s_json(k, &o->via.map.ptr[i].val);
    }
    s_unit(k, "}", 1);
}

static void s_json(s_sink_t *k, const msgpack_object *o)
{
    char tmp[48];
    int n = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        n = snprintf(tmp, sizeof tmp, "%s", o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = snprintf(tmp, sizeof tmp, "%" PRIu64, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = snprintf(tmp, sizeof tmp, "%" PRId64, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        n = isfinite(o->via.f64) ? snprintf(tmp, sizeof tmp, "%.17g", o->via.f64)
                                 : snprintf(tmp, sizeof tmp, "null");
        break;
    case MSGPACK_OBJECT_STR:
        s_json_str(k, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN:
        n = snprintf(tmp, sizeof tmp, "{\"bin\":%" PRIu32 "}", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        s_unit(k, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                s_unit(k, ",", 1);
            s_json(k, &o->via.array.ptr[i]);
        }
        s_unit(k, "]", 1);
        return;
    case MSGPACK_OBJECT_MAP:
        s_json_map(k, o);
        return;
    default: /* nil, and extension types JSON has no word for */
        n = snprintf(tmp, sizeof tmp, "null");
        break;
    }
    s_unit(k, tmp, (size_t)n);
}

size_t eda_json(const struct msgpack_object *obj, char *out, size_t size)
{
    s_sink_t k = {.out = out, .size = size};
    if (size)
        out[0] = '\0';
    s_json(&k, obj);
    return k.need;
}

size_t eda_copy(char *out, size_t size, const char *in)
{
    if (!size)
        return 0;
    size_t n = in ? strnlen(in, size - 1) : 0;
    memcpy(out, in ? in : "", n);
    out[n] = '\0';
    return n;
}

size_t eda_u64_text(char *out, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

size_t eda_id_join(char *out, size_t size, const char *prefix, uint64_t n)
{
    char digits[20];
    size_t take = eda_u64_text(digits, n);
    size_t len = eda_copy(out, size, prefix);
    if (len + 1 < size)
        out[len++] = '-';
    if (len + take >= size)
        take = size ? size - 1 - len : 0;
    memcpy(out + len, digits, take);
    len += take;
    if (size)
        out[len] = '\0';
    return len;
}
