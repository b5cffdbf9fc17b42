/*  test_e2e_liveness: a peer that goes silent without closing its
    connections is noticed, on the real binaries. Every service publishes a
    Heartbeat each second and puts ZMTP heartbeats on the connections it
    makes; a peer silent for 3 s is logged ("no heartbeat from ...") and
    connected to again, and what it published meanwhile is caught up.

    Two ways a peer goes silent: its process freezes (SIGSTOP: its kernel
    still holds the connections open), and its host crashes (a network
    namespace whose link is cut, whose process is killed and whose kernel is
    replaced, so the subscribers are left with half-open TCP connections
    that no FIN or RST will ever close). Before the heartbeats, the second
    left new orders PENDING past 60 s.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_NOTICE_MS 15000 /* a silence is logged (3 s), with room for ASan */
#define S_HEAL_MS   20000 /* orders placed after a heal are decided: well under 60 s */

static tu_system_t sys;
static bool s_frozen; /* customer-service is SIGSTOPped: SIGCONT it in teardown */

/*  The namespace that plays customer-service's host, and its link to the
    test's namespace: "" until made. Named after this worker's pid, so that
    two runs at once never share one. */
static char s_ns[32], s_veth_host[16], s_veth_ns[16];
static char s_host_ip[INET_ADDRSTRLEN], s_ns_ip[INET_ADDRSTRLEN];

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    /* A peer heard again is said at info. */
    cr_assert_eq(tu_system_set_log_level(&sys, TU_ORDER, "info"), 0, "%s", sys.why);
    cr_assert_eq(tu_system_set_log_level(&sys, TU_INVENTORY, "info"), 0, "%s", sys.why);
}

/*  Runs `ip ARGS`, quietly. 0 when it exits 0. */
static int s_ip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_ip(const char *fmt, ...)
{
    char args[400], cmd[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "ip %s >/dev/null 2>&1", args);
    return system(cmd) == 0 ? 0 : -1;
}

static void s_teardown(void)
{
    /* A frozen service would never see the SIGTERM that stops it. */
    if (s_frozen && sys.pid[TU_CUSTOMER])
        kill(sys.pid[TU_CUSTOMER], SIGCONT);
    s_frozen = false;
    tu_system_fini(&sys);
    if (s_ns[0]) {
        /* Deleting one end of a veth pair deletes both, wherever the other
           end is; either may already be gone. */
        s_ip("netns del %s", s_ns);
        s_ip("link del %s", s_veth_host);
        s_ns[0] = '\0';
    }
}

TestSuite(e2e_liveness, .init = s_setup, .fini = s_teardown, .timeout = 120);

/*  The size of a service's log now: what it logs later starts there. */
static long s_log_size(tu_service_t svc)
{
    struct stat st;
    return stat(sys.log[svc], &st) == 0 ? (long)st.st_size : 0;
}

/*  Whether a line logged by `svc` after offset `from` holds `needle`: a
    line logged before (a peer missed while the system was starting, say)
    is not what the test waits for. */
static bool s_logged_since(tu_service_t svc, long from, const char *needle)
{
    FILE *f = fopen(sys.log[svc], "r");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!found && getline(&line, &cap, f) >= 0)
            found = strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return found;
}

/*  Polls until both subscribers of customer-service (order- and
    inventory-service) have logged `needle` since `from[]`. */
static void s_wait_both_logged(const long *from, const char *needle)
{
    const tu_service_t subscribers[] = {TU_ORDER, TU_INVENTORY};
    int64_t deadline = zclock_mono() + S_NOTICE_MS;
    for (size_t i = 0; i < 2; i++) {
        tu_service_t svc = subscribers[i];
        while (!s_logged_since(svc, from[svc], needle) && zclock_mono() < deadline)
            zclock_sleep(50); /* polling a log file: there is nothing to wait on */
        if (!s_logged_since(svc, from[svc], needle)) {
            tu_system_dump_logs(&sys);
            cr_assert_fail("%s did not log \"%s\" within %d ms", tu_service_name(svc),
                           needle, S_NOTICE_MS);
        }
    }
}

