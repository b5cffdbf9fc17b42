/*  inventory_domain: merging lines and the all-or-nothing decision. */
#include "inventory_domain.h"

#include <criterion/criterion.h>
#include <string.h>

static eda_item_t s_line(const char *sku, int64_t qty)
{
    eda_item_t it = {.qty = qty, .price = 100};
    snprintf(it.sku, sizeof it.sku, "%s", sku);
    return it;
}

Test(inventory_domain, merge_sums_a_sku_in_first_seen_order)
{
    eda_item_t in[] = {s_line("b", 1), s_line("a", 2), s_line("b", 3)}, out[3];
    cr_assert_eq(inventory_merge(in, 3, out), 2);
    cr_assert_str_eq(out[0].sku, "b");
    cr_assert_eq(out[0].qty, 4);
    cr_assert_str_eq(out[1].sku, "a");
    cr_assert_eq(out[1].qty, 2);
}

Test(inventory_domain, merge_overflow_is_refused)
{
    eda_item_t in[] = {s_line("a", INT64_MAX), s_line("a", 1)}, out[2];
    cr_assert_eq(inventory_merge(in, 2, out), -1);
}

Test(inventory_domain, all_lines_in_stock_are_reserved)
{
    eda_item_t lines[] = {s_line("a", 2), s_line("b", 5)};
    int64_t available[] = {2, 9};
    inventory_decision_t d = inventory_decide(lines, available, 2);
    cr_assert(d.reserved);
}

Test(inventory_domain, first_failing_line_in_order_is_reported)
{
    eda_item_t lines[] = {s_line("a", 1), s_line("b", 5), s_line("c", 1)};
    int64_t available[] = {1, 4, -1};
    inventory_decision_t d = inventory_decide(lines, available, 3);
    cr_assert_not(d.reserved);
    cr_assert_str_eq(d.reason, "OUT_OF_STOCK");
    cr_assert_eq(d.failed, 1);
    cr_assert_eq(d.requested, 5);
    cr_assert_eq(d.available, 4);
}

Test(inventory_domain, unknown_sku_reports_zero_available)
{
    eda_item_t lines[] = {s_line("ghost", 1), s_line("b", 99)};
    int64_t available[] = {-1, 0};
    inventory_decision_t d = inventory_decide(lines, available, 2);
    cr_assert_str_eq(d.reason, "UNKNOWN_SKU");
    cr_assert_eq(d.failed, 0);
    cr_assert_eq(d.available, 0);
}

Test(inventory_domain, validate_add)
{
    char why[128];
    cr_assert_eq(inventory_validate_add("a", 1, 0, why, sizeof why), 0);
    cr_assert_eq(inventory_validate_add("", 1, 0, why, sizeof why), -1);
    cr_assert_eq(inventory_validate_add("a", 0, 0, why, sizeof why), -1);
    cr_assert_eq(inventory_validate_add("a", 1, INT64_MAX, why, sizeof why), -1);
    cr_assert(strstr(why, "overflow"));
}

/*  A SKU with a control character in it is refused: it would reach log
    lines and terminals in every order that names it. */
Test(inventory_domain, validate_add_refuses_control_characters_in_the_sku)
{
    static const char *bad[] = {"a\nb",  "\x1b[2J",   "a\x07",
                                "a\x7f", "a\xc2\x9b", "a\xc3"};
    char why[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        cr_assert_eq(inventory_validate_add(bad[i], 1, 0, why, sizeof why), -1, "sku %zu",
                     i);
        cr_assert(strstr(why, "sku") && strstr(why, "control characters"), "sku %zu: %s",
                  i, why);
    }
    cr_assert_eq(inventory_validate_add("caf\xc3\xa9", 1, 0, why, sizeof why), 0,
                 "UTF-8 SKUs are fine: %s", why);
}
