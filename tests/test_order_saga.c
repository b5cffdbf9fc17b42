/*  order_saga: backoff, the happy path, refusals and their compensation,
    timeouts, the deadline, late replies, cancel and resume. */
#include "order_saga.h"

#include <criterion/criterion.h>
#include <string.h>

#define T0       1000000
#define TIMEOUT  1000
#define DEADLINE 10000

static const order_saga_config_t s_cfg = {.timeout_ms = TIMEOUT, .deadline_ms = DEADLINE};

static void s_assert_same(const order_saga_t *a, const order_saga_t *b)
{
    cr_assert_eq(a->step, b->step);
    cr_assert_eq(a->attempts, b->attempts);
    cr_assert_eq(a->waiting, b->waiting);
    cr_assert_eq(a->due_ms, b->due_ms);
    cr_assert_eq(a->deadline_ms, b->deadline_ms);
    cr_assert_eq(a->release_stock, b->release_stock);
    cr_assert_eq(a->release_credit, b->release_credit);
}

/*  An action that only sends the current command, settling nothing. */
static void s_assert_sends(order_saga_action_t act)
{
    cr_assert(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_PENDING);
}

/*  An action that does nothing, yet applied (a timeout, an error reply). */
static void s_assert_quiet(order_saga_action_t act)
{
    cr_assert_not(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_PENDING);
}

static void s_assert_ignored(order_saga_t *saga, order_saga_action_t act,
                             const order_saga_t *before)
{
    cr_assert(act.ignored);
    cr_assert_not(act.send);
    cr_assert_eq(act.settle, ORDER_PENDING);
    s_assert_same(saga, before);
}

/*  A saga at ReserveStock, its credit reserved at T0 + 10. */
static void s_at_stock(order_saga_t *saga)
{
    order_saga_start(saga, &s_cfg, T0);
    order_saga_reply(saga, &s_cfg, T0 + 10, SAGA_RESERVE_CREDIT, SAGA_REPLY_OK, NULL);
    cr_assert_eq(saga->step, SAGA_RESERVE_STOCK);
}

/*  Ticks at each due time until the saga settles; returns that action. */
static order_saga_action_t s_tick_until_settled(order_saga_t *saga, int64_t *now)
{
    for (int i = 0; i < 1000; i++) {
        *now = saga->due_ms;
        order_saga_action_t act = order_saga_tick(saga, &s_cfg, *now);
        cr_assert_not(act.ignored);
        if (act.settle != ORDER_PENDING)
            return act;
        if (saga->step == SAGA_RESERVE_CREDIT || saga->step == SAGA_RESERVE_STOCK)
            cr_assert_leq(saga->due_ms, saga->deadline_ms);
    }
    cr_assert_fail("the saga never settled");
    return (order_saga_action_t){0};
}

