/*  test_log: eda_log's event-flow and plain lines, in text and JSON, written
    to a memory stream: what each line carries, that JSON lines parse (checked
    with python3's json module), level filtering, escaping and truncation.
*/
#include "eda_log.h"
#include "eda_text.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* --- a logger writing to memory ------------------------------------------------ */

static char *s_buf;
static size_t s_size;
static FILE *s_out;
static eda_decoder_t *s_dec[2];
static msgpack_sbuffer s_sbuf[2];

static void s_setup(void)
{
    s_out = open_memstream(&s_buf, &s_size);
    cr_assert_not_null(s_out);
    for (int i = 0; i < 2; i++) {
        s_dec[i] = eda_decoder_new();
        msgpack_sbuffer_init(&s_sbuf[i]);
    }
}

static void s_teardown(void)
{
    if (s_out)
        fclose(s_out);
    s_out = NULL;
    free(s_buf);
    s_buf = NULL;
    for (int i = 0; i < 2; i++) {
        eda_decoder_destroy(&s_dec[i]);
        msgpack_sbuffer_destroy(&s_sbuf[i]);
    }
}

TestSuite(log, .init = s_setup, .fini = s_teardown, .timeout = 30);

/*  What was written so far. */
static const char *s_text(void)
{
    fflush(s_out);
    return s_buf ? s_buf : "";
}

static size_t s_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/*  Begins an envelope in slot `slot` (0: the message, 1: a reply) and returns
    the packer at its last value. */
static msgpack_packer s_pk[2];
static size_t s_data_at[2]; /* where the last value starts in s_sbuf[slot] */
static msgpack_packer *s_begin(int slot, eda_kind_t kind, const char *type,
                               const char *corr, uint64_t seq, int ok)
{
    msgpack_sbuffer_clear(&s_sbuf[slot]);
    msgpack_packer_init(&s_pk[slot], &s_sbuf[slot], msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = kind,
                        .type = type,
                        .id = "m-1",
                        .source = kind == EDA_KIND_COMMAND ? "cli" : "order-service",
                        .ts = 1717000000000000ULL,
                        .correlation_id = corr,
                        .causation_id = kind == EDA_KIND_REPLY ? "m-0" : NULL,
                        .seq = seq,
                        .epoch = "a1b2c3d4e5f60718",
                        .ok = ok};
    eda_pack_header(&s_pk[slot], &hdr);
    s_data_at[slot] = s_sbuf[slot].size;
    return &s_pk[slot];
}

static eda_envelope_t s_env[2];
static const eda_envelope_t *s_end(int slot)
{
    char why[256] = "";
    cr_assert_eq(eda_decode(s_dec[slot], s_sbuf[slot].data, s_sbuf[slot].size,
                            &s_env[slot], why, sizeof why),
                 EDA_OK, "%s", why);
    return &s_env[slot];
}

/*  An OrderCreated-like event #7 of order o-1. */
static const eda_envelope_t *s_credit_reserved(void)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CreditReserved", "o-1", 7, 1);
    msgpack_pack_map(pk, 4);
    eda_pack_kv_str(pk, "order_id", "o-1");
    eda_pack_kv_str(pk, "customer_id", "alice");
    eda_pack_kv_i64(pk, "amount", 549);
    eda_pack_kv_str(pk, "saga", "choreography");
    return s_end(0);
}

/*  Runs python3's json module over `text`: every line must parse, and
    `expr` (over `d`, the list of parsed lines) must hold. 0 when it does. */
static int s_python_json(const char *text, const char *expr)
{
    setenv("EDA_TEST_EXPR", expr ? expr : "True", 1);
    FILE *p = popen("/usr/bin/python3 -c 'import json,sys,os; "
                    "raw=sys.stdin.buffer.read().decode(\"utf-8\"); "
                    "assert raw.endswith(\"\\n\"); "
                    "d=[json.loads(l) for l in raw.split(\"\\n\")[:-1]]; "
                    "sys.exit(0 if eval(os.environ[\"EDA_TEST_EXPR\"]) else 3)'",
                    "w");
    cr_assert_not_null(p);
    fputs(text, p);
    int rc = pclose(p);
    return rc;
}

/* --- text lines ----------------------------------------------------------------- */

