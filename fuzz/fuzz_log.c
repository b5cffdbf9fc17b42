/*  fuzz_log: the bytes decoded as an envelope and logged as a service would,
    as text and as JSON, into a memory stream: one that decodes with
    eda_log_flow in every direction (and as the reply of itself when it is a
    reply), one that is refused with eda_log_msg naming its id and type. Each
    call must write exactly one line with no raw control byte before its
    '\n' (in text, DEL counts too), valid UTF-8 (see FUZZ_LOG_UTF8), and
    each JSON line must parse as one JSON object. eda_log_fields must stay
    inside any buffer and write no control byte either.
*/
#include "eda_log.h"
#include "fuzz_check.h"

#include <stdint.h>

#define S_JSON_DEPTH 64 /* deeper than msgpack's 32 levels plus the line's own */

/*  1: a line must also be valid UTF-8 without C1 controls (U+0080..U+009F)
    or DEL, in JSON too: what eda_text's escaping promises. Build with
    -DFUZZ_LOG_UTF8=0 to check only the control bytes and the JSON. */
#ifndef FUZZ_LOG_UTF8
#define FUZZ_LOG_UTF8 1
#endif

/* --- a strict JSON reader (RFC 8259), enough to tell a line parses ------- */

typedef struct {
    const char *p, *end;
    int depth;
} s_json_t;

static bool s_value(s_json_t *j);

static void s_space(s_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r'))
        j->p++;
}

static bool s_eat(s_json_t *j, char c)
{
    s_space(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static bool s_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool s_string(s_json_t *j)
{
    if (!s_eat(j, '"'))
        return false;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (j->p >= j->end)
            return false;
        char e = *j->p++;
        if (e == 'u') {
            for (int i = 0; i < 4; i++)
                if (j->p >= j->end || !s_hex(*j->p++))
                    return false;
        } else if (!strchr("\"\\/bfnrt", e) || e == '\0')
            return false;
    }
    return false;
}

static bool s_digits(s_json_t *j)
{
    const char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start;
}

static bool s_number(s_json_t *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!s_digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!s_digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!s_digits(j))
            return false;
    }
    return true;
}

static bool s_word(s_json_t *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

/*  An object or an array: `open`, values (a string and ':' first in an
    object) separated by ',', `close`. */
static bool s_container(s_json_t *j, char open, char close)
{
    if (!s_eat(j, open) || ++j->depth > S_JSON_DEPTH)
        return false;
    if (s_eat(j, close)) {
        j->depth--;
        return true;
    }
    do {
        if (open == '{' && (!s_string(j) || !s_eat(j, ':')))
            return false;
        if (!s_value(j))
            return false;
    } while (s_eat(j, ','));
    j->depth--;
    return s_eat(j, close);
}

static bool s_value(s_json_t *j)
{
    s_space(j);
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '{':
        return s_container(j, '{', '}');
    case '[':
        return s_container(j, '[', ']');
    case '"':
        return s_string(j);
    case 't':
        return s_word(j, "true");
    case 'f':
        return s_word(j, "false");
    case 'n':
        return s_word(j, "null");
    default:
        return s_number(j);
    }
}

/*  True when line[len] is one JSON object and nothing else. */
static bool s_json_line(const char *line, size_t len)
{
    s_json_t j = {line, line + len, 0};
    if (!s_container(&j, '{', '}'))
        return false;
    s_space(&j);
    return j.p == j.end;
}

/* --- the lines ----------------------------------------------------------- */

static bool s_control(unsigned char c, eda_log_format_t format)
{
    return c < 0x20 || (format == EDA_LOG_TEXT && c == 0x7f);
}

/*  True when s[len] is valid UTF-8 (no overlong form, no surrogate, nothing
    past U+10FFFF) holding no C1 control. */
static bool s_utf8_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int n = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc0 ? 1 : -1;
        if (n < 0 || *p > 0xf4 || *p == 0xc0 || *p == 0xc1 || end - p <= n)
            return false;
        uint32_t cp = *p & (0x3f >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f))
            return false;
        p += n + 1;
    }
    return true;
}