Test(order_saga, backoff_doubles_from_100_ms_up_to_5_s)
{
    int64_t expect[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (uint32_t n = 1; n <= 9; n++)
        cr_assert_eq(order_saga_backoff_ms(n), expect[n - 1], "n=%u", n);
    cr_assert_eq(order_saga_backoff_ms(31), SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(order_saga_backoff_ms(32), SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(order_saga_backoff_ms(63), SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(order_saga_backoff_ms(64), SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(order_saga_backoff_ms(65), SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(order_saga_backoff_ms(UINT32_MAX), SAGA_BACKOFF_MAX_MS);
}

Test(order_saga, commands_and_step_names)
{
    const char *commands[] = {"ReserveCredit", "ReserveStock", "ReleaseStock",
                              "ReleaseCredit"};
    const char *names[] = {"RESERVE_CREDIT", "RESERVE_STOCK", "RELEASE_STOCK",
                           "RELEASE_CREDIT", "DONE"};
    for (order_saga_step_t s = SAGA_RESERVE_CREDIT; s < SAGA_DONE; s++) {
        cr_assert_str_eq(order_saga_command(s), commands[s]);
        cr_assert_eq(order_saga_step_of(commands[s]), (int)s);
    }
    for (order_saga_step_t s = SAGA_RESERVE_CREDIT; s <= SAGA_DONE; s++)
        cr_assert_str_eq(order_saga_step_name(s), names[s]);
    cr_assert_null(order_saga_command(SAGA_DONE));
    cr_assert_eq(order_saga_step_of(NULL), -1);
    cr_assert_eq(order_saga_step_of(""), -1);
    cr_assert_eq(order_saga_step_of("reservecredit"), -1);
    cr_assert_eq(order_saga_step_of("PlaceOrder"), -1);
    cr_assert_eq(order_saga_step_of("RESERVE_CREDIT"), -1);
}

Test(order_saga, start_sends_reserve_credit)
{
    order_saga_t saga;
    memset(&saga, 0xA5, sizeof saga);
    order_saga_action_t act = order_saga_start(&saga, &s_cfg, T0);
    s_assert_sends(act);
    cr_assert_eq(saga.step, SAGA_RESERVE_CREDIT);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, T0 + TIMEOUT);
    cr_assert_eq(saga.deadline_ms, T0 + DEADLINE);
    cr_assert_not(saga.release_stock);
    cr_assert_not(saga.release_credit);
}

Test(order_saga, credit_then_stock_approves)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);

    order_saga_action_t act = order_saga_reply(&saga, &s_cfg, T0 + 10,
                                               SAGA_RESERVE_CREDIT, SAGA_REPLY_OK, NULL);
    s_assert_sends(act);
    cr_assert_eq(saga.step, SAGA_RESERVE_STOCK);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, T0 + 10 + TIMEOUT);
    cr_assert_eq(saga.deadline_ms, T0 + DEADLINE);

    act =
        order_saga_reply(&saga, &s_cfg, T0 + 20, SAGA_RESERVE_STOCK, SAGA_REPLY_OK, NULL);
    cr_assert_not(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_APPROVED);
    cr_assert_eq(saga.step, SAGA_DONE);
    cr_assert_eq(saga.due_ms, 0);
    cr_assert_not(saga.release_stock);
    cr_assert_not(saga.release_credit);
}

Test(order_saga, credit_refused_rejects_without_compensation)
{
    static const char reason[] = "CREDIT_LIMIT_EXCEEDED";
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    order_saga_action_t act = order_saga_reply(
        &saga, &s_cfg, T0 + 10, SAGA_RESERVE_CREDIT, SAGA_REPLY_REFUSED, reason);
    cr_assert_not(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_eq(act.reason, reason);
    cr_assert_eq(saga.step, SAGA_DONE);
    cr_assert_eq(saga.due_ms, 0);
    cr_assert_not(saga.release_stock);
    cr_assert_not(saga.release_credit);
}

Test(order_saga, stock_refused_rejects_then_releases_credit_until_acknowledged)
{
    static const char reason[] = "OUT_OF_STOCK";
    order_saga_t saga;
    s_at_stock(&saga);
    order_saga_action_t act = order_saga_reply(&saga, &s_cfg, T0 + 20, SAGA_RESERVE_STOCK,
                                               SAGA_REPLY_REFUSED, reason);
    cr_assert(act.send);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_eq(act.reason, reason);
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, T0 + 20 + TIMEOUT);
    cr_assert(saga.release_credit);
    cr_assert_not(saga.release_stock);

    /* Unanswered: wait the backoff, then send it again. */
    int64_t now = saga.due_ms;
    s_assert_quiet(order_saga_tick(&saga, &s_cfg, now));
    cr_assert_eq(saga.due_ms, now + 100);
    now = saga.due_ms;
    s_assert_sends(order_saga_tick(&saga, &s_cfg, now));
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_eq(saga.attempts, 2);

    /* A release is acknowledged even when the participant held nothing. */
    act = order_saga_reply(&saga, &s_cfg, now + 5, SAGA_RELEASE_CREDIT,
                           SAGA_REPLY_REFUSED, "NOTHING_HELD");
    cr_assert_not(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_PENDING);
    cr_assert_eq(saga.step, SAGA_DONE);
    cr_assert_eq(saga.due_ms, 0);
    cr_assert_not(saga.release_credit);
}

Test(order_saga, timeout_waits_the_backoff_then_resends)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    int64_t now = T0;
    for (uint32_t n = 1; n <= 3; n++) {
        cr_assert_eq(saga.attempts, n);
        cr_assert(saga.waiting);
        now = saga.due_ms;
        s_assert_quiet(order_saga_tick(&saga, &s_cfg, now));
        cr_assert_eq(saga.step, SAGA_RESERVE_CREDIT);
        cr_assert_not(saga.waiting);
        cr_assert_eq(saga.attempts, n);
        cr_assert_eq(saga.due_ms, now + order_saga_backoff_ms(n));

        now = saga.due_ms;
        s_assert_sends(order_saga_tick(&saga, &s_cfg, now));
        cr_assert(saga.waiting);
        cr_assert_eq(saga.attempts, n + 1);
        cr_assert_eq(saga.due_ms, now + TIMEOUT);
    }
    cr_assert_eq(saga.deadline_ms, T0 + DEADLINE);
}

Test(order_saga, error_reply_is_retried_like_a_timeout)
{
    order_saga_t saga;
    s_at_stock(&saga);
    int64_t now = T0 + 50;
    s_assert_quiet(order_saga_reply(&saga, &s_cfg, now, SAGA_RESERVE_STOCK,
                                    SAGA_REPLY_FAILED, "INTERNAL"));
    cr_assert_eq(saga.step, SAGA_RESERVE_STOCK);
    cr_assert_not(saga.waiting);
    cr_assert_eq(saga.attempts, 1);
    cr_assert_eq(saga.due_ms, now + 100);

    now = saga.due_ms;
    s_assert_sends(order_saga_tick(&saga, &s_cfg, now));
    cr_assert_eq(saga.attempts, 2);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);

    /* The second failure waits twice as long. */
    now += 30;
    s_assert_quiet(order_saga_reply(&saga, &s_cfg, now, SAGA_RESERVE_STOCK,
                                    SAGA_REPLY_FAILED, "INTERNAL"));
    cr_assert_eq(saga.due_ms, now + 200);
}

