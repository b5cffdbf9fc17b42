/*  test_e2e_console: `eda console` as an operator and a monitoring system
    use it. The real eda binary serves on a port the kernel picks (--listen
    127.0.0.1:0; the URL it prints says which) in front of the real services
    (tu_system_t); the test speaks HTTP over a plain socket: /healthz turns
    503 naming a killed service, /metrics parses as Prometheus text with every
    service's counters, /api/orders/ID is exactly `eda --json trace ID`,
    /api/events streams an order placed after the stream opened, and / is one
    page that loads nothing from elsewhere. The browser's view of the page is
    tests/console_browser.py's.
*/
#include "testutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define S_BODY_MAX (1 << 20)
#define S_START_MS 10000 /* the console printing its URL */
#define S_POLL_MS  10000 /* an outcome polled for */

static tu_system_t sys;
static pid_t s_console;
static int s_port;
static char s_err_path[400];

/*  One HTTP response. */
typedef struct {
    int status; /* -1 when no response came */
    char head[8192];
    char body[S_BODY_MAX];
    size_t len;
} s_http_t;

static s_http_t s_res;

/* --- the console process ------------------------------------------------------ */

/*  Starts `eda console --listen 127.0.0.1:0` and reads the port from the URL
    it prints. */
static void s_console_start(void)
{
    char path[512], peer[TU_NSERVICES][700];
    char *argv[32] = {path, "console", "--listen", "127.0.0.1:0", "--timeout", "1000"};
    snprintf(path, sizeof path, "%s/tools/eda", EDA_BIN_DIR);
    tu_peer_args(&sys, argv, 6, peer);
    snprintf(s_err_path, sizeof s_err_path, "%s/console.err", sys.dir);
    int out[2];
    cr_assert_eq(pipe(out), 0);
    fflush(NULL);
    s_console = fork();
    cr_assert_geq(s_console, 0);
    if (s_console == 0) {
        FILE *err = fopen(s_err_path, "w");
        dup2(out[1], STDOUT_FILENO);
        if (err)
            dup2(fileno(err), STDERR_FILENO);
        close(out[0]), close(out[1]);
        execv(path, argv);
        _exit(127);
    }
    close(out[1]);
    char line[256] = "";
    size_t len = 0;
    int64_t deadline = zclock_mono() + S_START_MS;
    while (!strchr(line, '\n') && zclock_mono() < deadline) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(out[0], line + len, sizeof line - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(out[0]); /* it prints nothing more */
    cr_assert_eq(sscanf(line, "console: http://127.0.0.1:%d/", &s_port), 1,
                 "eda console printed '%s'", line);
}

/*  Stops the console with SIGTERM, as Ctrl-C would: it must exit 0, soon,
    and without a sanitizer report. */
static void s_console_stop(void)
{
    if (!s_console)
        return;
    kill(s_console, SIGTERM);
    int st = 0;
    int64_t deadline = zclock_mono() + 5000;
    pid_t done = 0;
    while ((done = waitpid(s_console, &st, WNOHANG)) == 0 && zclock_mono() < deadline)
        zclock_sleep(20); /* the poll's period */
    if (done == 0) {
        kill(s_console, SIGKILL);
        waitpid(s_console, &st, 0);
    }
    s_console = 0;
    char err[8192] = "";
    FILE *f = fopen(s_err_path, "r");
    if (f) {
        err[fread(err, 1, sizeof err - 1, f)] = '\0';
        fclose(f);
    }
    cr_assert_neq(done, 0, "eda console did not stop on SIGTERM within 5 s");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "eda console: status %d\n%s", st,
              err);
    cr_assert_null(strstr(err, "Sanitizer"), "%s", err);
    cr_assert_null(strstr(err, "runtime error"), "%s", err);
}

static void s_wait_heard(void);

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 100000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 100), 0, "%s", sys.why);
    s_console_start();
    s_wait_heard();
}

static void s_teardown(void)
{
    if (s_console) {
        kill(s_console, SIGKILL);
        waitpid(s_console, NULL, 0);
        s_console = 0;
    }
    tu_system_fini(&sys);
}

