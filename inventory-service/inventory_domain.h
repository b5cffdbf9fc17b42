/*  inventory_domain: the stock rules, with no sockets, msgpack or SQL. */
#ifndef INVENTORY_DOMAIN_H_INCLUDED
#define INVENTORY_DOMAIN_H_INCLUDED

#include "eda_items.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Sums the quantities of each SKU, keeping the order in which SKUs first
    appear, into out[n] (prices are dropped). Returns the number of distinct
    SKUs, or -1 when a sum overflows. */
int inventory_merge(const eda_item_t *items, size_t n, eda_item_t *out);

typedef struct {
    bool reserved;      /* true: every line can be held */
    const char *reason; /* when refused: UNKNOWN_SKU, OUT_OF_STOCK */
    size_t failed;      /* index of the first failing line */
    int64_t requested;  /* its quantity */
    int64_t available;  /* its stock (0 for an unknown SKU) */
} inventory_decision_t;

/*  Decides an all-or-nothing reservation of merged `lines`, given each
    line's available stock in available[i] (-1 for an unknown SKU). The first
    failing line, in order, is the one reported. Can't fail. */
inventory_decision_t inventory_decide(const eda_item_t *lines, const int64_t *available,
                                      size_t n);

/*  What is recorded of an order's stock, per order_id: the one place that
    makes reservations and releases idempotent. */
typedef enum {
    INVENTORY_HOLD_NONE,     /* nothing recorded */
    INVENTORY_HOLD_RESERVED, /* every line is held */
    INVENTORY_HOLD_REJECTED, /* refused; nothing held */
    INVENTORY_HOLD_RELEASED, /* held, then given back */
    INVENTORY_HOLD_VOIDED    /* released before any reservation: a tombstone */
} inventory_hold_t;

/*  The stored name of a state ("RESERVED", ...; "" for NONE). Can't fail. */
const char *inventory_hold_name(inventory_hold_t state);

/*  Reads a stored name; NULL or "" is NONE. A name it does not know reads as
    VOIDED, which holds nothing and lets nothing be held. Can't fail. */
inventory_hold_t inventory_hold_parse(const char *name);

/*  The answer to a reservation for an order already recorded in `state` (not
    NONE): its first outcome, with `reason` (the stored reason of a refusal,
    "REJECTED" when a database older than reasons kept none) passed through;
    after a release of nothing, refused ALREADY_RELEASED. Nothing changes and
    nothing is to be published; the failing line is the caller's to report.
    Can't fail. */
inventory_decision_t inventory_hold_repeat(inventory_hold_t state, const char *reason);

typedef struct {
    inventory_hold_t next; /* the state to record (the same: record nothing) */
    bool give_back;        /* the stock held is to be given back now */
    bool released;         /* the answer: stock was held and is given back */
} inventory_release_t;

/*  Decides a release of an order recorded in `state`. Only a RESERVED hold
    gives stock back, once; a release of an order never seen leaves VOIDED,
    so that a later reservation is refused. Can't fail. */
inventory_release_t inventory_hold_release(inventory_hold_t state);

/*  Checks an AddStock of `qty` to an item holding `current` in all
    (available + reserved): sku 1 to 64 bytes, qty >= 1, and the new total
    within 63 bits. 0, or -1 with a reason. */
int inventory_validate_add(const char *sku, int64_t qty, int64_t current, char *why,
                           size_t why_size);

#endif