Test(log, text_flow_line_has_time_service_arrow_type_order_seq_fields)
{
    eda_log_t *log = eda_log_new("customer-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    cr_assert_not_null(log);
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_credit_reserved(), NULL);
    eda_log_destroy(&log);
    cr_assert_null(log);
    eda_log_destroy(&log); /* idempotent */

    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "%s", t);
    cr_assert_eq(t[strlen(t) - 1], '\n');
    /* HH:MM:SS.mmm */
    cr_assert(t[0] >= '0' && t[0] <= '9' && t[2] == ':' && t[5] == ':' && t[8] == '.' &&
                  t[12] == ' ',
              "no time at the start: %s", t);
    cr_assert_not_null(strstr(t, "customer-service"), "%s", t);
    cr_assert_not_null(strstr(t, "→ pub"), "%s", t);
    cr_assert_not_null(strstr(t, "CreditReserved"), "%s", t);
    cr_assert_not_null(strstr(t, " o-1 "), "%s", t);
    cr_assert_not_null(strstr(t, "#7"), "%s", t);
    cr_assert_not_null(strstr(t, "customer_id=alice"), "%s", t);
    cr_assert_not_null(strstr(t, "amount=549"), "%s", t);
    cr_assert_not_null(strstr(t, "saga=choreography"), "%s", t);
    cr_assert_null(strstr(t, "order_id="), "the order id is shown once: %s", t);
    cr_assert_null(strchr(t, '\033'), "colour on a stream that is not a tty: %s", t);
}

Test(log, text_arrows_for_each_direction)
{
    eda_log_t *log = eda_log_new("inventory-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    eda_log_flow(log, EDA_FLOW_APPLIED, s_credit_reserved(), NULL);
    eda_log_flow(log, EDA_FLOW_SENT, s_credit_reserved(), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "%s", t);
    const char *second = strchr(t, '\n') + 1;
    cr_assert_not_null(strstr(t, "← apply"), "%s", t);
    cr_assert_not_null(strstr(t, "(from order-service)"), "%s", t);
    cr_assert_not_null(strstr(second, "⇒ send"), "%s", t);
}

Test(log, text_command_line_shows_the_reply_data_and_its_order)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "PlaceOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "alice");
    const eda_envelope_t *cmd = s_end(0);
    pk = s_begin(1, EDA_KIND_REPLY, "PlaceOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", "o-42");
    eda_pack_kv_str(pk, "status", "PENDING");
    eda_log_flow(log, EDA_FLOW_COMMAND, cmd, s_end(1));
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "%s", t);
    cr_assert_not_null(strstr(t, "⇐ cmd"), "%s", t);
    cr_assert_not_null(strstr(t, "PlaceOrder"), "%s", t);
    cr_assert_not_null(strstr(t, " o-42 "), "order id taken from the reply: %s", t);
    cr_assert_not_null(strstr(t, "status=PENDING"), "%s", t);
}

Test(log, text_error_reply_shows_code_and_message)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "GetOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", "o-9");
    const eda_envelope_t *cmd = s_end(0);
    eda_pack_error(s_begin(1, EDA_KIND_REPLY, "GetOrder", NULL, 0, 0), EDA_NOT_FOUND,
                   "no order o-9");
    eda_log_flow(log, EDA_FLOW_COMMAND, cmd, s_end(1));
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_not_null(strstr(t, "NOT_FOUND: no order o-9"), "%s", t);
    cr_assert_not_null(strstr(t, " o-9 "), "order id from the command's data: %s", t);
}

Test(log, text_event_without_order_shows_a_dash)
{
    eda_log_t *log = eda_log_new("customer-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 1, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "bob");
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_end(0), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_not_null(strstr(t, " - "), "%s", t);
    cr_assert_not_null(strstr(t, "#1"), "%s", t);
    cr_assert_not_null(strstr(t, "customer_id=bob"), "%s", t);
}

Test(log, text_plain_line_has_level_and_sentence)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    eda_log_msg(log, EDA_LOG_WARN, "dropped %d messages from %s", 3, "x");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1);
    cr_assert_not_null(strstr(t, "order-service"), "%s", t);
    cr_assert_not_null(strstr(t, "warn"), "%s", t);
    cr_assert_not_null(strstr(t, "dropped 3 messages from x"), "%s", t);
}

/*  A customer's name comes from a client (CreateCustomer): a newline in it
    must not split the event-flow line, or a reader (or a log shipper) sees a
    forged second line. */
Test(log, text_line_stays_one_line_with_a_newline_in_a_field)
{
    eda_log_t *log = eda_log_new("customer-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 1, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "customer_id", "mallory");
    eda_pack_kv_str(pk, "name",
                    "x\n12:00:00.000 order-service     → pub   OrderApproved");
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_end(0), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "one event, %zu lines:\n%s", s_lines(t), t);
}

Test(log, text_line_stays_one_line_with_control_characters_in_type_and_order)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk =
        s_begin(0, EDA_KIND_COMMAND, "Get\nOrder\033[2J", "o-1\nforged", 0, 0);
    msgpack_pack_map(pk, 0);
    eda_log_flow(log, EDA_FLOW_COMMAND, s_end(0), NULL);
    eda_log_msg(log, EDA_LOG_WARN, "no order %s", "x\ny");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "two lines expected:\n%s", t);
    cr_assert_null(strchr(t, '\033'), "an escape sequence from outside reached the log");
}

