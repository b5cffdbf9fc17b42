/*  eda_log: lines are built in a stack buffer and gathered, whole, in a
    buffer of the logger's own that eda_log_flush writes with one fwrite:
    lines from several processes sharing a terminal do not interleave, and a
    busy service does not pay a system call a line. Errors are written at
    once.
*/
#include "eda_log.h"

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

/*  Replaces control characters by '?' in a text that came from outside, so
    that it can neither split a line nor drive the terminal. */
static char *s_clean(char *text)
{
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            *c = '?';
    return text;
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

/*  Appends a JSON string literal of s. */
static void s_add_json_str(char *line, size_t *len, const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    if (*len < S_LINE_MAX - 2)
        *len += eda_msgpack_to_json(&o, line + *len, S_LINE_MAX - 1 - *len);
}

void eda_log_msg(eda_log_t *self, eda_log_level_t level, const char *fmt, ...)
{
    if (!eda_log_enabled(self, level))
        return;
    char text[S_LINE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (self->format == EDA_LOG_TEXT)
        s_clean(text);

    char line[S_LINE_MAX];
    size_t len = 0;
    if (self->format == EDA_LOG_JSON) {
        s_add(line, &len, "{\"ts\":%llu,\"service\":", (unsigned long long)eda_now_us());
        s_add_json_str(line, &len, self->service);
        s_add(line, &len, ",\"level\":\"%s\",\"message\":", s_level_names[level]);
        s_add_json_str(line, &len, text);
        s_add(line, &len, "}");
    } else {
        s_add_time(line, &len);
        s_add(line, &len, " %s%-17s%s %-5s %s", self->colour, self->service,
              *self->colour ? "\033[0m" : "", s_level_names[level], text);
    }
    s_write(self, line, len);
    if (level <= EDA_LOG_WARN)
        eda_log_flush(self); /* trouble is told at once */
}

size_t eda_log_fields(const msgpack_object *data, const char *skip, char *out,
                      size_t size)
{
    size_t len = 0;
    if (!size)
        return 0;
    out[0] = '\0';
    if (!data || data->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (uint32_t i = 0; i < data->via.map.size && len + 1 < size; i++) {
        const msgpack_object *k = &data->via.map.ptr[i].key;
        const msgpack_object *v = &data->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        if (skip && strlen(skip) == k->via.str.size &&
            memcmp(skip, k->via.str.ptr, k->via.str.size) == 0)
            continue;
        int n = snprintf(out + len, size - len, "%s%.*s=", len ? " " : "",
                         (int)k->via.str.size, k->via.str.ptr);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
        /* A plain string goes bare; one with spaces, quotes or control
           characters goes as a JSON string, so a line stays one line. */
        bool plain = v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0;
        for (uint32_t c = 0; plain && c < v->via.str.size; c++) {
            unsigned char ch = (unsigned char)v->via.str.ptr[c];
            plain = ch > ' ' && ch != '"' && ch != '\\' && ch != 0x7f;
        }
        if (plain)
            snprintf(out + len, size - len, "%.*s", (int)v->via.str.size, v->via.str.ptr);
        else
            eda_msgpack_to_json(v, out + len, size - len);
        len += strlen(out + len);
    }
    return strlen(out); /* a key cut short at the end counts too */
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

void eda_log_flow(eda_log_t *self, eda_flow_t dir, const eda_envelope_t *env,
                  const eda_envelope_t *reply)
{
    if (!eda_log_enabled(self, EDA_LOG_INFO))
        return;
    char order[EDA_NAME_MAX + 1];
    s_order_id(env, reply, order, sizeof order);
    const msgpack_object *data = &env->data;
    char error[256] = "";
    if (reply) {
        data = &reply->data;
        if (reply->ok != 1) {
            char code[32] = "", message[200] = "";
            eda_get_str(&reply->error, "code", code, sizeof code);
            eda_get_str(&reply->error, "message", message, sizeof message);
            snprintf(error, sizeof error, "%s: %s", code, message);
        }
    }

    char line[S_LINE_MAX];
    size_t len = 0;
    if (self->format == EDA_LOG_JSON) {
        s_add(line, &len, "{\"ts\":%llu,\"service\":", (unsigned long long)eda_now_us());
        s_add_json_str(line, &len, self->service);
        s_add(line, &len, ",\"dir\":\"%s\",\"type\":", s_flow_names[dir]);
        s_add_json_str(line, &len, env->type);
        s_add(line, &len, ",\"order_id\":");
        if (order[0])
            s_add_json_str(line, &len, order);
        else
            s_add(line, &len, "null");
        if (env->has_seq)
            s_add(line, &len, ",\"seq\":%llu", (unsigned long long)env->seq);
        if (env->source[0]) {
            s_add(line, &len, ",\"source\":");
            s_add_json_str(line, &len, env->source);
        }
        if (error[0]) {
            s_add(line, &len, ",\"error\":");
            s_add_json_str(line, &len, error);
        } else if (data->type == MSGPACK_OBJECT_MAP) {
            /* Data that does not fit is left out whole: a cut JSON value
               would make the line unreadable to any JSON reader. */
            char json[S_LINE_MAX];
            size_t n = eda_msgpack_to_json(data, json, sizeof json);
            if (len + n + 16 < S_LINE_MAX)
                s_add(line, &len, ",\"data\":%s", json);
            else
                s_add(line, &len, ",\"data_truncated\":true");
        }
        s_add(line, &len, "}");
    } else {
        char seq[32] = "";
        if (env->has_seq)
            snprintf(seq, sizeof seq, "#%llu", (unsigned long long)env->seq);
        char fields[S_LINE_MAX / 2], type[EDA_NAME_MAX + 1];
        if (error[0])
            snprintf(fields, sizeof fields, "%s", s_clean(error));
        else
            eda_log_fields(data, "order_id", fields, sizeof fields);
        snprintf(type, sizeof type, "%s", env->type);
        s_add_time(line, &len);
        s_add(line, &len, " %s%-17s %s %-16s%s %-20s %-5s %s", self->colour,
              self->service, s_flow_arrows[dir], s_clean(type),
              *self->colour ? "\033[0m" : "", order[0] ? s_clean(order) : "-", seq,
              fields);
        if (dir == EDA_FLOW_APPLIED && env->source[0])
            s_add(line, &len, " (from %s)", env->source);
    }
    s_write(self, line, len);
}
