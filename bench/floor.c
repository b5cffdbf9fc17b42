/*  eda-floor: the saga's message pattern with no work, the floor that
    `eda bench` is measured against.

    Three processes play order-service, customer-service and
    inventory-service; the parent plays `eda bench`. Every process has the
    sockets a real service has (an XPUB and a ROUTER bound, a SUB and a
    replay DEALER per peer it follows, order's two command DEALERs) with the
    same options, polls them all, and sends on each message what the real
    service sends, in the same order, with frames of the same sizes. What
    it does not do is the work: no decoding (the order's index rides in the
    first bytes of every body, the rest is filler), no database, no log.
    So the gap between this and `eda bench` through the services is what
    the services' own work costs, and the floor moves with the machine.

    Choreography (default):
      client DEALER --PlaceOrder--> order ROUTER; order publishes
      OrderCreated, then replies PENDING. customer, on OrderCreated,
      publishes CreditReserved. inventory, on the second of OrderCreated
      and CreditReserved, publishes StockReserved. order, on StockReserved,
      publishes OrderApproved, which the client sees on its SUB.
    Orchestration (--saga orchestration):
      order, on PlaceOrder, publishes OrderCreated, sends ReserveCredit to
      customer's ROUTER on its DEALER, replies PENDING. customer publishes
      CreditReserved and replies; order sends ReserveStock to inventory,
      which publishes StockReserved and replies; order publishes
      OrderApproved. The events of the participants go to their
      subscribers, who pass them over, as the real services do.

    The client keeps --window orders in flight (500, as eda bench) or one
    with --serial, the latency floor, and times each saga from its
    PlaceOrder to its OrderApproved, as eda bench does.
*/
#include "latency.h"

#include <zmq.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*  Sizes of the real bodies, in bytes, and the topic is the type. Measured
    on the saga's real envelopes: a proxy between the services (a ROUTER in
    front of each commands endpoint, a DEALER to it) and a SUB on every
    events endpoint printed the size of every body while `eda bench
    --orders 1000` ran in each pattern; these are the commonest. They grow
    by a byte or two as seqs and order numbers gain digits. */
enum {
    S_PLACE_ORDER = 224, /* with saga: 225 in orchestration (one byte more) */
    S_PLACE_REPLY = 175, /* 177 in orchestration */
    S_ORDER_CREATED = 306,
    S_CREDIT_RESERVED = 281,
    S_STOCK_RESERVED = 277,
    S_ORDER_APPROVED = 242,
    /* orchestration */
    S_O_PLACE_ORDER = 225,
    S_O_PLACE_REPLY = 177,
    S_O_ORDER_CREATED = 309,
    S_RESERVE_CREDIT = 217,
    S_RESERVE_CREDIT_REPLY = 204,
    S_O_CREDIT_RESERVED = 277,
    S_RESERVE_STOCK = 220,
    S_RESERVE_STOCK_REPLY = 204,
    S_O_STOCK_RESERVED = 274,
    S_O_ORDER_APPROVED = 237,
    S_HEARTBEAT = 300, /* about: one a second, it does not matter */
    S_FRAME_MAX = 2048 /* a frame read larger than this is cut */
};

/*  The services' socket options (docs/protocol.md section 1). */
enum {
    S_HWM = 100000,
    S_ROUTER_SNDHWM = 512,
    S_ROUTER_RCVHWM = 10000,
    S_DEALER_HWM = 10000,
    S_HEARTBEAT_MS = 1000,
    S_WARMUP_MS = 10 /* heartbeats this often until the first order */
};

typedef enum { S_ORDER, S_CUSTOMER, S_INVENTORY, S_ROLES } s_role_t;

static const char *s_names[S_ROLES] = {"order", "customer", "inventory"};

/*  The whole run's settings, shared by the processes through fork. */
typedef struct {
    long orders;
    long window;
    long rate; /* orders per second, 0 unpaced */
    bool orchestration;
    bool json;
    char dir[64]; /* the ipc endpoints' folder */
} s_args_t;

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_endpoint(char *out, size_t size, const s_args_t *args, s_role_t role,
                       const char *channel)
{
    snprintf(out, size, "ipc://%s/%s-%s", args->dir, s_names[role], channel);
}

