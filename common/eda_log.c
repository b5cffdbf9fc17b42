/*  eda_log: lines are built in a stack buffer and gathered, whole, in a
    buffer of the logger's own that eda_log_flush writes with one fwrite:
    lines from several processes sharing a terminal do not interleave, and a
    busy service does not pay a system call a line. Errors are written at
    once.
*/
#include "eda_log.h"
#include "eda_mpread.h"
#include "eda_text.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_LINE_MAX 4096
#define S_BUFFER   (64 << 10) /* lines gathered before they must be written */
#define S_SERVICE  64         /* bytes of a service name kept */

struct eda_log {
    char service[S_SERVICE];
    size_t service_len;
    eda_log_format_t format;
    eda_log_level_t level;
    FILE *out;
    bool tty;                         /* colours are used */
    char colour[16];                  /* an SGR escape, "" without a tty */
    char service_text[S_SERVICE * 4]; /* service, escaped for a text line */
    size_t service_text_len;
    time_t clock_sec; /* the second clock[] shows, -1 before any */
    char clock[9];    /* "HH:MM:SS" */
    size_t used;      /* bytes waiting in buffer */
    char buffer[S_BUFFER];
};

static const char *s_level_names[] = {"error", "warn", "info", "debug"};
static const char *s_flow_names[] = {"published", "applied", "command", "sent"};
static const char *s_flow_arrows[] = {"→ pub  ", "← apply", "⇐ cmd  ", "⇒ send "};

eda_log_t *eda_log_new(const char *service, eda_log_format_t format,
                       eda_log_level_t level, FILE *out)
{
    eda_log_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->service, sizeof self->service, "%s", service);
    self->service_len = strlen(self->service);
    eda_escape(self->service_text, sizeof self->service_text, self->service,
               self->service_len);
    self->service_text_len = strlen(self->service_text);
    self->clock_sec = -1;
    self->format = format;
    self->level = level;
    self->out = out;
    self->tty = format == EDA_LOG_TEXT && isatty(fileno(out)) && !getenv("NO_COLOR");
    eda_log_set_colour(self, "32");
    return self;
}

void eda_log_set_colour(eda_log_t *self, const char *sgr)
{
    self->colour[0] = '\0';
    if (self->tty)
        snprintf(self->colour, sizeof self->colour, "\033[%.8sm", sgr);
}

void eda_log_destroy(eda_log_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eda_log_flush(*self_p);
    free(*self_p);
    *self_p = NULL;
}

bool eda_log_enabled(eda_log_t *self, eda_log_level_t level)
{
    return self && level <= self->level;
}

/*  Appends printf output to line[*len], truncating at S_LINE_MAX - 2. */
static void s_add(char *line, size_t *len, const char *fmt, ...)
{
    if (*len >= S_LINE_MAX - 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + *len, S_LINE_MAX - 1 - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < S_LINE_MAX - 1 - *len ? (size_t)n : S_LINE_MAX - 2 - *len;
}

/*  Appends s[n] as s_add appends "%s": cut at S_LINE_MAX - 2. */
static void s_cat(char *line, size_t *len, const char *s, size_t n)
{
    if (*len >= S_LINE_MAX - 2)
        return;
    size_t room = S_LINE_MAX - 2 - *len;
    n = n < room ? n : room;
    memcpy(line + *len, s, n);
    *len += n;
    line[*len] = '\0';
}

/*  Appends s[n] as s_add appends "%-<width>s": padded with spaces. */
static void s_pad(char *line, size_t *len, const char *s, size_t n, size_t width)
{
    static const char spaces[] = "                        ";
    s_cat(line, len, s, n);
    while (n < width) {
        size_t pad = width - n < sizeof spaces - 1 ? width - n : sizeof spaces - 1;
        s_cat(line, len, spaces, pad);
        n += pad;
    }
}

/*  Writes the two digits of v (0-99) into out. */
static void s_2digits(char *out, int v)
{
    out[0] = (char)('0' + v / 10 % 10);
    out[1] = (char)('0' + v % 10);
}

/*  Appends the local time as HH:MM:SS.mmm; the logger keeps the second's
    text, so that localtime_r runs once a second. */
static void s_add_time(eda_log_t *self, char *line, size_t *len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != self->clock_sec) {
        struct tm tm;
        localtime_r(&tv.tv_sec, &tm);
        s_2digits(self->clock, tm.tm_hour);
        self->clock[2] = ':';
        s_2digits(self->clock + 3, tm.tm_min);
        self->clock[5] = ':';
        s_2digits(self->clock + 6, tm.tm_sec);
        self->clock_sec = tv.tv_sec;
    }
    int ms = (int)(tv.tv_usec / 1000);
    char frac[4] = {'.', (char)('0' + ms / 100 % 10)};
    s_2digits(frac + 2, ms % 100);
    s_cat(line, len, self->clock, 8);
    s_cat(line, len, frac, 4);
}

