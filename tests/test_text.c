/*  test_text: eda_text's escaping of wire strings for a log line or a
    terminal (\xNN), between quotes, and as JSON (\u00NN): every control
    character, DEL, the backslash, C1 controls in UTF-8, invalid UTF-8, a
    clean cut at every size, readable UTF-8 names, and eda_json.
*/
#include "eda_envelope.h"
#include "eda_text.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(text, .timeout = 30);

/*  eda_escape of a whole C string literal (which may hold NULs: n given). */
static const char *s_esc(const char *in, size_t n)
{
    static char out[1024];
    size_t need = eda_escape(out, sizeof out, in, n);
    cr_assert_eq(need, strlen(out), "no cut expected");
    return out;
}

static const char *s_esc_json(const char *in, size_t n)
{
    static char out[1024];
    size_t need = eda_escape_json(out, sizeof out, in, n);
    cr_assert_eq(need, strlen(out), "no cut expected");
    return out;
}

/* --- what is escaped ---------------------------------------------------------- */

Test(text, every_control_character_and_del_become_xNN)
{
    for (unsigned c = 0; c < 0x20; c++) {
        char in[3] = {'a', (char)c, 'b'}, want[16];
        snprintf(want, sizeof want, "a\\x%02xb", c);
        cr_assert_str_eq(s_esc(in, 3), want, "byte 0x%02x", c);
        snprintf(want, sizeof want, "\"a\\u%04xb\"", c);
        cr_assert_str_eq(s_esc_json(in, 3), want, "byte 0x%02x in JSON", c);
        cr_assert_not(eda_printable(in, 3), "byte 0x%02x is printable?", c);
    }
    cr_assert_str_eq(s_esc("\x7f", 1), "\\x7f");
    cr_assert_str_eq(s_esc_json("\x7f", 1), "\"\\u007f\"");
    cr_assert_not(eda_printable("a\x7f", 2));
    /* The hostile name of the issue, on one line, with no ESC or BEL. */
    const char *name = "\x1b]0;pwned\x07\x1b[2J\nFAKE LINE";
    cr_assert_str_eq(s_esc(name, strlen(name)),
                     "\\x1b]0;pwned\\x07\\x1b[2J\\x0aFAKE LINE");
}

Test(text, printable_ascii_passes_and_a_backslash_is_doubled)
{
    char in[95];
    for (int i = 0; i < 95; i++)
        in[i] = (char)(' ' + i);
    char want[97];
    size_t n = 0;
    for (int i = 0; i < 95; i++) {
        if (in[i] == '\\')
            want[n++] = '\\';
        want[n++] = in[i];
    }
    want[n] = '\0';
    cr_assert_str_eq(s_esc(in, sizeof in), want);
    cr_assert(eda_printable(in, sizeof in));
    /* So \x1b written by a client cannot pass for an escaped ESC. */
    cr_assert_str_eq(s_esc("\\x1b", 4), "\\\\x1b");
    cr_assert_str_eq(s_esc_json("a\\\"b", 4), "\"a\\\\\\\"b\"");
    /* A quote needs no escape in text, only between quotes. */
    cr_assert_str_eq(s_esc("\"", 1), "\"");
    char out[16];
    eda_escape_quoted(out, sizeof out, "a \"b\\", 5);
    cr_assert_str_eq(out, "\"a \\\"b\\\\\"");
}

Test(text, c1_controls_in_utf8_are_escaped)
{
    for (unsigned cp = 0x80; cp < 0xa0; cp++) {
        char in[4] = {'x', (char)0xc2, (char)cp, 'y'}, want[24];
        snprintf(want, sizeof want, "x\\xc2\\x%02xy", cp);
        cr_assert_str_eq(s_esc(in, 4), want, "U+%04X", cp);
        snprintf(want, sizeof want, "\"x\\u%04xy\"", cp);
        cr_assert_str_eq(s_esc_json(in, 4), want, "U+%04X in JSON", cp);
        cr_assert_not(eda_printable(in, 4), "U+%04X is printable?", cp);
    }
    /* U+00A0 and up are not controls. */
    cr_assert_str_eq(s_esc("\xc2\xa0\xc2\xbf", 4), "\xc2\xa0\xc2\xbf");
    cr_assert(eda_printable("\xc2\xa0", 2));
}