/*  A socket as the services make it (eda_svc_socket): bound, or connected
    with ZMTP heartbeats; NULL on failure, printed. */
static void *s_socket(void *ctx, int type, const char *endpoint, bool bind)
{
    void *sock = zmq_socket(ctx, type);
    if (!sock)
        return NULL;
    int linger = type == ZMQ_XPUB ? 200 : 0, one = 1, ivl = S_HEARTBEAT_MS,
        timeout = 3 * S_HEARTBEAT_MS;
    int sndhwm = type == ZMQ_ROUTER   ? S_ROUTER_SNDHWM
                 : type == ZMQ_DEALER ? S_DEALER_HWM
                                      : S_HWM;
    int rcvhwm = type == ZMQ_ROUTER   ? S_ROUTER_RCVHWM
                 : type == ZMQ_DEALER ? S_DEALER_HWM
                                      : S_HWM;
    int64_t maxmsg = 1 << 20;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    if (!bind) {
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    }
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (type == ZMQ_XPUB)
        zmq_setsockopt(sock, ZMQ_XPUB_NODROP, &one, sizeof one);
    if (type == ZMQ_SUB)
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
    if ((bind ? zmq_bind(sock, endpoint) : zmq_connect(sock, endpoint)) != 0) {
        fprintf(stderr, "eda-floor: cannot %s %s: %s\n", bind ? "bind" : "connect to",
                endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/*  One message read: up to three frames (a ROUTER's identity, a topic or
    nothing, the body), each cut to S_FRAME_MAX. */
typedef struct {
    size_t n;
    size_t size[3];
    unsigned char frame[3][S_FRAME_MAX];
} s_msg_t;

/*  Reads one message without waiting: 1, or 0 when none is there. */
static int s_recv(void *sock, s_msg_t *msg)
{
    msg->n = 0;
    int more = 1;
    size_t len = sizeof more;
    while (more) {
        size_t i = msg->n < 3 ? msg->n : 2; /* more frames: the last slot */
        int got = zmq_recv(sock, msg->frame[i], S_FRAME_MAX, msg->n ? 0 : ZMQ_DONTWAIT);
        if (got < 0)
            return 0;
        msg->size[i] = (size_t)got < S_FRAME_MAX ? (size_t)got : S_FRAME_MAX;
        msg->n = i + 1;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    }
    return 1;
}

/*  The order's index, which every body carries in its first 8 bytes: the
    only thing read of a body. -1 when there is none. */
static long s_index(const s_msg_t *msg)
{
    if (msg->n == 0 || msg->size[msg->n - 1] < sizeof(int64_t))
        return -1;
    int64_t i;
    memcpy(&i, msg->frame[msg->n - 1], sizeof i);
    return (long)i;
}

static bool s_is(const s_msg_t *msg, const char *topic)
{
    return msg->n == 2 && msg->size[0] == strlen(topic) &&
           memcmp(msg->frame[0], topic, msg->size[0]) == 0;
}

/*  Sends a body of `size` bytes that carries order `index`, after the
    frames in `head` (a routing identity, or a topic): `size` filler bytes
    are what the real envelope would weigh. */
static void s_send(void *sock, const void *head, size_t head_len, long index, size_t size)
{
    static unsigned char body[S_FRAME_MAX];
    if (!body[S_FRAME_MAX - 1])
        memset(body, 'x', sizeof body);
    int64_t i = index;
    memcpy(body, &i, sizeof i);
    if (head)
        zmq_send(sock, head, head_len, ZMQ_SNDMORE);
    zmq_send(sock, body, size, 0);
}

static void s_publish(void *pub, const char *topic, long index, size_t size)
{
    s_send(pub, topic, strlen(topic), index, size);
}

/* --- the three services ------------------------------------------------- */

/*  One service's sockets, in the order a real service polls them. */
typedef struct {
    s_role_t role;
    const s_args_t *args;
    void *pub, *router;
    void *sub[2], *replay[2]; /* per peer it follows */
    s_role_t follows[2];
    int nfollow;
    void *command[S_ROLES]; /* order's DEALERs to the participants */
    unsigned char *seen;    /* inventory: bit 1 OrderCreated, bit 2 CreditReserved */
    int64_t next_heartbeat;
    bool warm; /* an order came: heartbeats once a second */
    int ready_fd;
    bool heard[2];
    bool ready_sent;
} s_service_t;

static void s_heartbeats(s_service_t *svc)
{
    int64_t now = s_now_us();
    if (now < svc->next_heartbeat)
        return;
    s_publish(svc->pub, "Heartbeat", -1, S_HEARTBEAT);
    svc->next_heartbeat = now + 1000 * (svc->warm ? S_HEARTBEAT_MS : S_WARMUP_MS);
}

/*  Tells the parent once every peer followed has been heard from: then
    this service's SUBs are joined, and nothing published is lost. */
static void s_heard(s_service_t *svc, int peer)
{
    svc->heard[peer] = true;
    if (svc->ready_sent)
        return;
    for (int p = 0; p < svc->nfollow; p++)
        if (!svc->heard[p])
            return;
    svc->ready_sent = write(svc->ready_fd, "r", 1) == 1;
}

static bool s_orch(const s_service_t *svc)
{
    return svc->args->orchestration;
}

/*  A command on the ROUTER: [identity][body]. */
static void s_on_command(s_service_t *svc, const s_msg_t *msg)
{
    long i = s_index(msg);
    if (msg->n != 2 || i < 0 || i >= svc->args->orders)
        return;
    svc->warm = true;
    /* Events first, then commands, then the reply: the order a real
       service sends them in after its commit. */
    switch (svc->role) {
    case S_ORDER:
        if (s_orch(svc)) {
            s_publish(svc->pub, "OrderCreated", i, S_O_ORDER_CREATED);
            s_send(svc->command[S_CUSTOMER], NULL, 0, i, S_RESERVE_CREDIT);
        } else
            s_publish(svc->pub, "OrderCreated", i, S_ORDER_CREATED);
        s_send(svc->router, msg->frame[0], msg->size[0], i,
               s_orch(svc) ? S_O_PLACE_REPLY : S_PLACE_REPLY);
        break;
    case S_CUSTOMER: /* ReserveCredit */
        s_publish(svc->pub, "CreditReserved", i, S_O_CREDIT_RESERVED);
        s_send(svc->router, msg->frame[0], msg->size[0], i, S_RESERVE_CREDIT_REPLY);
        break;
    case S_INVENTORY: /* ReserveStock */
        s_publish(svc->pub, "StockReserved", i, S_O_STOCK_RESERVED);
        s_send(svc->router, msg->frame[0], msg->size[0], i, S_RESERVE_STOCK_REPLY);
        break;
    default:
        break;
    }
}

/*  An event of a followed peer: [topic][body]. The choreography. */
static void s_on_event(s_service_t *svc, int peer, const s_msg_t *msg)
{
    if (s_is(msg, "Heartbeat")) {
        s_heard(svc, peer);
        return;
    }
    long i = s_index(msg);
    if (i < 0 || i >= svc->args->orders)
        return;
    svc->warm = true;
    if (s_orch(svc))
        return; /* orchestrated events are for observers only */
    s_role_t from = svc->follows[peer];
    if (svc->role == S_CUSTOMER && s_is(msg, "OrderCreated"))
        s_publish(svc->pub, "CreditReserved", i, S_CREDIT_RESERVED);
    else if (svc->role == S_ORDER && s_is(msg, "StockReserved"))
        s_publish(svc->pub, "OrderApproved", i, S_ORDER_APPROVED);
    else if (svc->role == S_INVENTORY) {
        /* The replica of the items and the credit: whichever comes
           second decides. */
        unsigned char bit = from == S_ORDER && s_is(msg, "OrderCreated")        ? 1
                            : from == S_CUSTOMER && s_is(msg, "CreditReserved") ? 2
                                                                                : 0;
        svc->seen[i] |= bit;
        if (bit && svc->seen[i] == 3)
            s_publish(svc->pub, "StockReserved", i, S_STOCK_RESERVED);
    }
}

/*  A reply on order's command DEALER: [body]. The orchestration. */
static void s_on_reply(s_service_t *svc, s_role_t from, const s_msg_t *msg)
{
    long i = s_index(msg);
    if (i < 0 || i >= svc->args->orders)
        return;
    if (from == S_CUSTOMER) /* credit RESERVED: the next step */
        s_send(svc->command[S_INVENTORY], NULL, 0, i, S_RESERVE_STOCK);
    else /* stock RESERVED: approved */
        s_publish(svc->pub, "OrderApproved", i, S_O_ORDER_APPROVED);
}

/*  The service's loop, as eda_service's: poll every socket, then read the
    readable ones round robin until each is empty, reacting to each
    message. Ends when the parent closes `life_fd` (or dies). */
static int s_service_run(s_service_t *svc, int life_fd)
{
    enum { S_MAX_ITEMS = 12 };
    zmq_pollitem_t items[S_MAX_ITEMS];
    void *socks[S_MAX_ITEMS];
    size_t n = 0;
    items[n++] = (zmq_pollitem_t){NULL, life_fd, ZMQ_POLLIN, 0};
    socks[n] = svc->pub;
    items[n] = (zmq_pollitem_t){svc->pub, 0, ZMQ_POLLIN, 0};
    n++;
    socks[n] = svc->router;
    items[n] = (zmq_pollitem_t){svc->router, 0, ZMQ_POLLIN, 0};
    n++;
    size_t first_peer = n;
    for (int p = 0; p < svc->nfollow; p++) {
        void *per_peer[3] = {svc->sub[p], svc->replay[p], svc->command[svc->follows[p]]};
        for (int k = 0; k < 3; k++) {
            socks[n] = per_peer[k];
            items[n] = per_peer[k] ? (zmq_pollitem_t){per_peer[k], 0, ZMQ_POLLIN, 0}
                                   : (zmq_pollitem_t){NULL, -1, 0, 0};
            n++;
        }
    }
    s_msg_t *msg = malloc(sizeof *msg);
    if (!msg)
        return 1;
    for (;;) {
        s_heartbeats(svc);
        long timeout = (long)((svc->next_heartbeat - s_now_us()) / 1000);
        if (zmq_poll(items, (int)n, timeout > 0 ? timeout : 0) < 0 && errno != EINTR)
            break;
        if (items[0].revents)
            break; /* the parent is done */
        if (items[1].revents & ZMQ_POLLIN)
            while (zmq_recv(svc->pub, msg->frame[0], S_FRAME_MAX, ZMQ_DONTWAIT) >= 0)
                ; /* subscriptions: nobody reads them */
        bool ready[S_MAX_ITEMS] = {false}, any = true;
        for (size_t k = 2; k < n; k++)
            ready[k] = items[k].revents & ZMQ_POLLIN;
        while (any) {
            any = false;
            for (size_t k = 2; k < n; k++) {
                if (!ready[k] || !(ready[k] = s_recv(socks[k], msg)))
                    continue;
                any = true;
                if (k == 2)
                    s_on_command(svc, msg);
                else if ((k - first_peer) % 3 == 0)
                    s_on_event(svc, (int)((k - first_peer) / 3), msg);
                else if ((k - first_peer) % 3 == 2)
                    s_on_reply(svc, svc->follows[(k - first_peer) / 3], msg);
                /* the replay DEALER: nothing ever comes, as in a saga
                   without gaps */
            }
        }
    }
    free(msg);
    return 0;
}

/*  A child: one service, until the parent is done. Returns the exit code. */
static int s_service_main(const s_args_t *args, s_role_t role, int ready_fd, int life_fd)
{
    static const s_role_t follows[S_ROLES][2] = {[S_ORDER] = {S_CUSTOMER, S_INVENTORY},
                                                 [S_CUSTOMER] = {S_ORDER, S_ORDER},
                                                 [S_INVENTORY] = {S_ORDER, S_CUSTOMER}};
    static const int nfollow[S_ROLES] = {2, 1, 2};
    s_service_t svc = {.role = role, .args = args, .ready_fd = ready_fd};
    void *ctx = zmq_ctx_new();
    char ep[128];
    int rc = 1;
    s_endpoint(ep, sizeof ep, args, role, "events");
    svc.pub = s_socket(ctx, ZMQ_XPUB, ep, true);
    s_endpoint(ep, sizeof ep, args, role, "commands");
    svc.router = s_socket(ctx, ZMQ_ROUTER, ep, true);
    if (!svc.pub || !svc.router)
        goto done;
    svc.nfollow = nfollow[role];
    for (int p = 0; p < svc.nfollow; p++) {
        svc.follows[p] = follows[role][p];
        s_endpoint(ep, sizeof ep, args, svc.follows[p], "events");
        svc.sub[p] = s_socket(ctx, ZMQ_SUB, ep, false);
        s_endpoint(ep, sizeof ep, args, svc.follows[p], "commands");
        svc.replay[p] = s_socket(ctx, ZMQ_DEALER, ep, false);
        if (role == S_ORDER) /* whatever the pattern, as order-service */
            svc.command[svc.follows[p]] = s_socket(ctx, ZMQ_DEALER, ep, false);
        if (!svc.sub[p] || !svc.replay[p] ||
            (role == S_ORDER && !svc.command[svc.follows[p]]))
            goto done;
    }
    if (role == S_INVENTORY && !(svc.seen = calloc((size_t)args->orders, 1)))
        goto done;
    rc = s_service_run(&svc, life_fd);
done:
    free(svc.seen);
    void *all[] = {svc.pub,       svc.router,    svc.sub[0],     svc.sub[1],
                   svc.replay[0], svc.replay[1], svc.command[1], svc.command[2]};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k])
            zmq_close(all[k]);
    zmq_ctx_term(ctx);
    return rc;
}

/* --- the client, as eda bench ------------------------------------------- */

static void s_report(const s_args_t *args, long done, long replied, int64_t *latency,
                     int64_t *reply_latency, double secs)
{
    latency_t sagas = latency_figures(latency, (size_t)done);
    latency_t replies = latency_figures(reply_latency, (size_t)replied);
    int64_t p50 = sagas.p50, p99 = sagas.p99, max = sagas.max;
    int64_t r50 = replies.p50, r99 = replies.p99;
    const char *saga = args->orchestration ? "orchestration" : "choreography";
    if (args->json) /* eda bench's keys, so that one reader takes both */
        printf("{\"orders\":%ld,\"approved\":%ld,\"seconds\":%.3f,\"sagas_per_s\":%.0f,"
               "\"saga_p50_us\":%" PRId64 ",\"saga_p99_us\":%" PRId64
               ",\"saga_max_us\":%" PRId64 ",\"reply_p50_us\":%" PRId64
               ",\"reply_p99_us\":%" PRId64 ",\"resent\":0,\"window\":%ld,\"rate\":%ld,"
               "\"saga\":\"%s\",\"floor\":true}\n",
               done, done, secs, (double)done / secs, p50, p99, max, r50, r99,
               args->window, args->rate, saga);
    else
        printf("floor: %ld sagas in %.2f s: %.0f sagas/s\n"
               "saga latency   p50 %.3f ms  p99 %.3f ms  max %.3f ms\n"
               "reply latency  p50 %.3f ms  p99 %.3f ms\n"
               "(saga %s, window %ld, %s, no work: the message pattern alone)\n",
               done, secs, (double)done / secs, (double)p50 / 1000, (double)p99 / 1000,
               (double)max / 1000, (double)r50 / 1000, (double)r99 / 1000, saga,
               args->window, args->rate ? "paced" : "unpaced");
}

/*  Waits for the three services to be joined, then for a heartbeat of
    order's on the client's SUB. 0, or -1 (printed). */
static int s_wait_ready(int ready_fd, void *sub)
{
    int64_t deadline = s_now_us() + 5000000;
    int ready = 0;
    while (ready < S_ROLES && s_now_us() < deadline) {
        struct pollfd pfd = {ready_fd, POLLIN, 0};
        char c;
        if (poll(&pfd, 1, 100) > 0 && read(ready_fd, &c, 1) == 1)
            ready++;
    }
    s_msg_t *msg = malloc(sizeof *msg);
    bool joined = false;
    while (msg && ready == S_ROLES && !joined && s_now_us() < deadline) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) > 0)
            joined = s_recv(sub, msg) && s_is(msg, "Heartbeat");
    }
    free(msg);
    if (!joined)
        fprintf(stderr, "eda-floor: the services did not join within 5 s\n");
    return joined ? 0 : -1;
}