Test(order_saga, deadline_at_reserve_credit_rejects_and_releases_credit)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    int64_t now = T0;
    order_saga_action_t act = s_tick_until_settled(&saga, &now);
    cr_assert_eq(now, T0 + DEADLINE, "gave up at %lld", (long long)now);
    cr_assert(act.send);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_str_eq(act.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);
    cr_assert(saga.release_credit);
    cr_assert_not(saga.release_stock);

    act = order_saga_reply(&saga, &s_cfg, now + 1, SAGA_RELEASE_CREDIT, SAGA_REPLY_OK,
                           NULL);
    cr_assert_not(act.send);
    cr_assert_eq(act.settle, ORDER_PENDING);
    cr_assert_eq(saga.step, SAGA_DONE);
}

Test(order_saga, deadline_at_reserve_stock_releases_stock_then_credit)
{
    order_saga_t saga;
    s_at_stock(&saga);
    int64_t now = T0;
    order_saga_action_t act = s_tick_until_settled(&saga, &now);
    cr_assert_eq(now, T0 + DEADLINE);
    cr_assert(act.send);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_str_eq(act.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.release_stock);
    cr_assert(saga.release_credit);

    act =
        order_saga_reply(&saga, &s_cfg, now + 1, SAGA_RELEASE_STOCK, SAGA_REPLY_OK, NULL);
    s_assert_sends(act);
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + 1 + TIMEOUT);
    cr_assert_not(saga.release_stock);
    cr_assert(saga.release_credit);

    act = order_saga_reply(&saga, &s_cfg, now + 2, SAGA_RELEASE_CREDIT, SAGA_REPLY_OK,
                           NULL);
    cr_assert_not(act.send);
    cr_assert_eq(saga.step, SAGA_DONE);
    cr_assert_eq(saga.due_ms, 0);
    cr_assert_not(saga.release_credit);
}

