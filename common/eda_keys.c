/*  eda_keys: certificates from a keys folder applied to sockets, and the
    authenticator that lets only their holders in.
*/
#include "eda_keys.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct eda_keys {
    char dir[1024];
    zcert_t *own;
    zactor_t *auth;
};

static const char *s_names[] = {"order-service", "customer-service", "inventory-service",
                                "client"};

int eda_keys_init(const char *dir, char *why, size_t why_size)
{
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(why, why_size, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[1100];
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.cert", dir, s_names[i]);
        if (access(path, F_OK) == 0) {
            snprintf(why, why_size, "%s exists: keys are never overwritten", path);
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.cert", dir, s_names[i]);
        zcert_t *cert = zcert_new();
        int rc = -1;
        if (cert) {
            zcert_set_meta(cert, "name", "%s", s_names[i]);
            rc = zcert_save(cert, path);
        }
        zcert_destroy(&cert);
        if (rc) {
            snprintf(why, why_size, "cannot write %s", path);
            return -1;
        }
    }
    return 0;
}

/*  Loads DIR/NAME.cert, and its secret half when `secret`. NULL with a
    reason. */
static zcert_t *s_load(const char *dir, const char *name, bool secret, char *why,
                       size_t why_size)
{
    char path[1100], secret_path[1200];
    snprintf(path, sizeof path, "%s/%s.cert", dir, name);
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    const char *need = secret ? secret_path : path;
    if (access(need, R_OK)) {
        snprintf(why, why_size, "cannot read the %s certificate %s: %s",
                 secret ? "secret" : "public", need, strerror(errno));
        return NULL;
    }
    /* zcert_load reads NAME.cert_secret when it exists, else NAME.cert. */
    zcert_t *cert = zcert_load(path);
    if (!cert)
        snprintf(why, why_size, "%s is not a certificate", secret ? secret_path : path);
    return cert;
}

eda_keys_t *eda_keys_new(const char *dir, const char *name, char *why, size_t why_size)
{
    eda_keys_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    self->own = s_load(dir, name, true, why, why_size);
    if (!self->own)
        eda_keys_destroy(&self);
    return self;
}

void eda_keys_destroy(eda_keys_t **self_p)
{
    if (!*self_p)
        return;
    eda_keys_t *self = *self_p;
    zactor_destroy(&self->auth);
    zcert_destroy(&self->own);
    free(self);
    *self_p = NULL;
}

int eda_keys_authenticate(eda_keys_t *self, char *why, size_t why_size)
{
    assert(!self->auth);
    self->auth = zactor_new(zauth, NULL);
    if (!self->auth || zstr_sendx(self->auth, "CURVE", self->dir, NULL) ||
        zsock_wait(self->auth)) {
        snprintf(why, why_size, "cannot start the CURVE authenticator for %s", self->dir);
        zactor_destroy(&self->auth);
        return -1;
    }
    return 0;
}

void eda_keys_server(eda_keys_t *self, zsock_t *sock)
{
    zcert_apply(self->own, zsock_resolve(sock));
    zsock_set_curve_server(sock, 1);
}

int eda_keys_client(eda_keys_t *self, zsock_t *sock, const char *server, char *why,
                    size_t why_size)
{
    zcert_t *peer = s_load(self->dir, server, false, why, why_size);
    if (!peer)
        return -1;
    zcert_apply(self->own, zsock_resolve(sock));
    zsock_set_curve_serverkey(sock, zcert_public_txt(peer));
    zcert_destroy(&peer);
    return 0;
}

bool eda_endpoint_is_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}
