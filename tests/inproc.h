/*  inproc: the three services started in one test process, as czmq actors
    on inproc:// endpoints, and the few calls the in-process suites
    (test_service, test_faults) make to them. The actors and clients are
    kept here and destroyed by inproc_fini, also when a test fails
    half-way: call it from the suite's fini.
*/
#ifndef EDA_INPROC_H_INCLUDED
#define EDA_INPROC_H_INCLUDED

#include "eda_client.h"
#include "eda_config.h"
#include "eda_service.h"

#include <czmq.h>
#include <stdint.h>

#define INPROC_CALL_MS 5000 /* one command's reply (ASan is slow) */

enum { INPROC_ORDER, INPROC_CUSTOMER, INPROC_INVENTORY, INPROC_NSVC };

extern const char *const inproc_names[INPROC_NSVC];
extern const eda_service_def_t *const inproc_defs[INPROC_NSVC];

/*  One deployment: endpoints, databases and a config for each service. */
typedef struct {
    char events[INPROC_NSVC][128];
    char commands[INPROC_NSVC][128];
    char db[INPROC_NSVC][700];
    eda_config_t cfg[INPROC_NSVC];
} inproc_topo_t;

/*  A fresh inproc endpoint: unique per process and per call. */
void inproc_endpoint(char *out, size_t size, const char *what);

/*  Sets option `name` of `cfg`, asserting that it is accepted. */
void inproc_set(eda_config_t *cfg, const char *name, const char *value);

/*  Fresh endpoints for the three services and a config for each, every one
    naming the other two as peers, at --log-level error. `db` is the
    database of all three (":memory:", a path), or with one "%s" a pattern
    that the service's name fills ("DIR/%s.db": DIR/order-service.db ...). */
void inproc_topo_init(inproc_topo_t *t, const char *db);

/*  Starts the actor of `def` with `cfg` and returns its status (0: ready).
    The actor is kept (in *out when not NULL) whatever the status, so that
    destroying a failed one is tested too; its args live until it is
    destroyed, as in eda_service_main. */
int inproc_start(const eda_service_def_t *def, const eda_config_t *cfg, zactor_t **out);

/*  Keeps an actor started elsewhere, for inproc_fini to destroy. */
void inproc_adopt(zactor_t *actor);

/*  Destroys one actor kept here and returns how long that took, in ms. */
int64_t inproc_stop(zactor_t **actor_p);

/*  Destroys every actor kept here; returns the longest time one took. */
int64_t inproc_stop_all(void);

/*  A client of `endpoint`, kept here. */
eda_client_t *inproc_client(const char *endpoint);

/*  Destroys the clients, then the actors. */
void inproc_fini(void);

/*  Sends the command begun on `client` and asserts that its reply came. */
void inproc_call(eda_client_t *client, eda_envelope_t *reply);

/*  Sends `type` with {} and asserts that its reply came. */
void inproc_call_empty(eda_client_t *client, const char *type, eda_envelope_t *reply);

void inproc_expect_ok(const eda_envelope_t *reply);
void inproc_expect_error(const eda_envelope_t *reply, const char *code);

/*  The uint or string at `key` of `map`, asserted to be one. */
uint64_t inproc_u64(const msgpack_object *map, const char *key);
void inproc_str(const msgpack_object *map, const char *key, char *out, size_t size);

/*  One page of ListOrders {status (NULL: any), limit, after (0: from the
    start)}: its order ids into ids[max], and in *next where the next page
    starts (0 when "more" is false). Returns how many. */
int inproc_list_orders(eda_client_t *c, const char *status, uint64_t limit,
                       uint64_t after, char ids[][EDA_NAME_MAX + 1], int max,
                       uint64_t *next);

/*  Begins PlaceOrder {customer_id, items: [{sku, qty, price}]}, and
    request_id when not NULL, in a map with room for `more` keys the caller
    packs next. Returns the packer. */
msgpack_packer *inproc_begin_place_order(eda_client_t *c, const char *request_id,
                                         const char *customer, const char *sku,
                                         int64_t qty, int64_t price, uint32_t more);

/*  GetOrder {order_id}, its reply asserted ok. */
void inproc_get_order(eda_client_t *c, const char *order_id, eda_envelope_t *reply);

/*  CreateCustomer {id, limit} and AddStock {sku, qty}, asserted ok. */
void inproc_create_customer(eda_client_t *c, const char *id, int64_t limit);
void inproc_add_stock(eda_client_t *c, const char *sku, int64_t qty);

#endif
