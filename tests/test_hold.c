/*  eda_hold: a participant's per-order record, the rules without a network. */
#include "eda_hold.h"

#include <criterion/criterion.h>
#include <string.h>

Test(hold, a_repeat_answers_the_first_outcome)
{
    const char *reason = "unset";
    cr_assert(eda_hold_repeat(EDA_HOLD_RESERVED, NULL, &reason));
    cr_assert_null(reason);
    cr_assert(eda_hold_repeat(EDA_HOLD_RELEASED, NULL, &reason),
              "held then given back: the first outcome was a reservation");
    cr_assert_not(eda_hold_repeat(EDA_HOLD_REJECTED, "UNKNOWN_CUSTOMER", &reason));
    cr_assert_str_eq(reason, "UNKNOWN_CUSTOMER");
    cr_assert_not(eda_hold_repeat(EDA_HOLD_REJECTED, "", &reason));
    cr_assert_str_eq(reason, "REJECTED", "a database older than reasons kept none");
}

Test(hold, a_reservation_after_a_release_of_nothing_is_refused)
{
    eda_release_t r = eda_hold_release(EDA_HOLD_NONE);
    cr_assert_eq(r.next, EDA_HOLD_VOIDED);
    cr_assert_not(r.give_back);
    cr_assert_not(r.released);
    const char *reason = NULL;
    cr_assert_not(eda_hold_repeat(r.next, NULL, &reason));
    cr_assert_str_eq(reason, "ALREADY_RELEASED");
}

Test(hold, a_release_gives_back_once)
{
    eda_release_t r = eda_hold_release(EDA_HOLD_RESERVED);
    cr_assert_eq(r.next, EDA_HOLD_RELEASED);
    cr_assert(r.give_back && r.released);
    r = eda_hold_release(r.next);
    cr_assert_eq(r.next, EDA_HOLD_RELEASED, "a repeat records nothing new");
    cr_assert(!r.give_back && r.released, "and gives nothing back twice");
    r = eda_hold_release(EDA_HOLD_REJECTED);
    cr_assert(r.next == EDA_HOLD_REJECTED && !r.give_back && !r.released,
              "a refused reservation holds nothing to release");
    r = eda_hold_release(EDA_HOLD_VOIDED);
    cr_assert(r.next == EDA_HOLD_VOIDED && !r.give_back && !r.released);
}

Test(hold, names_round_trip_and_unknown_names_hold_nothing)
{
    for (int i = EDA_HOLD_NONE; i <= EDA_HOLD_VOIDED; i++)
        cr_assert_eq((int)eda_hold_parse(eda_hold_name((eda_hold_t)i)), i, "%d", i);
    cr_assert_eq(eda_hold_parse(NULL), EDA_HOLD_NONE);
    cr_assert_eq(eda_hold_parse("HELD?"), EDA_HOLD_VOIDED);
    cr_assert_str_eq(eda_hold_name(EDA_HOLD_RESERVED), "RESERVED");
}