/*  True when s[n] is printable ASCII holding no backslash and, when
    `quote`, no double quote: what every escaping of eda_text leaves as
    it is. */
static bool s_plain(const char *s, size_t n, bool quote)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '\\' || (quote && c == '"'))
            return false;
    }
    return true;
}

/*  eda_escape, copying at once text that needs no escape. */
static size_t s_escape(char *out, size_t size, const char *s, size_t n)
{
    if (n >= size || !s_plain(s, n, false))
        return eda_escape(out, size, s, n);
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

/*  Writes "s" into out[size] when s[n] needs no escape between quotes and
    fits whole with its quotes, as eda_escape_quoted and eda_escape_json
    would write it. Returns its length, 0 when it did not. */
static size_t s_quote_plain(char *out, size_t size, const char *s, size_t n)
{
    if (n + 2 >= size || !s_plain(s, n, true))
        return 0;
    out[0] = '"';
    memcpy(out + 1, s, n);
    out[n + 1] = '"';
    out[n + 2] = '\0';
    return n + 2;
}

void eda_log_flush(eda_log_t *self)
{
    if (!self || !self->used)
        return;
    fwrite(self->buffer, 1, self->used, self->out);
    fflush(self->out);
    self->used = 0;
}

static void s_write(eda_log_t *self, char *line, size_t len)
{
    line[len++] = '\n';
    if (self->used + len > S_BUFFER)
        eda_log_flush(self);
    memcpy(self->buffer + self->used, line, len);
    self->used += len;
}

/*  Appends s[n] escaped for a text line, cut cleanly at the line's end. */
static void s_add_text(char *line, size_t *len, const char *s, size_t n)
{
    if (*len >= S_LINE_MAX - 2)
        return;
    s_escape(line + *len, S_LINE_MAX - 1 - *len, s, n);
    *len += strlen(line + *len);
}

/*  Appends s[n] as a JSON string literal, leaving `reserve` bytes for what
    must follow it on the line (a closing brace): the literal is cut, still
    closed, rather than the line. */
static void s_add_json(char *line, size_t *len, const char *s, size_t n, size_t reserve)
{
    if (*len + reserve >= S_LINE_MAX - 2)
        return;
    size_t room = S_LINE_MAX - 1 - reserve - *len;
    if (!s_quote_plain(line + *len, room, s, n))
        eda_escape_json(line + *len, room, s, n);
    *len += strlen(line + *len);
}

/*  A plain line's text is escaped whole, whatever its arguments: a caller
    may pass any string from the wire (a type, a source, a reason) as is. */
void eda_log_msg(eda_log_t *self, eda_log_level_t level, const char *fmt, ...)
{
    if (!eda_log_enabled(self, level))
        return;
    char text[S_LINE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t tlen = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;

    char line[S_LINE_MAX];
    size_t len = 0;
    if (self->format == EDA_LOG_JSON) {
        s_add(line, &len, "{\"ts\":%llu,\"service\":", (unsigned long long)eda_now_us());
        s_add_json(line, &len, self->service, self->service_len, 2);
        s_add(line, &len, ",\"level\":\"%s\",\"message\":", s_level_names[level]);
        s_add_json(line, &len, text, tlen, 1);
        s_add(line, &len, "}");
    } else {
        s_add_time(self, line, &len);
        s_add(line, &len, " %s%-17s%s %-5s ", self->colour, self->service_text,
              *self->colour ? "\033[0m" : "", s_level_names[level]);
        s_add_text(line, &len, text, tlen);
    }
    s_write(self, line, len);
    if (level <= EDA_LOG_WARN)
        eda_log_flush(self); /* trouble is told at once */
}

/*  True when a key or string value can go bare among key=value pairs:
    printable, and nothing (a space, a quote, a backslash, an '=' in a key)
    that would make the pairs ambiguous. */
static bool s_bare(const char *s, size_t n, bool key)
{
    bool ascii = true; /* printable ASCII: no need to ask eda_printable */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '"' || c == '\\' || (key && c == '='))
            return false;
        ascii = ascii && c > 0x20 && c < 0x7f;
    }
    return n > 0 && (ascii || eda_printable(s, n));
}