Test(text, invalid_utf8_bytes_are_escaped_one_by_one)
{
    static const struct {
        const char *in;
        const char *text;
        const char *json;
    } cases[] = {
        {"\x80", "\\x80", "\"\\u0080\""},                   /* a lone continuation */
        {"\x9b[2J", "\\x9b[2J", "\"\\u009b[2J\""},          /* 8-bit CSI */
        {"\xff\xfe", "\\xff\\xfe", "\"\\u00ff\\u00fe\""},   /* never in UTF-8 */
        {"\xc0\xaf", "\\xc0\\xaf", "\"\\u00c0\\u00af\""},   /* overlong '/' */
        {"\xc1\x9b", "\\xc1\\x9b", "\"\\u00c1\\u009b\""},   /* overlong CSI */
        {"\xe0\x82\x9b", "\\xe0\\x82\\x9b", NULL},          /* overlong CSI */
        {"\xed\xa0\x80", "\\xed\\xa0\\x80", NULL},          /* a surrogate */
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", NULL}, /* past U+10FFFF */
        {"\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80", NULL}, /* no such lead */
        {"\xc3"
         "A",
         "\\xc3A", "\"\\u00c3A\""},                             /* cut short */
        {"ok\xe2\x82", "ok\\xe2\\x82", "\"ok\\u00e2\\u0082\""}, /* cut at the end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        cr_assert_str_eq(s_esc(cases[i].in, n), cases[i].text, "case %zu", i);
        if (cases[i].json)
            cr_assert_str_eq(s_esc_json(cases[i].in, n), cases[i].json, "case %zu", i);
        cr_assert_not(eda_printable(cases[i].in, n), "case %zu is printable?", i);
    }
}

Test(text, a_multibyte_utf8_name_passes_through)
{
    const char *name = "Zo\xc3\xab \xc3\x91"
                       "and\xc3\xba \xe6\x9d\xb1\xe4\xba\xac "
                       "\xf0\x9f\x8e\x89 \xe2\x82\xac"
                       "5"; /* Zoë Ñandú 東京 🎉 €5 */
    cr_assert_str_eq(s_esc(name, strlen(name)), name);
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", name);
    cr_assert_str_eq(s_esc_json(name, strlen(name)), want);
    cr_assert(eda_printable(name, strlen(name)));
    cr_assert(eda_printable("", 0));
}

Test(text, nul_bytes_are_escaped_not_an_end)
{
    cr_assert_str_eq(s_esc("a\0b", 3), "a\\x00b");
    cr_assert_str_eq(s_esc_json("a\0b", 3), "\"a\\u0000b\"");
}

/* --- a clean cut at every size -------------------------------------------------- */

/*  Where an escaped text may be cut: the end of each whole unit (an escape,
    a C1 pair \xc2\x8N, a UTF-8 character, a byte). Fills bounds[] with the
    offsets and returns how many. */
static size_t s_bounds(const char *esc, size_t len, size_t *bounds)
{
    size_t n = 0, i = 0;
    bounds[n++] = 0;
    while (i < len) {
        unsigned char c = (unsigned char)esc[i];
        size_t u = 1;
        if (c == '\\' && esc[i + 1] == 'x')
            u = strncmp(esc + i, "\\xc2\\x", 6) == 0 &&
                        (esc[i + 6] == '8' || esc[i + 6] == '9')
                    ? 8
                    : 4;
        else if (c == '\\' && esc[i + 1] == 'u')
            u = 6;
        else if (c == '\\')
            u = 2;
        else if (c >= 0xf0)
            u = 4;
        else if (c >= 0xe0)
            u = 3;
        else if (c >= 0xc0)
            u = 2;
        i += u;
        bounds[n++] = i;
    }
    return n;
}

/*  The longest of bounds[n] that is at most `room`. */
static size_t s_fit(const size_t *bounds, size_t n, size_t room)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (bounds[i] <= room)
            best = bounds[i];
    return best;
}

static const char s_mixed[] = "id\\\x1b[31m\xc2\x9b\xe6\x9d\xb1 \"q\"\xff\xf0\x9f\x8e\x89"
                              "\x7f\n\xc3\xab";

typedef size_t s_escape_fn(char *out, size_t size, const char *in, size_t len);

/*  Escapes s_mixed at every size with `fn` (quoted: between quotes) and
    checks each result against the whole one. */