/*  No byte a terminal acts on: each line is valid UTF-8 holding no control
    character (C0, DEL, C1). 0 when clean, else the bad line's offset + 1. */
static size_t s_raw_control(const char *t)
{
    for (const char *line = t; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (!eda_printable(line, len))
            return (size_t)(line - t) + 1;
        line += len + (nl != NULL);
    }
    return 0;
}

/*  eda_log_msg escapes the whole formatted line, so its callers (a skipped
    event's type and source, a refused reply's code, a rejection reason) may
    pass wire strings as they are. */
Test(log, text_plain_line_escapes_what_its_arguments_carry)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    eda_log_msg(log, EDA_LOG_WARN, "skipped %s #%d from %s: %s", "Evil\x1b[2J", 3,
                "src\n12:00:00.000 order-service     warn  forged",
                "\xc2\x9b"
                "31m \x7f\x07\xff back\\slash Zo\xc3\xab");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "%s", t);
    cr_assert_eq(s_raw_control(t), 0, "a raw control byte at %zu: %s", s_raw_control(t),
                 t);
    cr_assert_not_null(strstr(t, "skipped Evil\\x1b[2J #3 from src\\x0a12:00:00.000"),
                       "%s", t);
    cr_assert_not_null(
        strstr(t, ": \\xc2\\x9b31m \\x7f\\x07\\xff back\\\\slash Zo\xc3\xab"), "%s", t);
}

/*  A map key is as foreign as its value: one with a newline or an escape
    sequence neither splits the line nor reaches it raw. */
Test(log, text_flow_line_escapes_map_keys_and_values)
{
    eda_log_t *log = eda_log_new("customer-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "CreateCustomer", NULL, 0, 1);
    msgpack_pack_map(pk, 5);
    eda_pack_kv_str(pk, "a\nb", "x");
    eda_pack_kv_str(pk, "name", "\x1b]0;pwned\x07\x1b[2J\nFAKE LINE");
    eda_pack_kv_str(pk, "k=1", "v");
    eda_pack_kv_str(pk, "ok", "Zo\xc3\xab");
    eda_pack_key(pk, "deep\x1b");
    msgpack_pack_array(pk, 1);
    eda_pack_str(pk, "\x1b[2J\xc2\x9b");
    eda_log_flow(log, EDA_FLOW_COMMAND, s_end(0), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "%s", t);
    cr_assert_eq(s_raw_control(t), 0, "a raw control byte at %zu: %s", s_raw_control(t),
                 t);
    cr_assert_not_null(strstr(t, "\"a\\x0ab\"=x "
                                 "name=\"\\x1b]0;pwned\\x07\\x1b[2J\\x0aFAKE LINE\" "
                                 "\"k=1\"=v ok=Zo\xc3\xab "
                                 "\"deep\\x1b\"=[\"\\u001b[2J\\u009b\"]"),
                       "%s", t);
}

Test(log, text_error_reply_is_escaped_and_kept_when_long)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "GetOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 0);
    const eda_envelope_t *cmd = s_end(0);
    char message[400];
    memset(message, 'm', sizeof message - 1);
    message[sizeof message - 1] = '\0';
    memcpy(message, "no\x1b[2J\n", 7);
    eda_pack_error(s_begin(1, EDA_KIND_REPLY, "GetOrder", NULL, 0, 0), EDA_NOT_FOUND,
                   message);
    eda_log_flow(log, EDA_FLOW_COMMAND, cmd, s_end(1));
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 1, "%s", t);
    cr_assert_eq(s_raw_control(t), 0, "%s", t);
    cr_assert_not_null(strstr(t, "NOT_FOUND: no\\x1b[2J\\x0ammmm"), "%s", t);
}

/* --- JSON lines ------------------------------------------------------------------ */

Test(log, json_flow_line_is_json_with_every_key)
{
    eda_log_t *log = eda_log_new("customer-service", EDA_LOG_JSON, EDA_LOG_INFO, s_out);
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_credit_reserved(), NULL);
    eda_log_flow(log, EDA_FLOW_APPLIED, s_credit_reserved(), NULL);
    eda_log_msg(log, EDA_LOG_WARN, "a plain line");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 3, "%s", t);
    cr_assert_null(strchr(t, '\033'));
    int rc = s_python_json(
        t, "d[0]['service']=='customer-service' and d[0]['dir']=='published' and "
           "d[0]['type']=='CreditReserved' and d[0]['order_id']=='o-1' and "
           "d[0]['seq']==7 and isinstance(d[0]['ts'],int) and d[0]['ts']>0 and "
           "d[0]['data']=={'order_id':'o-1','customer_id':'alice','amount':549,"
           "'saga':'choreography'} and d[1]['dir']=='applied' and "
           "d[1]['source']=='order-service' and d[2]['level']=='warn' and "
           "d[2]['message']=='a plain line' and d[2]['service']=='customer-service'");
    cr_assert_eq(rc, 0, "python3 refused (status %d):\n%s", rc, t);
}