/*  Appends one key or string value to out[size] at *len, bare or quoted
    and escaped. False when it did not fit whole. */
static bool s_field_str(char *out, size_t size, size_t *len, const char *s, size_t n,
                        bool key)
{
    size_t need = 0;
    if (s_bare(s, n, key))
        need = s_escape(out + *len, size - *len, s, n);
    else if (!(need = s_quote_plain(out + *len, size - *len, s, n)))
        need = eda_escape_quoted(out + *len, size - *len, s, n);
    size_t wrote = strlen(out + *len);
    *len += wrote;
    return need == wrote;
}

/*  Appends one byte to out[size] at *len. False when it did not fit. */
static bool s_field_char(char *out, size_t size, size_t *len, char c)
{
    if (*len + 1 >= size)
        return false;
    out[(*len)++] = c;
    out[*len] = '\0';
    return true;
}

/*  Appends what comes before a pair's value: a space (but before the first
    pair), the key and '='. False when they did not fit whole. */
static bool s_field_key(char *out, size_t size, size_t *len, const char *key, size_t n)
{
    return (!*len || s_field_char(out, size, len, ' ')) &&
           s_field_str(out, size, len, key, n, true) && s_field_char(out, size, len, '=');
}

/*  Writes a scalar the quick way, as eda_json writes it, into out[room]: a
    string that needs no escape, or an integer. Returns its length; 0 when
    it is of another kind or does not fit whole (eda_json then writes it). */
static size_t s_json_fast(const msgpack_object *o, char *out, size_t room)
{
    if (o->type == MSGPACK_OBJECT_STR)
        return s_quote_plain(out, room, o->via.str.ptr, o->via.str.size);
    char num[24];
    size_t n = 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        n = eda_u64_text(num, o->via.u64);
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 < 0) {
        num[n++] = '-';
        n += eda_u64_text(num + 1, -(uint64_t)o->via.i64);
    }
    if (!n || n >= room)
        return 0;
    memcpy(out, num, n);
    out[n] = '\0';
    return n;
}

/*  Appends a pair's value that is not a string, as JSON. False when it did
    not fit whole. */
static bool s_field_json(char *out, size_t size, size_t *len, const msgpack_object *v)
{
    size_t fast = s_json_fast(v, out + *len, size - *len);
    if (fast) {
        *len += fast;
        return true;
    }
    size_t need = eda_json(v, out + *len, size - *len);
    size_t wrote = strlen(out + *len);
    *len += wrote;
    return need == wrote;
}

size_t eda_log_fields(const msgpack_object *data, const char *skip, char *out,
                      size_t size)
{
    if (!size)
        return 0;
    out[0] = '\0';
    if (!data || data->type != MSGPACK_OBJECT_MAP)
        return 0;
    size_t len = 0;
    bool fits = true;
    for (uint32_t i = 0; fits && i < data->via.map.size; i++) {
        const msgpack_object *k = &data->via.map.ptr[i].key;
        const msgpack_object *v = &data->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || eda_key_is(k, skip))
            continue;
        fits = s_field_key(out, size, &len, k->via.str.ptr, k->via.str.size);
        if (fits && v->type == MSGPACK_OBJECT_STR)
            fits = s_field_str(out, size, &len, v->via.str.ptr, v->via.str.size, false);
        else if (fits) /* nested values as JSON, its strings escaped as JSON */
            fits = s_field_json(out, size, &len, v);
    }
    return len; /* a pair cut short at the end counts too */
}

