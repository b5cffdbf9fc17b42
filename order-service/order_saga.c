/*  order_saga: the steps, retries, deadline and compensation of one order's
    saga, as plain functions over a plain struct, so that the orchestrator
    only stores it and does what each action says. */
#include "order_saga.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

static const char *s_commands[] = {"ReserveCredit", "ReserveStock", "ReleaseStock",
                                   "ReleaseCredit"};

static const char *s_step_names[] = {"RESERVE_CREDIT", "RESERVE_STOCK", "RELEASE_STOCK",
                                     "RELEASE_CREDIT", "DONE"};

#define S_GIVE_UP_REASON "PARTICIPANT_UNAVAILABLE"

int64_t order_saga_backoff_ms(uint32_t n)
{
    /* 100 x 2^6 is past the cap already: stop doubling before any overflow. */
    int64_t wait = SAGA_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < n && wait < SAGA_BACKOFF_MAX_MS; i++)
        wait *= 2;
    return wait < SAGA_BACKOFF_MAX_MS ? wait : SAGA_BACKOFF_MAX_MS;
}

const char *order_saga_command(order_saga_step_t step)
{
    return (size_t)step < SAGA_DONE ? s_commands[step] : NULL;
}

int order_saga_step_of(const char *command)
{
    if (!command)
        return -1;
    for (size_t i = 0; i < SAGA_DONE; i++)
        if (strcmp(command, s_commands[i]) == 0)
            return (int)i;
    return -1;
}

const char *order_saga_step_name(order_saga_step_t step)
{
    return (size_t)step <= SAGA_DONE ? s_step_names[step] : "?";
}

static order_saga_action_t s_action(void)
{
    return (order_saga_action_t){.send = false, .settle = ORDER_PENDING};
}

static bool s_forward(order_saga_step_t step)
{
    return step == SAGA_RESERVE_CREDIT || step == SAGA_RESERVE_STOCK;
}

/*  `now + ms`, saturated, so that no time overflows. */
static int64_t s_after(int64_t now, int64_t ms)
{
    int64_t when;
    return __builtin_add_overflow(now, ms, &when) ? INT64_MAX : when;
}

/*  When the timer of the current step fires: a forward step never waits past
    its deadline, so that it gives up on time. */
static int64_t s_due(const order_saga_t *saga, int64_t when)
{
    if (s_forward(saga->step) && when > saga->deadline_ms)
        return saga->deadline_ms;
    return when;
}

/*  Moves to `step` and sends its command for the first time. */
static void s_enter(order_saga_t *saga, const order_saga_config_t *cfg, int64_t now,
                    order_saga_step_t step, order_saga_action_t *action)
{
    saga->step = step;
    saga->attempts = 1;
    saga->waiting = true;
    saga->due_ms = s_due(saga, s_after(now, cfg->timeout_ms));
    action->send = true;
}

static void s_finish(order_saga_t *saga)
{
    saga->step = SAGA_DONE;
    saga->waiting = false;
    saga->due_ms = 0;
}

/*  Runs the first compensation still pending, or ends the saga. */
static void s_compensate(order_saga_t *saga, const order_saga_config_t *cfg, int64_t now,
                         order_saga_action_t *action)
{
    if (saga->release_stock)
        s_enter(saga, cfg, now, SAGA_RELEASE_STOCK, action);
    else if (saga->release_credit)
        s_enter(saga, cfg, now, SAGA_RELEASE_CREDIT, action);
    else
        s_finish(saga);
}

/*  A forward step past its deadline: reject, and release whatever the steps
    sent so far may have held (a lost reply may hide a reservation). */
static void s_give_up(order_saga_t *saga, const order_saga_config_t *cfg, int64_t now,
                      order_saga_action_t *action)
{
    assert(s_forward(saga->step));
    action->settle = ORDER_REJECTED;
    action->reason = S_GIVE_UP_REASON;
    saga->release_credit = true;
    if (saga->step == SAGA_RESERVE_STOCK)
        saga->release_stock = true;
    s_compensate(saga, cfg, now, action);
}

/*  The n-th failure of the current command: wait the backoff, then resend. */
static void s_fail(order_saga_t *saga, int64_t now)
{
    saga->waiting = false;
    saga->due_ms = s_due(saga, s_after(now, order_saga_backoff_ms(saga->attempts)));
}

