/*  test_e2e_storage: storage truth with the real binaries (DESIGN sections 1
    and 4): one process per database, a deleted database stops its service,
    and both --sync modes serve orders while a bad one is refused.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static tu_system_t sys;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    tu_system_fini(&sys);
}

TestSuite(e2e_storage, .init = s_setup, .fini = s_teardown, .timeout = 120);

/*  True when the file at `path` has a line containing `text`. */
static bool s_log_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/*  Runs customer-service on endpoints of its own in sys.dir with `args`
    after them, output to `log`; returns its exit status as system() does. */
static int s_run_customer(const char *args, const char *log)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s/customer-service/customer-service --events 'ipc://%s/second.pub'"
             " --commands 'ipc://%s/second.cmd' %s > '%s' 2>&1",
             EDA_BIN_DIR, sys.dir, sys.dir, args, log);
    return system(cmd);
}

Test(e2e_storage, a_second_service_on_the_same_database_exits_1_naming_the_holder)
{
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "first", 100), 0, "%s", sys.why);
    char args[600], log[400];
    snprintf(args, sizeof args, "--db '%s'", sys.db[TU_CUSTOMER]);
    snprintf(log, sizeof log, "%s/second.log", sys.dir);
    int st = s_run_customer(args, log);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "the second instance exited %d", st);
    char reason[700];
    snprintf(reason, sizeof reason, "database '%s' is in use by process %d",
             sys.db[TU_CUSTOMER], (int)sys.pid[TU_CUSTOMER]);
    cr_assert(s_log_has(log, reason), "its log names the holder: %s", reason);
    cr_assert(s_log_has(log, "give this service another --db"), "and says what to do");
    /* The first goes on serving, with nothing lost. */
    int64_t reserved = -1;
    cr_assert_eq(tu_get_customer(&sys, "first", &reserved, NULL), 0, "%s", sys.why);
    cr_assert_eq(reserved, 0);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

Test(e2e_storage, a_deleted_database_stops_its_service_with_exit_1)
{
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "alice", 100), 0, "%s", sys.why);
    cr_assert_eq(unlink(sys.db[TU_CUSTOMER]), 0);
    /* It checks once a heartbeat (a second): 10 s is plenty. */
    pid_t pid = sys.pid[TU_CUSTOMER];
    int st = 0;
    pid_t rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rc = waitpid(pid, &st, WNOHANG);
        if (rc == 0)
            usleep(10 * 1000);
    }
    if (rc == pid)
        sys.pid[TU_CUSTOMER] = 0;
    cr_assert_eq(rc, pid, "customer-service still runs without its database");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "it exited %d", st);
    char reason[700];
    snprintf(reason, sizeof reason, "database '%s' was deleted", sys.db[TU_CUSTOMER]);
    cr_assert(s_log_has(sys.log[TU_CUSTOMER], reason), "its log says why: %s", reason);
}

Test(e2e_storage, sync_normal_and_full_both_serve_orders)
{
    const char *modes[] = {"normal", "full"};
    const char *customers[] = {"nora", "fred"};
    for (int m = 0; m < 2; m++) {
        for (int s = 0; s < TU_NSERVICES; s++)
            cr_assert_eq(tu_system_setenv(&sys, (tu_service_t)s, "EDA_SYNC", modes[m]), 0,
                         "%s", sys.why);
        cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
        cr_assert_eq(tu_create_customer(&sys, customers[m], 10000), 0, "%s", sys.why);
        cr_assert_eq(tu_add_stock(&sys, "book", 5), 0, "%s", sys.why);
        tu_item_t item = {"book", 2, 1500};
        char id[EDA_NAME_MAX + 1], status[16];
        cr_assert_eq(tu_place_order(&sys, customers[m], &item, 1, NULL, id, status, NULL),
                     0, "--sync %s: %s", modes[m], sys.why);
        tu_order_t order;
        cr_assert_eq(tu_wait_order(&sys, id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
        cr_assert_str_eq(order.status, "APPROVED", "--sync %s", modes[m]);
        cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
        cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
        cr_assert_eq(tu_system_shutdown(&sys), 0, "--sync %s: %s", modes[m], sys.why);
    }
}

Test(e2e_storage, a_bad_sync_value_exits_2_with_a_reason)
{
    char args[600], log[400];
    snprintf(args, sizeof args, "--db '%s/bogus.db' --sync bogus", sys.dir);
    snprintf(log, sizeof log, "%s/bogus.log", sys.dir);
    int st = s_run_customer(args, log);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "it exited %d", st);
    cr_assert(s_log_has(log, "--sync must be full or normal, not 'bogus'"),
              "its one line says why");
}

/*  Start-up errors say what to do: a database in a folder that does not
    exist, and a TCP port another process holds. */
Test(e2e_storage, start_up_errors_say_what_to_do)
{
    char args[800], log[400];
    snprintf(log, sizeof log, "%s/second.log", sys.dir);
    snprintf(args, sizeof args, "--db '%s/no/such/folder/c.db'", sys.dir);
    int st = s_run_customer(args, log);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exited %d", st);
    cr_assert(
        s_log_has(log, "its folder does not exist (create it, or give another --db)"),
        "the log says the folder is missing");

    /* A port held by a listener of the test's own. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
              listen(fd, 1) == 0 && getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "%s/customer-service/customer-service --events tcp://127.0.0.1:%d"
             " --commands 'ipc://%s/second.cmd' --db :memory: > '%s' 2>&1",
             EDA_BIN_DIR, ntohs(addr.sin_port), sys.dir, log);
    st = system(cmd);
    close(fd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exited %d", st);
    cr_assert(s_log_has(log, "holds it: stop it, or give another port with "
                             "--events/--commands"),
              "the log says what to do about the port");
}
