/*  order_domain: totals, statuses, transitions. */
#include "order_domain.h"

#include <criterion/criterion.h>
#include <string.h>

static eda_item_t s_item(const char *sku, int64_t qty, int64_t price)
{
    eda_item_t it = {.qty = qty, .price = price};
    snprintf(it.sku, sizeof it.sku, "%s", sku);
    return it;
}

Test(order_domain, total_sums_qty_times_price)
{
    eda_item_t items[] = {s_item("apple", 2, 150), s_item("pear", 3, 99)};
    int64_t total = -1;
    char why[128];
    cr_assert_eq(order_total(items, 2, &total, why, sizeof why), 0);
    cr_assert_eq(total, 2 * 150 + 3 * 99);
}

Test(order_domain, free_items_total_zero)
{
    eda_item_t items[] = {s_item("gift", 5, 0)};
    int64_t total = -1;
    char why[128];
    cr_assert_eq(order_total(items, 1, &total, why, sizeof why), 0);
    cr_assert_eq(total, 0);
}

Test(order_domain, total_over_63_bits_is_refused)
{
    eda_item_t line = s_item("gold", INT64_MAX / 2 + 1, 2);
    int64_t total;
    char why[128] = "";
    cr_assert_eq(order_total(&line, 1, &total, why, sizeof why), -1);
    cr_assert(strstr(why, "63 bits"));

    eda_item_t two[] = {s_item("a", 1, INT64_MAX), s_item("b", 1, 1)};
    cr_assert_eq(order_total(two, 2, &total, why, sizeof why), -1);
}

Test(order_domain, status_names_round_trip)
{
    for (order_status_t s = ORDER_PENDING; s <= ORDER_CANCELLED; s++) {
        order_status_t back;
        cr_assert_eq(order_status_parse(order_status_name(s), &back), 0);
        cr_assert_eq(back, s);
    }
    order_status_t any;
    cr_assert_eq(order_status_parse("pending", &any), -1);
    cr_assert_eq(order_status_parse("", &any), -1);
}

Test(order_domain, only_pending_is_decided_only_approved_is_cancelled)
{
    cr_assert(order_can_decide(ORDER_PENDING));
    cr_assert_not(order_can_decide(ORDER_APPROVED));
    cr_assert_not(order_can_decide(ORDER_REJECTED));
    cr_assert(order_can_cancel(ORDER_APPROVED));
    cr_assert_not(order_can_cancel(ORDER_PENDING));
    cr_assert_not(order_can_cancel(ORDER_REJECTED));
    cr_assert_not(order_can_cancel(ORDER_CANCELLED));
}

Test(order_domain, rejection_reasons)
{
    cr_assert(order_reason_valid("CREDIT_LIMIT_EXCEEDED"));
    cr_assert(order_reason_valid("PARTICIPANT_UNAVAILABLE"));
    cr_assert_not(order_reason_valid("credit_limit_exceeded"));
    cr_assert_not(order_reason_valid("BECAUSE"));
}

Test(order_domain, quantities_over_63_bits_are_refused_even_for_free_items)
{
    eda_item_t items[] = {s_item("apple", INT64_MAX, 0), s_item("apple", 1, 0)};
    int64_t total;
    char why[128] = "";
    cr_assert_eq(order_total(items, 2, &total, why, sizeof why), -1);
    cr_assert(strstr(why, "quantities"));
}
