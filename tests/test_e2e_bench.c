/*  test_e2e_bench: `eda bench` completes through a kill -9 of order-service:
    an order whose outcome it did not see is sent again with its request_id,
    so a restart costs a pause, not a stalled run.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_ORDERS "3000"
#define S_RUN_MS 120000 /* the whole bench, pause included */

static tu_system_t sys;
static pid_t s_bench;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    if (s_bench > 0) {
        kill(s_bench, SIGKILL);
        waitpid(s_bench, NULL, 0);
    }
    tu_system_fini(&sys);
}

TestSuite(e2e_bench, .init = s_setup, .fini = s_teardown, .timeout = 180);

/*  Starts `eda --json bench --orders S_ORDERS` against the system, its
    output into `out`. */
static pid_t s_start_bench(const char *out)
{
    char eda[512], peers[TU_NSERVICES][700];
    snprintf(eda, sizeof eda, "%s/tools/eda", EDA_BIN_DIR);
    char *argv[16] = {eda, "--json", "bench", "--orders", S_ORDERS};
    tu_peer_args(&sys, argv, 5, peers);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(eda, argv);
        _exit(127);
    }
    return pid;
}

Test(e2e_bench, completes_through_a_kill_of_order_service)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    char out[400];
    snprintf(out, sizeof out, "%s/bench.out", sys.dir);
    s_bench = s_start_bench(out);

    /* Kill order-service once the run is well under way. */
    int64_t deadline = zclock_mono() + 30000;
    uint64_t placed = 0;
    while (placed < 500 && zclock_mono() < deadline) {
        if (tu_stat(&sys, TU_ORDER, "events_published", &placed) != 0)
            placed = 0;
        zclock_sleep(20); /* the poll interval of a progress wait */
    }
    cr_assert_geq(placed, 500, "the bench did not get going");
    cr_assert_eq(tu_system_kill(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);

    int st = 0;
    deadline = zclock_mono() + S_RUN_MS;
    pid_t rc = 0;
    while ((rc = waitpid(s_bench, &st, WNOHANG)) == 0 && zclock_mono() < deadline)
        zclock_sleep(20); /* the poll interval of an exit wait */
    cr_assert_eq(rc, s_bench, "eda bench still running after %d s", S_RUN_MS / 1000);
    s_bench = 0;
    char text[4096] = "";
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "eda bench failed:\n%s", text);
    cr_assert(strstr(text, "\"orders\":" S_ORDERS ","), "not every saga counted:\n%s",
              text);
    cr_assert_not_null(strstr(text, "\"resent\":"), "%s", text);
    cr_assert_null(strstr(text, "\"resent\":0,"), "nothing was sent again:\n%s", text);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}