static void s_stock_the_shop(void)
{
    cr_assert_eq(tu_create_customer(&sys, "alice", 10000000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 1000), 0, "%s", sys.why);
}

/*  Places order `i` (one apple) and stores its id; it starts PENDING. */
static void s_place(int i, char (*ids)[EDA_NAME_MAX + 1])
{
    tu_item_t items[] = {{"apple", 1, 100 + i}};
    char status[16];
    cr_assert_eq(tu_place_order(&sys, "alice", items, 1, NULL, ids[i], status, NULL), 0,
                 "%s", sys.why);
    cr_assert_str_eq(status, "PENDING");
}

/*  Every order from..to-1 is APPROVED by `deadline` (zclock_mono). */
static void s_expect_approved(char (*ids)[EDA_NAME_MAX + 1], int from, int to,
                              int64_t deadline)
{
    for (int i = from; i < to; i++) {
        tu_order_t o;
        int64_t left = deadline - zclock_mono();
        cr_assert_eq(tu_wait_order(&sys, ids[i], left > 0 ? (int)left : 1, &o), 0,
                     "order %d (%s) still PENDING: %s", i, ids[i], sys.why);
        cr_assert_str_eq(o.status, "APPROVED", "order %d: %s %s", i, o.status, o.reason);
    }
}

static void s_check_books(void)
{
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_eq(tu_check_event_log(&sys, (tu_service_t)i, NULL), 0, "%s", sys.why);
}

/*  customer-service freezes for longer than the heartbeat timeout: its
    kernel keeps every connection open, so only the silence tells. Orders
    placed meanwhile wait, both subscribers notice, and once it thaws they
    hear it again and every order is decided. */
Test(e2e_liveness, a_peer_frozen_past_the_heartbeat_timeout_is_noticed_and_caught_up)
{
    static char ids[10][EDA_NAME_MAX + 1];
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock_the_shop();
    for (int i = 0; i < 5; i++)
        s_place(i, ids);
    /* Events flow from customer-service to both subscribers. */
    s_expect_approved(ids, 0, 5, zclock_mono() + TU_SETTLE_MS);

    long from[TU_NSERVICES];
    for (int i = 0; i < TU_NSERVICES; i++)
        from[i] = s_log_size((tu_service_t)i);
    cr_assert_eq(kill(sys.pid[TU_CUSTOMER], SIGSTOP), 0);
    s_frozen = true;
    for (int i = 5; i < 10; i++)
        s_place(i, ids);
    s_wait_both_logged(from, "no heartbeat from customer-service");

    /* No credit can be held while it is frozen: the orders still wait. */
    tu_order_t pending[10];
    int n = tu_list_orders(&sys, "PENDING", 0, pending, 10);
    if (n != 5) {
        /* Say what each order is, to tell a flake from a fault. */
        for (int i = 0; i < 10; i++) {
            tu_order_t o = {.status = "?"};
            tu_get_order(&sys, ids[i], &o);
            fprintf(stderr, "liveness: %s %s\n", ids[i], o.status);
        }
        tu_system_dump_logs(&sys);
    }
    cr_assert_eq(n, 5, "%d orders PENDING while customer-service is frozen, not 5: %s", n,
                 sys.why);

    for (int i = 0; i < TU_NSERVICES; i++)
        from[i] = s_log_size((tu_service_t)i);
    cr_assert_eq(kill(sys.pid[TU_CUSTOMER], SIGCONT), 0);
    s_frozen = false;
    s_wait_both_logged(from, "customer-service is heard again");
    s_expect_approved(ids, 5, 10, zclock_mono() + TU_SETTLE_MS);
    s_check_books();
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

/* --- a host crash, with network namespaces -------------------------------- */

/*  Removes namespaces and veths left by an earlier run of this suite that
    crashed before its teardown (named edalv<pid>, its pid gone), and any of
    this very pid. Those of a live run are left alone. */
static void s_sweep_leftovers(void)
{
    const char *lists[] = {"ip netns list 2>/dev/null", "ip -o link show 2>/dev/null"};
    for (size_t l = 0; l < 2; l++) {
        FILE *p = popen(lists[l], "r");
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            int pid = 0, n = 0;
            char *name = l == 0 ? line : strchr(line, ' ');
            if (!name || sscanf(name, " edalv%d%n", &pid, &n) != 1 || pid <= 0)
                continue;
            char kind = name[n]; /* 'h' or 'b' for a veth, else a namespace */
            bool gone = kill((pid_t)pid, 0) != 0 && errno == ESRCH;
            if (!gone && pid != (int)getpid())
                continue;
            if (l == 0)
                s_ip("netns del edalv%d", pid);
            else if (kind == 'h' || kind == 'b')
                s_ip("link del edalv%d%c", pid, kind);
        }
        if (p)
            pclose(p);
    }
}

