/*  eda_service: the engine every service runs. It owns the sockets (PUB for
    its events, ROUTER for its commands, per peer a SUB, a DEALER for replay
    and, when the service sends that peer commands, a DEALER for those), the
    store, and the loop: take a batch of ready messages and due timers,
    handle each under a savepoint inside one transaction, commit, then
    publish the new events, send the queued commands and the replies. It
    applies each peer's events exactly once and in seq order, repairs gaps
    with ReplayEvents, answers Ping, Stats and ReplayEvents itself, and
    publishes a heartbeat every second.

    A service is a table: its commands, the peer events it reacts to (each
    optionally only for one saga pattern), the replies to its own commands
    it handles, its timers, its own options, its schema, and start/stop
    functions for its own state. It knows nothing of any one saga. It runs as
    a czmq actor (signals its pipe once ready, exits on "$TERM"), so a test
    can start a whole service in-process; eda_service_main is a whole main().
*/
#ifndef EDA_SERVICE_H_INCLUDED
#define EDA_SERVICE_H_INCLUDED

#include "eda_config.h"
#include "eda_envelope.h"
#include "eda_log.h"
#include "eda_store.h"

#include <czmq.h>

typedef struct eda_service eda_service_t;

/*  A reply a handler builds stays under this many bytes (a list is cut
    short and says so): the replies waiting for a client that does not read
    are bounded by counting them in replies of at most this size. */
#define EDA_REPLY_MAX (64 << 10)
typedef struct eda_ctx eda_ctx_t;

/*  A command handler answers with eda_ctx_reply (then packs one data map) or
    eda_ctx_error, and returns 0; it returns -1 on an internal failure (a
    database error), which undoes its work and answers INTERNAL. An error
    reply also undoes whatever the handler changed (see eda_cmd_undo_t). */
typedef int(eda_command_fn)(void *state, eda_ctx_t *ctx);

/*  An event handler applies one peer event and returns 0, also when it
    decides to ignore it; -1 on an internal failure (a database error), which
    undoes its work and leaves the event unapplied, to be fetched again. It
    runs without a savepoint: a failure after it wrote undoes its whole
    batch, the other messages in it included (they come again). */
typedef int(eda_event_fn)(void *state, eda_ctx_t *ctx);

/*  A reply handler takes the reply to a command the service sent with
    eda_ctx_command (eda_ctx_msg is the reply: its causation_id is the
    command's id, its correlation_id the command's). It returns 0, or -1 on
    an internal failure, which undoes its work, as for an event handler (the
    reply is not seen again: the sender's own timeout covers it). */
typedef int(eda_reply_fn)(void *state, eda_ctx_t *ctx);

/*  A timer runs every interval inside the batch's transaction, like a
    message (eda_ctx_msg is NULL): 0, or -1 to undo its work, as for an
    event handler. */
typedef int(eda_timer_fn)(void *state, eda_ctx_t *ctx);

/*  How a command's failure is undone.
    - EDA_CMD_SAVEPOINT: the handler runs under a savepoint, and an error
      reply or a failure undoes only what it wrote. Safe for any handler.
    - EDA_CMD_CHECKS_FIRST: the handler refuses (answers an error) only
      before it writes, and fails after a write only when the database
      does. It runs without a savepoint, which would copy every page it
      writes; a failure after a write undoes the whole batch (every command
      in it answered INTERNAL, the peers' events fetched again). A handler
      so marked that refuses after it wrote undoes its batch each time
      (logged at error). */
typedef enum { EDA_CMD_SAVEPOINT, EDA_CMD_CHECKS_FIRST } eda_cmd_undo_t;

typedef struct {
    const char *type;
    eda_command_fn *fn;
    eda_cmd_undo_t undo;
} eda_command_t;

typedef struct {
    const char *peer; /* e.g. "order-service" */
    const char *type; /* e.g. "OrderCreated" */
    eda_event_fn *fn;
    /* NULL: every such event. Else only events whose data.saga is this
       string, or names no saga; the others are skipped (counted as ignored)
       without calling fn. */
    const char *saga;
} eda_handler_t;

typedef struct {
    const char *peer; /* the peer the command went to */
    const char *type; /* the command's type, which its reply echoes */
    eda_reply_fn *fn;
} eda_reply_handler_t;

