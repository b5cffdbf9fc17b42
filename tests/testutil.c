/*  testutil: shared test helpers, and a harness that runs the real service
    binaries in a private folder for end-to-end tests. Every wait in here
    polls for an outcome up to a deadline; none is a sleep standing in for
    readiness.
*/
#include "testutil.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EDA_BIN_DIR
#define EDA_BIN_DIR "."
#endif

#define S_START_MS 20000 /* a service answers Ping (ASan is slow to start) */
#define S_STOP_MS  15000 /* a service exits after SIGTERM */
#define S_POLL_MS  20

int tu_tempdir(char *out, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, size, "%s/eda-test-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

void tu_rmtree(const char *path)
{
    char cmd[4200];
    if (!path || !*path || strlen(path) > 4000)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "testutil: could not remove %s\n", path);
}

/* --- the deployment --------------------------------------------------------- */

static const char *s_names[TU_NSERVICES] = {"order-service", "customer-service",
                                            "inventory-service"};
static const char *s_short[TU_NSERVICES] = {"order", "customer", "inventory"};

static int s_fail(tu_system_t *sys, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int s_fail(tu_system_t *sys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sys->why, sizeof sys->why, fmt, ap);
    va_end(ap);
    return -1;
}

const char *tu_service_name(tu_service_t svc)
{
    return (size_t)svc < TU_NSERVICES ? s_names[svc] : "?";
}

/*  A new client of service i, secured when the deployment is. 0 or -1. */
static int s_new_client(tu_system_t *sys, int i)
{
    eda_client_destroy(&sys->client[i]);
    sys->client[i] = eda_client_new(sys->commands[i], "e2e-test");
    if (!sys->client[i])
        return s_fail(sys, "cannot connect a client to %s", sys->commands[i]);
    if (sys->keys && eda_client_secure(sys->client[i], sys->keys, s_names[i]))
        return s_fail(sys, "cannot secure the client of %s", s_names[i]);
    return 0;
}

int tu_system_init(tu_system_t *sys)
{
    memset(sys, 0, sizeof *sys);
    if (tu_tempdir(sys->dir, sizeof sys->dir))
        return s_fail(sys, "cannot make a temp folder: %s", strerror(errno));
    for (int i = 0; i < TU_NSERVICES; i++) {
        /* ipc paths must fit in sun_path (108 bytes): keep them short. */
        snprintf(sys->events[i], sizeof sys->events[i], "ipc://%s/%c.pub", sys->dir,
                 s_short[i][0]);
        snprintf(sys->commands[i], sizeof sys->commands[i], "ipc://%s/%c.cmd", sys->dir,
                 s_short[i][0]);
        snprintf(sys->db[i], sizeof sys->db[i], "%s/%s.db", sys->dir, s_short[i]);
        snprintf(sys->log[i], sizeof sys->log[i], "%s/%s.log", sys->dir, s_short[i]);
        if (s_new_client(sys, i))
            return -1;
    }
    const char *saga = getenv("EDA_TEST_SAGA");
    if (saga && *saga && tu_system_setenv(sys, TU_ORDER, "EDA_SAGA", saga))
        return -1;
    const char *keys = getenv("EDA_TEST_KEYS");
    return keys && *keys ? tu_system_secure(sys) : 0;
}

int tu_system_secure(tu_system_t *sys)
{
    char why[1200];
    snprintf(sys->keys_dir, sizeof sys->keys_dir, "%s/keys", sys->dir);
    if (eda_keys_init(sys->keys_dir, why, sizeof why) ||
        !(sys->keys = eda_keys_new(sys->keys_dir, "client", why, sizeof why)))
        return s_fail(sys, "%s", why);
    for (int i = 0; i < TU_NSERVICES; i++)
        if (tu_system_setenv(sys, (tu_service_t)i, "EDA_KEYS", sys->keys_dir) ||
            s_new_client(sys, i))
            return -1;
    return 0;
}

const char *tu_saga(void)
{
    const char *saga = getenv("EDA_TEST_SAGA");
    return saga && *saga ? saga : "choreography";
}

int tu_system_setenv(tu_system_t *sys, tu_service_t svc, const char *name,
                     const char *value)
{
    for (int i = 0; i < TU_MAX_ENV; i++) {
        char *slot = sys->env[svc][i];
        size_t n = strlen(name);
        if (slot[0] && !(strncmp(slot, name, n) == 0 && slot[n] == '='))
            continue;
        snprintf(slot, sizeof sys->env[svc][i], "%s=%s", name, value);
        return 0;
    }
    return s_fail(sys, "more than %d variables for %s", TU_MAX_ENV, s_names[svc]);
}

/*  Fills ports[n] with distinct TCP ports on 127.0.0.1 that nothing uses
    now: the kernel's picks for port 0, all bound at once so that no pick is
    handed out twice. Returns 0 or -1. */
static int s_free_ports(int *ports, int n)
{
    int fds[2 * TU_NSERVICES];
    int rc = 0;
    assert(n <= (int)(sizeof fds / sizeof fds[0]));
    for (int i = 0; i < n; i++) {
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof addr;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&addr, &len) != 0)
            rc = -1;
        ports[i] = ntohs(addr.sin_port);
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