/*  Picks a /30 in 198.18.0.0/15 (set aside for network tests, RFC 2544)
    from the pid, stepping past any that an address of this host is in
    already. Fills s_host_ip and s_ns_ip. */
static void s_pick_subnet(void)
{
    for (uint32_t k = 0; k < 64; k++) {
        uint32_t base = 0xC6120000u + (((uint32_t)getpid() + k) % 32768u) * 4u;
        struct in_addr net = {htonl(base)}, host = {htonl(base + 1)},
                       peer = {htonl(base + 2)};
        char cmd[128], prefix[INET_ADDRSTRLEN], line[256];
        inet_ntop(AF_INET, &net, prefix, sizeof prefix);
        snprintf(cmd, sizeof cmd, "ip -o -4 addr show to %s/30 2>/dev/null", prefix);
        FILE *p = popen(cmd, "r");
        cr_assert(p, "cannot run ip");
        bool taken = fgets(line, sizeof line, p) != NULL;
        pclose(p);
        if (taken)
            continue;
        inet_ntop(AF_INET, &host, s_host_ip, sizeof s_host_ip);
        inet_ntop(AF_INET, &peer, s_ns_ip, sizeof s_ns_ip);
        return;
    }
    cr_assert_fail("no free /30 in 198.18.0.0/15 near this pid");
}

/*  Makes namespace s_ns afresh with its lo up, and moves the namespace end
    of the veth pair into it with its address, left down (cut). */
static void s_make_ns(void)
{
    cr_assert_eq(s_ip("netns add %s", s_ns), 0, "ip netns add %s", s_ns);
    cr_assert_eq(s_ip("-n %s link set lo up", s_ns), 0);
    cr_assert_eq(s_ip("link set %s netns %s", s_veth_ns, s_ns), 0);
    cr_assert_eq(s_ip("-n %s addr add %s/30 dev %s", s_ns, s_ns_ip, s_veth_ns), 0);
}

static void s_set_link(bool up)
{
    cr_assert_eq(s_ip("-n %s link set %s %s", s_ns, s_veth_ns, up ? "up" : "down"), 0,
                 "ip link set %s %s", s_veth_ns, up ? "up" : "down");
}

/*  The network: namespace edalv<pid> joined to the test's by a veth pair,
    the test's end addressed s_host_ip, the namespace's s_ns_ip. */
static void s_make_network(void)
{
    int pid = (int)getpid();
    snprintf(s_ns, sizeof s_ns, "edalv%d", pid);
    snprintf(s_veth_host, sizeof s_veth_host, "edalv%dh", pid);
    snprintf(s_veth_ns, sizeof s_veth_ns, "edalv%db", pid);
    s_pick_subnet();
    cr_assert_eq(s_ip("link add %s type veth peer name %s", s_veth_host, s_veth_ns), 0,
                 "ip link add %s type veth", s_veth_host);
    cr_assert_eq(s_ip("addr add %s/30 dev %s", s_host_ip, s_veth_host), 0);
    cr_assert_eq(s_ip("link set %s up", s_veth_host), 0);
    s_make_ns();
    s_set_link(true);
}

