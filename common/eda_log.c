/*  eda_log: lines are built in a stack buffer and gathered, whole, in a
    buffer of the logger's own that eda_log_flush writes with one fwrite:
    lines from several processes sharing a terminal do not interleave, and a
    busy service does not pay a system call a line. Errors are written at
    once.
*/
#include "eda_log.h"
#include "eda_text.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_LINE_MAX 4096
#define S_BUFFER   (64 << 10) /* lines gathered before they must be written */

struct eda_log {
    char service[64];
    eda_log_format_t format;
    eda_log_level_t level;
    FILE *out;
    bool tty;        /* colours are used */
    char colour[16]; /* an SGR escape, "" without a tty */
    size_t used;     /* bytes waiting in buffer */
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

static void s_add_time(char *line, size_t *len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    s_add(line, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
          (int)(tv.tv_usec / 1000));
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
    eda_escape(line + *len, S_LINE_MAX - 1 - *len, s, n);
    *len += strlen(line + *len);
}

/*  Appends s[n] as a JSON string literal, leaving `reserve` bytes for what
    must follow it on the line (a closing brace): the literal is cut, still
    closed, rather than the line. */
static void s_add_json(char *line, size_t *len, const char *s, size_t n, size_t reserve)
{
    if (*len + reserve >= S_LINE_MAX - 2)
        return;
    eda_escape_json(line + *len, S_LINE_MAX - 1 - reserve - *len, s, n);
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
        s_add_json(line, &len, self->service, strlen(self->service), 2);
        s_add(line, &len, ",\"level\":\"%s\",\"message\":", s_level_names[level]);
        s_add_json(line, &len, text, tlen, 1);
        s_add(line, &len, "}");
    } else {
        char service[sizeof self->service * 4];
        eda_escape(service, sizeof service, self->service, strlen(self->service));
        s_add_time(line, &len);
        s_add(line, &len, " %s%-17s%s %-5s ", self->colour, service,
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
    if (n == 0 || !eda_printable(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '"' || s[i] == '\\' || (key && s[i] == '='))
            return false;
    return true;
}

/*  Appends one key or string value to out[size] at *len, bare or quoted
    and escaped. False when it did not fit whole. */
static bool s_field_str(char *out, size_t size, size_t *len, const char *s, size_t n,
                        bool key)
{
    size_t need = s_bare(s, n, key) ? eda_escape(out + *len, size - *len, s, n)
                                    : eda_escape_quoted(out + *len, size - *len, s, n);
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
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        if (skip && strlen(skip) == k->via.str.size &&
            memcmp(skip, k->via.str.ptr, k->via.str.size) == 0)
            continue;
        fits = (!len || s_field_char(out, size, &len, ' ')) &&
               s_field_str(out, size, &len, k->via.str.ptr, k->via.str.size, true) &&
               s_field_char(out, size, &len, '=');
        if (fits && v->type == MSGPACK_OBJECT_STR)
            fits = s_field_str(out, size, &len, v->via.str.ptr, v->via.str.size, false);
        else if (fits) { /* nested values as JSON, its strings escaped as JSON */
            size_t need = eda_json(v, out + len, size - len);
            size_t wrote = strlen(out + len);
            len += wrote;
            fits = need == wrote;
        }
    }
    return len; /* a pair cut short at the end counts too */
}

/*  The order an envelope belongs to: its correlation id, else data.order_id. */
static void s_order_id(const eda_envelope_t *env, const eda_envelope_t *reply, char *out,
                       size_t size)
{
    snprintf(out, size, "%s", env->correlation_id);
    if (!out[0] && eda_get_str(&env->data, "order_id", out, size) != 0)
        out[0] = '\0';
    if (!out[0] && reply && eda_get_str(&reply->data, "order_id", out, size) != 0)
        out[0] = '\0';
}

/*  Appends the bytes of the string `key` of `map` (none when it is absent or
    not a string) to out[size] at *len, raw, cut at the end. */
static void s_cat_str(char *out, size_t size, size_t *len, const msgpack_object *map,
                      const char *key)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return;
    size_t n = o->via.str.size < size - *len ? o->via.str.size : size - *len;
    memcpy(out + *len, o->via.str.ptr, n);
    *len += n;
}

/*  A reply's error as "CODE: message", raw (it is escaped where written).
    Returns its length. */
static size_t s_error(const eda_envelope_t *reply, char *out, size_t size)
{
    size_t len = 0;
    s_cat_str(out, 32, &len, &reply->error, "code");
    if (len + 2 <= size) {
        memcpy(out + len, ": ", 2);
        len += 2;
    }
    s_cat_str(out, size, &len, &reply->error, "message");
    return len;
}

/*  What an event-flow line shows, gathered once for either format. */
typedef struct {
    eda_flow_t dir;
    const eda_envelope_t *env;
    const msgpack_object *data; /* the reply's, for a command answered */
    char order[EDA_NAME_MAX + 1];
    bool failed;     /* an error reply: error[elen] is shown, not data */
    char error[256]; /* bounded: escaped, it still fits a line */
    size_t elen;
} s_flow_t;

static size_t s_flow_json(eda_log_t *self, const s_flow_t *f, char *line)
{
    const eda_envelope_t *env = f->env;
    size_t len = 0;
    s_add(line, &len, "{\"ts\":%llu,\"service\":", (unsigned long long)eda_now_us());
    s_add_json(line, &len, self->service, strlen(self->service), 2);
    s_add(line, &len, ",\"dir\":\"%s\",\"type\":", s_flow_names[f->dir]);
    s_add_json(line, &len, env->type, strlen(env->type), 2);
    s_add(line, &len, ",\"order_id\":");
    if (f->order[0])
        s_add_json(line, &len, f->order, strlen(f->order), 2);
    else
        s_add(line, &len, "null");
    if (env->has_seq)
        s_add(line, &len, ",\"seq\":%llu", (unsigned long long)env->seq);
    if (env->source[0]) {
        s_add(line, &len, ",\"source\":");
        s_add_json(line, &len, env->source, strlen(env->source), 2);
    }
    if (f->failed) {
        s_add(line, &len, ",\"error\":");
        s_add_json(line, &len, f->error, f->elen, 2);
    } else if (f->data->type == MSGPACK_OBJECT_MAP) {
        /* Data that does not fit is left out whole: a cut JSON value
           would make the line unreadable to any JSON reader. */
        char json[S_LINE_MAX];
        size_t n = eda_json(f->data, json, sizeof json);
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
    const eda_envelope_t *env = f->env;
    char seq[32] = "";
    if (env->has_seq)
        snprintf(seq, sizeof seq, "#%llu", (unsigned long long)env->seq);
    char fields[S_LINE_MAX / 2];
    if (f->failed)
        eda_escape(fields, sizeof fields, f->error, f->elen);
    else
        eda_log_fields(f->data, "order_id", fields, sizeof fields);
    char service[sizeof self->service * 4], type[4 * EDA_NAME_MAX + 1],
        order[4 * EDA_NAME_MAX + 1];
    eda_escape(service, sizeof service, self->service, strlen(self->service));
    eda_escape(type, sizeof type, env->type, strlen(env->type));
    eda_escape(order, sizeof order, f->order[0] ? f->order : "-",
               f->order[0] ? strlen(f->order) : 1);
    size_t len = 0;
    s_add_time(line, &len);
    s_add(line, &len, " %s%-17s %s %-16s%s %-20s %-5s %s", self->colour, service,
          s_flow_arrows[f->dir], type, *self->colour ? "\033[0m" : "", order, seq,
          fields);
    if (f->dir == EDA_FLOW_APPLIED && env->source[0]) {
        s_add(line, &len, " (from ");
        s_add_text(line, &len, env->source, strlen(env->source));
        s_add(line, &len, ")");
    }
    return len;
}

void eda_log_flow(eda_log_t *self, eda_flow_t dir, const eda_envelope_t *env,
                  const eda_envelope_t *reply)
{
    if (!eda_log_enabled(self, EDA_LOG_INFO))
        return;
    s_flow_t f = {.dir = dir, .env = env, .data = reply ? &reply->data : &env->data};
    s_order_id(env, reply, f.order, sizeof f.order);
    f.failed = reply && reply->ok != 1;
    if (f.failed)
        f.elen = s_error(reply, f.error, sizeof f.error);
    char line[S_LINE_MAX];
    size_t len = self->format == EDA_LOG_JSON ? s_flow_json(self, &f, line)
                                              : s_flow_text(self, &f, line);
    s_write(self, line, len);
}