int tu_system_use_config(tu_system_t *sys)
{
    int ports[2 * TU_NSERVICES];
    if (s_free_ports(ports, 2 * TU_NSERVICES))
        return s_fail(sys, "no free TCP ports");
    snprintf(sys->config, sizeof sys->config, "%s/shop.cfg", sys->dir);
    FILE *file = fopen(sys->config, "w");
    if (!file)
        return s_fail(sys, "cannot write %s: %s", sys->config, strerror(errno));
    fprintf(file, "#   The whole topology, one section a service\n");
    for (int i = 0; i < TU_NSERVICES; i++) {
        snprintf(sys->events[i], sizeof sys->events[i], "tcp://127.0.0.1:%d",
                 ports[2 * i]);
        snprintf(sys->commands[i], sizeof sys->commands[i], "tcp://127.0.0.1:%d",
                 ports[2 * i + 1]);
        fprintf(file, "%s\n    events = %s\n    commands = %s\n    db = %s\n", s_names[i],
                sys->events[i], sys->commands[i], sys->db[i]);
        if (s_new_client(sys, i)) {
            fclose(file);
            return -1;
        }
    }
    return fclose(file) == 0 ? 0 : s_fail(sys, "cannot write %s", sys->config);
}

int tu_free_ports(int *ports, int n)
{
    return n >= 0 && n <= 2 * TU_NSERVICES ? s_free_ports(ports, n) : -1;
}

int tu_system_set_endpoints(tu_system_t *sys, tu_service_t svc, const char *events,
                            const char *commands)
{
    snprintf(sys->events[svc], sizeof sys->events[svc], "%s", events);
    snprintf(sys->commands[svc], sizeof sys->commands[svc], "%s", commands);
    return s_new_client(sys, (int)svc);
}

int tu_system_set_netns(tu_system_t *sys, tu_service_t svc, const char *name)
{
    if (name && strlen(name) >= sizeof sys->netns[svc])
        return s_fail(sys, "network namespace name too long: %s", name);
    snprintf(sys->netns[svc], sizeof sys->netns[svc], "%s", name ? name : "");
    return 0;
}

int tu_system_set_log_level(tu_system_t *sys, tu_service_t svc, const char *level)
{
    if (strlen(level) >= sizeof sys->log_level[svc])
        return s_fail(sys, "no log level %s", level);
    snprintf(sys->log_level[svc], sizeof sys->log_level[svc], "%s", level);
    return 0;
}

/*  In a child about to exec: joins the network namespace that ip netns add
    made as /run/netns/NAME. (CLONE_NEWNET by value: <sched.h> names it only
    under _GNU_SOURCE, which this file does not define.) 0 or -1. */
static int s_join_netns(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */);
    close(fd);
    return rc == 0 ? 0 : -1;
}

/*  Reaps `svc` if it has exited. Returns true when it is still running. */
static bool s_alive(tu_system_t *sys, tu_service_t svc, int *status)
{
    if (!sys->pid[svc])
        return false;
    int st = 0;
    pid_t rc = waitpid(sys->pid[svc], &st, WNOHANG);
    if (rc == 0)
        return true;
    sys->pid[svc] = 0;
    if (status)
        *status = st;
    return false;
}

static void s_describe_status(int st, char *out, size_t size)
{
    if (WIFEXITED(st))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, size, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(out, size, "ended (status 0x%x)", st);
}

