/*  customer_domain: credit limits and holds, and the record per order that
    makes a repeated reservation or release change nothing. */
#include "customer_domain.h"

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

static const char *s_hold_names[] = {"", "RESERVED", "REJECTED", "RELEASED", "VOIDED"};

const char *customer_hold_name(customer_hold_t state)
{
    return s_hold_names[state];
}

customer_hold_t customer_hold_parse(const char *name)
{
    if (!name || !name[0])
        return CUSTOMER_HOLD_NONE;
    for (int i = CUSTOMER_HOLD_RESERVED; i <= CUSTOMER_HOLD_VOIDED; i++)
        if (strcmp(name, s_hold_names[i]) == 0)
            return (customer_hold_t)i;
    return CUSTOMER_HOLD_VOIDED;
}

customer_decision_t customer_hold_repeat(customer_hold_t state, const char *reason)
{
    customer_decision_t d = {0};
    if (state == CUSTOMER_HOLD_RESERVED || state == CUSTOMER_HOLD_RELEASED)
        d.reserved = true;
    else if (state == CUSTOMER_HOLD_REJECTED && reason && reason[0])
        d.reason = reason;
    else if (state == CUSTOMER_HOLD_REJECTED)
        d.reason = "REJECTED"; /* decided before reasons were kept */
    else
        d.reason = "ALREADY_RELEASED";
    return d;
}

customer_release_t customer_hold_release(customer_hold_t state)
{
    switch (state) {
    case CUSTOMER_HOLD_NONE:
        return (customer_release_t){.next = CUSTOMER_HOLD_VOIDED};
    case CUSTOMER_HOLD_RESERVED:
        return (customer_release_t){
            .next = CUSTOMER_HOLD_RELEASED, .give_back = true, .released = true};
    case CUSTOMER_HOLD_RELEASED:
        return (customer_release_t){.next = state, .released = true};
    default: /* REJECTED, VOIDED: nothing was ever held */
        return (customer_release_t){.next = state};
    }
}

int customer_validate(const char *customer_id, const char *name, int64_t credit_limit,
                      char *why, size_t why_size)
{
    if (!customer_id[0])
        snprintf(why, why_size, "customer_id must be a string of 1 to 64 bytes");
    else if (!name[0])
        snprintf(why, why_size, "name must be a string of 1 to 64 bytes");
    else if (credit_limit < 0)
        snprintf(why, why_size, "credit_limit must be an integer >= 0 (cents)");
    else
        return 0;
    return -1;
}