Test(log, json_command_and_error_reply)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_JSON, EDA_LOG_INFO, s_out);
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "GetOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", "o-9");
    const eda_envelope_t *cmd = s_end(0);
    eda_pack_error(s_begin(1, EDA_KIND_REPLY, "GetOrder", NULL, 0, 0), EDA_NOT_FOUND,
                   "no order \"o-9\"");
    eda_log_flow(log, EDA_FLOW_COMMAND, cmd, s_end(1));

    pk = s_begin(0, EDA_KIND_COMMAND, "Ping", NULL, 0, 1);
    msgpack_pack_map(pk, 0);
    cmd = s_end(0);
    pk = s_begin(1, EDA_KIND_REPLY, "Ping", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "service", "order-service");
    eda_log_flow(log, EDA_FLOW_COMMAND, cmd, s_end(1));
    eda_log_destroy(&log);
    const char *t = s_text();
    int rc = s_python_json(t, "d[0]['dir']=='command' and d[0]['type']=='GetOrder' and "
                              "d[0]['order_id']=='o-9' and "
                              "d[0]['error']=='NOT_FOUND: no order \"o-9\"' and "
                              "d[1]['order_id'] is None and "
                              "d[1]['data']=={'service':'order-service'} and "
                              "'seq' not in d[1]");
    cr_assert_eq(rc, 0, "python3 refused (status %d):\n%s", rc, t);
}

Test(log, json_escapes_quotes_backslashes_and_control_characters)
{
    const char *nasty = "say \"hi\" \\ back\\slash\ttab\x01\x1f\rcr\nnl end";
    eda_log_t *log = eda_log_new("svc \"q\" \\", EDA_LOG_JSON, EDA_LOG_DEBUG, s_out);
    eda_log_msg(log, EDA_LOG_INFO, "%s", nasty);
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", "o\"1\n", 1, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "name", nasty);
    eda_pack_kv_str(pk, "k\"e\\y\n", "v");
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_end(0), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "%s", t);
    setenv("EDA_TEST_NASTY", nasty, 1);
    int rc = s_python_json(t, "d[0]['message']==os.environ['EDA_TEST_NASTY'] and "
                              "d[0]['service']=='svc \"q\" \\\\' and "
                              "d[1]['data']['name']==os.environ['EDA_TEST_NASTY'] and "
                              "d[1]['data']['k\"e\\\\y\\n']=='v' and "
                              "d[1]['order_id']=='o\"1\\n'");
    cr_assert_eq(rc, 0, "python3 refused (status %d):\n%s", rc, t);
}

/*  DEL, C1 controls and bytes that are not UTF-8 are escaped too (\u00NN),
    so that every JSON line is valid UTF-8 JSON and shows no raw control. */
Test(log, json_escapes_del_c1_and_invalid_utf8_in_keys_values_and_messages)
{
    const char *nasty = "a\x7f"
                        "b\xc2\x9b"
                        "c\xff"
                        "d Zo\xc3\xab";
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_JSON, EDA_LOG_INFO, s_out);
    eda_log_msg(log, EDA_LOG_WARN, "skipped %s", nasty);
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "Order\xc2\x9b", "o\x7f", 1, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "k\xc2\x9b\n", nasty);
    eda_log_flow(log, EDA_FLOW_APPLIED, s_end(0), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "%s", t);
    cr_assert_eq(s_raw_control(t), 0, "a raw control byte at %zu: %s", s_raw_control(t),
                 t);
    const char *want = "a\\x7fb\\x9bc\\xffd Zo\\xeb";
    char expr[512];
    snprintf(expr, sizeof expr,
             "d[0]['message']=='skipped %s' and d[1]['type']=='Order\\x9b' and "
             "d[1]['order_id']=='o\\x7f' and d[1]['data']=={'k\\x9b\\n':'%s'}",
             want, want);
    int rc = s_python_json(t, expr);
    cr_assert_eq(rc, 0, "python3 refused (status %d):\n%s", rc, t);
}

/* --- long lines ------------------------------------------------------------------- */

static const eda_envelope_t *s_huge_event(void)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "OrderCreated", "o-1", 3, 1);
    msgpack_pack_map(pk, 200);
    char key[16], value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key%03d", i);
        eda_pack_kv_str(pk, key, value);
    }
    return s_end(0);
}

Test(log, long_data_is_truncated_to_one_text_line)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_huge_event(), NULL);
    eda_log_msg(log, EDA_LOG_INFO, "after");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "%s", t);
    const char *nl = strchr(t, '\n');
    cr_assert_lt((size_t)(nl - t), 4096, "a line of %zu bytes", (size_t)(nl - t));
    cr_assert_gt((size_t)(nl - t), 1000, "the fields are there, up to a limit");
    cr_assert_not_null(strstr(t, "key000=vvvv"), "%s", t);
    cr_assert_null(strstr(t, "key199="), "200 keys of 100 bytes cannot fit");
    cr_assert_not_null(strstr(nl + 1, "after"));
}