int tu_system_spawn(tu_system_t *sys, tu_service_t svc)
{
    if (sys->pid[svc])
        return s_fail(sys, "%s is already running", s_names[svc]);
    char path[512], peers[TU_NSERVICES][700];
    char *level = sys->log_level[svc][0] ? sys->log_level[svc] : "warn";
    snprintf(path, sizeof path, "%s/%s/%s", EDA_BIN_DIR, s_names[svc], s_names[svc]);
    for (int i = 0; i < TU_NSERVICES; i++)
        snprintf(peers[i], sizeof peers[i], "%s=%s,%s", s_names[i], sys->events[i],
                 sys->commands[i]);
    char *argv[] = {
        path,     "--events",   sys->events[svc], "--commands",  sys->commands[svc],
        "--db",   sys->db[svc], "--peer",         peers[0],      "--peer",
        peers[1], "--peer",     peers[2],         "--log-level", level,
        NULL};
    char *config_argv[] = {path, "--config", sys->config, "--log-level", level, NULL};
    int fd = open(sys->log[svc], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return s_fail(sys, "cannot open %s: %s", sys->log[svc], strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return s_fail(sys, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* Dies with the test worker even when it crashes or times out. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        for (int i = 0; i < TU_MAX_ENV; i++)
            if (sys->env[svc][i][0])
                putenv(sys->env[svc][i]);
        struct rlimit limit = {(rlim_t)sys->nofile[svc], (rlim_t)sys->nofile[svc]};
        if (sys->nofile[svc] && setrlimit(RLIMIT_NOFILE, &limit))
            _exit(125);
        if (sys->netns[svc][0] && s_join_netns(sys->netns[svc]))
            _exit(124); /* no such namespace, or not root */
        execv(path, sys->config[0] ? config_argv : argv);
        _exit(127);
    }
    close(fd);
    sys->pid[svc] = pid;
    return 0;
}

int tu_system_wait_ready(tu_system_t *sys, tu_service_t svc, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        int st = 0;
        if (!s_alive(sys, svc, &st)) {
            char how[64];
            s_describe_status(st, how, sizeof how);
            tu_system_dump_logs(sys);
            return s_fail(sys, "%s %s before it answered Ping", s_names[svc], how);
        }
        eda_envelope_t reply;
        msgpack_packer *pk = eda_client_begin(sys->client[svc], "Ping", NULL);
        msgpack_pack_map(pk, 0);
        char why[256];
        if (eda_client_call(sys->client[svc], 200, &reply, why, sizeof why) == 0 &&
            reply.ok == 1)
            return 0;
    }
    tu_system_dump_logs(sys);
    return s_fail(sys, "%s did not answer Ping within %d ms", s_names[svc], timeout_ms);
}

int tu_system_start(tu_system_t *sys, tu_service_t svc)
{
    if (tu_system_spawn(sys, svc))
        return -1;
    return tu_system_wait_ready(sys, svc, S_START_MS);
}

int tu_system_start_all(tu_system_t *sys)
{
    for (int i = 0; i < TU_NSERVICES; i++)
        if (tu_system_start(sys, (tu_service_t)i))
            return -1;
    return 0;
}

int tu_system_kill(tu_system_t *sys, tu_service_t svc)
{
    if (!sys->pid[svc])
        return s_fail(sys, "%s is not running", s_names[svc]);
    kill(sys->pid[svc], SIGKILL);
    waitpid(sys->pid[svc], NULL, 0);
    sys->pid[svc] = 0;
    /* A reply to a command in flight would never come: start afresh. */
    eda_client_reset(sys->client[svc]);
    return 0;
}

int tu_system_stop(tu_system_t *sys, tu_service_t svc)
{
    if (!sys->pid[svc])
        return s_fail(sys, "%s is not running", s_names[svc]);
    pid_t pid = sys->pid[svc];
    kill(pid, SIGTERM);
    int64_t deadline = zclock_mono() + S_STOP_MS;
    int st = 0;
    while (zclock_mono() < deadline) {
        pid_t rc = waitpid(pid, &st, WNOHANG);
        if (rc == pid || rc < 0) {
            sys->pid[svc] = 0;
            eda_client_reset(sys->client[svc]);
            if (rc == pid && WIFEXITED(st))
                return WEXITSTATUS(st);
            char how[64];
            s_describe_status(st, how, sizeof how);
            return s_fail(sys, "%s %s on SIGTERM", s_names[svc], how);
        }
        zclock_sleep(5); /* polling a child's exit: there is no fd to wait on */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    sys->pid[svc] = 0;
    eda_client_reset(sys->client[svc]);
    return s_fail(sys, "%s did not exit within %d ms of SIGTERM", s_names[svc],
                  S_STOP_MS);
}

/*  1 when the log of `svc` holds a sanitizer report. */
static bool s_log_has_report(tu_system_t *sys, tu_service_t svc)
{
    FILE *f = fopen(sys->log[svc], "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "ERROR: AddressSanitizer") ||
                strstr(line, "ERROR: LeakSanitizer") || strstr(line, "runtime error:");
    fclose(f);
    return found;
}

/* --- the eda client ---------------------------------------------------------- */

#define S_EDA_ARGS_MAX 64
#define S_EDA_RUN_MS   60000 /* the longest an eda run may take */

/*  Reads what is ready on fd into buf[*len..max); false at EOF. */
static bool s_drain(int fd, char *buf, size_t *len, size_t max)
{
    char scratch[4096];
    char *to = *len + 1 < max ? buf + *len : scratch;
    size_t room = *len + 1 < max ? max - *len - 1 : sizeof scratch;
    ssize_t n = read(fd, to, room);
    if (n > 0 && to != scratch) {
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return n > 0 || (n < 0 && errno == EINTR);
}

int tu_peer_args(tu_system_t *sys, char **argv, int n, char peer[TU_NSERVICES][700])
{
    for (int i = 0; i < TU_NSERVICES; i++) {
        snprintf(peer[i], 700, "%s=%s,%s", s_names[i], sys->events[i], sys->commands[i]);
        argv[n++] = "--peer";
        argv[n++] = peer[i];
    }
    if (sys->keys_dir[0]) {
        argv[n++] = "--keys";
        argv[n++] = sys->keys_dir;
    }
    argv[n] = NULL;
    return n;
}

int tu_eda(tu_system_t *sys, tu_eda_t *run, char **args, bool peers)
{
    char path[512], peer[TU_NSERVICES][700];
    char *argv[S_EDA_ARGS_MAX] = {path};
    int n = 1;
    snprintf(path, sizeof path, "%s/tools/eda", EDA_BIN_DIR);
    for (int i = 0; args[i] && n < S_EDA_ARGS_MAX - 10; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (peers)
        tu_peer_args(sys, argv, n, peer);
    int out[2], err[2];
    if (pipe(out))
        return s_fail(sys, "pipe: %s", strerror(errno));
    if (pipe(err)) {
        close(out[0]), close(out[1]);
        return s_fail(sys, "pipe: %s", strerror(errno));
    }
    fflush(NULL);
    int64_t start = zclock_mono();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        execv(path, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    run->out_len = run->err_len = 0;
    run->out[0] = run->err[0] = '\0';
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = pid > 0 ? 2 : 0;
    while (open_fds > 0 && zclock_mono() - start < S_EDA_RUN_MS) {
        if (poll(fds, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++)
            if (fds[i].fd >= 0 && fds[i].revents &&
                !s_drain(fds[i].fd, i ? run->err : run->out,
                         i ? &run->err_len : &run->out_len, TU_EDA_OUT_MAX)) {
                fds[i].fd = -1;
                open_fds--;
            }
    }
    close(out[0]);
    close(err[0]);
    if (pid < 0)
        return s_fail(sys, "fork: %s", strerror(errno));
    if (open_fds > 0)
        kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    run->ms = zclock_mono() - start;
    run->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (strstr(run->err, "Sanitizer") || strstr(run->err, "runtime error"))
        return s_fail(sys, "a sanitizer report from eda:\n%.4000s", run->err);
    return 0;
}

int tu_eda_run(tu_system_t *sys, tu_eda_t *run, const char *first, ...)
{
    char *args[S_EDA_ARGS_MAX];
    int n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < S_EDA_ARGS_MAX - 1; a = va_arg(ap, const char *))
        args[n++] = (char *)a;
    va_end(ap);
    args[n] = NULL;
    return tu_eda(sys, run, args, true);
}

bool tu_log_has(tu_system_t *sys, tu_service_t svc, const char *needle)
{
    FILE *f = fopen(sys->log[svc], "r");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (f && !found && getline(&line, &cap, f) >= 0)
        found = strstr(line, needle) != NULL;
    free(line);
    if (f)
        fclose(f);
    return found;
}

/*  Copies file `from` to `to`; a missing `from` removes `to`. 0 or -1. */
static int s_copy_file(tu_system_t *sys, const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    if (in < 0 && errno == ENOENT)
        return unlink(to) == 0 || errno == ENOENT ? 0 : s_fail(sys, "unlink %s", to);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[65536];
    ssize_t n = 0;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            n = -1;
    int failed = in < 0 || out < 0 || n < 0;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out))
        failed = 1;
    return failed ? s_fail(sys, "cannot copy %s to %s: %s", from, to, strerror(errno))
                  : 0;
}

int tu_copy_db(tu_system_t *sys, const char *from, const char *to)
{
    char a[400], b[400];
    snprintf(a, sizeof a, "%s-wal", from);
    snprintf(b, sizeof b, "%s-wal", to);
    if (s_copy_file(sys, from, to) || s_copy_file(sys, a, b))
        return -1;
    snprintf(b, sizeof b, "%s-shm", to);
    return unlink(b) == 0 || errno == ENOENT ? 0 : s_fail(sys, "unlink %s", b);
}

int tu_system_shutdown(tu_system_t *sys)
{
    int rc = 0;
    char first[sizeof sys->why] = "";
    for (int i = 0; i < TU_NSERVICES; i++) {
        if (!sys->pid[i])
            continue;
        int st = tu_system_stop(sys, (tu_service_t)i);
        if (st != 0 && !first[0]) {
            if (st > 0)
                snprintf(first, sizeof first, "%s exited with status %d on SIGTERM",
                         s_names[i], st);
            else
                snprintf(first, sizeof first, "%s", sys->why);
        }
        rc |= st != 0;
    }
    for (int i = 0; i < TU_NSERVICES; i++)
        if (s_log_has_report(sys, (tu_service_t)i)) {
            if (!first[0])
                snprintf(first, sizeof first, "%s's log holds a sanitizer report",
                         s_names[i]);
            rc = 1;
        }
    if (rc) {
        tu_system_dump_logs(sys);
        return s_fail(sys, "%s", first);
    }
    return 0;
}

void tu_system_fini(tu_system_t *sys)
{
    for (int i = 0; i < TU_NSERVICES; i++) {
        if (sys->pid[i])
            tu_system_stop(sys, (tu_service_t)i);
        eda_client_destroy(&sys->client[i]);
    }
    eda_keys_destroy(&sys->keys);
    if (sys->dir[0]) {
        const char *keep = getenv("EDA_TEST_KEEP");
        if (keep && *keep)
            fprintf(stderr, "testutil: kept %s\n", sys->dir);
        else
            tu_rmtree(sys->dir);
    }
    sys->dir[0] = '\0';
}

void tu_system_dump_logs(tu_system_t *sys)
{
    for (int i = 0; i < TU_NSERVICES; i++) {
        FILE *f = fopen(sys->log[i], "r");
        if (!f)
            continue;
        /* The last 4 KiB is enough to see why. */
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
        char buf[4097];
        size_t n = fread(buf, 1, 4096, f);
        buf[n] = '\0';
        fclose(f);
        fprintf(stderr, "---- %s log (last %zu bytes) ----\n%s\n", s_names[i], n, buf);
    }
}

/* --- commands ----------------------------------------------------------------- */

msgpack_packer *tu_begin(tu_system_t *sys, tu_service_t svc, const char *type)
{
    return eda_client_begin(sys->client[svc], type, NULL);
}

int tu_call_ms(tu_system_t *sys, tu_service_t svc, int timeout_ms, eda_envelope_t *reply)
{
    char why[512];
    if (eda_client_call(sys->client[svc], timeout_ms, reply, why, sizeof why) == 0)
        return 0;
    int st = 0;
    if (sys->pid[svc] && !s_alive(sys, svc, &st)) {
        char how[64];
        s_describe_status(st, how, sizeof how);
        tu_system_dump_logs(sys);
        return s_fail(sys, "%s: %s (it %s)", s_names[svc], why, how);
    }
    return s_fail(sys, "%s: %s", s_names[svc], why);
}

int tu_call(tu_system_t *sys, tu_service_t svc, eda_envelope_t *reply)
{
    return tu_call_ms(sys, svc, TU_CALL_TIMEOUT_MS, reply);
}

const char *tu_error_code(const eda_envelope_t *reply, char *code, size_t size)
{
    code[0] = '\0';
    if (reply->ok != 1 && eda_get_str(&reply->error, "code", code, size) != 0)
        snprintf(code, size, "?");
    return code;
}

int tu_call_empty(tu_system_t *sys, tu_service_t svc, const char *type,
                  eda_envelope_t *reply)
{
    msgpack_pack_map(tu_begin(sys, svc, type), 0);
    return tu_call(sys, svc, reply);
}

/*  Calls and insists on an ok reply. */
static int s_call_ok(tu_system_t *sys, tu_service_t svc, eda_envelope_t *reply)
{
    if (tu_call(sys, svc, reply))
        return -1;
    if (reply->ok != 1) {
        char code[32], message[256] = "";
        eda_get_str(&reply->error, "message", message, sizeof message);
        return s_fail(sys, "%s refused %s: %s: %s", s_names[svc], reply->type,
                      tu_error_code(reply, code, sizeof code), message);
    }
    return 0;
}

int tu_create_customer(tu_system_t *sys, const char *customer_id, int64_t credit_limit)
{
    msgpack_packer *pk = tu_begin(sys, TU_CUSTOMER, "CreateCustomer");
    msgpack_pack_map(pk, 3);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_pack_kv_str(pk, "name", customer_id);
    eda_pack_kv_i64(pk, "credit_limit", credit_limit);
    eda_envelope_t reply;
    if (s_call_ok(sys, TU_CUSTOMER, &reply))
        return -1;
    if (sys->ncustomers < TU_MAX_CUSTOMERS)
        snprintf(sys->customers[sys->ncustomers++], EDA_NAME_MAX + 1, "%s", customer_id);
    return 0;
}

int tu_add_stock(tu_system_t *sys, const char *sku, int64_t qty)
{
    msgpack_packer *pk = tu_begin(sys, TU_INVENTORY, "AddStock");
    msgpack_pack_map(pk, 2);
    eda_pack_kv_str(pk, "sku", sku);
    eda_pack_kv_i64(pk, "qty", qty);
    eda_envelope_t reply;
    if (s_call_ok(sys, TU_INVENTORY, &reply))
        return -1;
    size_t i = 0;
    while (i < sys->nskus && strcmp(sys->skus[i], sku))
        i++;
    if (i == sys->nskus && i < TU_MAX_SKUS)
        snprintf(sys->skus[sys->nskus++], EDA_NAME_MAX + 1, "%s", sku);
    if (i < TU_MAX_SKUS)
        sys->stock_added[i] += qty;
    return 0;
}

void tu_pack_place_order(msgpack_packer *pk, const char *customer_id,
                         const tu_item_t *items, size_t n, const char *request_id,
                         const char *saga)
{
    msgpack_pack_map(pk,
                     1 + (customer_id != NULL) + (request_id != NULL) + (saga != NULL));
    if (customer_id)
        eda_pack_kv_str(pk, "customer_id", customer_id);
    if (request_id)
        eda_pack_kv_str(pk, "request_id", request_id);
    if (saga)
        eda_pack_kv_str(pk, "saga", saga);
    eda_pack_key(pk, "items");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 3);
        eda_pack_kv_str(pk, "sku", items[i].sku);
        eda_pack_kv_i64(pk, "qty", items[i].qty);
        eda_pack_kv_i64(pk, "price", items[i].price);
    }
}

int tu_place_order(tu_system_t *sys, const char *customer_id, const tu_item_t *items,
                   size_t n, const char *request_id, char *order_id, char *status,
                   char *code)
{
    tu_pack_place_order(tu_begin(sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                        request_id, NULL);
    eda_envelope_t reply;
    if (code)
        code[0] = '\0';
    if (tu_call(sys, TU_ORDER, &reply))
        return -1;
    if (reply.ok != 1) {
        char c[32], message[256] = "";
        tu_error_code(&reply, c, sizeof c);
        eda_get_str(&reply.error, "message", message, sizeof message);
        if (code)
            snprintf(code, 32, "%s", c);
        return s_fail(sys, "PlaceOrder refused: %s: %s", c, message);
    }
    if ((order_id &&
         eda_get_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1) != 0) ||
        (status && eda_get_str(&reply.data, "status", status, 16) != 0))
        return s_fail(sys, "PlaceOrder reply lacks order_id or status");
    return 0;
}

int tu_place_order_retry(tu_system_t *sys, const char *customer_id,
                         const tu_item_t *items, size_t n, const char *request_id,
                         int timeout_ms, char *order_id)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        tu_pack_place_order(tu_begin(sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                            request_id, NULL);
        eda_envelope_t reply;
        if (tu_call_ms(sys, TU_ORDER, 1000, &reply))
            continue; /* restarting: the same request_id makes a retry safe */
        if (reply.ok != 1) {
            char c[32];
            return s_fail(sys, "PlaceOrder %s refused: %s", request_id,
                          tu_error_code(&reply, c, sizeof c));
        }
        if (eda_get_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1) != 0)
            return s_fail(sys, "PlaceOrder reply lacks order_id");
        return 0;
    }
    return s_fail(sys, "PlaceOrder %s: no reply within %d ms (%s)", request_id,
                  timeout_ms, sys->why);
}

