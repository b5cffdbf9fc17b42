/*  cli: what the `eda` commands share (see cli.h). Everything that came
    from the wire is escaped before it is printed: with eda_text in text,
    by JSON's rules, ASCII only, in JSON.
*/
#include "cli.h"

#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>
#include <strings.h>

const char *const cli_services[CLI_SERVICES] = {"order-service", "customer-service",
                                                "inventory-service"};

/* --- reading the command line ----------------------------------------------- */

const char *cli_opt(const cli_args_t *args, const char *name)
{
    const char *value = NULL;
    for (int i = 0; i < args->nopts; i++)
        if (streq(args->opts[i].name, name))
            value = args->opts[i].value;
    return value;
}

bool cli_flag(const cli_args_t *args, const char *name)
{
    for (int i = 0; i < args->nopts; i++)
        if (streq(args->opts[i].name, name))
            return true;
    return false;
}

int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_opt_i64(const cli_args_t *args, const char *name, int64_t min, int64_t max,
                int64_t *out)
{
    const char *value = cli_opt(args, name);
    if (!value || cli_parse_i64(value, min, max, out) == 0)
        return 0;
    if (max == INT64_MAX)
        return cli_usage_error(args, "--%s must be a whole number >= %" PRId64, name,
                               min);
    return cli_usage_error(
        args, "--%s must be a whole number from %" PRId64 " to %" PRId64, name, min, max);
}

const char *cli_match(const char *text, const char *const *valid, size_t n, bool prefix)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (streq(text, valid[i]))
            return valid[i];
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(text, valid[i]) == 0)
            return valid[i];
    size_t len = strlen(text);
    for (size_t i = 0; prefix && len && i < n; i++)
        if (strncasecmp(text, valid[i], len) == 0) {
            if (found)
                return NULL; /* ambiguous */
            found = valid[i];
        }
    return found;
}

const char *cli_service(const char *text, char *why, size_t size)
{
    const char *service = cli_match(text, cli_services, CLI_SERVICES, true);
    if (!service) {
        char shown[CLI_SHOWN];
        eda_escape(shown, sizeof shown, text, strlen(text));
        snprintf(why, size,
                 "unknown service '%s' (valid: order-service, customer-service, "
                 "inventory-service)",
                 shown);
    }
    return service;
}

int cli_usage_error(const cli_args_t *args, const char *fmt, ...)
{
    char text[1024], shown[4 * sizeof text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "eda %s: %s (usage: %s)\n", args->command,
            cli_esc(text, shown, sizeof shown), args->usage);
    return CLI_USAGE;
}

