/*  order_domain: the rules of an order, with no sockets, msgpack or SQL. */
#ifndef ORDER_DOMAIN_H_INCLUDED
#define ORDER_DOMAIN_H_INCLUDED

#include "eda_items.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ORDER_PENDING,
    ORDER_APPROVED,
    ORDER_REJECTED,
    ORDER_CANCELLED
} order_status_t;

/*  "PENDING", "APPROVED", ... Can't fail. */
const char *order_status_name(order_status_t status);

/*  Parses a status name. Returns 0, or -1 when it is not one. */
int order_status_parse(const char *name, order_status_t *status);

/*  True for a rejection reason of DESIGN section 3 (UNKNOWN_CUSTOMER, ...). */
bool order_reason_valid(const char *reason);

/*  Checks the items of a PlaceOrder (1 to 100, qty >= 1, price >= 0, read by
    eda_items_read) and computes the total in cents. Returns 0, or -1 with a
    reason when the total, or the sum of all quantities, does not fit in
    63 bits. */
int order_total(const eda_item_t *items, size_t n, int64_t *total, char *why,
                size_t why_size);

/*  True when an order in `status` may still be approved or rejected. */
bool order_can_decide(order_status_t status);

/*  True when an order in `status` may be cancelled (only APPROVED). */
bool order_can_cancel(order_status_t status);

#endif