int tu_send_place_order(tu_system_t *sys, const char *customer_id, const tu_item_t *items,
                        size_t n, const char *request_id)
{
    tu_pack_place_order(tu_begin(sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                        request_id, NULL);
    if (eda_client_send(sys->client[TU_ORDER]))
        return s_fail(sys, "PlaceOrder %s could not be queued", request_id);
    return 0;
}

static void s_read_order(const msgpack_object *obj, tu_order_t *order)
{
    memset(order, 0, sizeof *order);
    eda_get_str(obj, "order_id", order->order_id, sizeof order->order_id);
    eda_get_str(obj, "customer_id", order->customer_id, sizeof order->customer_id);
    eda_get_str(obj, "status", order->status, sizeof order->status);
    eda_get_str(obj, "reason", order->reason, sizeof order->reason);
    eda_get_i64(obj, "total", &order->total);
    const msgpack_object *items = eda_map_get(obj, "items");
    if (items && items->type == MSGPACK_OBJECT_ARRAY)
        order->nitems = (int)items->via.array.size;
}

int tu_get_order(tu_system_t *sys, const char *order_id, tu_order_t *order)
{
    msgpack_packer *pk = tu_begin(sys, TU_ORDER, "GetOrder");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_envelope_t reply;
    if (s_call_ok(sys, TU_ORDER, &reply))
        return -1;
    s_read_order(&reply.data, order);
    return 0;
}

int tu_wait_order(tu_system_t *sys, const char *order_id, int timeout_ms,
                  tu_order_t *order)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (1) {
        if (tu_get_order(sys, order_id, order))
            return -1;
        if (strcmp(order->status, "PENDING"))
            return 0;
        if (zclock_mono() >= deadline)
            break;
        zclock_sleep(S_POLL_MS); /* the poll interval of an outcome wait */
    }
    tu_system_dump_logs(sys);
    return s_fail(sys, "order %s still PENDING after %d ms", order_id, timeout_ms);
}