static void s_cut_at_every_size(s_escape_fn *fn, bool quoted)
{
    size_t in_len = sizeof s_mixed - 1;
    char whole[256];
    size_t full = fn(whole, sizeof whole, s_mixed, in_len);
    cr_assert_eq(full, strlen(whole));
    const char *body = whole + quoted;
    size_t body_len = full - 2 * quoted;
    size_t bounds[256];
    size_t nb = s_bounds(body, body_len, bounds);
    cr_assert_eq(bounds[nb - 1], body_len, "the units cover the whole: %s", whole);
    for (size_t size = 0; size <= full + 2; size++) {
        char out[260];
        memset(out, '#', sizeof out);
        size_t need = fn(out, size, s_mixed, in_len);
        cr_assert_eq(need, full, "size %zu: the whole length is returned", size);
        cr_assert_eq(out[size], '#', "size %zu: wrote past out[size]", size);
        if (size == 0)
            continue;
        size_t got = strlen(out);
        cr_assert_lt(got, size, "size %zu: not NUL-terminated within size", size);
        if (quoted && size < 3) {
            cr_assert_eq(got, 0, "size %zu: no room for a literal", size);
            continue;
        }
        size_t room = size - 1 - 2 * quoted;
        size_t want = s_fit(bounds, nb, room);
        cr_assert_eq(got, want + 2 * quoted,
                     "size %zu: %zu bytes written, expected a cut at %zu: %s", size, got,
                     want, out);
        cr_assert_eq(strncmp(out + quoted, body, want), 0, "size %zu: a prefix", size);
        if (quoted)
            cr_assert(out[0] == '"' && out[got - 1] == '"', "size %zu: %s", size, out);
    }
}

Test(text, text_is_cut_cleanly_at_every_size)
{
    s_cut_at_every_size(eda_escape, false);
}

Test(text, quoted_text_is_cut_cleanly_and_closed_at_every_size)
{
    s_cut_at_every_size(eda_escape_quoted, true);
}

Test(text, json_literal_is_cut_cleanly_and_closed_at_every_size)
{
    s_cut_at_every_size(eda_escape_json, true);
}

/* --- properties over random bytes --------------------------------------------- */

/*  Undoes eda_escape: \\ and \xNN. Returns the length. */
static size_t s_unescape(const char *esc, char *out)
{
    size_t n = 0;
    for (size_t i = 0; esc[i];) {
        if (esc[i] == '\\' && esc[i + 1] == 'x') {
            unsigned v;
            cr_assert_eq(sscanf(esc + i + 2, "%2x", &v), 1);
            out[n++] = (char)v;
            i += 4;
        } else if (esc[i] == '\\') {
            cr_assert_eq(esc[i + 1], '\\', "a lone backslash in %s", esc);
            out[n++] = '\\';
            i += 2;
        } else
            out[n++] = esc[i++];
    }
    return n;
}

Test(text, random_bytes_escape_to_printable_text_that_undoes)
{
    unsigned int seed = 20240601;
    for (int round = 0; round < 2000; round++) {
        char in[48], esc[48 * 8 + 1], back[48];
        size_t len = (size_t)(rand_r(&seed) % 48);
        for (size_t i = 0; i < len; i++) {
            int r = rand_r(&seed);
            /* Bias towards the interesting bytes. */
            in[i] = (char)(r % 4 == 0   ? 0xc2
                           : r % 4 == 1 ? (r >> 8) % 0x40 + 0x80
                                        : (r >> 8) & 0xff);
        }
        size_t need = eda_escape(esc, sizeof esc, in, len);
        cr_assert_eq(need, strlen(esc));
        cr_assert(eda_printable(esc, need), "round %d: escaped text not printable",
                  round);
        cr_assert_eq(s_unescape(esc, back), len, "round %d", round);
        cr_assert_eq(memcmp(back, in, len), 0, "round %d: not undone", round);
    }
}

Test(text, random_bytes_make_valid_json_literals)
{
    /* python3 reads every line as JSON and checks that each is a string. */
    FILE *p = popen("/usr/bin/python3 -c 'import json,sys; "
                    "raw=sys.stdin.buffer.read().decode(\"utf-8\"); "
                    "assert all(isinstance(json.loads(l),str) "
                    "for l in raw.split(\"\\n\")[:-1])'",
                    "w");
    cr_assert_not_null(p);
    unsigned int seed = 7;
    for (int round = 0; round < 500; round++) {
        char in[48], lit[48 * 6 + 3];
        size_t len = (size_t)(rand_r(&seed) % 48);
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand_r(&seed) >> 5);
        eda_escape_json(lit, sizeof lit, in, len);
        fprintf(p, "%s\n", lit);
    }
    cr_assert_eq(pclose(p), 0, "python3 refused a literal");
}

/* --- eda_json ---------------------------------------------------------------------- */

static msgpack_zone s_zone;

/*  Unpacks what `build` packed. */
static msgpack_object s_unpack(msgpack_sbuffer *sb)
{
    msgpack_zone_init(&s_zone, 1024);
    msgpack_object obj;
    size_t off = 0;
    cr_assert_eq(msgpack_unpack(sb->data, sb->size, &off, &s_zone, &obj),
                 MSGPACK_UNPACK_SUCCESS);
    return obj;
}