TestSuite(console, .init = s_setup, .fini = s_teardown, .timeout = 120);

/* --- a tiny HTTP client ------------------------------------------------------------ */

/*  Connects to the console and sends GET `path`. Returns the socket. */
static int s_send_get(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)s_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0, "connect: %s",
                 strerror(errno));
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     path, s_port);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    return fd;
}

/*  Reads from fd into buf[*len..max) until `until` is in it, EOF or the
    deadline. Whether `until` came (NULL: EOF came). */
static bool s_read_until(int fd, char *buf, size_t *len, size_t max, const char *until,
                         int64_t deadline)
{
    while (zclock_mono() < deadline) {
        if (until && strstr(buf, until))
            return true;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, buf + *len, max - *len - 1);
        if (n <= 0)
            return until == NULL;
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return until && strstr(buf, until);
}

/*  Splits what came into s_res: status line and headers, then the body. */
static void s_parse_response(const char *raw, size_t len)
{
    s_res.status = -1;
    s_res.len = 0;
    s_res.head[0] = s_res.body[0] = '\0';
    const char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.%*d %d", &s_res.status) != 1)
        return;
    snprintf(s_res.head, sizeof s_res.head, "%.*s", (int)(end - raw), raw);
    s_res.len = len - (size_t)(end + 4 - raw);
    memcpy(s_res.body, end + 4, s_res.len);
    s_res.body[s_res.len] = '\0';
}

/*  GET `path` into s_res (the whole response: the server closes). */
static void s_get(const char *path)
{
    static char raw[S_BODY_MAX + 8192];
    size_t len = 0;
    raw[0] = '\0';
    int fd = s_send_get(path);
    s_read_until(fd, raw, &len, sizeof raw, NULL, zclock_mono() + S_POLL_MS);
    close(fd);
    s_parse_response(raw, len);
    cr_assert_neq(s_res.status, -1, "GET %s: no response:\n%s", path, raw);
}

/*  Waits until the console has heard every service on its SUBs (a
    heartbeat comes each second): from then on it gets every event they
    publish (a SUB not connected yet would miss them). */
static void s_wait_heard(void)
{
    int heard = 0;
    int64_t deadline = zclock_mono() + S_POLL_MS;
    do {
        s_get("/api/stats");
        json_t *doc = json_loads(s_res.body, 0, NULL);
        size_t i;
        json_t *row;
        heard = 0;
        json_array_foreach(json_object_get(doc, "services"), i, row) heard +=
            json_integer_value(json_object_get(row, "heard_ms_ago")) >= 0;
        json_decref(doc);
        if (heard == TU_NSERVICES)
            return;
        zclock_sleep(20); /* the poll's period, not a wait for readiness */
    } while (zclock_mono() < deadline);
    cr_assert_fail("the console heard %d services in %d ms: %s", heard, S_POLL_MS,
                   s_res.body);
}

/* --- /healthz ------------------------------------------------------------------------
 */

