/*  cli: what the `eda` commands share. The parsed command line (global
    options in cli_t, the command's own options and operands in cli_args_t),
    the names the user may slip on (services, statuses, sagas), clients and
    calls that print a one-line reason when they fail, asking every service
    at once under one deadline, and printing: text escaped with eda_text,
    JSON built with jansson.

    Exit codes are the contract's: CLI_OK done, CLI_FAILED a service
    unreachable or a refusal, CLI_USAGE a usage error; place-order --wait
    adds CLI_REJECTED and CLI_PENDING.
*/
#ifndef EDA_CLI_H_INCLUDED
#define EDA_CLI_H_INCLUDED

#include "eda_client.h"
#include "eda_config.h"
#include "eda_keys.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define CLI_OK       0
#define CLI_FAILED   1
#define CLI_USAGE    2
#define CLI_REJECTED 3
#define CLI_PENDING  4

#define CLI_SERVICES 3
#define CLI_SHOWN    (4 * EDA_NAME_MAX + 1) /* an id from the wire, escaped */
#define CLI_OPTS_MAX 256                    /* options given to one command */
#define CLI_SUB_HWM  20000                  /* events a watch or console SUB queues */

/*  The three services, in the order they are shown. */
extern const char *const cli_services[CLI_SERVICES];

/*  The global options, and what they made. */
typedef struct {
    eda_config_t cfg;
    int timeout_ms;
    bool json;
    eda_keys_t *keys; /* the "client" certificate with --keys, else NULL */
} cli_t;

/*  One of the command's own options as given: its long name and its value
    (NULL for a flag). */
typedef struct {
    const char *name;
    const char *value;
} cli_opt_t;

/*  A command's own part of the command line, global options taken out. */
typedef struct {
    const char *command; /* e.g. "orders" */
    const char *usage;   /* its one-line usage, for errors */
    cli_opt_t opts[CLI_OPTS_MAX];
    int nopts;
    char **operands; /* the words after the command, in order */
    int noperands;
} cli_args_t;

/* --- reading the command line ----------------------------------------------- */

/*  The value of the last --`name` given, or NULL. */
const char *cli_opt(const cli_args_t *args, const char *name);

/*  Whether --`name` was given. */
bool cli_flag(const cli_args_t *args, const char *name);

/*  Reads --`name` as a whole number in [min, max] into *out (left alone when
    the option is absent). 0, or CLI_USAGE (printed). */
int cli_opt_i64(const cli_args_t *args, const char *name, int64_t min, int64_t max,
                int64_t *out);

/*  Parses a whole decimal integer in [min, max]. 0 or -1. */
int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);

/*  Finds `text` among `valid[n]`: an exact match, else the one that matches
    ignoring case, else the one it begins (ignoring case) when only one
    does. Returns the valid spelling, or NULL (none, or ambiguous). */
const char *cli_match(const char *text, const char *const *valid, size_t n, bool prefix);

/*  A service name as the user may write it: any case, or a unique start
    ("order", "Inventory"). Returns the service's name, or NULL with a
    one-line reason naming the valid ones in why[size]. */
const char *cli_service(const char *text, char *why, size_t size);

/*  Prints "eda COMMAND: what (usage: ...)" to stderr and returns
    CLI_USAGE. */
