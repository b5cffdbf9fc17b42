/*  eda_hold: what a participant records per order of what it holds for it
    (credit, stock), and the rules that make reservations and releases
    idempotent whichever way they arrive (a peer's event, a command): the
    first reservation decides, a repeat answers that first outcome, a release
    gives back once, and a release that comes before any reservation leaves a
    tombstone so that a late reservation is refused. Plain functions, no
    storage: each service keeps the state in its own table.
*/
#ifndef EDA_HOLD_H_INCLUDED
#define EDA_HOLD_H_INCLUDED

#include <stdbool.h>

typedef enum {
    EDA_HOLD_NONE,     /* nothing recorded */
    EDA_HOLD_RESERVED, /* held */
    EDA_HOLD_REJECTED, /* refused; nothing held */
    EDA_HOLD_RELEASED, /* held, then given back */
    EDA_HOLD_VOIDED    /* released before any reservation: a tombstone */
} eda_hold_t;

/*  The stored name of a state ("RESERVED", ...; "" for NONE). Can't fail. */
const char *eda_hold_name(eda_hold_t state);

/*  Reads a stored name; NULL or "" is NONE. A name it does not know reads as
    VOIDED, which holds nothing and lets nothing be held. Can't fail. */
eda_hold_t eda_hold_parse(const char *name);

/*  The answer to a reservation for an order already recorded in `state`
    (not NONE): true when the first outcome held (RESERVED, RELEASED since);
    else false with *reason: the stored reason of the refusal (`stored`, or
    "REJECTED" when a database older than reasons kept none), or
    ALREADY_RELEASED after a release of nothing. Nothing changes and nothing
    is to be published. Can't fail. */
bool eda_hold_repeat(eda_hold_t state, const char *stored, const char **reason);

typedef struct {
    eda_hold_t next; /* the state to record (the same: record nothing) */
    bool give_back;  /* what is held is to be given back now */
    bool released;   /* the answer: it was held and is given back, now or before */
} eda_release_t;

/*  Decides a release of an order recorded in `state`. Only a RESERVED hold
    gives back, once; a release of an order never seen leaves VOIDED. Can't
    fail. */
eda_release_t eda_hold_release(eda_hold_t state);

#endif