Test(console, healthz_is_200_then_503_naming_a_killed_service)
{
    s_get("/healthz");
    cr_assert_eq(s_res.status, 200, "%s\n%s", s_res.head, s_res.body);
    cr_assert_not_null(strstr(s_res.body, "ok"), "%s", s_res.body);

    cr_assert_eq(tu_system_kill(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    s_get("/healthz");
    cr_assert_eq(s_res.status, 503, "%s\n%s", s_res.head, s_res.body);
    cr_assert_not_null(strstr(s_res.body, "customer-service"), "%s", s_res.body);
    cr_assert_null(strstr(s_res.body, "order-service"), "%s", s_res.body);
    cr_assert_null(strstr(s_res.body, "inventory-service"), "%s", s_res.body);
    s_console_stop();
}

/* --- /metrics -------------------------------------------------------------------------
 */

/*  What /metrics said: per service, whether eda_up was 1 and how many
    eda_*_total samples it had; and the first line that is not Prometheus
    text, if any. */
typedef struct {
    int up[TU_NSERVICES]; /* -1 absent, else the value */
    int totals[TU_NSERVICES];
    char bad[512];
} s_metrics_t;

static bool s_name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/*  Parses one sample line, `name{label="value",...} number`: copies its
    name and its service label. false when it is not one. */
static bool s_sample(const char *line, char *name, size_t nsize, char *service,
                     size_t ssize)
{
    const char *p = line;
    size_t n = 0;
    while (s_name_char(*p, p == line) && n + 1 < nsize)
        name[n++] = *p++;
    name[n] = '\0';
    service[0] = '\0';
    if (n == 0)
        return false;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char key[64], value[128];
            size_t k = 0, v = 0;
            while (s_name_char(*p, k == 0) && k + 1 < sizeof key)
                key[k++] = *p++;
            key[k] = '\0';
            if (k == 0 || *p++ != '=' || *p++ != '"')
                return false;
            while (*p && *p != '"' && v + 1 < sizeof value) {
                if (*p == '\\' && (p[1] == '\\' || p[1] == '"' || p[1] == 'n'))
                    p++;
                value[v++] = *p++;
            }
            value[v] = '\0';
            if (*p++ != '"')
                return false;
            if (streq(key, "service"))
                snprintf(service, ssize, "%s", value);
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p++ != ' ')
        return false;
    char *end;
    strtod(p, &end);
    return end != p && *end == '\0';
}

static void s_read_metrics(s_metrics_t *m)
{
    *m = (s_metrics_t){.up = {-1, -1, -1}};
    s_get("/metrics");
    cr_assert_eq(s_res.status, 200, "%s", s_res.head);
    cr_assert_not_null(strstr(s_res.head, "text/plain"), "%s", s_res.head);
    char *save = NULL;
    for (char *line = strtok_r(s_res.body, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128], service[128];
        if (line[0] == '#') {
            if (strncmp(line, "# TYPE ", 7) && strncmp(line, "# HELP ", 7) && !m->bad[0])
                snprintf(m->bad, sizeof m->bad, "%s", line);
            continue;
        }
        if (!s_sample(line, name, sizeof name, service, sizeof service)) {
            if (!m->bad[0])
                snprintf(m->bad, sizeof m->bad, "%s", line);
            continue;
        }
        for (int i = 0; i < TU_NSERVICES; i++) {
            if (!streq(service, tu_service_name(i)))
                continue;
            if (streq(name, "eda_up"))
                m->up[i] = atoi(strchr(line, ' ') + 1);
            size_t n = strlen(name);
            if (strncmp(name, "eda_", 4) == 0 && n > 6 && streq(name + n - 6, "_total"))
                m->totals[i]++;
        }
    }
}

Test(console, metrics_parse_as_prometheus_text_with_every_services_counters)
{
    s_metrics_t m;
    int64_t deadline = zclock_mono() + S_POLL_MS;
    do {
        s_read_metrics(&m); /* Stats are asked once a second */
        if (m.up[0] == 1 && m.up[1] == 1 && m.up[2] == 1)
            break;
        zclock_sleep(50); /* the poll's period, not a wait for readiness */
    } while (zclock_mono() < deadline);
    cr_assert_eq(m.bad[0], '\0', "not Prometheus text: '%s'", m.bad);
    for (int i = 0; i < TU_NSERVICES; i++) {
        cr_assert_eq(m.up[i], 1, "eda_up{service=\"%s\"} is %d", tu_service_name(i),
                     m.up[i]);
        cr_assert_geq(m.totals[i], 1, "no eda_*_total for %s", tu_service_name(i));
    }
    s_get("/metrics");
    cr_assert_not_null(strstr(s_res.body, "\neda_events_published_total{service="
                                          "\"order-service\"} "),
                       "%s", s_res.body);
    /* Percentiles and maximums are gauges: no _total. */
    cr_assert_not_null(strstr(s_res.body, "\neda_commit_us_p99{service="), "%s",
                       s_res.body);
    cr_assert_null(strstr(s_res.body, "eda_handler_us_max_total"), "%s", s_res.body);
    /* The WAL's size is a level too. */
    cr_assert_null(strstr(s_res.body, "eda_wal_pages_total"), "%s", s_res.body);
    cr_assert_not_null(strstr(s_res.body, "\neda_wal_pages{service="), "%s", s_res.body);

    /* A service gone is eda_up 0 by the next Stats. */
    cr_assert_eq(tu_system_kill(&sys, TU_INVENTORY), 0, "%s", sys.why);
    deadline = zclock_mono() + S_POLL_MS;
    do {
        s_read_metrics(&m);
        if (m.up[TU_INVENTORY] == 0)
            break;
        zclock_sleep(50);
    } while (zclock_mono() < deadline);
    cr_assert_eq(m.up[TU_INVENTORY], 0, "eda_up of inventory-service still %d",
                 m.up[TU_INVENTORY]);
    cr_assert_eq(m.up[TU_ORDER], 1);
    cr_assert_eq(m.bad[0], '\0', "not Prometheus text: '%s'", m.bad);
    s_console_stop();
}

/* --- /api/orders/ID -------------------------------------------------------------- */

/*  Runs eda with args[] (NULL-ended) and the deployment's peers; its stdout
    into out[size]. Returns its exit status. */
static int s_eda(char **args, char *out, size_t size)
{
    char path[512], peer[TU_NSERVICES][700];
    char *argv[32] = {path};
    int n = 1;
    snprintf(path, sizeof path, "%s/tools/eda", EDA_BIN_DIR);
    for (int i = 0; args[i] && n < 16; i++)
        argv[n++] = args[i];
    tu_peer_args(&sys, argv, n, peer);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]), close(fds[1]);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    out[0] = '\0';
    s_read_until(fds[0], out, &len, size, NULL, zclock_mono() + S_POLL_MS);
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*  Places an order for an apple; its id into order_id[EDA_NAME_MAX + 1]. */
static void s_place(char *order_id)
{
    tu_item_t item = {"apple", 1, 150};
    char status[16];
    cr_assert_eq(tu_place_order(&sys, "ada", &item, 1, NULL, order_id, status, NULL), 0,
                 "%s", sys.why);
}