/*  ListOrders, then `fn` on each order object. Returns the count or -1. */
static int s_list(tu_system_t *sys, const char *status, uint64_t limit,
                  void (*fn)(const msgpack_object *order, void *arg), void *arg)
{
    /* Page after page with the cursor, until `limit` orders (0: the
       service's default page) or the last page. */
    uint64_t after = 0, count = 0;
    bool more = true;
    while (more && (limit == 0 || count < limit)) {
        msgpack_packer *pk = tu_begin(sys, TU_ORDER, "ListOrders");
        msgpack_pack_map(pk, 1 + (status != NULL) + (limit != 0));
        if (status)
            eda_pack_kv_str(pk, "status", status);
        if (limit)
            eda_pack_kv_u64(pk, "limit", limit - count);
        eda_pack_kv_u64(pk, "after", after);
        eda_envelope_t reply;
        if (s_call_ok(sys, TU_ORDER, &reply))
            return -1;
        const msgpack_object *orders = eda_map_get(&reply.data, "orders");
        const msgpack_object *m = eda_map_get(&reply.data, "more");
        if (!orders || orders->type != MSGPACK_OBJECT_ARRAY || !m ||
            m->type != MSGPACK_OBJECT_BOOLEAN)
            return s_fail(sys, "ListOrders reply has no orders array or no more");
        for (uint32_t i = 0; fn && i < orders->via.array.size; i++)
            fn(&orders->via.array.ptr[i], arg);
        count += orders->via.array.size;
        more = m->via.boolean && limit != 0;
        if (more && eda_get_u64(&reply.data, "next", &after) != 0)
            return s_fail(sys, "ListOrders says more but gives no next");
    }
    return (int)count;
}