/* --- data packed by the service itself, read in place ------------------------ */

#define S_KEY_MAX 512 /* a map key that is not a string, rendered */

/*  Reads a map key into `k`, moving past it whole: a key that is an array
    or a map is skipped, `k` saying only what it was. */
static bool s_mp_key(eda_mp_t *r, msgpack_object *k, int depth)
{
    eda_mp_t at = *r;
    if (!eda_mp_next(r, k))
        return false;
    if (k->type != MSGPACK_OBJECT_ARRAY && k->type != MSGPACK_OBJECT_MAP)
        return true;
    *r = at;
    return eda_mp_skip(r, depth);
}

/*  Opens a cursor on data[len] and reads its first value's head. */
static bool s_mp_open(eda_mp_t *r, const void *data, size_t len, msgpack_object *o)
{
    eda_mp_init(r, data, len);
    return data && eda_mp_next(r, o);
}

/*  JSON written into out[size] as eda_json writes it: whole pieces until
    one does not fit, then nothing more. out[len] is always a NUL. */
typedef struct {
    char *out;
    size_t size, len;
    bool full;
} s_json_t;

static bool s_json_value(s_json_t *k, eda_mp_t *r, int depth);

/*  Appends piece s[n] whole, or marks the sink full. */
static void s_json_put(s_json_t *k, const char *s, size_t n)
{
    if (k->full || k->len + n >= k->size) {
        k->full = true;
        return;
    }
    memcpy(k->out + k->len, s, n);
    k->len += n;
    k->out[k->len] = '\0';
}

/*  Appends a scalar (a string too) as eda_json renders it, cut as it cuts
    (an escape or a character whole). */
static void s_json_scalar(s_json_t *k, const msgpack_object *o)
{
    size_t room = k->size - k->len;
    if (k->full || !room) {
        k->full = true;
        return;
    }
    size_t need = s_json_fast(o, k->out + k->len, room);
    if (!need)
        need = eda_json(o, k->out + k->len, room);
    if (need < room) {
        k->len += need;
        return;
    }
    k->len += strlen(k->out + k->len);
    k->full = true;
}

/*  The length of the piece of JSON text at s[0..n): an escape, or a UTF-8
    character (eda_json writes only whole ones), or one byte. */
static size_t s_json_piece(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t len = c == '\\'   ? (n > 1 && s[1] == 'u' ? 6 : 2)
                 : c >= 0xf0 ? 4
                 : c >= 0xe0 ? 3
                 : c >= 0xc0 ? 2
                             : 1;
    return len < n ? len : n;
}

/*  Appends JSON text s[n] inside a JSON string: its quotes and backslashes
    escaped once more, a piece at a time. */
static void s_json_put_quoted(s_json_t *k, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !k->full;) {
        size_t len = s_json_piece(s + i, n - i);
        char twice[12];
        size_t m = 0;
        for (size_t j = i; j < i + len; j++) {
            if (s[j] == '"' || s[j] == '\\')
                twice[m++] = '\\';
            twice[m++] = s[j];
        }
        s_json_put(k, twice, m);
        i += len;
    }
}

/*  A map key: a string as it is; any other value rendered and quoted, as
    eda_json does (a rendering past S_KEY_MAX bytes ends the output). */
static bool s_json_key(s_json_t *k, eda_mp_t *r, int depth)
{
    eda_mp_t at = *r;
    msgpack_object key;
    if (!s_mp_key(r, &key, depth))
        return false;
    if (key.type == MSGPACK_OBJECT_STR) {
        s_json_scalar(k, &key);
        return !k->full;
    }
    char text[S_KEY_MAX];
    s_json_t inner = {.out = text, .size = sizeof text};
    if (!s_json_value(&inner, &at, depth)) {
        k->full = true;
        return false;
    }
    s_json_put(k, "\"", 1);
    s_json_put_quoted(k, text, inner.len);
    s_json_put(k, "\"", 1);
    return !k->full;
}

