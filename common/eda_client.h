/*  eda_client: the command client. A DEALER connected to one service's
    ROUTER; a request is one frame (the command envelope) and so is the reply.
    Used synchronously (eda_client_call, with a timeout) by the `eda` tool and
    asynchronously (send, poll the socket, recv) inside a service loop.
    A timed-out request closes and reopens the socket (the Lazy Pirate
    pattern), so a late reply to it can never be taken for another's.
*/
#ifndef EDA_CLIENT_H_INCLUDED
#define EDA_CLIENT_H_INCLUDED

#include "eda_envelope.h"
#include "eda_keys.h"

#include <czmq.h>

typedef struct eda_client eda_client_t;

/*  Creates a client connected to `endpoint`, sending as `source`. Returns NULL
    when the endpoint is malformed or memory runs out. */
eda_client_t *eda_client_new(const char *endpoint, const char *source);

/*  Destroys the client and nulls the pointer. Idempotent. */
void eda_client_destroy(eda_client_t **self_p);

/*  Starts a command of `type` belonging to order `correlation_id` (may be
    NULL) and returns the packer positioned at the `data` value: the caller
    packs exactly one map. The command's id is in eda_client_last_id. */
msgpack_packer *eda_client_begin(eda_client_t *self, const char *type,
                                 const char *correlation_id);

/*  Sends the command built since eda_client_begin without waiting. Returns
    0, or -1 when it cannot be queued (no connection yet with ZMQ_IMMEDIATE,
    or the queue is full). */
int eda_client_send(eda_client_t *self);

/*  Sends the command built since eda_client_begin and waits up to
    `timeout_ms` for its reply, which is decoded into `reply` (valid until the
    next call). Returns 0 with a reply (look at reply->ok), or -1 with a
    reason in `why` on timeout, interruption or an undecodable reply. */
int eda_client_call(eda_client_t *self, int timeout_ms, eda_envelope_t *reply, char *why,
                    size_t why_size);

/*  Receives and decodes one waiting reply without blocking. Returns 0 with
    the reply, 1 when nothing is waiting, -1 when what came cannot be decoded
    as a reply. */
int eda_client_recv(eda_client_t *self, eda_envelope_t *reply);

/*  Closes and reopens the socket, dropping whatever was in flight. 0 or -1. */
int eda_client_reset(eda_client_t *self);

/*  Drops the connection and connects again on the same socket (no new
    socket: nothing to fail when descriptors run out), for a server that
    went silent. libzmq never retries a connection whose handshake failed
    (a CURVE mismatch, an impostor on the port). 0 or -1. */
int eda_client_reconnect(eda_client_t *self);

/*  With `on`, a command is queued only on a connection that is up: while the
    service is down a send fails at once (eda_client_send returns -1) instead
    of piling up to be delivered in a burst when it returns. Reconnects the
    socket (eda_client_reset). 0 or -1. */
int eda_client_set_immediate(eda_client_t *self, bool on);

/*  Speaks CURVE to service `server` from now on, with `keys` (kept by
    pointer: they must outlive the client). Reconnects the socket. 0, or -1
    when the server's public certificate cannot be read. */
int eda_client_secure(eda_client_t *self, eda_keys_t *keys, const char *server);

/*  The id of the last command begun. */
const char *eda_client_last_id(eda_client_t *self);

/*  The socket, for a poll loop. Changes after eda_client_reset; NULL when
    that reset failed (send and recv then do nothing until another reset). */
zsock_t *eda_client_sock(eda_client_t *self);

/*  Fills out[size] with a new message id: a random per-process prefix and a
    counter. Can't fail. */
void eda_new_id(char *out, size_t size);

/*  Fills out[nhex + 1] with nhex random hex digits (nhex <= 64) from
    /dev/urandom, or from the time and pid when it cannot be read. */
void eda_random_hex(char *out, size_t nhex);

#endif
