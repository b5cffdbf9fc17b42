/*  test_e2e_config: the deployment README describes for several hosts, on
    one: every service and the eda client are given only one ZPL file that
    names the whole topology, over TCP on ports free at run time.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static tu_system_t sys;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_use_config(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    tu_system_fini(&sys);
}

TestSuite(e2e_config, .init = s_setup, .fini = s_teardown, .timeout = 120);

/*  Runs the eda client with `args` after --config and returns its output's
    first line in out[size]; the exit status is returned. */
static int s_eda(const char *args, char *out, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s/tools/eda --config '%s' %s 2>&1", EDA_BIN_DIR,
             sys.config, args);
    FILE *pipe = popen(cmd, "r");
    cr_assert_not_null(pipe);
    out[0] = '\0';
    if (!fgets(out, (int)size, pipe))
        out[0] = '\0';
    char rest[4096];
    while (fgets(rest, sizeof rest, pipe))
        ;
    return pclose(pipe);
}

Test(e2e_config, one_topology_file_runs_the_saga_over_tcp)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 5000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "quill", 3), 0, "%s", sys.why);
    tu_item_t items[] = {{"quill", 2, 700}};
    char id[EDA_NAME_MAX + 1];
    cr_assert_eq(tu_place_order(&sys, "ada", items, 1, NULL, id, NULL, NULL), 0, "%s",
                 sys.why);
    tu_order_t order;
    cr_assert_eq(tu_wait_order(&sys, id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_str_eq(order.status, "APPROVED");

    /* The client finds the services through the same file. */
    char line[1024];
    cr_assert_eq(s_eda("ping", line, sizeof line), 0, "eda ping: %s", line);
    cr_assert_eq(s_eda("customer show ada", line, sizeof line), 0, "%s", line);
    cr_assert(strstr(line, "reserved 14.00"), "eda customer show ada: %s", line);
    char args[128];
    snprintf(args, sizeof args, "--json order %s", id);
    cr_assert_eq(s_eda(args, line, sizeof line), 0, "%s", line);
    cr_assert(strstr(line, "\"status\":\"APPROVED\""), "eda order: %s", line);

    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

/*  A service started late and one restarted find their peers through the
    file as well: the file is the whole topology, not a start-up order. */
Test(e2e_config, late_start_and_restart_from_the_file)
{
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "ink", 10), 0, "%s", sys.why);
    tu_item_t items[] = {{"ink", 1, 100}};
    char id[EDA_NAME_MAX + 1];
    cr_assert_eq(tu_place_order(&sys, "bea", items, 1, NULL, id, NULL, NULL), 0, "%s",
                 sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    tu_order_t order;
    cr_assert_eq(tu_wait_order(&sys, id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_str_eq(order.status, "REJECTED"); /* bea is nobody's customer */
    cr_assert_str_eq(order.reason, "UNKNOWN_CUSTOMER");

    cr_assert_eq(tu_system_kill(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "bea", 1000), 0, "%s", sys.why);
    cr_assert_eq(tu_place_order(&sys, "bea", items, 1, NULL, id, NULL, NULL), 0, "%s",
                 sys.why);
    cr_assert_eq(tu_wait_order(&sys, id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_str_eq(order.status, "APPROVED");
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}