static msgpack_sbuffer s_sample(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    eda_pack_kv_u64(&pk, "n", 42);
    eda_pack_kv_i64(&pk, "neg", -7);
    eda_pack_kv_strn(&pk, "s\x1b", "q\"\\\n\x7f\xc2\x9b\xff\xc3\xa9", 10);
    eda_pack_key(&pk, "list");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_int(&pk, 1); /* an integer key */
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 1); /* an array key holding a string */
    eda_pack_str(&pk, "a\"b");
    msgpack_pack_bin_with_body(&pk, "xyz", 3);
    eda_pack_key(&pk, "nan");
    msgpack_pack_double(&pk, NAN);
    eda_pack_key(&pk, "f");
    msgpack_pack_double(&pk, 1.5);
    return sb;
}

static const char s_sample_json[] =
    "{\"n\":42,\"neg\":-7,\"s\\u001b\":\"q\\\"\\\\\\u000a\\u007f\\u009b\\u00ff\xc3\xa9\","
    "\"list\":[true,false,null],\"1\":{},\"[\\\"a\\\\\\\"b\\\"]\":{\"bin\":3},"
    "\"nan\":null,\"f\":1.5}";

Test(text, json_renders_every_type_with_strict_escapes)
{
    msgpack_sbuffer sb = s_sample();
    msgpack_object obj = s_unpack(&sb);
    char out[512];
    size_t n = eda_json(&obj, out, sizeof out);
    cr_assert_str_eq(out, s_sample_json);
    cr_assert_eq(n, strlen(s_sample_json));

    /* python3 agrees that it is JSON, and reads the strings back. */
    FILE *p = popen("/usr/bin/python3 -c 'import json,sys; "
                    "d=json.loads(sys.stdin.buffer.read().decode(\"utf-8\")); "
                    "assert d[\"s\\x1b\"]==\"q\\\"\\\\\\n\\x7f\\x9b\\xff\\xe9\", d; "
                    "assert json.loads(list(d)[5])==[\"a\\\"b\"], d'",
                    "w");
    cr_assert_not_null(p);
    fputs(out, p);
    cr_assert_eq(pclose(p), 0, "python3 refused: %s", out);

    size_t bounds[512];
    size_t nb = s_bounds(s_sample_json, n, bounds);
    for (size_t size = 0; size <= n + 1; size++) {
        char cut[512];
        memset(cut, '#', sizeof cut);
        cr_assert_eq(eda_json(&obj, cut, size), n, "size %zu", size);
        cr_assert_eq(cut[size], '#', "size %zu: wrote past out[size]", size);
        if (!size)
            continue;
        size_t got = strlen(cut);
        cr_assert_lt(got, size);
        cr_assert_eq(strncmp(cut, s_sample_json, got), 0, "size %zu: a prefix", size);
        /* Never ends inside an escape or a UTF-8 character. */
        bool at_bound = false;
        for (size_t i = 0; i < nb; i++)
            at_bound = at_bound || bounds[i] == got;
        cr_assert(at_bound, "size %zu ends inside an escape: %s", size, cut);
    }
    msgpack_zone_destroy(&s_zone);
    msgpack_sbuffer_destroy(&sb);
}

Test(text, eda_copy_and_eda_id_join_cut_to_fit_as_snprintf_would)
{
    /* At every size, each writes what snprintf writes, and never past it. */
    const char *prefix = "o-0123456789ab";
    uint64_t numbers[] = {0, 7, 42, 18446744073709551615u};
    for (size_t n = 0; n < sizeof numbers / sizeof numbers[0]; n++) {
        char want[64];
        int whole = snprintf(want, sizeof want, "%s-%llu", prefix,
                             (unsigned long long)numbers[n]);
        for (size_t size = 0; size <= (size_t)whole + 2; size++) {
            char got[64], expect[64];
            memset(got, '#', sizeof got);
            snprintf(expect, size ? size : 1, "%s", want);
            size_t len = eda_id_join(got, size, prefix, numbers[n]);
            cr_assert_eq(got[size], '#', "size %zu: wrote past out[size]", size);
            if (!size)
                continue;
            cr_assert_str_eq(got, expect, "size %zu", size);
            cr_assert_eq(len, strlen(expect));
        }
    }
    char out[8];
    cr_assert_eq(eda_copy(out, sizeof out, "CreditReserved"), 7);
    cr_assert_str_eq(out, "CreditR");
    cr_assert_eq(eda_copy(out, sizeof out, NULL), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(eda_copy(out, 1, "x"), 0);
    cr_assert_str_eq(out, "");
}
