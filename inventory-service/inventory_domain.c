/*  inventory_domain: merging order lines, the all-or-nothing decision, and
    the record per order that makes a repeated reservation or release change
    nothing. */
#include "inventory_domain.h"

#include "eda_text.h"

#include <stdio.h>
#include <string.h>

int inventory_merge(const eda_item_t *items, size_t n, eda_item_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < m && strcmp(out[j].sku, items[i].sku) != 0)
            j++;
        if (j == m) {
            out[m] = items[i];
            out[m].price = -1;
            m++;
        } else if (__builtin_add_overflow(out[j].qty, items[i].qty, &out[j].qty))
            return -1;
    }
    return (int)m;
}

inventory_decision_t inventory_decide(const eda_item_t *lines, const int64_t *available,
                                      size_t n)
{
    inventory_decision_t d = {.reserved = true};
    for (size_t i = 0; i < n; i++) {
        if (available[i] < 0 || available[i] < lines[i].qty) {
            d.reserved = false;
            d.reason = available[i] < 0 ? "UNKNOWN_SKU" : "OUT_OF_STOCK";
            d.failed = i;
            d.requested = lines[i].qty;
            d.available = available[i] < 0 ? 0 : available[i];
            break;
        }
    }
    return d;
}

int inventory_validate_add(const char *sku, int64_t qty, int64_t current, char *why,
                           size_t why_size)
{
    int64_t sum;
    if (!sku[0])
        snprintf(why, why_size, "sku must be a string of 1 to 64 bytes");
    else if (!eda_printable(sku, strlen(sku)))
        snprintf(why, why_size, "sku must be UTF-8 text without control characters");
    else if (qty < 1)
        snprintf(why, why_size, "qty must be an integer >= 1");
    else if (__builtin_add_overflow(current, qty, &sum))
        snprintf(why, why_size, "stock of %s would overflow", sku);
    else
        return 0;
    return -1;
}