Test(log, long_data_is_truncated_to_one_json_line)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_JSON, EDA_LOG_INFO, s_out);
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_huge_event(), NULL);
    eda_log_msg(log, EDA_LOG_INFO, "after");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_eq(s_lines(t), 2, "%s", t);
    const char *nl = strchr(t, '\n');
    cr_assert_lt((size_t)(nl - t), 4096, "a line of %zu bytes", (size_t)(nl - t));
    cr_assert_eq(t[0], '{');
    cr_assert_eq(nl[-1], '}');
    cr_assert_not_null(strstr(nl + 1, "\"message\":\"after\""));
}

/*  A JSON-lines reader (jq, a log shipper) needs every line to parse, the
    truncated one too. */
Test(log, long_data_json_line_is_still_valid_json)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_JSON, EDA_LOG_INFO, s_out);
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_huge_event(), NULL);
    eda_log_destroy(&log);
    const char *t = s_text();
    int rc = s_python_json(t, "d[0]['type']=='OrderCreated' and d[0]['seq']==3");
    cr_assert_eq(rc, 0, "the truncated line is not JSON (python3 status %d)", rc);
}

/* --- levels ----------------------------------------------------------------------- */

Test(log, levels_filter_lines)
{
    eda_log_t *log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_INFO, s_out);
    cr_assert(eda_log_enabled(log, EDA_LOG_ERROR));
    cr_assert(eda_log_enabled(log, EDA_LOG_WARN));
    cr_assert(eda_log_enabled(log, EDA_LOG_INFO));
    cr_assert_not(eda_log_enabled(log, EDA_LOG_DEBUG));
    eda_log_msg(log, EDA_LOG_DEBUG, "hidden debug");
    eda_log_msg(log, EDA_LOG_INFO, "shown info");
    eda_log_destroy(&log);
    const char *t = s_text();
    cr_assert_null(strstr(t, "hidden"), "%s", t);
    cr_assert_not_null(strstr(t, "shown info"), "%s", t);

    /* At error, warnings and event-flow lines (info) are left out too. */
    log = eda_log_new("order-service", EDA_LOG_JSON, EDA_LOG_ERROR, s_out);
    cr_assert_not(eda_log_enabled(log, EDA_LOG_WARN));
    size_t before = strlen(s_text());
    eda_log_msg(log, EDA_LOG_WARN, "hidden warn");
    eda_log_flow(log, EDA_FLOW_PUBLISHED, s_credit_reserved(), NULL);
    cr_assert_eq(strlen(s_text()), before, "%s", s_text());
    eda_log_msg(log, EDA_LOG_ERROR, "shown error");
    eda_log_destroy(&log);
    cr_assert_not_null(strstr(s_text() + before, "\"level\":\"error\""), "%s", s_text());

    /* At debug, everything. */
    log = eda_log_new("order-service", EDA_LOG_TEXT, EDA_LOG_DEBUG, s_out);
    cr_assert(eda_log_enabled(log, EDA_LOG_DEBUG));
    eda_log_msg(log, EDA_LOG_DEBUG, "shown debug");
    eda_log_destroy(&log);
    cr_assert_not_null(strstr(s_text(), "shown debug"));
    cr_assert_not_null(strstr(s_text(), "debug"));
}

/* --- eda_log_fields ---------------------------------------------------------------- */

Test(log, fields_render_pairs_and_skip_a_key)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "StockReserved", "o-1", 1, 1);
    msgpack_pack_map(pk, 5);
    eda_pack_kv_str(pk, "order_id", "o-1");
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", "apple");
    eda_pack_kv_i64(pk, "qty", 2);
    eda_pack_kv_i64(pk, "delta", -5);
    eda_pack_kv_nil(pk, "reason");
    eda_pack_kv_str(pk, "saga", "choreography");
    const eda_envelope_t *env = s_end(0);

    char out[512];
    size_t n = eda_log_fields(&env->data, "order_id", out, sizeof out);
    cr_assert_eq(n, strlen(out));
    cr_assert_str_eq(out, "items=[{\"sku\":\"apple\",\"qty\":2}] delta=-5 reason=null "
                          "saga=choreography");
    n = eda_log_fields(&env->data, NULL, out, sizeof out);
    cr_assert_eq(n, strlen(out));
    cr_assert_eq(strncmp(out, "order_id=o-1 items=", 19), 0, "%s", out);
    n = eda_log_fields(&env->data, "saga", out, sizeof out);
    cr_assert_null(strstr(out, "saga"), "%s", out);

    /* Not a map, or no room: empty, and nothing written past the end. */
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    cr_assert_eq(eda_log_fields(&nil, NULL, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(eda_log_fields(&env->data, NULL, out, 0), 0);
}

/*  The header promises the length written: a caller that appends after it
    must find the string's end there. */
Test(log, fields_truncate_within_size_and_return_the_length)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 1, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_i64(pk, "n", 12345);
    eda_pack_kv_str(pk, "name", "a rather long customer name that will not fit");
    const eda_envelope_t *env = s_end(0);
    for (size_t size = 1; size < 80; size++) {
        char out[96];
        memset(out, '#', sizeof out);
        size_t n = eda_log_fields(&env->data, NULL, out, size);
        cr_assert_lt(n, size, "size %zu: %zu", size, n);
        cr_assert_eq(out[sizeof out - 1], '#', "wrote past the end");
        cr_assert_eq(out[size], '#', "size %zu: wrote past out[size]", size);
        cr_assert_eq(strlen(out), n, "size %zu: returned %zu, wrote \"%s\"", size, n,
                     out);
    }
}