Test(console, api_orders_id_is_the_trace_document)
{
    char order_id[EDA_NAME_MAX + 1], path[128], words[256] = "";
    s_place(order_id);
    tu_order_t order;
    cr_assert_eq(tu_wait_order(&sys, order_id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);

    snprintf(path, sizeof path, "/api/orders/%s", order_id);
    s_get(path);
    cr_assert_eq(s_res.status, 200, "%s\n%s", s_res.head, s_res.body);
    cr_assert_not_null(strstr(s_res.head, "application/json"), "%s", s_res.head);
    json_error_t error;
    json_t *doc = json_loads(s_res.body, 0, &error);
    cr_assert(json_is_object(doc), "%s: %s", error.text, s_res.body);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "order_id")), order_id);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")), "APPROVED");
    cr_assert_eq(json_array_size(json_object_get(doc, "missing")), 0, "%s", s_res.body);
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(doc, "chain"), i, step)
    {
        size_t used = strlen(words);
        snprintf(words + used, sizeof words - used, "%s%s", used ? " " : "",
                 json_string_value(json_object_get(step, "type")));
        if (streq(json_string_value(json_object_get(step, "kind")), "event"))
            cr_assert(json_is_array(json_object_get(step, "consumers")), "%s",
                      s_res.body);
    }
    cr_assert_str_eq(words, "PlaceOrder OrderCreated CreditReserved StockReserved "
                            "OrderApproved");

    /* The very document eda --json trace prints. */
    static char out[S_BODY_MAX];
    char *args[] = {"--json", "trace", order_id, NULL};
    cr_assert_eq(s_eda(args, out, sizeof out), 0, "%s", out);
    json_t *cli = json_loads(out, 0, &error);
    cr_assert(json_is_object(cli), "%s: %s", error.text, out);
    cr_assert(json_equal(doc, cli), "console:\n%s\neda trace:\n%s", s_res.body, out);
    json_decref(cli);
    json_decref(doc);

    s_get("/api/orders/o-nobody-ordered-this");
    cr_assert_eq(s_res.status, 404, "%s\n%s", s_res.head, s_res.body);
    s_get("/api/orders/o-%01-bad");
    cr_assert_eq(s_res.status, 400, "%s\n%s", s_res.head, s_res.body);
    s_console_stop();
}