int cli_vsay(int rc, const char *fmt, va_list ap)
{
    char text[1024], shown[4 * sizeof text];
    vsnprintf(text, sizeof text, fmt, ap);
    fprintf(stderr, "eda: %s\n", cli_esc(text, shown, sizeof shown));
    return rc;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cli_vsay(CLI_FAILED, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_recv_event(zsock_t *sub, zframe_t **body)
{
    *body = NULL;
    zmsg_t *msg = (zsock_events(sub) & ZMQ_POLLIN) ? zmsg_recv(sub) : NULL;
    if (!msg)
        return 0;
    if (zmsg_size(msg) == 2) {
        zframe_t *type = zmsg_pop(msg); /* the envelope says it too */
        zframe_destroy(&type);
        *body = zmsg_pop(msg);
    }
    zmsg_destroy(&msg);
    return 1;
}

/* --- talking to the services --------------------------------------------------- */

eda_client_t *cli_connect(cli_t *cli, const char *service, char *why, size_t size)
{
    const eda_endpoint_t *ep = eda_config_peer(&cli->cfg, service);
    eda_client_t *client = ep ? eda_client_new(ep->commands, "eda") : NULL;
    if (client && cli->keys && eda_client_secure(client, cli->keys, service))
        eda_client_destroy(&client);
    if (!client)
        snprintf(why, size, "cannot connect to %s at %s", service,
                 ep ? ep->commands : "(no endpoint)");
    return client;
}

eda_client_t *cli_client(cli_t *cli, const char *service)
{
    char why[600];
    eda_client_t *client = cli_connect(cli, service, why, sizeof why);
    if (!client)
        cli_fail("%s", why);
    return client;
}

const char *cli_refusal(const eda_envelope_t *reply, char *out, size_t size)
{
    char code[32], message[400];
    cli_raw(&reply->error, "code", "?", code, sizeof code);
    cli_raw(&reply->error, "message", "", message, sizeof message);
    snprintf(out, size, "%s: %s", code, message);
    return out;
}

int cli_call(eda_client_t *client, const char *service, int timeout_ms,
             eda_envelope_t *reply)
{
    char why[512];
    if (eda_client_call(client, timeout_ms, reply, why, sizeof why))
        return cli_fail("%s: %s (is it running? try eda ping)", service, why);
    if (reply->ok != 1)
        return cli_fail("%s: %s", service, cli_refusal(reply, why, sizeof why));
    return 0;
}

/*  Sends `type` with empty data on a new client for answer `a`. */
static void s_send(cli_t *cli, const char *type, cli_answer_t *a)
{
    a->client = cli_connect(cli, a->service, a->why, sizeof a->why);
    if (!a->client)
        return;
    msgpack_packer *pk = eda_client_begin(a->client, type, NULL);
    msgpack_pack_map(pk, 0);
    a->rtt_us = zclock_usecs();
    if (eda_client_send(a->client)) {
        snprintf(a->why, sizeof a->why, "cannot send to %s", a->service);
        eda_client_destroy(&a->client);
    }
}

/*  Takes the reply waiting on `ready` into its answer. */
static void s_take(cli_answer_t *answers, size_t n, void *ready)
{
    for (size_t i = 0; i < n; i++) {
        cli_answer_t *a = &answers[i];
        if (!a->client || a->answered || eda_client_sock(a->client) != ready)
            continue;
        int rc = eda_client_recv(a->client, &a->reply);
        if (rc == 0) {
            a->answered = true;
            a->rtt_us = zclock_usecs() - a->rtt_us;
        } else if (rc < 0)
            snprintf(a->why, sizeof a->why, "an undecodable reply");
    }
}

void cli_ask_all(cli_t *cli, const char *type, const char *const *services, size_t n,
                 int timeout_ms, cli_answer_t *answers)
{
    zpoller_t *poller = zpoller_new(NULL);
    for (size_t i = 0; i < n; i++) {
        answers[i] = (cli_answer_t){.service = services[i]};
        snprintf(answers[i].why, sizeof answers[i].why, "no reply within %d ms",
                 timeout_ms);
        s_send(cli, type, &answers[i]);
        if (answers[i].client && poller)
            zpoller_add(poller, eda_client_sock(answers[i].client));
    }
    /* One deadline for all: a service down costs the wait once, not n times. */
    int64_t deadline = zclock_mono() + timeout_ms;
    size_t waiting = 0;
    for (size_t i = 0; i < n; i++)
        waiting += answers[i].client != NULL;
    while (poller && waiting > 0 && !zsys_interrupted) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            break;
        void *ready = zpoller_wait(poller, (int)left);
        if (!ready)
            break; /* the deadline, or interrupted */
        s_take(answers, n, ready);
        waiting = 0;
        for (size_t i = 0; i < n; i++)
            waiting += answers[i].client && !answers[i].answered;
    }
    zpoller_destroy(&poller);
}

void cli_answers_free(cli_answer_t *answers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        eda_client_destroy(&answers[i].client);
}

/* --- reading replies ---------------------------------------------------------- */

int64_t cli_i64(const msgpack_object *map, const char *key)
{
    int64_t v = 0;
    eda_get_i64(map, key, &v);
    return v;
}

const char *cli_str(const msgpack_object *map, const char *key, char *out, size_t size)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_STR)
        eda_escape(out, size, o->via.str.ptr, o->via.str.size);
    else
        snprintf(out, size, "-");
    return out;
}

const char *cli_raw(const msgpack_object *map, const char *key, const char *absent,
                    char *out, size_t size)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        snprintf(out, size, "%s", absent);
    else {
        size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
        memcpy(out, o->via.str.ptr, n);
        out[n] = '\0';
    }
    return out;
}

const char *cli_esc(const char *s, char *out, size_t size)
{
    eda_escape(out, size, s, strlen(s));
    return out;
}

const char *cli_money(int64_t cents, char *out, size_t size)
{
    const char *sign = cents < 0 ? "-" : "";
    uint64_t abs = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(out, size, "%s%" PRIu64 ".%02" PRIu64, sign, abs / 100, abs % 100);
    return out;
}

/* --- JSON -------------------------------------------------------------------- */

/*  The length of the valid UTF-8 character at s[0..len), or 0 when it is not
    one (overlong forms, surrogates and code points above U+10FFFF are not). */
static size_t s_utf8_char(const unsigned char *s, size_t len)
{
    size_t need = s[0] < 0x80                    ? 1
                  : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                  : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                  : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                 : 0;
    if (need == 0 || need > len)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return need;
}

/*  A JSON string of in[len]: as it is when it is UTF-8, else with each bad
    byte read as the code point of its value (U+00NN). */
static json_t *s_json_string(const char *in, size_t len)
{
    json_t *s = json_stringn(in, len);
    if (s)
        return s; /* valid UTF-8, NULs and controls included */
    char *out = malloc(2 * len + 1);
    size_t n = 0;
    for (size_t i = 0; out && i < len;) {
        const unsigned char *p = (const unsigned char *)in + i;
        size_t good = s_utf8_char(p, len - i);
        if (good) {
            memcpy(out + n, p, good);
            n += good;
            i += good;
        } else {
            out[n++] = (char)(0xc0 | (p[0] >> 6));
            out[n++] = (char)(0x80 | (p[0] & 0x3f));
            i++;
        }
    }
    s = out ? json_stringn(out, n) : NULL;
    free(out);
    return s;
}

