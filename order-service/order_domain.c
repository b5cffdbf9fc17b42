/*  order_domain: status names, totals, transitions. */
#include "order_domain.h"

#include <stdio.h>
#include <string.h>

static const char *s_status_names[] = {"PENDING", "APPROVED", "REJECTED", "CANCELLED"};

static const char *s_reasons[] = {"UNKNOWN_CUSTOMER", "CREDIT_LIMIT_EXCEEDED",
                                  "UNKNOWN_SKU", "OUT_OF_STOCK",
                                  "PARTICIPANT_UNAVAILABLE"};

const char *order_status_name(order_status_t status)
{
    return (size_t)status < 4 ? s_status_names[status] : "?";
}

int order_status_parse(const char *name, order_status_t *status)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, s_status_names[i]) == 0) {
            *status = (order_status_t)i;
            return 0;
        }
    return -1;
}

bool order_reason_valid(const char *reason)
{
    for (size_t i = 0; i < sizeof s_reasons / sizeof s_reasons[0]; i++)
        if (strcmp(reason, s_reasons[i]) == 0)
            return true;
    return false;
}

int order_total(const eda_item_t *items, size_t n, int64_t *total, char *why,
                size_t why_size)
{
    return eda_items_total(items, n, total, why, why_size); /* the one rule */
}

bool order_can_decide(order_status_t status)
{
    return status == ORDER_PENDING;
}

bool order_can_cancel(order_status_t status)
{
    return status == ORDER_APPROVED;
}
