/*  eda_log: one line per thing that happened. Event-flow lines (an event
    published or applied, a command answered) carry time, service, direction,
    type, order id, seq and the message's fields; plain lines carry a level
    and a sentence. Text (one colour per service on a tty) or JSON lines.
*/
#ifndef EDA_LOG_H_INCLUDED
#define EDA_LOG_H_INCLUDED

#include "eda_config.h"
#include "eda_envelope.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct eda_log eda_log_t;

/*  Creates a logger for `service` writing to `out` (not closed on destroy).
    Returns NULL when out of memory. */
eda_log_t *eda_log_new(const char *service, eda_log_format_t format,
                       eda_log_level_t level, FILE *out);

/*  Sets the colour of the service's name on a tty: an ANSI SGR code such as
    "36" (cyan). Green until set; nothing without a tty. Can't fail. */
void eda_log_set_colour(eda_log_t *self, const char *sgr);

/*  Destroys the logger and nulls the pointer. Idempotent. */
void eda_log_destroy(eda_log_t **self_p);

/*  Writes the lines gathered so far. A service calls it once per batch;
    destroy calls it too. Can't fail (a write error is the stream's). */
void eda_log_flush(eda_log_t *self);

/*  True when lines of `level` are written. */
bool eda_log_enabled(eda_log_t *self, eda_log_level_t level);

/*  Writes a plain line at `level`. The formatted text is escaped whole
    (eda_escape: control characters as \xNN; JSON escapes in JSON lines),
    so arguments that came from the wire may be passed as they are. */
void eda_log_msg(eda_log_t *self, eda_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  The direction of an event-flow line. */
typedef enum {
    EDA_FLOW_PUBLISHED, /* an event this service published */
    EDA_FLOW_APPLIED,   /* a peer's event this service applied */
    EDA_FLOW_COMMAND,   /* a command this service answered */
    EDA_FLOW_SENT       /* a command this service sent (orchestrator) */
} eda_flow_t;

/*  Writes an event-flow line at info level for envelope `env`: for a command
    answered, `reply` is the reply envelope (its data or error is shown).
    Every string of the envelopes is escaped as eda_text says. */
void eda_log_flow(eda_log_t *self, eda_flow_t dir, const eda_envelope_t *env,
                  const eda_envelope_t *reply);

/*  The order a message is about, for its flow line, into out[size]: the
    envelope's correlation id, else its data.order_id, else (when `reply`
    is not NULL) the reply's data.order_id; "" when none. */
void eda_log_order_id(const eda_envelope_t *env, const eda_envelope_t *reply, char *out,
                      size_t size);

/*  What an event-flow line shows of a message the service built itself,
    as the engine knows it when it builds the message, so that the line is
    rendered without decoding the message again. For a command answered:
    the command's type, order, seq and source, and the reply's error. */
typedef struct {
    const char *type;
    const char *order;  /* the correlation id; "" or NULL: data's order_id */
    const char *source; /* "" or NULL for none */
    bool has_seq;
    uint64_t seq;
    const char *error_code; /* a failed reply: its code and message, else NULL */
    const char *error_message;
} eda_flow_head_t;

/*  Writes the event-flow line eda_log_flow writes for the same message,
    from `head` and the `data` map packed in data[len] (msgpack bytes, read
    in place: no object tree, no allocation; for a command answered, the
    reply's data; ignored for a failed reply). */
void eda_log_flow_packed(eda_log_t *self, eda_flow_t dir, const eda_flow_head_t *head,
                         const void *data, size_t len);

/*  Renders one data map as text: `key=value` pairs separated by spaces,
    `skip` left out (may be NULL). A key or string value goes bare when it is
    printable with no space, quote or backslash (nor '=' in a key), else
    between quotes, escaped (eda_escape_quoted); nested values go as JSON
    (eda_json). Nothing from the map reaches out raw. Returns the length
    written into out[size]. Can't fail. */
size_t eda_log_fields(const msgpack_object *data, const char *skip, char *out,
                      size_t size);

/*  The same for a data map packed in data[len] (msgpack bytes), read in
    place. Bytes that are not msgpack end the pairs there. */
size_t eda_log_fields_packed(const void *data, size_t len, const char *skip, char *out,
                             size_t size);

#endif
