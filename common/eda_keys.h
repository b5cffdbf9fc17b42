/*  eda_keys: CURVE security (DESIGN section 7). A keys folder holds czmq
    certificates, NAME.cert (public) and NAME.cert_secret (secret), for the
    three services and for a client named "client". A process loads its own
    secret certificate; it connects to a peer with that peer's public key;
    a service accepts on its sockets only peers whose public certificate is
    in the folder (czmq's zauth with a certificate store).
*/
#ifndef EDA_KEYS_H_INCLUDED
#define EDA_KEYS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct eda_keys eda_keys_t;

/*  Makes folder `dir` (mode 0700) with a fresh certificate pair for each
    of the three services and for "client", refusing to overwrite a
    certificate that exists. 0, or -1 with a reason. */
int eda_keys_init(const char *dir, char *why, size_t why_size);

/*  Loads `name`'s own certificate from `dir` (NAME.cert and
    NAME.cert_secret). NULL with a reason naming the missing or unreadable
    file. */
eda_keys_t *eda_keys_new(const char *dir, const char *name, char *why, size_t why_size);

/*  Stops the authenticator if one runs, frees everything, nulls the pointer.
    Idempotent. */
void eda_keys_destroy(eda_keys_t **self_p);

/*  Starts the authenticator of this process (czmq zauth): from then on the
    process's CURVE servers accept only clients whose public certificate is
    in the folder. One per process (ZeroMQ has one authentication handler
    per context). 0, or -1 with a reason. */
int eda_keys_authenticate(eda_keys_t *self, char *why, size_t why_size);

/*  Makes `sock` a CURVE server with the own certificate. Call before bind. */
void eda_keys_server(eda_keys_t *self, zsock_t *sock);

/*  Makes `sock` a CURVE client of `server` (whose NAME.cert is in the
    folder) with the own certificate. Call before connect. 0, or -1 with a
    reason naming the missing file. */
int eda_keys_client(eda_keys_t *self, zsock_t *sock, const char *server, char *why,
                    size_t why_size);

/*  True when `endpoint` can only be reached from this host: ipc://,
    inproc://, or tcp:// on a loopback address. */
bool eda_endpoint_is_local(const char *endpoint);

#endif