/* --- /api/events ------------------------------------------------------------------- */

/*  Whether one `data:` line of the stream is the OrderCreated of `order_id`. */
static bool s_is_created(const char *line, const char *order_id)
{
    json_t *env = json_loads(line, 0, NULL);
    bool is = env &&
              streq(json_string_value(json_object_get(env, "type")), "OrderCreated") &&
              streq(json_string_value(json_object_get(env, "correlation_id")), order_id);
    json_decref(env);
    return is;
}

Test(console, events_stream_an_order_placed_after_connecting)
{
    static char raw[S_BODY_MAX];
    size_t len = 0;
    raw[0] = '\0';
    int fd = s_send_get("/api/events");
    /* The headers and the greeting: from now on the stream gets every event. */
    cr_assert(
        s_read_until(fd, raw, &len, sizeof raw, "retry: ", zclock_mono() + S_POLL_MS),
        "%s", raw);
    cr_assert(strncmp(raw, "HTTP/1.1 200", 12) == 0, "%s", raw);
    cr_assert_not_null(strstr(raw, "text/event-stream"), "%s", raw);

    char order_id[EDA_NAME_MAX + 1];
    s_place(order_id);
    bool found = false;
    size_t scanned = 0;
    int64_t deadline = zclock_mono() + S_POLL_MS;
    while (!found && zclock_mono() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            ssize_t n = read(fd, raw + len, sizeof raw - len - 1);
            if (n <= 0)
                break;
            len += (size_t)n;
            raw[len] = '\0';
        }
        /* Each whole line not yet looked at. */
        char *nl;
        while (!found && (nl = strchr(raw + scanned, '\n'))) {
            *nl = '\0';
            if (strncmp(raw + scanned, "data: ", 6) == 0)
                found = s_is_created(raw + scanned + 6, order_id);
            *nl = ' '; /* keeps the buffer one string for s_read_until */
            scanned = (size_t)(nl - raw) + 1;
        }
        cr_assert_lt(len, sizeof raw - 1, "the stream filled the buffer");
    }
    close(fd);
    cr_assert(found, "no data: line with the OrderCreated of %s:\n%s", order_id, raw);
    s_console_stop();
}

/* --- / -------------------------------------------------------------------------------
 */

Test(console, the_page_is_one_self_contained_document)
{
    s_get("/");
    cr_assert_eq(s_res.status, 200, "%s", s_res.head);
    cr_assert_not_null(strstr(s_res.head, "text/html"), "%s", s_res.head);
    cr_assert_not_null(strstr(s_res.head, "Content-Security-Policy: default-src 'none'"),
                       "%s", s_res.head);
    cr_assert_not_null(strstr(s_res.body, "<!DOCTYPE html>"));
    cr_assert_not_null(strstr(s_res.body, "/api/events"));
    /* Nothing from elsewhere: no link, no src, and the one URL is the SVG
       namespace (a name, never fetched). */
    cr_assert_null(strstr(s_res.body, "<link"));
    cr_assert_null(strstr(s_res.body, " src="));
    cr_assert_null(strstr(s_res.body, "@import"));
    const char *url = strstr(s_res.body, "://");
    cr_assert_not_null(url);
    cr_assert(strncmp(url - 4, "http://www.w3.org/2000/svg", 26) == 0, "%.40s", url - 4);
    cr_assert_null(strstr(url + 3, "://"), "%.60s", strstr(url + 3, "://"));
    s_console_stop();
}
