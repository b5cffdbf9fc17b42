/*  customer_domain: the credit rules, with no sockets, msgpack or SQL. */
#ifndef CUSTOMER_DOMAIN_H_INCLUDED
#define CUSTOMER_DOMAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t credit_limit; /* cents */
    int64_t reserved;     /* cents held for orders in flight or approved */
} customer_credit_t;

typedef struct {
    bool reserved;      /* true: the amount is now held */
    const char *reason; /* when refused: UNKNOWN_CUSTOMER, CREDIT_LIMIT_EXCEEDED */
    int64_t available;  /* credit available before this request */
} customer_decision_t;

/*  Credit available to a customer: limit minus what is held. */
int64_t customer_available(const customer_credit_t *credit);

/*  Decides a reservation of `amount` for `credit` (NULL for an unknown
    customer, whose available credit is 0). Refused when amount > available.
    On success, adds the amount to credit->reserved. Can't fail. */
customer_decision_t customer_reserve(customer_credit_t *credit, int64_t amount);

/*  Gives back `amount` held for an order. Can't fail. */
void customer_release(customer_credit_t *credit, int64_t amount);

/*  What is recorded of an order's credit, per order_id: the one place that
    makes reservations and releases idempotent. */
typedef enum {
    CUSTOMER_HOLD_NONE,     /* nothing recorded */
    CUSTOMER_HOLD_RESERVED, /* the amount is held */
    CUSTOMER_HOLD_REJECTED, /* refused; nothing held */
    CUSTOMER_HOLD_RELEASED, /* held, then given back */
    CUSTOMER_HOLD_VOIDED    /* released before any reservation: a tombstone */
} customer_hold_t;

/*  The stored name of a state ("RESERVED", ...; "" for NONE). Can't fail. */
const char *customer_hold_name(customer_hold_t state);

/*  Reads a stored name; NULL or "" is NONE. A name it does not know reads as
    VOIDED, which holds nothing and lets nothing be held. Can't fail. */
customer_hold_t customer_hold_parse(const char *name);

/*  The answer to a reservation for an order already recorded in `state` (not
    NONE): its first outcome, with `reason` (the stored reason of a refusal,
    "REJECTED" when a database older than reasons kept none) passed through;
    after a release of nothing, refused ALREADY_RELEASED.
    Nothing changes and nothing is to be published; `available` is left 0
    for the caller. Can't fail. */
customer_decision_t customer_hold_repeat(customer_hold_t state, const char *reason);

typedef struct {
    customer_hold_t next; /* the state to record (the same: record nothing) */
    bool give_back;       /* the amount held is to be given back now */
    bool released;        /* the answer: credit was held and is given back */
} customer_release_t;

/*  Decides a release of an order recorded in `state`. Only a RESERVED hold
    gives credit back, once; a release of an order never seen leaves VOIDED,
    so that a later reservation is refused. Can't fail. */
customer_release_t customer_hold_release(customer_hold_t state);

/*  Checks a new customer: id and name 1 to 64 bytes, credit_limit >= 0.
    Returns 0, or -1 with a reason. */
int customer_validate(const char *customer_id, const char *name, int64_t credit_limit,
                      char *why, size_t why_size);

#endif