Test(order_saga, releases_are_retried_past_the_deadline_without_end)
{
    order_saga_t saga;
    s_at_stock(&saga);
    int64_t now = T0;
    s_tick_until_settled(&saga, &now);
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);

    for (uint32_t n = 1; n <= 40; n++) {
        now = saga.due_ms;
        s_assert_quiet(order_saga_tick(&saga, &s_cfg, now));
        cr_assert_eq(saga.due_ms - now, order_saga_backoff_ms(n));
        cr_assert_leq(saga.due_ms - now, SAGA_BACKOFF_MAX_MS);
        now = saga.due_ms;
        s_assert_sends(order_saga_tick(&saga, &s_cfg, now));
        cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
        cr_assert_eq(saga.attempts, n + 1);
        cr_assert_eq(saga.due_ms, now + TIMEOUT);
    }
    cr_assert_gt(now, saga.deadline_ms + 40 * TIMEOUT);

    /* An error reply past the deadline is retried too, after the capped wait. */
    s_assert_quiet(order_saga_reply(&saga, &s_cfg, now, SAGA_RELEASE_STOCK,
                                    SAGA_REPLY_FAILED, "INTERNAL"));
    cr_assert_eq(saga.due_ms, now + SAGA_BACKOFF_MAX_MS);
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
}

Test(order_saga, backoff_never_schedules_a_forward_retry_past_the_deadline)
{
    /* A deadline 50 ms after the first timeout: the backoff would cross it. */
    const order_saga_config_t cfg = {.timeout_ms = 1000, .deadline_ms = 1050};
    order_saga_t saga;
    order_saga_start(&saga, &cfg, T0);
    cr_assert_eq(saga.due_ms, T0 + 1000);
    s_assert_quiet(order_saga_tick(&saga, &cfg, T0 + 1000));
    cr_assert_eq(saga.due_ms, T0 + 1050);

    order_saga_action_t act = order_saga_tick(&saga, &cfg, T0 + 1050);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_str_eq(act.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);

    /* A deadline shorter than the timeout caps the first wait as well. */
    const order_saga_config_t tight = {.timeout_ms = 1000, .deadline_ms = 300};
    order_saga_start(&saga, &tight, T0);
    cr_assert_eq(saga.due_ms, T0 + 300);

    /* An error reply just before the deadline waits only until it. */
    order_saga_start(&saga, &s_cfg, T0);
    s_assert_quiet(order_saga_reply(&saga, &s_cfg, T0 + DEADLINE - 10,
                                    SAGA_RESERVE_CREDIT, SAGA_REPLY_FAILED, NULL));
    cr_assert_eq(saga.due_ms, T0 + DEADLINE);
}

Test(order_saga, reply_past_the_deadline_moves_on_then_gives_up_at_once)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    int64_t late = T0 + DEADLINE + 5;
    s_assert_sends(
        order_saga_reply(&saga, &s_cfg, late, SAGA_RESERVE_CREDIT, SAGA_REPLY_OK, NULL));
    cr_assert_eq(saga.step, SAGA_RESERVE_STOCK);
    cr_assert_eq(saga.due_ms, T0 + DEADLINE);

    order_saga_action_t act = order_saga_tick(&saga, &s_cfg, late);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
    cr_assert(saga.release_credit);
}

