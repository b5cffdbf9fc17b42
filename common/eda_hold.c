/*  eda_hold: the per-order record of a participant's holds, as rules. */
#include "eda_hold.h"

#include <stddef.h>
#include <string.h>

static const char *s_names[] = {"", "RESERVED", "REJECTED", "RELEASED", "VOIDED"};

const char *eda_hold_name(eda_hold_t state)
{
    return (size_t)state <= EDA_HOLD_VOIDED ? s_names[state] : "VOIDED";
}

eda_hold_t eda_hold_parse(const char *name)
{
    if (!name || !name[0])
        return EDA_HOLD_NONE;
    for (int i = EDA_HOLD_RESERVED; i <= EDA_HOLD_VOIDED; i++)
        if (strcmp(name, s_names[i]) == 0)
            return (eda_hold_t)i;
    return EDA_HOLD_VOIDED;
}

bool eda_hold_repeat(eda_hold_t state, const char *stored, const char **reason)
{
    *reason = NULL;
    if (state == EDA_HOLD_RESERVED || state == EDA_HOLD_RELEASED)
        return true;
    if (state == EDA_HOLD_REJECTED)
        *reason = stored && stored[0] ? stored : "REJECTED"; /* kept no reason */
    else
        *reason = "ALREADY_RELEASED";
    return false;
}

eda_release_t eda_hold_release(eda_hold_t state)
{
    switch (state) {
    case EDA_HOLD_NONE:
        return (eda_release_t){.next = EDA_HOLD_VOIDED};
    case EDA_HOLD_RESERVED:
        return (eda_release_t){
            .next = EDA_HOLD_RELEASED, .give_back = true, .released = true};
    case EDA_HOLD_RELEASED:
        return (eda_release_t){.next = state, .released = true};
    default: /* REJECTED, VOIDED: nothing was ever held */
        return (eda_release_t){.next = state};
    }
}
