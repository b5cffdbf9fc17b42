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

/*  Checks a new customer: id and name 1 to 64 bytes, the id UTF-8 text
    without control characters (eda_printable; a name may hold anything, it
    is escaped wherever shown), credit_limit >= 0. Returns 0, or -1 with a
    reason. */
int customer_validate(const char *customer_id, const char *name, int64_t credit_limit,
                      char *why, size_t why_size);

#endif