typedef struct {
    tu_order_t *orders;
    int max, n;
} s_collect_t;

static void s_collect(const msgpack_object *obj, void *arg)
{
    s_collect_t *c = arg;
    if (c->n < c->max)
        s_read_order(obj, &c->orders[c->n]);
    c->n++;
}

int tu_list_orders(tu_system_t *sys, const char *status, uint64_t limit,
                   tu_order_t *orders, int max)
{
    s_collect_t c = {orders, max, 0};
    return s_list(sys, status, limit, s_collect, &c);
}

int tu_get_customer(tu_system_t *sys, const char *customer_id, int64_t *reserved,
                    int64_t *available)
{
    msgpack_packer *pk = tu_begin(sys, TU_CUSTOMER, "GetCustomer");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "customer_id", customer_id);
    eda_envelope_t reply;
    if (s_call_ok(sys, TU_CUSTOMER, &reply))
        return -1;
    if ((reserved && eda_get_i64(&reply.data, "reserved", reserved) != 0) ||
        (available && eda_get_i64(&reply.data, "available", available) != 0))
        return s_fail(sys, "GetCustomer reply lacks reserved or available");
    return 0;
}

int tu_get_stock(tu_system_t *sys, const char *sku, int64_t *available, int64_t *reserved)
{
    msgpack_packer *pk = tu_begin(sys, TU_INVENTORY, "GetStock");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "sku", sku);
    eda_envelope_t reply;
    if (s_call_ok(sys, TU_INVENTORY, &reply))
        return -1;
    if ((reserved && eda_get_i64(&reply.data, "reserved", reserved) != 0) ||
        (available && eda_get_i64(&reply.data, "available", available) != 0))
        return s_fail(sys, "GetStock reply lacks available or reserved");
    return 0;
}

int tu_expect_credit(tu_system_t *sys, const char *customer_id, int64_t reserved,
                     int64_t available)
{
    int64_t r = -1, a = -1;
    if (tu_get_customer(sys, customer_id, &r, &a))
        return -1;
    if (r != reserved || a != available)
        return s_fail(sys,
                      "%s: reserved %" PRId64 ", available %" PRId64 "; expected %" PRId64
                      " and %" PRId64,
                      customer_id, r, a, reserved, available);
    return 0;
}

int tu_expect_stock(tu_system_t *sys, const char *sku, int64_t available,
                    int64_t reserved)
{
    int64_t a = -1, r = -1;
    if (tu_get_stock(sys, sku, &a, &r))
        return -1;
    if (a != available || r != reserved)
        return s_fail(sys,
                      "%s: available %" PRId64 ", reserved %" PRId64 "; expected %" PRId64
                      " and %" PRId64,
                      sku, a, r, available, reserved);
    return 0;
}

int tu_stat(tu_system_t *sys, tu_service_t svc, const char *key, uint64_t *value)
{
    eda_envelope_t reply;
    if (tu_call_empty(sys, svc, "Stats", &reply) || reply.ok != 1)
        return s_fail(sys, "Stats of %s failed: %s", s_names[svc], sys->why);
    if (eda_get_u64(&reply.data, key, value) != 0)
        return s_fail(sys, "Stats of %s has no counter %s", s_names[svc], key);
    return 0;
}

int tu_stat_own(tu_system_t *sys, tu_service_t svc, const char *key, int64_t *value)
{
    eda_envelope_t reply;
    if (tu_call_empty(sys, svc, "Stats", &reply) || reply.ok != 1)
        return s_fail(sys, "Stats of %s failed: %s", s_names[svc], sys->why);
    const msgpack_object *own = eda_map_get(&reply.data, "own");
    if (!own || eda_get_i64(own, key, value) != 0)
        return s_fail(sys, "Stats of %s has no own.%s", s_names[svc], key);
    return 0;
}