/*  An array of n values or a map of n pairs, whose elements follow. */
static bool s_json_container(s_json_t *k, eda_mp_t *r, uint32_t n, bool map, int depth)
{
    s_json_put(k, map ? "{" : "[", 1);
    for (uint32_t i = 0; i < n && !k->full; i++) {
        if (i)
            s_json_put(k, ",", 1);
        if (map && !s_json_key(k, r, depth + 1))
            return false;
        if (map)
            s_json_put(k, ":", 1);
        if (!s_json_value(k, r, depth + 1))
            return false;
    }
    s_json_put(k, map ? "}" : "]", 1);
    return !k->full;
}

/*  Renders the value at the cursor. False when it did not fit whole or the
    bytes are not msgpack: the output then stops there. */
static bool s_json_value(s_json_t *k, eda_mp_t *r, int depth)
{
    msgpack_object o;
    if (depth > EDA_MP_DEPTH_MAX || !eda_mp_next(r, &o))
        return false;
    if (o.type == MSGPACK_OBJECT_MAP)
        return s_json_container(k, r, o.via.map.size, true, depth);
    if (o.type == MSGPACK_OBJECT_ARRAY)
        return s_json_container(k, r, o.via.array.size, false, depth);
    s_json_scalar(k, &o);
    return !k->full;
}

/*  Appends one pair's value at the cursor: a string bare or quoted, any
    other value as JSON. False when it did not fit whole. */
static bool s_field_packed(char *out, size_t size, size_t *len, eda_mp_t *r)
{
    eda_mp_t at = *r;
    msgpack_object v;
    if (!eda_mp_next(r, &v))
        return false;
    if (v.type == MSGPACK_OBJECT_STR)
        return s_field_str(out, size, len, v.via.str.ptr, v.via.str.size, false);
    *r = at;
    s_json_t k = {.out = out + *len, .size = size - *len};
    bool whole = s_json_value(&k, r, 1);
    *len += k.len;
    return whole;
}

size_t eda_log_fields_packed(const void *data, size_t len, const char *skip, char *out,
                             size_t size)
{
    if (!size)
        return 0;
    out[0] = '\0';
    eda_mp_t r;
    msgpack_object map, k;
    if (!s_mp_open(&r, data, len, &map) || map.type != MSGPACK_OBJECT_MAP)
        return 0;
    size_t n = 0;
    bool fits = true;
    for (uint32_t i = 0; fits && i < map.via.map.size; i++) {
        if (!s_mp_key(&r, &k, 1))
            break;
        if (k.type != MSGPACK_OBJECT_STR || eda_key_is(&k, skip))
            fits = eda_mp_skip(&r, 1);
        else
            fits = s_field_key(out, size, &n, k.via.str.ptr, k.via.str.size) &&
                   s_field_packed(out, size, &n, &r);
    }
    return n; /* a pair cut short at the end counts too */
}

/*  The string under "order_id" in the packed map data[len], copied into
    out[size] when it fits as eda_get_str takes it; else "". */
static void s_packed_order(const void *data, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    eda_mp_t r;
    msgpack_object map, k, v;
    if (!s_mp_open(&r, data, len, &map) || map.type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < map.via.map.size; i++) {
        if (!s_mp_key(&r, &k, 1))
            return;
        if (!eda_key_is(&k, "order_id")) {
            if (!eda_mp_skip(&r, 1))
                return;
            continue;
        }
        if (eda_mp_next(&r, &v) && v.type == MSGPACK_OBJECT_STR &&
            v.via.str.size < size && !memchr(v.via.str.ptr, '\0', v.via.str.size)) {
            memcpy(out, v.via.str.ptr, v.via.str.size);
            out[v.via.str.size] = '\0';
        }
        return;
    }
}

/* --- event-flow lines ---------------------------------------------------------- */

void eda_log_order_id(const eda_envelope_t *env, const eda_envelope_t *reply, char *out,
                      size_t size)
{
    eda_copy(out, size, env->correlation_id);
    if (!out[0] && eda_get_str(&env->data, "order_id", out, size) != 0)
        out[0] = '\0';
    if (!out[0] && reply && eda_get_str(&reply->data, "order_id", out, size) != 0)
        out[0] = '\0';
}

/*  The bytes of the string `key` of `map` in *n: NULL (0) when it is absent
    or not a string. */