/* --- lines rendered from packed data -------------------------------------------- */

/*  Everything after a line's time: the text after its first space, the
    JSON after its first comma ("ts"). */
static const char *s_after_time(const char *line, eda_log_format_t format)
{
    const char *p = strchr(line, format == EDA_LOG_JSON ? ',' : ' ');
    return p ? p : line;
}

/*  Writes the flow line of the message in slot 0 (answered by the reply in
    slot 1 when `reply`) twice in `format`: decoded (eda_log_flow), and from
    its header as the engine knows it and its data as packed
    (eda_log_flow_packed). The two must be the same but for the time. */
static void s_check_packed(eda_log_format_t format, eda_flow_t dir, bool reply)
{
    const eda_envelope_t *env = s_end(0), *rep = reply ? s_end(1) : NULL;
    int slot = reply ? 1 : 0;
    char order[EDA_NAME_MAX + 1];
    snprintf(order, sizeof order, "%s", env->correlation_id);
    if (!order[0] && eda_get_str(&env->data, "order_id", order, sizeof order) != 0)
        order[0] = '\0';
    char code[64] = "", message[1024] = "";
    bool failed = rep && rep->ok != 1;
    if (failed) {
        eda_get_str(&rep->error, "code", code, sizeof code);
        eda_get_str(&rep->error, "message", message, sizeof message);
    }
    eda_flow_head_t head = {.type = env->type,
                            .order = order,
                            .source = env->source,
                            .has_seq = env->has_seq,
                            .seq = env->seq,
                            .error_code = failed ? code : NULL,
                            .error_message = message};
    char *decoded = NULL, *packed = NULL;
    size_t dsize, psize;
    FILE *dout = open_memstream(&decoded, &dsize),
         *pout = open_memstream(&packed, &psize);
    eda_log_t *dlog = eda_log_new("order-service", format, EDA_LOG_INFO, dout);
    eda_log_t *plog = eda_log_new("order-service", format, EDA_LOG_INFO, pout);
    eda_log_flow(dlog, dir, env, rep);
    eda_log_flow_packed(plog, dir, &head, s_sbuf[slot].data + s_data_at[slot],
                        s_sbuf[slot].size - s_data_at[slot]);
    eda_log_destroy(&dlog);
    eda_log_destroy(&plog);
    fclose(dout);
    fclose(pout);
    cr_assert_eq(s_lines(decoded), 1, "%s", decoded);
    cr_assert_str_eq(s_after_time(packed, format), s_after_time(decoded, format),
                     "packed:  %s\ndecoded: %s", packed, decoded);
    free(decoded);
    free(packed);
}

/*  Checks the message in slot 0 (and reply in slot 1) in both formats. */
static void s_check_packed_both(eda_flow_t dir, bool reply)
{
    s_check_packed(EDA_LOG_TEXT, dir, reply);
    s_check_packed(EDA_LOG_JSON, dir, reply);
}

/*  Packs a map of every kind of value msgpack has: integers of each width
    and sign, floats (not finite too), nil, booleans, binary, extensions,
    nested arrays and maps, keys that are not strings, and strings with
    quotes, controls, C1, invalid UTF-8 and multi-byte characters. */