/*  Drives the orders as eda bench does and reports. 0, or 1 on a stall. */
static int s_client(const s_args_t *args, int ready_fd)
{
    void *ctx = zmq_ctx_new();
    char ep[128];
    int rc = 1, hwm = 0;
    s_endpoint(ep, sizeof ep, args, S_ORDER, "commands");
    void *dealer = s_socket(ctx, ZMQ_DEALER, ep, false);
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int64_t *sent_us = calloc((size_t)args->orders, sizeof *sent_us);
    int64_t *latency = calloc((size_t)args->orders, sizeof *latency);
    int64_t *reply_latency = calloc((size_t)args->orders, sizeof *reply_latency);
    s_msg_t *msg = malloc(sizeof *msg);
    s_endpoint(ep, sizeof ep, args, S_ORDER, "events");
    if (!dealer || !sub || !sent_us || !latency || !reply_latency || !msg)
        goto done;
    /* eda bench's subscription: the outcomes and heartbeats only. */
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "OrderApproved", strlen("OrderApproved"));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "OrderRejected", strlen("OrderRejected"));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "Heartbeat", strlen("Heartbeat"));
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(sub, ep) || s_wait_ready(ready_fd, sub))
        goto done;
    long sent = 0, done_n = 0, replied = 0;
    const int64_t start = s_now_us();
    int64_t progress = start;
    const size_t place = (size_t)(args->orchestration ? S_O_PLACE_ORDER : S_PLACE_ORDER);
    while (done_n < args->orders) {
        /* Send while the window and the pace allow, as eda bench does. */
        int64_t elapsed = s_now_us() - start;
        while (sent < args->orders && sent - done_n < args->window &&
               (args->rate == 0 || sent < elapsed * args->rate / 1000000 + 1)) {
            sent_us[sent] = s_now_us();
            s_send(dealer, NULL, 0, sent, place);
            sent++;
        }
        zmq_pollitem_t items[] = {{dealer, 0, ZMQ_POLLIN, 0}, {sub, 0, ZMQ_POLLIN, 0}};
        long wait_ms = args->rate && sent < args->orders ? 1 : 100;
        if (zmq_poll(items, 2, wait_ms) < 0 && errno != EINTR)
            break;
        int64_t now = s_now_us();
        while (s_recv(dealer, msg)) {
            long i = s_index(msg);
            if (i >= 0 && i < sent)
                reply_latency[replied++] = now - sent_us[i];
            progress = now;
        }
        while (s_recv(sub, msg)) {
            long i = s_index(msg);
            if (!s_is(msg, "OrderApproved") || i < 0 || i >= sent)
                continue;
            latency[done_n++] = now - sent_us[i];
            progress = now;
        }
        if (now - progress > 5000000) {
            fprintf(stderr, "eda-floor: stalled at %ld of %ld sagas\n", done_n,
                    args->orders);
            goto done;
        }
    }
    s_report(args, done_n, replied, latency, reply_latency,
             (double)(s_now_us() - start) / 1e6);
    rc = 0;