/*  bytes[len] in base64 (RFC 4648, padded). */
static json_t *s_json_base64(const char *bytes, size_t len)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = (const unsigned char *)bytes;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[n++] = digits[v >> 18 & 63];
        out[n++] = digits[v >> 12 & 63];
        out[n++] = i + 1 < len ? digits[v >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? digits[v & 63] : '=';
    }
    json_t *s = json_stringn(out, n);
    free(out);
    return s;
}

/*  An object of a msgpack map; a key that is not a string is written as its
    own JSON text. */
static json_t *s_json_map(const msgpack_object *map)
{
    json_t *object = json_object();
    for (uint32_t i = 0; object && i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        json_t *key = cli_json(k);
        char *text = key && !json_is_string(key) ? cli_json_text(key) : NULL;
        const char *name = json_is_string(key) ? json_string_value(key) : text;
        size_t len = json_is_string(key) ? json_string_length(key)
                     : text              ? strlen(text)
                                         : 0;
        json_t *value = cli_json(&map->via.map.ptr[i].val);
        /* setn_new takes the reference it is given, even when it fails:
           it is given one of its own, ours goes below. */
        if (!name || !value ||
            json_object_setn_new(object, name, len, json_incref(value))) {
            json_decref(object);
            object = NULL;
        }
        json_decref(value);
        json_decref(key);
        free(text);
    }
    return object;
}

json_t *cli_json(const msgpack_object *obj)
{
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(obj->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (obj->via.u64 > INT64_MAX) {
            char digits[24];
            snprintf(digits, sizeof digits, "%" PRIu64, obj->via.u64);
            return json_string(digits);
        }
        return json_integer((json_int_t)obj->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)obj->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        json_t *real = json_real(obj->via.f64);
        return real ? real : json_null(); /* not finite */
    }
    case MSGPACK_OBJECT_STR:
        return s_json_string(obj->via.str.ptr, obj->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return s_json_base64(obj->via.bin.ptr, obj->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return s_json_base64(obj->via.ext.ptr, obj->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *array = json_array();
        for (uint32_t i = 0; array && i < obj->via.array.size; i++)
            if (json_array_append_new(array, cli_json(&obj->via.array.ptr[i]))) {
                json_decref(array);
                array = NULL;
            }
        return array;
    }
    case MSGPACK_OBJECT_MAP:
        return s_json_map(obj);
    }
    return json_null();
}

/*  Where JSON text goes: a FILE, or a growing buffer. */
typedef struct {
    FILE *file;
    char *data;
    size_t len, cap;
} s_sink_t;

static int s_put(s_sink_t *sink, const char *bytes, size_t len)
{
    if (sink->file)
        return fwrite(bytes, 1, len, sink->file) == len ? 0 : -1;
    if (sink->len + len + 1 > sink->cap) {
        size_t cap = 2 * (sink->len + len + 1);
        char *data = realloc(sink->data, cap);
        if (!data)
            return -1;
        sink->data = data;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, bytes, len);
    sink->len += len;
    sink->data[sink->len] = '\0';
    return 0;
}

/*  jansson's writer, with DEL written \u007f: JSON_ENSURE_ASCII leaves it
    raw, and it can only stand inside a string. */
static int s_dump(const char *buffer, size_t size, void *data)
{
    s_sink_t *sink = data;
    size_t start = 0;
    for (size_t i = 0; i < size; i++)
        if (buffer[i] == 0x7f) {
            if (s_put(sink, buffer + start, i - start) || s_put(sink, "\\u007f", 6))
                return -1;
            start = i + 1;
        }
    return s_put(sink, buffer + start, size - start);
}

#define S_JSON_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

char *cli_json_text(const json_t *value)
{
    s_sink_t sink = {0};
    if (!value || json_dump_callback(value, s_dump, &sink, S_JSON_FLAGS)) {
        free(sink.data);
        return NULL;
    }
    return sink.data ? sink.data : strdup("");
}

/*  Prints `value` with `flags` (S_JSON_FLAGS and more), then a newline. */
static int s_print_json(json_t *value, size_t flags)
{
    s_sink_t sink = {.file = stdout};
    int rc = value ? json_dump_callback(value, s_dump, &sink, flags) : -1;
    json_decref(value);
    if (rc)
        return cli_fail("cannot write the JSON (out of memory?)");
    putchar('\n');
    return 0;
}

int cli_print_json_value(json_t *value)
{
    return s_print_json(value, S_JSON_FLAGS);
}

int cli_print_json_figures(json_t *value)
{
    return s_print_json(value, S_JSON_FLAGS | JSON_REAL_PRECISION(6));
}

int cli_print_json(const msgpack_object *obj)
{
    return cli_print_json_value(cli_json(obj));
}