Test(order_saga, late_and_duplicate_replies_are_ignored)
{
    order_saga_t saga, before;
    s_at_stock(&saga);
    before = saga;
    s_assert_ignored(&saga,
                     order_saga_reply(&saga, &s_cfg, T0 + 30, SAGA_RESERVE_CREDIT,
                                      SAGA_REPLY_OK, NULL),
                     &before);
    s_assert_ignored(&saga,
                     order_saga_reply(&saga, &s_cfg, T0 + 30, SAGA_RESERVE_CREDIT,
                                      SAGA_REPLY_FAILED, NULL),
                     &before);
    s_assert_ignored(&saga,
                     order_saga_reply(&saga, &s_cfg, T0 + 30, SAGA_RELEASE_CREDIT,
                                      SAGA_REPLY_OK, NULL),
                     &before);

    order_saga_reply(&saga, &s_cfg, T0 + 40, SAGA_RESERVE_STOCK, SAGA_REPLY_OK, NULL);
    cr_assert_eq(saga.step, SAGA_DONE);
    before = saga;
    s_assert_ignored(
        &saga,
        order_saga_reply(&saga, &s_cfg, T0 + 50, SAGA_RESERVE_STOCK, SAGA_REPLY_OK, NULL),
        &before);
    s_assert_ignored(&saga,
                     order_saga_reply(&saga, &s_cfg, T0 + 50, SAGA_RESERVE_STOCK,
                                      SAGA_REPLY_REFUSED, "OUT_OF_STOCK"),
                     &before);
    s_assert_ignored(
        &saga, order_saga_reply(&saga, &s_cfg, T0 + 50, SAGA_DONE, SAGA_REPLY_OK, NULL),
        &before);
    s_assert_ignored(&saga, order_saga_tick(&saga, &s_cfg, T0 + DEADLINE * 10), &before);
}

Test(order_saga, reply_during_backoff_is_accepted)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    s_assert_quiet(order_saga_tick(&saga, &s_cfg, T0 + TIMEOUT));
    cr_assert_not(saga.waiting);

    order_saga_action_t act = order_saga_reply(&saga, &s_cfg, T0 + TIMEOUT + 50,
                                               SAGA_RESERVE_CREDIT, SAGA_REPLY_OK, NULL);
    s_assert_sends(act);
    cr_assert_eq(saga.step, SAGA_RESERVE_STOCK);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, T0 + TIMEOUT + 50 + TIMEOUT);
}

Test(order_saga, tick_before_due_is_ignored)
{
    order_saga_t saga, before;
    order_saga_start(&saga, &s_cfg, T0);
    before = saga;
    s_assert_ignored(&saga, order_saga_tick(&saga, &s_cfg, T0), &before);
    s_assert_ignored(&saga, order_saga_tick(&saga, &s_cfg, T0 + TIMEOUT - 1), &before);

    /* In the backoff too. */
    order_saga_tick(&saga, &s_cfg, T0 + TIMEOUT);
    cr_assert_not(saga.waiting);
    before = saga;
    s_assert_ignored(&saga, order_saga_tick(&saga, &s_cfg, saga.due_ms - 1), &before);
}

Test(order_saga, cancel_releases_stock_then_credit)
{
    order_saga_t saga;
    s_at_stock(&saga);
    order_saga_reply(&saga, &s_cfg, T0 + 20, SAGA_RESERVE_STOCK, SAGA_REPLY_OK, NULL);
    cr_assert_eq(saga.step, SAGA_DONE);

    int64_t now = T0 + DEADLINE * 5;
    order_saga_action_t act = order_saga_cancel(&saga, &s_cfg, now);
    cr_assert(act.send);
    cr_assert_not(act.ignored);
    cr_assert_eq(act.settle, ORDER_CANCELLED);
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);
    cr_assert_eq(saga.deadline_ms, T0 + DEADLINE);
    cr_assert(saga.release_stock);
    cr_assert(saga.release_credit);

    /* The credit is released only after the stock. */
    order_saga_t before = saga;
    s_assert_ignored(&saga,
                     order_saga_reply(&saga, &s_cfg, now + 1, SAGA_RELEASE_CREDIT,
                                      SAGA_REPLY_OK, NULL),
                     &before);
    s_assert_sends(order_saga_reply(&saga, &s_cfg, now + 2, SAGA_RELEASE_STOCK,
                                    SAGA_REPLY_OK, NULL));
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    act = order_saga_reply(&saga, &s_cfg, now + 3, SAGA_RELEASE_CREDIT, SAGA_REPLY_OK,
                           NULL);
    cr_assert_not(act.send);
    cr_assert_eq(act.settle, ORDER_PENDING);
    cr_assert_eq(saga.step, SAGA_DONE);
}