int cli_usage_error(const cli_args_t *args, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*  Prints "eda: ..." (escaped whole: callers pass strings from replies as
    they came) to stderr and returns CLI_FAILED. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*  The same with a va_list, returning `rc`: for other exit codes. */
int cli_vsay(int rc, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*  Reads one message from a SUB without waiting. 0 when none was there;
    else 1, with *body the envelope frame of a [topic][envelope] message
    (the caller's to destroy), or NULL when it had another shape. */
int cli_recv_event(zsock_t *sub, zframe_t **body);

/* --- talking to the services --------------------------------------------------- */

/*  Connects a client to `service`'s commands; NULL with a message printed. */
eda_client_t *cli_client(cli_t *cli, const char *service);

/*  The same, secured when keys are given, printing nothing: NULL with the
    reason in why[size]. */
eda_client_t *cli_connect(cli_t *cli, const char *service, char *why, size_t size);

/*  Sends the command begun on `client` and waits up to `timeout_ms`. 0 with
    an ok reply, CLI_FAILED (printed) otherwise. */
int cli_call(eda_client_t *client, const char *service, int timeout_ms,
             eda_envelope_t *reply);

/*  One service's answer to a command sent to all at once. */
typedef struct {
    const char *service;
    eda_client_t *client;
    eda_envelope_t reply;
    bool answered;  /* a reply came (ok or not) */
    int64_t rtt_us; /* from the send to the reply */
    char why[600];  /* when not answered: why (names an endpoint) */
} cli_answer_t;

/*  Sends `type` with empty data to each service of `services[n]` at once
    (one client each) and waits for the replies until one shared deadline,
    `timeout_ms` from now. Fills answers[n]; free them with
    cli_answers_free. Can't fail: a service that cannot be reached is not
    answered. */
void cli_ask_all(cli_t *cli, const char *type, const char *const *services, size_t n,
                 int timeout_ms, cli_answer_t *answers);

/*  Destroys the clients of answers[n] (their replies go with them). */
void cli_answers_free(cli_answer_t *answers, size_t n);

/*  A refusal's "CODE: message" as it came (not escaped) into out[size]. */
const char *cli_refusal(const eda_envelope_t *reply, char *out, size_t size);

/* --- reading replies ---------------------------------------------------------- */

/*  The integer `key` of `map`, or 0. */
int64_t cli_i64(const msgpack_object *map, const char *key);

/*  The string `key` of `map` escaped for the terminal into out[size], or "-"
    when there is none. Returns out. */
const char *cli_str(const msgpack_object *map, const char *key, char *out, size_t size);

/*  Copies the string `key` of `map` as it came (cut to fit; a NUL in it ends
    it), or `absent`. Returns out. */
const char *cli_raw(const msgpack_object *map, const char *key, const char *absent,
                    char *out, size_t size);

/*  Escapes s for the terminal into out[size]; returns out. */
const char *cli_esc(const char *s, char *out, size_t size);

/*  Formats cents as 12.34 into out[size]; returns out. */
const char *cli_money(int64_t cents, char *out, size_t size);

/* --- JSON -------------------------------------------------------------------- */

/*  Builds the JSON value of a msgpack object: a map becomes an object (a key
    that is not a string is written as its JSON text), bin and ext become a
    base64 string, integers stay exact (one above 2^63-1, which jansson cannot
    hold, becomes its decimal string), a float that is not finite becomes
    null, a string that is not UTF-8 has each bad byte read as U+00NN (as
    eda_text does). Returns a new reference, or NULL when memory runs out. */
json_t *cli_json(const msgpack_object *obj);

/*  Prints `value` as one line of JSON and a newline: ASCII only (\uNNNN
    for the rest, and for DEL), so no control reaches a terminal. Steals the
    reference. 0, or CLI_FAILED (printed) when `value` is NULL. */
int cli_print_json_value(json_t *value);

/*  cli_print_json_value with reals to 6 significant digits (2.288, not
    2.2879999999999998): for figures measured here, never for data from the
    wire, which keeps every digit. */
int cli_print_json_figures(json_t *value);

/*  Prints msgpack `obj` as one line of JSON. 0 or CLI_FAILED (printed). */
int cli_print_json(const msgpack_object *obj);

/*  `value` as compact ASCII JSON text in a new string (free it), or NULL.
    Does not steal the reference. */
char *cli_json_text(const json_t *value);

/* --- the commands ---------------------------------------------------------------- */

/*  Each runs one command with its own options and operands and returns the
    exit code. */
int cmd_place_order(cli_t *cli, const cli_args_t *args);
int cmd_order(cli_t *cli, const cli_args_t *args);
int cmd_orders(cli_t *cli, const cli_args_t *args);
int cmd_cancel(cli_t *cli, const cli_args_t *args);
int cmd_customer(cli_t *cli, const cli_args_t *args);
int cmd_stock(cli_t *cli, const cli_args_t *args);
int cmd_ping(cli_t *cli, const cli_args_t *args);
int cmd_stats(cli_t *cli, const cli_args_t *args);
int cmd_bench(cli_t *cli, const cli_args_t *args);
int cmd_keys(cli_t *cli, const cli_args_t *args);
int cmd_watch(cli_t *cli, const cli_args_t *args);
int cmd_trace(cli_t *cli, const cli_args_t *args);
int cmd_console(cli_t *cli, const cli_args_t *args);

/*  The document `eda --json trace ORDER_ID` prints: {order_id, status, saga,
    chain (each event's envelope with `consumers`, the services that react to
    it, and each command as far as it is known), missing, waiting}. Every
    service is asked at once under cli->timeout_ms; callable from any thread
    (it makes its own sockets). Returns a new reference with *status CLI_OK,
    or CLI_FAILED when a service did not answer (the document names it in
    `missing`); NULL with *status CLI_OK when no service holds an event of
    the order, or -1 when memory ran out. */
json_t *trace_document(cli_t *cli, const char *order_id, int *status);

#endif
