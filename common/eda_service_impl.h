/*  eda_service_impl: what the engine's files share and no service sees. The
    engine is split along its seams: eda_service.c (start, stop, the loop,
    batches and transactions), eda_ctx.c (what handlers call), eda_intake.c
    (commands in, the reply queue), eda_peers.c (peers' events, replay, the
    command clients) and eda_builtins.c (Ping, Stats, ReplayEvents).

    Queues in memory (byte arenas, reused across batches):
      outbox    [u32 body_len][body][flow record] per event (its topic: the
                record's type)
      replies   [u32 nframes] then [u32 len][bytes] per frame, per reply
      commands  [u32 peer index][u32 body_len][body][flow record] per command
                to a peer
    A flow record holds what the message's event-flow line shows besides its
    data (eda_arena_put_flow), so that the line is written without decoding
    the message again.
*/
#ifndef EDA_SERVICE_IMPL_H_INCLUDED
#define EDA_SERVICE_IMPL_H_INCLUDED

#include "eda_client.h"
#include "eda_hist.h"
#include "eda_service.h"

#include <string.h>

#define EDA_SVC_BATCH_MAX   512       /* messages handled in one transaction */
#define EDA_SVC_QUEUE_SOFT  (4 << 20) /* a batch ends once its replies pass this */
#define EDA_SVC_BUFFER_KEEP (8 << 20) /* buffers grown past this are freed after */
#define EDA_SVC_HWM         100000
/*  Replies waiting for one client that does not read are bounded in bytes:
    half in the ROUTER's queue for it (its high-water mark counts replies,
    each under EDA_REPLY_MAX), half in the service's backlog for it. */
#define EDA_SVC_REPLY_BUDGET  (64 << 20)
#define EDA_SVC_ROUTER_HWM    (EDA_SVC_REPLY_BUDGET / 2 / EDA_REPLY_MAX)
#define EDA_SVC_BACKLOG_MAX   (EDA_SVC_REPLY_BUDGET / 2)
#define EDA_SVC_BACKLOG_MS    2     /* how soon a backlog is tried again */
#define EDA_SVC_COMMAND_HWM   10000 /* commands queued per client connection */
#define EDA_SVC_HEARTBEAT_MS  1000
#define EDA_SVC_SILENCE_MS    (3 * EDA_SVC_HEARTBEAT_MS) /* a peer is missed after */
#define EDA_SVC_RECONNECT_MAX 30000 /* between reconnects to a silent peer */
#define EDA_SVC_TIMERS_MAX    8
#define EDA_SVC_REPLAY_LIMIT  1000 /* events asked for, or served, per ReplayEvents */
#define EDA_SVC_REPLAY_BYTES  (EDA_REPLY_MAX - 4096) /* events in one reply */

/*  One peer: its events (SUB), the DEALER that asks it for missed events,
    and, when the service sends it commands, a second DEALER for those, so
    that resetting a timed-out replay never loses a command in flight. */
typedef struct {
    char name[64];
    zsock_t *sub;
    eda_client_t *client;   /* replay requests */
    eda_client_t *commands; /* the service's own commands; NULL when none */
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last_seq; /* last applied, this transaction included */
    char committed_epoch[EDA_NAME_MAX + 1];
    uint64_t committed_seq;
    bool dirty; /* checkpoint to write before commit */
    bool replay_pending;
    int64_t replay_sent_ms;
    int64_t replay_wait_ms; /* how long this request may take */
    uint64_t replay_after;
    char replay_id[EDA_NAME_MAX + 1];
    bool behind;               /* its log went backwards: reported once */
    int64_t replay_not_before; /* no request before this: see s_replay_quiet */
    int64_t replay_quiet;      /* the last such wait, doubling while fruitless */
    bool replay_wanted;        /* a request put off until replay_not_before */
    int64_t heard_ms;          /* when its SUB last brought something readable */
    int64_t reconnect_ms;      /* when to reconnect again while it stays silent */
    int64_t reconnect_wait;
    bool silent;           /* reported once until it is heard again */
    bool gone;             /* it no longer keeps events we need: said once */
    bool reported;         /* it said how far it applied our log: eda_fence */
    uint64_t reported_seq; /* how far, 0 when it knows another log of ours */
} eda_peer_t;

/*  What a peer said of how far it applied this service's log
    (eda_retain.c); sub is set when the service does not follow it and
    hears its heartbeats on a SUB of their own. */