int tu_stat_self(tu_system_t *sys, tu_service_t svc, char *epoch, uint64_t *last_seq)
{
    eda_envelope_t reply;
    if (tu_call_empty(sys, svc, "Stats", &reply) || reply.ok != 1)
        return s_fail(sys, "Stats of %s failed: %s", s_names[svc], sys->why);
    if (eda_get_str(&reply.data, "epoch", epoch, EDA_NAME_MAX + 1) != 0 ||
        eda_get_u64(&reply.data, "last_seq", last_seq) != 0)
        return s_fail(sys, "Stats of %s lacks epoch or last_seq", s_names[svc]);
    return 0;
}

int tu_stat_peer(tu_system_t *sys, tu_service_t svc, tu_service_t peer, char *epoch,
                 uint64_t *last_seq)
{
    eda_envelope_t reply;
    if (tu_call_empty(sys, svc, "Stats", &reply) || reply.ok != 1)
        return s_fail(sys, "Stats of %s failed: %s", s_names[svc], sys->why);
    const msgpack_object *p =
        eda_map_get(eda_map_get(&reply.data, "peers"), s_names[peer]);
    if (!p || eda_get_str(p, "epoch", epoch, EDA_NAME_MAX + 1) < 0 ||
        eda_get_u64(p, "last_seq", last_seq) != 0)
        return s_fail(sys, "Stats of %s has no peer %s", s_names[svc], s_names[peer]);
    return 0;
}

/* --- outcomes ------------------------------------------------------------------ */

/*  Who subscribes to whom (DESIGN, and docs/protocol.md section 1). */
static const bool s_follows[TU_NSERVICES][TU_NSERVICES] = {
    [TU_ORDER] = {[TU_CUSTOMER] = true, [TU_INVENTORY] = true},
    [TU_CUSTOMER] = {[TU_ORDER] = true},
    [TU_INVENTORY] = {[TU_ORDER] = true, [TU_CUSTOMER] = true}};

/*  One pass: 1 when quiet, 0 when not yet, -1 on a failed call. A reason
    for "not yet" is left in sys->why. */
static int s_quiet_once(tu_system_t *sys)
{
    if (sys->pid[TU_ORDER]) {
        int pending = s_list(sys, "PENDING", 1, NULL, NULL);
        if (pending < 0)
            return -1;
        if (pending > 0) {
            s_fail(sys, "orders still PENDING");
            return 0;
        }
        int64_t sagas = 0;
        if (tu_stat_own(sys, TU_ORDER, "sagas_in_flight", &sagas))
            return -1;
        if (sagas > 0) {
            s_fail(sys, "%" PRId64 " sagas still in flight", sagas);
            return 0;
        }
    }
    char epoch[TU_NSERVICES][EDA_NAME_MAX + 1];
    uint64_t last[TU_NSERVICES];
    for (int i = 0; i < TU_NSERVICES; i++)
        if (sys->pid[i] && tu_stat_self(sys, (tu_service_t)i, epoch[i], &last[i]))
            return -1;
    for (int s = 0; s < TU_NSERVICES; s++)
        for (int p = 0; p < TU_NSERVICES; p++) {
            if (!s_follows[s][p] || !sys->pid[s] || !sys->pid[p])
                continue;
            char pe[EDA_NAME_MAX + 1] = "";
            uint64_t pl = 0;
            if (tu_stat_peer(sys, (tu_service_t)s, (tu_service_t)p, pe, &pl))
                return -1;
            if (strcmp(pe, epoch[p]) || pl != last[p]) {
                s_fail(sys,
                       "%s has applied %s #%" PRIu64 " (epoch %s) of #%" PRIu64
                       " (epoch %s)",
                       s_names[s], s_names[p], pl, pe, last[p], epoch[p]);
                return 0;
            }
        }
    /* Nothing may have moved while we looked. */
    for (int i = 0; i < TU_NSERVICES; i++) {
        char e[EDA_NAME_MAX + 1];
        uint64_t l;
        if (sys->pid[i] && tu_stat_self(sys, (tu_service_t)i, e, &l))
            return -1;
        if (sys->pid[i] && l != last[i]) {
            s_fail(sys, "%s still publishing", s_names[i]);
            return 0;
        }
    }
    return 1;
}

int tu_wait_quiet(tu_system_t *sys, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (1) {
        int rc = s_quiet_once(sys);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return 0;
        if (zclock_mono() >= deadline)
            break;
        zclock_sleep(S_POLL_MS); /* the poll interval of an outcome wait */
    }
    char last[sizeof sys->why];
    snprintf(last, sizeof last, "%s", sys->why);
    tu_system_dump_logs(sys);
    return s_fail(sys, "not quiet after %d ms: %s", timeout_ms, last);
}

typedef struct {
    tu_system_t *sys;
    int64_t customer_reserved[TU_MAX_CUSTOMERS];
    int64_t sku_reserved[TU_MAX_SKUS];
    int not_final;
    char first_bad[EDA_NAME_MAX + 32];
} s_ledger_t;

static void s_account(const msgpack_object *obj, void *arg)
{
    s_ledger_t *l = arg;
    tu_system_t *sys = l->sys;
    tu_order_t o;
    s_read_order(obj, &o);
    if (strcmp(o.status, "APPROVED") && strcmp(o.status, "REJECTED") &&
        strcmp(o.status, "CANCELLED")) {
        if (!l->not_final++)
            snprintf(l->first_bad, sizeof l->first_bad, "%s is %s", o.order_id, o.status);
        return;
    }
    if (strcmp(o.status, "APPROVED"))
        return;
    for (size_t i = 0; i < sys->ncustomers; i++)
        if (strcmp(sys->customers[i], o.customer_id) == 0)
            l->customer_reserved[i] += o.total;
    const msgpack_object *items = eda_map_get(obj, "items");
    for (uint32_t k = 0; items && k < items->via.array.size; k++) {
        char sku[EDA_NAME_MAX + 1] = "";
        int64_t qty = 0;
        eda_get_str(&items->via.array.ptr[k], "sku", sku, sizeof sku);
        eda_get_i64(&items->via.array.ptr[k], "qty", &qty);
        for (size_t i = 0; i < sys->nskus; i++)
            if (strcmp(sys->skus[i], sku) == 0)
                l->sku_reserved[i] += qty;
    }
}

