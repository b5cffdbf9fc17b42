/*  customer_domain: credit limits and holds, and the record per order that
    makes a repeated reservation or release change nothing. */
#include "customer_domain.h"

#include "eda_text.h"

#include <stdio.h>
#include <string.h>

int64_t customer_available(const customer_credit_t *credit)
{
    return credit ? credit->credit_limit - credit->reserved : 0;
}

customer_decision_t customer_reserve(customer_credit_t *credit, int64_t amount)
{
    customer_decision_t d = {.available = customer_available(credit)};
    if (!credit)
        d.reason = "UNKNOWN_CUSTOMER";
    else if (amount > d.available)
        d.reason = "CREDIT_LIMIT_EXCEEDED";
    else {
        credit->reserved += amount;
        d.reserved = true;
    }
    return d;
}

void customer_release(customer_credit_t *credit, int64_t amount)
{
    credit->reserved -= amount;
}

int customer_validate(const char *customer_id, const char *name, int64_t credit_limit,
                      char *why, size_t why_size)
{
    if (!customer_id[0])
        snprintf(why, why_size, "customer_id must be a string of 1 to 64 bytes");
    else if (!eda_printable(customer_id, strlen(customer_id)))
        snprintf(why, why_size,
                 "customer_id must be UTF-8 text without control characters");
    else if (!name[0])
        snprintf(why, why_size, "name must be a string of 1 to 64 bytes");
    else if (credit_limit < 0)
        snprintf(why, why_size, "credit_limit must be an integer >= 0 (cents)");
    else
        return 0;
    return -1;
}
