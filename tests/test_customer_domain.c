/*  customer_domain: credit holds. */
#include "customer_domain.h"

#include <criterion/criterion.h>
#include <string.h>

Test(customer_domain, reserve_within_limit_holds_the_amount)
{
    customer_credit_t c = {.credit_limit = 10000, .reserved = 2500};
    customer_decision_t d = customer_reserve(&c, 7500);
    cr_assert(d.reserved);
    cr_assert_eq(d.available, 7500);
    cr_assert_eq(c.reserved, 10000);
    cr_assert_eq(customer_available(&c), 0);
}

Test(customer_domain, amount_over_available_is_refused_and_holds_nothing)
{
    customer_credit_t c = {.credit_limit = 10000, .reserved = 2500};
    customer_decision_t d = customer_reserve(&c, 7501);
    cr_assert_not(d.reserved);
    cr_assert_str_eq(d.reason, "CREDIT_LIMIT_EXCEEDED");
    cr_assert_eq(d.available, 7500);
    cr_assert_eq(c.reserved, 2500);
}

Test(customer_domain, unknown_customer_has_nothing_available)
{
    customer_decision_t d = customer_reserve(NULL, 1);
    cr_assert_not(d.reserved);
    cr_assert_str_eq(d.reason, "UNKNOWN_CUSTOMER");
    cr_assert_eq(d.available, 0);
}

Test(customer_domain, zero_amount_is_held_even_at_zero_limit)
{
    customer_credit_t c = {.credit_limit = 0};
    cr_assert(customer_reserve(&c, 0).reserved);
}

Test(customer_domain, release_gives_credit_back)
{
    customer_credit_t c = {.credit_limit = 500, .reserved = 500};
    customer_release(&c, 200);
    cr_assert_eq(customer_available(&c), 200);
}

Test(customer_domain, validate_new_customer)
{
    char why[128];
    cr_assert_eq(customer_validate("c1", "Ann", 0, why, sizeof why), 0);
    cr_assert_eq(customer_validate("", "Ann", 0, why, sizeof why), -1);
    cr_assert(strstr(why, "customer_id"));
    cr_assert_eq(customer_validate("c1", "", 0, why, sizeof why), -1);
    cr_assert(strstr(why, "name"));
    cr_assert_eq(customer_validate("c1", "Ann", -1, why, sizeof why), -1);
    cr_assert(strstr(why, "credit_limit"));
}

/*  An id is refused with a control character in it (it would reach every
    log line and terminal that names the customer); a name is kept, and
    escaped wherever it is shown. */
Test(customer_domain, validate_refuses_control_characters_in_the_id_only)
{
    static const char *bad[] = {"c\n1",
                                "c\x1b[2J",
                                "\x07",
                                "c\x7f",
                                ("c\xc2\x9b"
                                 "1"), /* 1 is no hex digit of \x9b */
                                "c\xff",
                                "c\t1"};
    char why[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        cr_assert_eq(customer_validate(bad[i], "Ann", 0, why, sizeof why), -1, "id %zu",
                     i);
        cr_assert(strstr(why, "customer_id") && strstr(why, "control characters"),
                  "id %zu: %s", i, why);
    }
    cr_assert_eq(customer_validate("Zo\xc3\xab-1", "Ann", 0, why, sizeof why), 0,
                 "UTF-8 ids are fine: %s", why);
    cr_assert_eq(
        customer_validate("c1", "\x1b]0;pwned\x07\x1b[2J\nFAKE LINE", 0, why, sizeof why),
        0, "a name may hold anything: %s", why);
}