static const char *s_str_of(const msgpack_object *map, const char *key, size_t *n)
{
    const msgpack_object *o = eda_map_get(map, key);
    bool str = o && o->type == MSGPACK_OBJECT_STR;
    *n = str ? o->via.str.size : 0;
    return str ? o->via.str.ptr : NULL;
}

/*  A reply's error as "CODE: message" into out[size], raw (it is escaped
    where written), the code cut at 32 bytes and the whole at `size`.
    Returns its length. */
static size_t s_error(const char *code, size_t clen, const char *message, size_t mlen,
                      char *out, size_t size)
{
    size_t len = clen < 32 ? clen : 32;
    if (len)
        memcpy(out, code, len);
    if (len + 2 <= size) {
        memcpy(out + len, ": ", 2);
        len += 2;
    }
    size_t n = mlen < size - len ? mlen : size - len;
    if (n)
        memcpy(out + len, message, n);
    return len + n;
}

/*  What an event-flow line shows, gathered once for either format: the
    data decoded, or packed bytes read in place. */
typedef struct {
    eda_flow_t dir;
    const char *type, *source;
    bool has_seq;
    uint64_t seq;
    const msgpack_object *data; /* decoded data; NULL: packed[plen] */
    const void *packed;
    size_t plen;
    char order[EDA_NAME_MAX + 1];
    bool failed;     /* an error reply: error[elen] is shown, not data */
    char error[256]; /* bounded: escaped, it still fits a line */
    size_t elen;
} s_flow_t;

/*  True when the line's data is a map. */
static bool s_flow_has_map(const s_flow_t *f)
{
    eda_mp_t r;
    msgpack_object o;
    if (f->data)
        return f->data->type == MSGPACK_OBJECT_MAP;
    return s_mp_open(&r, f->packed, f->plen, &o) && o.type == MSGPACK_OBJECT_MAP;
}

/*  Renders the line's data as JSON into json[size]. Returns its length, or
    `size` when it did not fit whole. */
static size_t s_flow_data_json(const s_flow_t *f, char *json, size_t size)
{
    if (f->data)
        return eda_json(f->data, json, size);
    eda_mp_t r = {.p = f->packed, .end = (const uint8_t *)f->packed + f->plen};
    s_json_t k = {.out = json, .size = size};
    json[0] = '\0';
    return s_json_value(&k, &r, 0) ? k.len : size;
}

static size_t s_flow_json(eda_log_t *self, const s_flow_t *f, char *line)
{
    size_t len = 0;
    s_add(line, &len, "{\"ts\":%llu,\"service\":", (unsigned long long)eda_now_us());
    s_add_json(line, &len, self->service, self->service_len, 2);
    s_add(line, &len, ",\"dir\":\"%s\",\"type\":", s_flow_names[f->dir]);
    s_add_json(line, &len, f->type, strlen(f->type), 2);
    s_add(line, &len, ",\"order_id\":");
    if (f->order[0])
        s_add_json(line, &len, f->order, strlen(f->order), 2);
    else
        s_add(line, &len, "null");
    if (f->has_seq)
        s_add(line, &len, ",\"seq\":%llu", (unsigned long long)f->seq);
    if (f->source[0]) {
        s_add(line, &len, ",\"source\":");
        s_add_json(line, &len, f->source, strlen(f->source), 2);
    }
    if (f->failed) {
        s_add(line, &len, ",\"error\":");
        s_add_json(line, &len, f->error, f->elen, 2);
    } else if (s_flow_has_map(f)) {
        /* Data that does not fit is left out whole: a cut JSON value
           would make the line unreadable to any JSON reader. */
        char json[S_LINE_MAX];
        size_t n = s_flow_data_json(f, json, sizeof json);
        if (n < sizeof json && len + n + 16 < S_LINE_MAX)
            s_add(line, &len, ",\"data\":%s", json);
        else
            s_add(line, &len, ",\"data_truncated\":true");
    }
    s_add(line, &len, "}");
    return len;
}