Test(order_saga, resume_resends_at_once_keeping_attempts_and_deadline)
{
    order_saga_t saga;
    order_saga_start(&saga, &s_cfg, T0);
    order_saga_tick(&saga, &s_cfg, T0 + TIMEOUT);       /* timeout */
    order_saga_tick(&saga, &s_cfg, T0 + TIMEOUT + 100); /* attempt 2 */
    order_saga_tick(&saga, &s_cfg, saga.due_ms);        /* timeout: in backoff */
    cr_assert_eq(saga.attempts, 2);
    cr_assert_not(saga.waiting);

    /* The restart comes before the backoff is over: send anyway. */
    int64_t now = saga.due_ms - 50;
    s_assert_sends(order_saga_resume(&saga, &s_cfg, now));
    cr_assert_eq(saga.step, SAGA_RESERVE_CREDIT);
    cr_assert_eq(saga.attempts, 3);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);
    cr_assert_eq(saga.deadline_ms, T0 + DEADLINE);

    /* Near the deadline the wait is capped by it. */
    now = T0 + DEADLINE - 10;
    s_assert_sends(order_saga_resume(&saga, &s_cfg, now));
    cr_assert_eq(saga.attempts, 4);
    cr_assert_eq(saga.due_ms, T0 + DEADLINE);
}

Test(order_saga, resume_of_a_release_past_the_deadline_resends_it)
{
    order_saga_t saga;
    s_at_stock(&saga);
    order_saga_reply(&saga, &s_cfg, T0 + 20, SAGA_RESERVE_STOCK, SAGA_REPLY_REFUSED,
                     "OUT_OF_STOCK");
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    int64_t now = T0 + DEADLINE * 3;
    s_assert_sends(order_saga_resume(&saga, &s_cfg, now));
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_eq(saga.attempts, 2);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);
}

Test(order_saga, resume_of_done_is_ignored)
{
    order_saga_t saga, before;
    order_saga_start(&saga, &s_cfg, T0);
    order_saga_reply(&saga, &s_cfg, T0 + 10, SAGA_RESERVE_CREDIT, SAGA_REPLY_REFUSED,
                     "UNKNOWN_CUSTOMER");
    cr_assert_eq(saga.step, SAGA_DONE);
    before = saga;
    s_assert_ignored(&saga, order_saga_resume(&saga, &s_cfg, T0 + 20), &before);
}

Test(order_saga, resume_past_the_deadline_gives_up)
{
    order_saga_t saga;
    s_at_stock(&saga);
    int64_t now = T0 + DEADLINE;
    order_saga_action_t act = order_saga_resume(&saga, &s_cfg, now);
    cr_assert(act.send);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_str_eq(act.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(saga.step, SAGA_RELEASE_STOCK);
    cr_assert_eq(saga.attempts, 1);
    cr_assert(saga.waiting);
    cr_assert_eq(saga.due_ms, now + TIMEOUT);
    cr_assert(saga.release_stock);
    cr_assert(saga.release_credit);

    order_saga_start(&saga, &s_cfg, T0);
    act = order_saga_resume(&saga, &s_cfg, T0 + DEADLINE * 2);
    cr_assert_eq(act.settle, ORDER_REJECTED);
    cr_assert_eq(saga.step, SAGA_RELEASE_CREDIT);
    cr_assert_not(saga.release_stock);
    cr_assert(saga.release_credit);
}