typedef struct {
    char name[64];
    zsock_t *sub;
    bool heard;       /* a heartbeat since the start */
    bool subscribes;  /* it follows this service */
    uint64_t applied; /* of this log; 0 when it follows another of ours */
} eda_watch_t;

typedef struct {
    uint64_t commands, replies, events_published, events_applied, events_ignored;
    uint64_t duplicates, gaps, gaps_repaired, replays_requested, bad_input;
    uint64_t batches, messages, batch_max, handler_us_total, handler_us_max, handled;
    uint64_t replies_dropped, commits_failed;
    uint64_t commands_sent, commands_dropped, replies_received;
    uint64_t events_dropped;      /* events a full subscriber missed */
    uint64_t fds_used, fds_limit; /* file descriptors, read once a heartbeat */
    eda_hist_t handler_us;        /* handler times, for percentiles */
    eda_hist_t commit_us;         /* batch commit times, the same way */
    uint64_t commit_us_max;
} eda_svc_stats_t;

struct eda_ctx {
    eda_service_t *svc;
    const eda_envelope_t *msg; /* NULL for a timer */
    bool replied;
    bool reply_ok;
    bool emitting;
    char emit_type[EDA_NAME_MAX + 1];
    char emit_order[EDA_NAME_MAX + 1]; /* its correlation_id, "" for none */
    uint64_t emit_seq;
    uint32_t emit_data; /* where its data map starts in event_buf */
    int command_peer;   /* peer index of the command being built, -1 none */
    char command_id[EDA_NAME_MAX + 1];
    char command_type[EDA_NAME_MAX + 1];
    char command_order[EDA_NAME_MAX + 1]; /* its correlation_id, "" for none */
    uint32_t command_data;                /* where its data map starts */
    uint32_t reply_data;    /* where the reply's data map starts in reply_buf */
    eda_error_t reply_code; /* an error reply's code; its message: reply_message */
};

/*  How a message's unit of work is undone when its handler fails.
    - EDA_UNIT_SAVEPOINT (a client's command): a command may be refused
      after it wrote, and only its own changes go, through a savepoint.
    - EDA_UNIT_BATCH (a peer's event, a reply, a timer): their handlers
      fail only when the database does. They run without a savepoint (it
      would copy every page the unit writes), and a failure after a write
      undoes the whole batch, as a failed commit does: its events come
      again, its commands are answered INTERNAL. */
typedef enum { EDA_UNIT_SAVEPOINT, EDA_UNIT_BATCH } eda_unit_t;

struct eda_service {
    const eda_service_def_t *def;
    eda_config_t cfg;
    eda_log_t *log;
    eda_store_t *store;
    eda_keys_t *keys;             /* CURVE, or NULL for plain sockets */
    eda_decoder_t *decoder;       /* incoming messages */
    eda_decoder_t *log_decoder;   /* the service's own bytes read back (its log, its
                                     replies), while a message `decoder` read may
                                     still be in hand */
    zsock_t *pipe, *router, *pub; /* pub is an XPUB: see s_publish */
    bool fds_full;                /* out of descriptors: reported once */
    eda_peer_t peers[EDA_PEERS_MAX];
    size_t npeers;
    void *state;
    msgpack_sbuffer reply_buf, event_buf, command_buf, tmp;
    char reply_message[512]; /* the last error reply's message, for its flow line */
    msgpack_packer reply_pk, event_pk, command_pk;
    msgpack_sbuffer outbox, replies, commands;
    zhashx_t *backlogs;   /* client identity (hex) -> replies it has not read */
    size_t backlog_bytes; /* in all backlogs */
    size_t outbox_mark, commands_mark; /* sizes at the unit's start */
    eda_unit_t unit;                   /* the open unit's kind */
    uint64_t unit_changes;             /* eda_store_changes at its start */
    bool in_batch;
    bool batch_undone; /* a unit failed after it wrote: the batch will not commit */
    bool terminated;
    int64_t started_ms, next_heartbeat_ms;
    int64_t timer_next_ms[EDA_SVC_TIMERS_MAX];
    size_t ntimers;
    eda_svc_stats_t stats;
    /* eda_fence.c: events after fence_seq are held back while fenced */
    bool fenced;
    uint64_t fence_seq;
    uint64_t lost_seq;      /* a peer applied this much of a log that lost commits */
    char lost_by[64];       /* that peer */
    int64_t fence_retry_ms; /* a new log the database refused: next try */
    eda_watch_t watch[EDA_PEERS_MAX]; /* eda_retain.c, with --retain-events */
    size_t nwatch;
    int64_t retain_next_ms; /* when eda_retain_timers deletes again */
    bool retain_more;       /* its last chunk left more to delete */
};