/*  Checks out[len], what `calls` calls wrote: that many lines, each ending
    with '\n', none holding a control byte, each JSON line one object. */
static void s_check_lines(const char *out, size_t len, int calls, eda_log_format_t format)
{
    int lines = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c != '\n') {
            if (s_control(c, format))
                fprintf(stderr, "control byte 0x%02x at %zu in line %d: %.*s\n", c,
                        i - start, lines + 1, (int)(i - start), out + start);
            FUZZ_CHECK(!s_control(c, format), "a raw control byte in a log line");
            continue;
        }
        if (FUZZ_LOG_UTF8 && (!s_utf8_clean(out + start, i - start) ||
                              memchr(out + start, 0x7f, i - start))) {
            fprintf(stderr, "not clean UTF-8: %.*s\n", (int)(i - start), out + start);
            FUZZ_CHECK(false, "a log line is not clean UTF-8");
        }
        if (format == EDA_LOG_JSON && !s_json_line(out + start, i - start)) {
            fprintf(stderr, "not JSON: %.*s\n", (int)(i - start), out + start);
            FUZZ_CHECK(false, "a JSON log line does not parse");
        }
        lines++;
        start = i + 1;
    }
    FUZZ_CHECK(start == len, "the last log line has no '\\n'");
    FUZZ_CHECK(lines == calls, "one call must write one line");
}

/*  Logs `env` (decoded with verdict `rc` and reason `why`) in `format`. */
static void s_log(const eda_envelope_t *env, eda_error_t rc, const char *why,
                  eda_log_format_t format)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    FUZZ_CHECK(f, "out of memory");
    eda_log_t *log = eda_log_new("order-service", format, EDA_LOG_DEBUG, f);
    FUZZ_CHECK(log, "out of memory");
    int calls = 0;
    if (rc == EDA_OK) {
        for (int dir = EDA_FLOW_PUBLISHED; dir <= EDA_FLOW_SENT; dir++, calls++)
            eda_log_flow(log, (eda_flow_t)dir, env, NULL);
        if (env->kind == EDA_KIND_REPLY) {
            eda_log_flow(log, EDA_FLOW_COMMAND, env, env);
            eda_log_flow(log, EDA_FLOW_SENT, env, env);
            calls += 2;
        }
    } else {
        eda_log_msg(log, EDA_LOG_WARN, "refused %s %s: %s", env->type, env->id, why);
        calls++;
    }
    eda_log_destroy(&log);
    FUZZ_CHECK(fclose(f) == 0, "the memory stream failed");
    s_check_lines(out, len, calls, format);
    free(out);
}

/*  eda_log_fields into a roomy buffer and one of 1 + `cut` bytes. */
static void s_check_fields(const msgpack_object *data, uint8_t cut)
{
    char full[8192];
    size_t small = 1 + (size_t)cut;
    char *part = malloc(small);
    FUZZ_CHECK(part, "out of memory");
    size_t n = eda_log_fields(data, "order_id", full, sizeof full);
    FUZZ_CHECK(n < sizeof full && strlen(full) == n, "fields length is wrong");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(!s_control((unsigned char)full[i], EDA_LOG_TEXT),
                   "a raw control byte in fields");
    size_t m = eda_log_fields(data, "order_id", part, small);
    FUZZ_CHECK(m < small && strlen(part) == m, "cut fields length is wrong");
    free(part);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eda_decoder_t *dec = eda_decoder_new();
    FUZZ_CHECK(dec, "out of memory");
    eda_envelope_t env;
    char why[256] = "";
    eda_error_t rc = eda_decode(dec, data, size, &env, why, sizeof why);
    s_log(&env, rc, why, EDA_LOG_TEXT);
    s_log(&env, rc, why, EDA_LOG_JSON);
    if (rc == EDA_OK) {
        s_check_fields(&env.data, data[size - 1]);
        if (env.kind == EDA_KIND_REPLY && !env.ok)
            s_check_fields(&env.error, data[0]);
    }
    eda_decoder_destroy(&dec);
    return 0;
}