static void s_pack_every_kind(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 14);
    eda_pack_kv_str(pk, "sku", "apple \"green\" \\ Zo\xc3\xab \xe2\x82\xac");
    eda_pack_key(pk, "ints");
    msgpack_pack_array(pk, 10);
    msgpack_pack_uint8(pk, 200);
    msgpack_pack_uint16(pk, 60000);
    msgpack_pack_uint32(pk, 4000000000u);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int8(pk, -100);
    msgpack_pack_int16(pk, -30000);
    msgpack_pack_int32(pk, -2000000000);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_int(pk, -1);
    msgpack_pack_int(pk, 127);
    eda_pack_key(pk, "floats");
    msgpack_pack_array(pk, 5);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_float(pk, 0.1f);
    msgpack_pack_double(pk, -2.25e-300);
    msgpack_pack_double(pk, 1.0 / 0.0);
    msgpack_pack_double(pk, 0.0 / 0.0);
    eda_pack_kv_nil(pk, "reason");
    eda_pack_kv_bool(pk, "ok", true);
    eda_pack_kv_bool(pk, "late", false);
    eda_pack_key(pk, "blob");
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "\x00\x01\x02", 3);
    eda_pack_key(pk, "ext");
    msgpack_pack_array(pk, 2);
    msgpack_pack_ext(pk, 2, 7);
    msgpack_pack_ext_body(pk, "ab", 2);
    msgpack_pack_ext(pk, 40, 1);
    msgpack_pack_ext_body(pk, "0123456789012345678901234567890123456789", 40);
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", "pear");
    eda_pack_kv_i64(pk, "qty", 2);
    msgpack_pack_map(pk, 0);
    eda_pack_key(pk, "empty");
    msgpack_pack_array(pk, 0);
    eda_pack_key(pk, "odd keys");
    msgpack_pack_map(pk, 3);
    msgpack_pack_int(pk, 5);
    eda_pack_str(pk, "five");
    msgpack_pack_array(pk, 1);
    eda_pack_str(pk, "x\"y\x01");
    msgpack_pack_true(pk);
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    eda_pack_str(pk, "a");
    msgpack_pack_nil(pk);
    eda_pack_kv_str(pk, "nasty\n\x1b", "\x1b[2J\xc2\x9b\x7f\xff\xe2\x82 \t end");
    eda_pack_key(pk, "deep");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_key(pk, "k\"\\");
    msgpack_pack_array(pk, 2);
    eda_pack_str(pk, "\xc3\xab\xf0\x9f\x98\x80\"\\");
    msgpack_pack_uint64(pk, 42);
    eda_pack_kv_str(pk, "order_id", "o-5");
}

Test(log, packed_event_lines_are_the_decoded_lines)
{
    s_credit_reserved();
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    s_pack_every_kind(s_begin(0, EDA_KIND_EVENT, "StockReserved", "o-5", 12, 1));
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    s_huge_event();
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    /* No correlation id: the order is data.order_id, or "-" without one. */
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 1, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "customer_id", "bob");
    eda_pack_kv_str(pk, "order_id", "o-77");
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 2, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "name", "x\n12:00:00.000 order-service     → pub   Forged");
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    /* An order_id too long to be an id is not shown as one. */
    pk = s_begin(0, EDA_KIND_EVENT, "CustomerCreated", NULL, 3, 1);
    msgpack_pack_map(pk, 1);
    char longid[100];
    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    eda_pack_kv_str(pk, "order_id", longid);
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
}

/*  A nested value too long for a line: the text line cuts it as
    eda_json does, the JSON line leaves the data out. */
Test(log, packed_long_nested_value_is_cut_as_decoded)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "OrderCreated", "o-1", 3, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "customer_id", "alice");
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 300);
    for (int i = 0; i < 300; i++) {
        msgpack_pack_map(pk, 2);
        eda_pack_kv_str(pk, "sku", i % 2 ? "\xe2\x82\xac-euro" : "a\x01quoted\"");
        eda_pack_kv_i64(pk, "qty", i);
    }
    s_check_packed_both(EDA_FLOW_PUBLISHED, false);
    s_check_packed_both(EDA_FLOW_SENT, false);
}

Test(log, packed_command_lines_are_the_decoded_lines)
{
    /* The order from the reply's data. */
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "PlaceOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", "alice");
    pk = s_begin(1, EDA_KIND_REPLY, "PlaceOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "order_id", "o-42");
    eda_pack_kv_str(pk, "status", "PENDING");
    s_check_packed_both(EDA_FLOW_COMMAND, true);
    /* The order from the command's correlation id; every kind of value. */
    pk = s_begin(0, EDA_KIND_COMMAND, "GetOrder", "o-5", 0, 1);
    msgpack_pack_map(pk, 0);
    s_pack_every_kind(s_begin(1, EDA_KIND_REPLY, "GetOrder", "o-5", 0, 1));
    s_check_packed_both(EDA_FLOW_COMMAND, true);
    /* An error reply, and a long one that is cut. */
    pk = s_begin(0, EDA_KIND_COMMAND, "GetOrder", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", "o-9");
    eda_pack_error(s_begin(1, EDA_KIND_REPLY, "GetOrder", NULL, 0, 0), EDA_NOT_FOUND,
                   "no order \"o-9\"\n\x1b[2J");
    s_check_packed_both(EDA_FLOW_COMMAND, true);
    char message[400];
    memset(message, 'm', sizeof message - 1);
    message[sizeof message - 1] = '\0';
    eda_pack_error(s_begin(1, EDA_KIND_REPLY, "GetOrder", NULL, 0, 0), EDA_CONFLICT,
                   message);
    s_check_packed_both(EDA_FLOW_COMMAND, true);
    /* Neither the command nor the reply names an order. */
    pk = s_begin(1, EDA_KIND_REPLY, "Ping", NULL, 0, 1);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "service", "order-service");
    pk = s_begin(0, EDA_KIND_COMMAND, "Ping", NULL, 0, 1);
    msgpack_pack_map(pk, 0);
    s_check_packed_both(EDA_FLOW_COMMAND, true);
}