/* --- arenas ---------------------------------------------------------------- */

static inline void eda_arena_u32(msgpack_sbuffer *a, uint32_t v)
{
    msgpack_sbuffer_write(a, (const char *)&v, sizeof v);
}

static inline uint32_t eda_arena_read_u32(const char **p)
{
    uint32_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/*  Appends one record to an arena: [u32 len][bytes]. */
static inline void eda_arena_put(msgpack_sbuffer *a, const void *data, size_t len)
{
    eda_arena_u32(a, (uint32_t)len);
    msgpack_sbuffer_write(a, data, len);
}

/*  Reads the record at *p, moving *p past it: returns its bytes. */
static inline const char *eda_arena_get(const char **p, uint32_t *len)
{
    *len = eda_arena_read_u32(p);
    const char *data = *p;
    *p += *len;
    return data;
}

/*  What a queued event's or command's flow line shows besides its data. */
typedef struct {
    uint64_t seq;      /* an event's */
    uint32_t data;     /* where the data map starts in the body */
    const char *type;  /* NUL-terminated, at most EDA_NAME_MAX bytes */
    const char *order; /* the correlation_id, "" for none; the same */
} eda_flow_rec_t;

/*  Appends a flow record: [u32 len][u64 seq][u32 data][type NUL][order NUL]. */
static inline void eda_arena_put_flow(msgpack_sbuffer *a, const eda_flow_rec_t *f)
{
    char rec[12 + 2 * (EDA_NAME_MAX + 1)];
    size_t tlen = strnlen(f->type, EDA_NAME_MAX), olen = strnlen(f->order, EDA_NAME_MAX);
    memcpy(rec, &f->seq, 8);
    memcpy(rec + 8, &f->data, 4);
    memcpy(rec + 12, f->type, tlen);
    rec[12 + tlen] = '\0';
    memcpy(rec + 13 + tlen, f->order, olen);
    rec[13 + tlen + olen] = '\0';
    eda_arena_put(a, rec, 14 + tlen + olen);
}

/*  Reads the flow record at *p, moving *p past it; its strings point into
    the arena. */
static inline void eda_arena_get_flow(const char **p, eda_flow_rec_t *f)
{
    uint32_t len;
    const char *rec = eda_arena_get(p, &len);
    memcpy(&f->seq, rec, 8);
    memcpy(&f->data, rec + 8, 4);
    f->type = rec + 12;
    f->order = f->type + strlen(f->type) + 1;
}

/* --- eda_service.c: transactions ------------------------------------------ */

/*  Starts one message's unit of work inside the batch's transaction,
    begun on the first message that needs it. 0 or -1. */
int eda_svc_unit_begin(eda_service_t *svc, eda_unit_t kind);

/*  Ends one message's unit of work: keeps it, or undoes the events and
    commands it queued and its changes (for EDA_UNIT_BATCH, with the whole
    batch when it wrote). */
void eda_svc_unit_end(eda_service_t *svc, bool keep);

/*  Opens the batch's transaction if it is not open yet. 0 or -1. */
int eda_svc_batch_begin(eda_service_t *svc);

/*  Counts the time one message took to handle, from `start` (usecs). */
void eda_svc_count_latency(eda_service_t *svc, int64_t start);

/*  A socket of `type` with the engine's options, bound or connected to
    `endpoint`: with keys, a CURVE server when bound, a CURVE client of
    service `server` when connected. NULL (logged) when that fails. */
zsock_t *eda_svc_socket(eda_service_t *svc, int type, const char *endpoint, bool bind,
                        const char *server);

/*  Makes a peer's client speak CURVE when the service has keys. 0 or -1
    (logged). */
int eda_svc_secure_client(eda_service_t *svc, eda_client_t *client, const char *server);

/*  Publishes an event read back from the log (eda_fence's held ones),
    body as logged and env its decoding, and logs its flow line. */
void eda_svc_publish_event(eda_service_t *svc, const eda_envelope_t *env,
                           const void *body, size_t blen);

/* --- eda_intake.c: commands in, replies out ---------------------------------- */

/*  Reads and handles one command message from the ROUTER without waiting.
    Returns 1 when one was handled, 0 when none was waiting. */
int eda_intake_recv(eda_service_t *svc);

/*  Sends the queued replies (after a commit, or for a batch that needed
    none). Can't fail: a reply that cannot be sent is counted as dropped. */
void eda_intake_send_replies(eda_service_t *svc);

/*  Turns every queued reply into INTERNAL: its batch did not commit. */
void eda_intake_fail_replies(eda_service_t *svc);

/*  Sends what it can of the replies waiting for clients that did not read.
    Returns true when some still wait (the loop then comes back soon). */
bool eda_intake_flush(eda_service_t *svc);

/*  Frees every backlog. */
void eda_intake_close(eda_service_t *svc);

/*  The destructor of one client's backlog (for svc->backlogs). */
void eda_intake_backlog_destroy(void **item);

/* --- eda_peers.c: peers' events, replay, commands to peers -------------------- */

/*  Adds every peer named in the handler and reply tables, once, with its
    inbox checkpoint. 0, or -1 (logged). */
int eda_peers_open(eda_service_t *svc);

/*  Closes every peer's sockets. */
void eda_peers_close(eda_service_t *svc);

/*  Reads one message from a peer's SUB without waiting. 1 read, 0 none. */
int eda_peers_recv_event(eda_service_t *svc, eda_peer_t *peer);

/*  Reads one reply to a replay request. 1 read, 0 none. */
int eda_peers_recv_replay(eda_service_t *svc, eda_peer_t *peer);

/*  Reads one reply to a command the service sent. 1 read, 0 none. */
int eda_peers_recv_reply(eda_service_t *svc, eda_peer_t *peer);

/*  Asks the peer for the events after the last one applied, unless a request
    is already out. */
void eda_peers_request_replay(eda_service_t *svc, eda_peer_t *peer);

/*  Gives up on replay requests unanswered for too long and asks again.
    Returns the monotonic time of the next such check (INT64_MAX: none). */
int64_t eda_peers_timers(eda_service_t *svc, int64_t now);

/*  Sends the queued commands to their peers (after a commit). */
void eda_peers_send_commands(eda_service_t *svc);

/* --- eda_fence.c: a restarted log checked against the peers ------------------ */

/*  After the peers are open: holds new events back when the log has some. */
void eda_fence_start(eda_service_t *svc);

/*  The last seq the peers may see (heartbeats, ReplayEvents). */
uint64_t eda_fence_visible(eda_service_t *svc);

/*  Packs the keys `applied` {peer: seq} and `applied_epoch` {peer: epoch}:
    how far this service applied each peer's log, as committed. */
void eda_fence_pack_applied(eda_service_t *svc, msgpack_packer *pk);

/*  Reads what a peer's heartbeat or ReplayEvents reply (`data`) says it
    applied of this service's log: false when it does not follow this
    service; else true with *seq, 0 when it follows another log of ours. */
bool eda_fence_applied(eda_service_t *svc, const msgpack_object *data, uint64_t *seq);

/*  Takes what a peer's heartbeat or ReplayEvents reply (`data`) says it
    applied of this service's log. */
void eda_fence_report(eda_service_t *svc, eda_peer_t *peer, const msgpack_object *data);

/*  Between batches: starts a new log when a peer is ahead of this one, and
    releases the held events once every peer has reported or is silent. */
void eda_fence_timers(eda_service_t *svc, int64_t now);

/* --- eda_retain.c: --retain-events ------------------------------------------- */

/*  Opens a heartbeat SUB to each configured peer not followed. 0 or -1. */
int eda_retain_open(eda_service_t *svc);
void eda_retain_close(eda_service_t *svc);

/*  Takes a peer's heartbeat data (`applied`) for retention. */
void eda_retain_report(eda_service_t *svc, const char *peer, const msgpack_object *data);

/*  The heartbeat SUB of watch i (NULL when its peer is followed), and reads
    one message from it without waiting: 1 read, 0 none. */
zsock_t *eda_retain_sock(eda_service_t *svc, size_t i);
int eda_retain_recv(eda_service_t *svc, size_t i);

/*  Between batches, at most every S_RETAIN_MS: deletes what every peer
    applied and the newest N do not need, a bounded chunk at a time. Returns
    the monotonic time it wants to be called again: soon while chunks are
    left, INT64_MAX when not (the loop calls it after each wake anyway). */
int64_t eda_retain_timers(eda_service_t *svc, int64_t now);

/* --- eda_builtins.c ---------------------------------------------------------------- */

/*  Ping, Stats and ReplayEvents, answered by every service. */
extern const eda_command_t eda_builtin_commands[];

/*  At start: indexes by order (for ReplayEvents {correlation_id}) the events
    that a version without the index logged. 0, or -1 on a database error. */
int eda_builtins_index_log(eda_service_t *svc);

#endif