/*  Counts the TCP connections of process `pid` that are ESTABLISHED to
    ip:port, matching the socket inodes among its descriptors against the
    test's namespace's /proc/net/tcp (the process shares that namespace). */
static int s_established(pid_t pid, const char *ip, int port)
{
    unsigned long inodes[512];
    size_t ninodes = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    cr_assert(dir, "cannot read %s", path);
    struct dirent *de;
    while ((de = readdir(dir)) && ninodes < 512) {
        char fd_path[320], target[64];
        snprintf(fd_path, sizeof fd_path, "%s/%s", path, de->d_name);
        ssize_t n = readlink(fd_path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (sscanf(target, "socket:[%lu]", &inodes[ninodes]) == 1)
            ninodes++;
    }
    closedir(dir);

    /* /proc/net/tcp prints the remote address as the in_addr's raw 32 bits
       and the port in host order; state 01 is ESTABLISHED. */
    struct in_addr want;
    cr_assert_eq(inet_pton(AF_INET, ip, &want), 1);
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert(f, "cannot read /proc/net/tcp");
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned addr, rport, state;
        unsigned long inode;
        if (sscanf(line, " %*u: %*x:%*x %x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
                   &rport, &state, &inode) != 4)
            continue;
        if (addr != want.s_addr || (int)rport != port || state != 0x01)
            continue;
        for (size_t i = 0; i < ninodes; i++)
            count += inodes[i] == inode;
    }
    fclose(f);
    return count;
}

/*  Sum of what order- and inventory-service hold ESTABLISHED to
    customer-service's events port, each checked to be at least `min`. */
static int s_subscribers_established(int port, int min)
{
    int total = 0;
    const tu_service_t subscribers[] = {TU_ORDER, TU_INVENTORY};
    for (size_t i = 0; i < 2; i++) {
        int n = s_established(sys.pid[subscribers[i]], s_ns_ip, port);
        cr_assert(n >= min, "%s holds %d connections to customer-service's events",
                  tu_service_name(subscribers[i]), n);
        total += n;
    }
    return total;
}

/*  Waits until order- and inventory-service each hold a connection to
    customer-service's events port: they connect in the background, and an
    approved order does not need order-service's (its verdict comes from
    inventory-service). Fails the test after TU_SETTLE_MS. */
static void s_wait_subscribed(int port)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    while ((s_established(sys.pid[TU_ORDER], s_ns_ip, port) < 1 ||
            s_established(sys.pid[TU_INVENTORY], s_ns_ip, port) < 1) &&
           zclock_mono() < deadline)
        zclock_sleep(20); /* the poll interval of a readiness wait */
    s_subscribers_established(port, 1);
}

/*  customer-service's host crashes while cut off: its kernel forgets the
    connections without a FIN or an RST reaching the other side, and it
    comes back with the same address, the same database, on a new kernel.
    The subscribers' connections to it are half-open; heartbeats make them
    notice, and orders placed after the heal complete within S_HEAL_MS.

    Why nothing closes the subscribers' connections: the link is cut (the
    namespace's end of the veth is down, so whatever its kernel sends is
    dropped) before kill -9 makes that kernel close the sockets (its FINs,
    and RSTs for unread data, go nowhere, to be retransmitted). The veth end
    is then moved out and the namespace deleted, so those retransmissions
    have no way out ever; the namespace made under the same name is a new
    network stack that never knew the connections. The subscribers' kernel
    thus still has them ESTABLISHED (checked below from /proc), and a
    subscriber that only reads (a SUB) would wait on them forever. */