/*  Sends the current command again. */
static void s_resend(order_saga_t *saga, const order_saga_config_t *cfg, int64_t now,
                     order_saga_action_t *action)
{
    if (saga->attempts < UINT32_MAX)
        saga->attempts++;
    saga->waiting = true;
    saga->due_ms = s_due(saga, s_after(now, cfg->timeout_ms));
    action->send = true;
}

static bool s_past_deadline(const order_saga_t *saga, int64_t now)
{
    return s_forward(saga->step) && now >= saga->deadline_ms;
}

order_saga_action_t order_saga_start(order_saga_t *saga, const order_saga_config_t *cfg,
                                     int64_t now)
{
    assert(saga && cfg);
    order_saga_action_t action = s_action();
    *saga = (order_saga_t){.deadline_ms = s_after(now, cfg->deadline_ms)};
    s_enter(saga, cfg, now, SAGA_RESERVE_CREDIT, &action);
    return action;
}

order_saga_action_t order_saga_cancel(order_saga_t *saga, const order_saga_config_t *cfg,
                                      int64_t now)
{
    assert(saga && cfg);
    order_saga_action_t action = s_action();
    action.settle = ORDER_CANCELLED;
    saga->release_stock = true;
    saga->release_credit = true;
    s_enter(saga, cfg, now, SAGA_RELEASE_STOCK, &action);
    return action;
}

/*  The current step's command was answered with OK or REFUSED. */
static void s_answered(order_saga_t *saga, const order_saga_config_t *cfg, int64_t now,
                       bool ok, const char *reason, order_saga_action_t *action)
{
    switch (saga->step) {
    case SAGA_RESERVE_CREDIT:
        if (ok)
            s_enter(saga, cfg, now, SAGA_RESERVE_STOCK, action);
        else {
            /* Credit was refused: nothing is held. */
            action->settle = ORDER_REJECTED;
            action->reason = reason;
            s_finish(saga);
        }
        break;
    case SAGA_RESERVE_STOCK:
        action->settle = ok ? ORDER_APPROVED : ORDER_REJECTED;
        action->reason = ok ? NULL : reason;
        saga->release_credit = !ok;
        s_compensate(saga, cfg, now, action);
        break;
    case SAGA_RELEASE_STOCK:
    case SAGA_RELEASE_CREDIT:
        /* A release is acknowledged whether it found something or not. */
        if (saga->step == SAGA_RELEASE_STOCK)
            saga->release_stock = false;
        else
            saga->release_credit = false;
        s_compensate(saga, cfg, now, action);
        break;
    case SAGA_DONE:
        assert(false);
    }
}

order_saga_action_t order_saga_reply(order_saga_t *saga, const order_saga_config_t *cfg,
                                     int64_t now, order_saga_step_t step,
                                     order_saga_reply_t outcome, const char *reason)
{
    assert(saga && cfg);
    assert(outcome == SAGA_REPLY_OK || outcome == SAGA_REPLY_REFUSED ||
           outcome == SAGA_REPLY_FAILED);
    order_saga_action_t action = s_action();
    if (saga->step == SAGA_DONE || step != saga->step) {
        action.ignored = true;
        return action;
    }
    if (outcome == SAGA_REPLY_FAILED)
        s_fail(saga, now);
    else
        s_answered(saga, cfg, now, outcome == SAGA_REPLY_OK, reason, &action);
    return action;
}

order_saga_action_t order_saga_tick(order_saga_t *saga, const order_saga_config_t *cfg,
                                    int64_t now)
{
    assert(saga && cfg);
    order_saga_action_t action = s_action();
    if (saga->step == SAGA_DONE || now < saga->due_ms)
        action.ignored = true;
    else if (s_past_deadline(saga, now))
        s_give_up(saga, cfg, now, &action);
    else if (saga->waiting)
        s_fail(saga, now);
    else
        s_resend(saga, cfg, now, &action);
    return action;
}

order_saga_action_t order_saga_resume(order_saga_t *saga, const order_saga_config_t *cfg,
                                      int64_t now)
{
    assert(saga && cfg);
    order_saga_action_t action = s_action();
    if (saga->step == SAGA_DONE)
        action.ignored = true;
    else if (s_past_deadline(saga, now))
        s_give_up(saga, cfg, now, &action);
    else
        s_resend(saga, cfg, now, &action);
    return action;
}