static size_t s_flow_text(eda_log_t *self, const s_flow_t *f, char *line)
{
    char seq[32] = "#";
    size_t slen = f->has_seq ? 1 + eda_u64_text(seq + 1, f->seq) : 0;
    char fields[S_LINE_MAX / 2];
    if (f->failed)
        eda_escape(fields, sizeof fields, f->error, f->elen);
    else if (f->data)
        eda_log_fields(f->data, "order_id", fields, sizeof fields);
    else
        eda_log_fields_packed(f->packed, f->plen, "order_id", fields, sizeof fields);
    char type[4 * EDA_NAME_MAX + 1], order[4 * EDA_NAME_MAX + 1];
    s_escape(type, sizeof type, f->type, strlen(f->type));
    s_escape(order, sizeof order, f->order[0] ? f->order : "-",
             f->order[0] ? strlen(f->order) : 1);
    /* " %s%-17s %s %-16s%s %-20s %-5s %s", without printf's cost */
    size_t len = 0;
    s_add_time(self, line, &len);
    s_cat(line, &len, " ", 1);
    s_cat(line, &len, self->colour, strlen(self->colour));
    s_pad(line, &len, self->service_text, self->service_text_len, 17);
    s_cat(line, &len, " ", 1);
    s_cat(line, &len, s_flow_arrows[f->dir], strlen(s_flow_arrows[f->dir]));
    s_cat(line, &len, " ", 1);
    s_pad(line, &len, type, strlen(type), 16);
    if (*self->colour)
        s_cat(line, &len, "\033[0m", 4);
    s_cat(line, &len, " ", 1);
    s_pad(line, &len, order, strlen(order), 20);
    s_cat(line, &len, " ", 1);
    s_pad(line, &len, seq, slen, 5);
    s_cat(line, &len, " ", 1);
    s_cat(line, &len, fields, strlen(fields));
    if (f->dir == EDA_FLOW_APPLIED && f->source[0]) {
        s_add(line, &len, " (from ");
        s_add_text(line, &len, f->source, strlen(f->source));
        s_add(line, &len, ")");
    }
    return len;
}

/*  Renders the line in the logger's format and gathers it. */
static void s_flow_write(eda_log_t *self, const s_flow_t *f)
{
    char line[S_LINE_MAX];
    size_t len = self->format == EDA_LOG_JSON ? s_flow_json(self, f, line)
                                              : s_flow_text(self, f, line);
    s_write(self, line, len);
}

void eda_log_flow(eda_log_t *self, eda_flow_t dir, const eda_envelope_t *env,
                  const eda_envelope_t *reply)
{
    if (!eda_log_enabled(self, EDA_LOG_INFO))
        return;
    s_flow_t f = {.dir = dir,
                  .type = env->type,
                  .source = env->source,
                  .has_seq = env->has_seq,
                  .seq = env->seq,
                  .data = reply ? &reply->data : &env->data};
    eda_log_order_id(env, reply, f.order, sizeof f.order);
    f.failed = reply && reply->ok != 1;
    if (f.failed) {
        size_t clen, mlen;
        const char *code = s_str_of(&reply->error, "code", &clen);
        const char *message = s_str_of(&reply->error, "message", &mlen);
        f.elen = s_error(code, clen, message, mlen, f.error, sizeof f.error);
    }
    s_flow_write(self, &f);
}

void eda_log_flow_packed(eda_log_t *self, eda_flow_t dir, const eda_flow_head_t *head,
                         const void *data, size_t len)
{
    if (!eda_log_enabled(self, EDA_LOG_INFO))
        return;
    s_flow_t f = {.dir = dir,
                  .type = head->type ? head->type : "",
                  .source = head->source ? head->source : "",
                  .has_seq = head->has_seq,
                  .seq = head->seq,
                  .packed = data,
                  .plen = data ? len : 0,
                  .failed = head->error_code != NULL};
    snprintf(f.order, sizeof f.order, "%s", head->order ? head->order : "");
    if (f.failed) {
        const char *message = head->error_message ? head->error_message : "";
        f.elen = s_error(head->error_code, strlen(head->error_code), message,
                         strlen(message), f.error, sizeof f.error);
    } else if (!f.order[0])
        s_packed_order(f.packed, f.plen, f.order, sizeof f.order);
    s_flow_write(self, &f);
}