typedef struct {
    uint32_t interval_ms;
    eda_timer_fn *fn;
} eda_timer_t;

typedef struct {
    const char *name;                   /* e.g. "customer-service" */
    const char *colour;                 /* ANSI SGR code of its log lines: "36" */
    const char *schema;                 /* CREATE TABLE IF NOT EXISTS ... */
    void *(*start)(eda_service_t *svc); /* prepares its state; NULL fails */
    void (*stop)(void **state_p);       /* frees it and nulls the pointer */
    const eda_command_t *commands;      /* ends with {0} */
    const eda_handler_t *handlers;      /* ends with {NULL, ...} */
    const eda_reply_handler_t *replies; /* may be NULL; ends with {NULL...} */
    const eda_timer_t *timers;          /* may be NULL; ends with {0, NULL} */
    const eda_option_t *options;        /* its own options; may be NULL */
    /* Packs one map of its own counters for Stats (key "own"); may be
       NULL. */
    void (*stats)(void *state, msgpack_packer *pk);
} eda_service_def_t;

/*  The actor's argument. `status` is set before the actor signals ready: 0
    when it runs, -1 when it could not start (reason logged). */
typedef struct {
    const eda_service_def_t *def;
    const eda_config_t *cfg;
    int status;
} eda_service_args_t;

/*  The actor: zactor_new (eda_service_actor, &args). */
void eda_service_actor(zsock_t *pipe, void *args);

/*  A whole main(): parses options (usage printed for --help), runs the
    service until SIGINT or SIGTERM, and returns the exit code. */
int eda_service_main(const eda_service_def_t *def, int argc, char **argv,
                     const char *usage);

/* --- for handlers -------------------------------------------------------- */

/*  The message being handled: a command or a peer's event. */
const eda_envelope_t *eda_ctx_msg(eda_ctx_t *ctx);

/*  The service's store, for its own statements. */
eda_store_t *eda_ctx_store(eda_ctx_t *ctx);
eda_store_t *eda_service_store(eda_service_t *svc);

/*  The service's logger and configuration. */
eda_log_t *eda_ctx_log(eda_ctx_t *ctx);
eda_log_t *eda_service_log(eda_service_t *svc);
const eda_config_t *eda_service_config(eda_service_t *svc);

/*  Starts an ok reply and returns the packer: pack exactly one map. */
msgpack_packer *eda_ctx_reply(eda_ctx_t *ctx);

/*  Answers with an error (message formatted) and returns 0. */
int eda_ctx_error(eda_ctx_t *ctx, eda_error_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Starts an event of `type` for order `order_id` (its correlation id, may be
    NULL), caused by the message in hand, and returns the packer: pack exactly
    one map, then call eda_ctx_emit_end. */
msgpack_packer *eda_ctx_emit(eda_ctx_t *ctx, const char *type, const char *order_id);

/*  Appends the event begun by eda_ctx_emit to the log; it is published after
    the commit. Returns 0, or -1 on a database error (return -1 then). */
int eda_ctx_emit_end(eda_ctx_t *ctx);

/*  Reads data.order_id of the message in hand into order_id[size]. Returns
    0, or -1 when it has no order_id that is a non-empty string. */
int eda_ctx_order_id(eda_ctx_t *ctx, char *order_id, size_t size);

/*  Starts a command of `type` to `peer` for order `order_id` (its
    correlation id, may be NULL), caused by the message in hand, and returns
    the packer: pack exactly one map, then call eda_ctx_command_end. The
    command is queued in the transaction and sent only after COMMIT, on a
    DEALER of its own; its reply goes to the service's reply handler for
    (peer, type). NULL when `peer` has no reply handler in the table (a
    programmer's mistake, also asserted). Its id is eda_ctx_command_id. */
msgpack_packer *eda_ctx_command(eda_ctx_t *ctx, const char *peer, const char *type,
                                const char *order_id);

/*  The id of the command begun by eda_ctx_command. */
const char *eda_ctx_command_id(eda_ctx_t *ctx);

/*  Queues the command begun by eda_ctx_command. Can't fail. */
void eda_ctx_command_end(eda_ctx_t *ctx);

/*  Counts and logs (one line) an event whose data is unusable; the event is
    then skipped. Returns 0, so a handler can `return eda_ctx_bad_event (...)`. */
int eda_ctx_bad_event(eda_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