Test(log, packed_sent_lines_are_the_decoded_lines)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_COMMAND, "ReserveCredit", "o-3", 0, 1);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "order_id", "o-3");
    eda_pack_kv_str(pk, "customer_id", "alice");
    eda_pack_kv_i64(pk, "amount", 549);
    s_check_packed_both(EDA_FLOW_SENT, false);
    s_credit_reserved();
    s_check_packed_both(EDA_FLOW_APPLIED, false); /* "(from ...)" */
}

/*  eda_log_fields_packed writes what eda_log_fields writes, for every size
    of output, cut ones included. */
Test(log, fields_packed_are_the_decoded_fields_at_every_size)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "StockReserved", "o-5", 12, 1);
    msgpack_pack_map(pk, 7);
    eda_pack_kv_str(pk, "order_id", "o-5");
    eda_pack_kv_str(pk, "sku", "apple \"green\" Zo\xc3\xab \xe2\x82\xac");
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "sku", "p\"e\\a\x01r \xf0\x9f\x98\x80\xc2\x9b\xff");
    eda_pack_kv_i64(pk, "qty", -2);
    eda_pack_kv_nil(pk, "x");
    msgpack_pack_double(pk, 2.5);
    eda_pack_kv_bool(pk, "ok", true);
    eda_pack_kv_str(pk, "k=\n", "\x1b[2J");
    msgpack_pack_int(pk, 9); /* a key that is not a string: left out */
    eda_pack_str(pk, "nine");
    eda_pack_kv_u64(pk, "n", 18446744073709551615ULL);
    s_end(0);
    const char *data = s_sbuf[0].data + s_data_at[0];
    size_t len = s_sbuf[0].size - s_data_at[0];
    for (size_t size = 0; size < 200; size++) {
        char want[256], got[256];
        memset(want, '#', sizeof want);
        memset(got, '#', sizeof got);
        size_t nw = eda_log_fields(&s_env[0].data, "order_id", want, size);
        size_t ng = eda_log_fields_packed(data, len, "order_id", got, size);
        cr_assert_eq(ng, nw, "size %zu: %zu, not %zu", size, ng, nw);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "size %zu:\n%.*s\n%.*s", size,
                     (int)size, got, (int)size, want);
    }
}

/*  Bytes that are not msgpack, or that end early, end the pairs there:
    nothing is read past them. */
Test(log, fields_packed_stop_at_bytes_that_are_not_msgpack)
{
    msgpack_packer *pk = s_begin(0, EDA_KIND_EVENT, "StockReserved", "o-5", 12, 1);
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "a", "1");
    eda_pack_key(pk, "b");
    msgpack_pack_array(pk, 2);
    eda_pack_str(pk, "x");
    eda_pack_str(pk, "y");
    eda_pack_kv_str(pk, "c", "3");
    const char *data = s_sbuf[0].data + s_data_at[0];
    size_t len = s_sbuf[0].size - s_data_at[0];
    char out[128];
    cr_assert_eq(eda_log_fields_packed(data, len, NULL, out, sizeof out), 19);
    cr_assert_str_eq(out, "a=1 b=[\"x\",\"y\"] c=3");
    for (size_t cut = 0; cut < len; cut++) {
        size_t n = eda_log_fields_packed(data, cut, NULL, out, sizeof out);
        cr_assert_eq(n, strlen(out));
        cr_assert_eq(strncmp(out, "a=1 b=[\"x\",\"y\"] c=3", n), 0, "%zu: %s", cut, out);
    }
    const char bad[] = "\x82\xa1"
                       "a\xc1\xa1"
                       "b\xa1"
                       "2";
    cr_assert_eq(eda_log_fields_packed(bad, sizeof bad - 1, NULL, out, sizeof out), 2);
    cr_assert_str_eq(out, "a=");
    const char huge[] = "\x81\xa1"
                        "a\xdd\xff\xff\xff\xff"; /* a count past the end */
    eda_log_fields_packed(huge, sizeof huge - 1, NULL, out, sizeof out);
    cr_assert_str_eq(out, "a=");
    cr_assert_eq(eda_log_fields_packed(NULL, 0, NULL, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(eda_log_fields_packed("\xc0", 1, NULL, out, sizeof out), 0);
}
