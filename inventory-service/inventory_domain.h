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

/*  Checks an AddStock of `qty` to an item holding `current` in all
    (available + reserved): sku 1 to 64 bytes of UTF-8 text without control
    characters (eda_printable), qty >= 1, and the new total within 63 bits.
    0, or -1 with a reason. */
int inventory_validate_add(const char *sku, int64_t qty, int64_t current, char *why,
                           size_t why_size);

#endif