Test(e2e_liveness, a_half_open_connection_is_noticed)
{
    if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0) {
        s_teardown(); /* a skipped test's fini is not run */
        cr_skip_test("needs root and ip netns (iproute2) to make a half-open TCP "
                     "connection; CI runs as root");
    }
    s_sweep_leftovers();
    s_make_network();

    /* customer-service in the namespace; the others, and the test, on the
       test's end of the link. Ports picked now (the namespace's are free
       there in any case). */
    int ports[2 * TU_NSERVICES];
    cr_assert_eq(tu_free_ports(ports, 2 * TU_NSERVICES), 0);
    for (int i = 0; i < TU_NSERVICES; i++) {
        const char *ip = i == TU_CUSTOMER ? s_ns_ip : s_host_ip;
        char events[64], commands[64];
        snprintf(events, sizeof events, "tcp://%s:%d", ip, ports[2 * i]);
        snprintf(commands, sizeof commands, "tcp://%s:%d", ip, ports[2 * i + 1]);
        cr_assert_eq(tu_system_set_endpoints(&sys, (tu_service_t)i, events, commands), 0,
                     "%s", sys.why);
    }
    int customer_events = ports[2 * TU_CUSTOMER];
    cr_assert_eq(tu_system_set_netns(&sys, TU_CUSTOMER, s_ns), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock_the_shop();
    static char ids[13][EDA_NAME_MAX + 1];
    for (int i = 0; i < 5; i++)
        s_place(i, ids);
    s_expect_approved(ids, 0, 5, zclock_mono() + TU_SETTLE_MS);
    s_wait_subscribed(customer_events);

    /* The crash: cut, kill -9, a new kernel for the namespace. */
    long from[TU_NSERVICES];
    for (int i = 0; i < TU_NSERVICES; i++)
        from[i] = s_log_size((tu_service_t)i);
    int64_t crash = zclock_mono();
    s_set_link(false);
    cr_assert_eq(tu_system_kill(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert_eq(s_ip("-n %s link set %s netns %d", s_ns, s_veth_ns, (int)getpid()), 0);
    cr_assert_eq(s_ip("netns del %s", s_ns), 0);
    s_make_ns();
    /* Half-open: the other end is gone, and this end never heard. (Well
       within the 3 s after which the subscribers give up on it.) */
    int held = s_subscribers_established(customer_events, 1);
    fprintf(stderr, "liveness: %d half-open connections %lld ms after the crash\n", held,
            (long long)(zclock_mono() - crash));

    /* The host is back, the link still cut: customer-service starts on its
       database, and orders placed meanwhile wait for it. */
    cr_assert_eq(tu_system_spawn(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    for (int i = 5; i < 8; i++)
        s_place(i, ids);

    /* The subscribers notice the silence and let go of the half-open
       connections (nothing new can be ESTABLISHED while the link is cut). */
    s_wait_both_logged(from, "no heartbeat from customer-service");
    int64_t deadline = zclock_mono() + S_NOTICE_MS;
    while (s_subscribers_established(customer_events, 0) > 0 && zclock_mono() < deadline)
        zclock_sleep(50); /* polling /proc: there is nothing to wait on */
    cr_assert_eq(s_subscribers_established(customer_events, 0), 0,
                 "a subscriber still holds its half-open connection");

    /* The heal: every order, those placed before and after it, is decided
       well before the 60 s they used to wait. */
    s_set_link(true);
    int64_t heal = zclock_mono();
    for (int i = 8; i < 13; i++)
        s_place(i, ids);
    s_expect_approved(ids, 5, 13, heal + S_HEAL_MS);
    fprintf(stderr, "liveness: every order decided %lld ms after the heal\n",
            (long long)(zclock_mono() - heal));
    cr_assert_eq(tu_system_wait_ready(&sys, TU_CUSTOMER, S_HEAL_MS), 0, "%s", sys.why);
    s_wait_both_logged(from, "customer-service is heard again");
    s_check_books();
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}