int tu_check_invariants(tu_system_t *sys)
{
    s_ledger_t *l = calloc(1, sizeof *l);
    if (!l)
        return s_fail(sys, "out of memory");
    l->sys = sys;
    int rc = -1;
    if (s_list(sys, NULL, 10000, s_account, l) < 0)
        goto done;
    if (l->not_final) {
        s_fail(sys, "%d orders not settled, first: %s", l->not_final, l->first_bad);
        goto done;
    }
    for (size_t i = 0; i < sys->ncustomers; i++) {
        int64_t reserved;
        if (tu_get_customer(sys, sys->customers[i], &reserved, NULL))
            goto done;
        if (reserved != l->customer_reserved[i]) {
            s_fail(sys,
                   "customer %s: reserved %" PRId64 " but approved orders total %" PRId64,
                   sys->customers[i], reserved, l->customer_reserved[i]);
            goto done;
        }
    }
    for (size_t i = 0; i < sys->nskus; i++) {
        int64_t available, reserved;
        if (tu_get_stock(sys, sys->skus[i], &available, &reserved))
            goto done;
        if (reserved != l->sku_reserved[i]) {
            s_fail(sys, "sku %s: reserved %" PRId64 " but approved orders hold %" PRId64,
                   sys->skus[i], reserved, l->sku_reserved[i]);
            goto done;
        }
        if (available + reserved != sys->stock_added[i]) {
            s_fail(sys,
                   "sku %s: available %" PRId64 " + reserved %" PRId64 " != %" PRId64
                   " added",
                   sys->skus[i], available, reserved, sys->stock_added[i]);
            goto done;
        }
    }
    rc = 0;
done:
    free(l);
    return rc;
}

/*  The kind of decision an event records about an order, or NULL. */
static const char *s_decision_group(const char *type)
{
    static const char *map[][2] = {
        {"OrderCreated", "created"},    {"OrderApproved", "verdict"},
        {"OrderRejected", "verdict"},   {"OrderCancelled", "cancelled"},
        {"CreditReserved", "credit"},   {"CreditRejected", "credit"},
        {"CreditReleased", "released"}, {"StockReserved", "stock"},
        {"StockRejected", "stock"},     {"StockReleased", "stock-released"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(type, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

int tu_check_event_log(tu_system_t *sys, tu_service_t svc, uint64_t *count)
{
    eda_decoder_t *decoder = eda_decoder_new();
    zhash_t *seen = zhash_new();
    int rc = -1;
    uint64_t next = 1, last = 0;
    char epoch[EDA_NAME_MAX + 1] = "";
    if (!decoder || !seen) {
        s_fail(sys, "out of memory");
        goto done;
    }
    do {
        msgpack_packer *pk = tu_begin(sys, svc, "ReplayEvents");
        msgpack_pack_map(pk, 2);
        eda_pack_kv_u64(pk, "after_seq", next - 1);
        eda_pack_kv_u64(pk, "limit", 1000);
        eda_envelope_t reply;
        if (s_call_ok(sys, svc, &reply))
            goto done;
        const msgpack_object *events = eda_map_get(&reply.data, "events");
        char e[EDA_NAME_MAX + 1] = "";
        if (eda_get_u64(&reply.data, "last_seq", &last) != 0 ||
            eda_get_str(&reply.data, "epoch", e, sizeof e) != 0 || !events ||
            events->type != MSGPACK_OBJECT_ARRAY) {
            s_fail(sys, "malformed ReplayEvents reply from %s", s_names[svc]);
            goto done;
        }
        if (epoch[0] && strcmp(epoch, e)) {
            s_fail(sys, "%s changed epoch while being read", s_names[svc]);
            goto done;
        }
        snprintf(epoch, sizeof epoch, "%s", e);
        if (events->via.array.size == 0 && next <= last) {
            s_fail(sys, "%s replays nothing after #%" PRIu64 " but its last is #%" PRIu64,
                   s_names[svc], next - 1, last);
            goto done;
        }
        for (uint32_t i = 0; i < events->via.array.size; i++) {
            const msgpack_object *bin = &events->via.array.ptr[i];
            eda_envelope_t env;
            char why[256] = "";
            if (bin->type != MSGPACK_OBJECT_BIN ||
                eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, &env, why,
                           sizeof why) != EDA_OK ||
                env.kind != EDA_KIND_EVENT) {
                s_fail(sys, "%s event after #%" PRIu64 " does not decode: %s",
                       s_names[svc], next - 1, why);
                goto done;
            }
            if (env.seq != next || strcmp(env.epoch, epoch) ||
                strcmp(env.source, s_names[svc])) {
                s_fail(sys, "%s log: expected #%" PRIu64 " found #%" PRIu64 " (%s)",
                       s_names[svc], next, env.seq, env.type);
                goto done;
            }
            const char *group = s_decision_group(env.type);
            if (group) {
                char key[EDA_NAME_MAX + 32];
                snprintf(key, sizeof key, "%s:%s", group, env.correlation_id);
                if (zhash_lookup(seen, key)) {
                    s_fail(sys,
                           "%s log: order %s has two '%s' events (second #%" PRIu64
                           " %s)",
                           s_names[svc], env.correlation_id, group, env.seq, env.type);
                    goto done;
                }
                zhash_insert(seen, key, (void *)1);
            }
            next++;
        }
    } while (next <= last);
    if (count)
        *count = last;
    rc = 0;
done:
    zhash_destroy(&seen);
    eda_decoder_destroy(&decoder);
    return rc;
}
