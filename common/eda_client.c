/*  eda_client: DEALER with a reusable send buffer and decoder. */
#include "eda_client.h"

#include "eda_text.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct eda_client {
    char endpoint[256];
    char source[EDA_NAME_MAX + 1];
    zsock_t *sock;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    eda_decoder_t *decoder;
    char last_id[EDA_NAME_MAX + 1];
    bool immediate;   /* queue only on a connection that is up */
    eda_keys_t *keys; /* CURVE, or NULL; not owned */
    char server[64];  /* whose public key the keys folder holds */
};

static char s_prefix[9]; /* per process, drawn once */
static pthread_once_t s_prefix_once = PTHREAD_ONCE_INIT;

static void s_draw_prefix(void)
{
    zuuid_t *uuid = zuuid_new();
    snprintf(s_prefix, sizeof s_prefix, "%.8s",
             uuid ? zuuid_str_canonical(uuid) : "00000000");
    zuuid_destroy(&uuid);
}

void eda_random_hex(char *out, size_t nhex)
{
    unsigned char raw[32] = {0};
    int fd = open("/dev/urandom", O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0)
        close(fd);
    if (got < (ssize_t)(nhex / 2)) {
        /* No urandom: time and pid are unique enough for an id. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t mix = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                       ((uint64_t)getpid() << 40);
        memcpy(raw, &mix, sizeof mix);
    }
    for (size_t i = 0; i < nhex; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    out[nhex] = '\0';
}

void eda_new_id(char *out, size_t size)
{
    static atomic_uint_fast64_t counter;
    pthread_once(&s_prefix_once, s_draw_prefix);
    eda_id_join(out, size, s_prefix, (uint64_t)atomic_fetch_add(&counter, 1) + 1);
}

static zsock_t *s_connect(eda_client_t *self)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zsock_set_immediate(sock, self->immediate);
    zsock_set_heartbeat_ivl(sock, 1000); /* a vanished server is noticed */
    zsock_set_heartbeat_timeout(sock, 3000);
    char why[256];
    if (self->keys && eda_keys_client(self->keys, sock, self->server, why, sizeof why)) {
        zsock_destroy(&sock);
        return NULL;
    }
    zsock_set_maxmsgsize(sock, EDA_MAX_MSG + 4096);
    zsock_set_rcvhwm(sock, 10000);
    zsock_set_sndhwm(sock, 10000);
    if (zsock_connect(sock, "%s", self->endpoint)) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

eda_client_t *eda_client_new(const char *endpoint, const char *source)
{
    eda_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    snprintf(self->source, sizeof self->source, "%s", source);
    msgpack_sbuffer_init(&self->buf);
    msgpack_packer_init(&self->pk, &self->buf, msgpack_sbuffer_write);
    self->decoder = eda_decoder_new();
    self->sock = s_connect(self);
    if (!self->decoder || !self->sock)
        eda_client_destroy(&self);
    return self;
}

void eda_client_destroy(eda_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eda_client_t *self = *self_p;
    zsock_destroy(&self->sock);
    eda_decoder_destroy(&self->decoder);
    msgpack_sbuffer_destroy(&self->buf);
    free(self);
    *self_p = NULL;
}

msgpack_packer *eda_client_begin(eda_client_t *self, const char *type,
                                 const char *correlation_id)
{
    msgpack_sbuffer_clear(&self->buf);
    eda_new_id(self->last_id, sizeof self->last_id);
    eda_header_t hdr = {.kind = EDA_KIND_COMMAND,
                        .type = type,
                        .id = self->last_id,
                        .source = self->source,
                        .ts = eda_now_us(),
                        .correlation_id = correlation_id};
    eda_pack_header(&self->pk, &hdr);
    return &self->pk;
}

int eda_client_send(eda_client_t *self)
{
    if (!self->sock)
        return -1; /* a reset failed: eda_client_reset again */
    return zmq_send(zsock_resolve(self->sock), self->buf.data, self->buf.size,
                    ZMQ_DONTWAIT) < 0
               ? -1
               : 0;
}

int eda_client_recv(eda_client_t *self, eda_envelope_t *reply)
{
    if (!self->sock)
        return 1;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    void *sock = zsock_resolve(self->sock);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 1;
    }
    /* A reply is one frame: anything more is drained and refused. */
    bool extra = zmq_msg_more(&msg);
    int rc = -1;
    if (!extra &&
        eda_decode(self->decoder, zmq_msg_data(&msg), zmq_msg_size(&msg), reply, NULL,
                   0) == EDA_OK &&
        reply->kind == EDA_KIND_REPLY)
        rc = 0;
    while (extra) {
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        extra = zmq_msg_recv(&msg, sock, 0) >= 0 && zmq_msg_more(&msg);
    }
    zmq_msg_close(&msg);
    return rc;
}

int eda_client_reset(eda_client_t *self)
{
    zsock_destroy(&self->sock);
    self->sock = s_connect(self);
    return self->sock ? 0 : -1;
}

int eda_client_reconnect(eda_client_t *self)
{
    if (!self->sock)
        return eda_client_reset(self);
    zsock_disconnect(self->sock, "%s", self->endpoint);
    return zsock_connect(self->sock, "%s", self->endpoint) == 0 ? 0 : -1;
}

int eda_client_set_immediate(eda_client_t *self, bool on)
{
    self->immediate = on;
    return eda_client_reset(self);
}

int eda_client_secure(eda_client_t *self, eda_keys_t *keys, const char *server)
{
    self->keys = keys;
    snprintf(self->server, sizeof self->server, "%s", server);
    return eda_client_reset(self);
}

int eda_client_call(eda_client_t *self, int timeout_ms, eda_envelope_t *reply, char *why,
                    size_t why_size)
{
    if (!self->sock && eda_client_reset(self)) {
        snprintf(why, why_size, "cannot connect to %s", self->endpoint);
        return -1;
    }
    /* A DEALER with no connection to send on blocks in zmq_send (a wrong
       endpoint, a socket of the wrong type there): the send waits for the
       same deadline as the reply. */
    int64_t deadline = zclock_mono() + timeout_ms;
    zmq_pollitem_t out = {zsock_resolve(self->sock), 0, ZMQ_POLLOUT, 0};
    if (zmq_poll(&out, 1, timeout_ms) <= 0 ||
        zmq_send(zsock_resolve(self->sock), self->buf.data, self->buf.size,
                 ZMQ_DONTWAIT) < 0) {
        snprintf(why, why_size, "cannot send to %s within %d ms", self->endpoint,
                 timeout_ms);
        eda_client_reset(self);
        return -1;
    }
    while (1) {
        int64_t left = deadline - zclock_mono();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0) {
            snprintf(why, why_size, "interrupted");
            return -1;
        }
        if (rc == 0) {
            snprintf(why, why_size, "no reply from %s within %d ms", self->endpoint,
                     timeout_ms);
            eda_client_reset(self);
            return -1;
        }
        int got = eda_client_recv(self, reply);
        if (got == 1)
            continue;
        if (got == 0) {
            if (strcmp(reply->causation_id, self->last_id) == 0 ||
                !reply->causation_id[0])
                return 0;
            continue; /* a stale reply: keep waiting for ours */
        }
        snprintf(why, why_size, "undecodable reply from %s", self->endpoint);
        return -1;
    }
}

const char *eda_client_last_id(eda_client_t *self)
{
    return self->last_id;
}

zsock_t *eda_client_sock(eda_client_t *self)
{
    return self->sock;
}