done:
    free(msg);
    free(reply_latency);
    free(latency);
    free(sent_us);
    if (sub)
        zmq_close(sub);
    if (dealer)
        zmq_close(dealer);
    zmq_ctx_term(ctx);
    return rc;
}

/* --- main ---------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: eda-floor [--orders N] [--window W] [--rate PER_S] [--serial]\n"
        "                 [--saga PATTERN] [--json]\n\n"
        "Runs the saga's exact message pattern (client, order, customer and\n"
        "inventory as four processes on ipc://, the services' sockets and options,\n"
        "frames of the real envelopes' sizes) with no work at all: the floor that\n"
        "`eda bench` through the real services is measured against.\n\n"
        "options:\n"
        "  --orders N       sagas to run (default 20000)\n"
        "  --window W       orders in flight at most (default 500, as eda bench)\n"
        "  --rate PER_S     pace the orders, as eda bench --rate; 0 unpaced (default)\n"
        "  --serial         one saga at a time (--window 1): the latency floor\n"
        "  --saga PATTERN   choreography (default) or orchestration\n"
        "  --json           one line, with eda bench --json's keys\n\n"
        "exit codes: 0 done, 1 failed (a stall, no ipc), 2 usage error\n");
}

static bool s_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    s_args_t args = {.orders = 20000, .window = 500};
    static const struct option options[] = {
        {"orders", required_argument, 0, 'n'}, {"window", required_argument, 0, 'w'},
        {"rate", required_argument, 0, 'r'},   {"serial", no_argument, 0, 's'},
        {"saga", required_argument, 0, 'p'},   {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!s_parse_long(optarg, 1, 100000000, &args.orders))
                goto usage;
            break;
        case 'w':
            if (!s_parse_long(optarg, 1, 100000, &args.window))
                goto usage;
            break;
        case 'r':
            if (!s_parse_long(optarg, 0, 10000000, &args.rate))
                goto usage;
            break;
        case 's':
            args.window = 1;
            break;
        case 'p':
            if (strcasecmp(optarg, "orchestration") == 0)
                args.orchestration = true;
            else if (strcasecmp(optarg, "choreography") != 0)
                goto usage;
            break;
        case 'j':
            args.json = true;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc)
        goto usage;

    const char *tmp = getenv("TMPDIR");
    snprintf(args.dir, sizeof args.dir, "%s/eda-floor-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(args.dir)) {
        perror("eda-floor: mkdtemp");
        return 1;
    }
    /* ready: each service says it is joined. life: the services end when
       the parent closes it, or dies, so that none outlives the run. */
    int ready[2], life[2];
    if (pipe(ready) || pipe(life)) {
        perror("eda-floor: pipe");
        return 1;
    }
    fflush(NULL);
    pid_t pids[S_ROLES] = {0};
    for (int r = 0; r < S_ROLES; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            close(ready[0]);
            close(life[1]);
            _exit(s_service_main(&args, (s_role_t)r, ready[1], life[0]));
        }
        if (pids[r] < 0)
            perror("eda-floor: fork");
    }
    close(ready[1]);
    close(life[0]);
    int rc = pids[0] > 0 && pids[1] > 0 && pids[2] > 0 ? s_client(&args, ready[0]) : 1;
    close(life[1]);
    for (int r = 0; r < S_ROLES; r++) {
        int status;
        if (pids[r] > 0 && waitpid(pids[r], &status, 0) == pids[r] &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            rc = 1;
    }
    static const char *channels[] = {"events", "commands"};
    for (int r = 0; r < S_ROLES; r++)
        for (int k = 0; k < 2; k++) {
            char ep[128];
            s_endpoint(ep, sizeof ep, &args, (s_role_t)r, channels[k]);
            unlink(ep + strlen("ipc://"));
        }
    rmdir(args.dir);
    return rc;
usage:
    s_usage(stderr);
    return 2;
}
