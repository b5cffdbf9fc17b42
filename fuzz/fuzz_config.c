/*  fuzz_config: the bytes as a ZPL file, loaded with eda_config_load_file by
    a service (with options of its own, like order-service's) and by a client;
    then each line of the bytes as a --peer value, and as "NAME VALUE" for
    eda_config_set. Whatever is accepted must leave a configuration whose
    strings fit their arrays, and a --peer accepted must be found as given.
*/
#include "eda_config.h"
#include "fuzz_check.h"

#include <czmq.h>
#include <stdint.h>
#include <unistd.h>

#define S_LINES_MAX 16

static int s_fd = -1;   /* the file, already unlinked: nothing is left behind */
static char s_path[64]; /* its name, /proc/self/fd/N */

static int s_check_saga(const char *name, const char *value, char *why, size_t why_size)
{
    if (strcmp(value, "choreography") == 0 || strcmp(value, "orchestration") == 0)
        return 0;
    snprintf(why, why_size, "--%s must be choreography or orchestration", name);
    return -1;
}

static const eda_option_t s_options[] = {{"saga", "choreography", s_check_saga},
                                         {"saga-deadline", "30000", eda_config_check_ms},
                                         {"witness", "", NULL},
                                         {NULL, NULL, NULL}};

/*  czmq 4.2's zconfig_load leaks its zfile_t (about 150 bytes) when the
    text does not parse: the tree owns the file only once there is a tree.
    That is czmq's, and a service stops on a bad file; but a leak in every
    run makes libFuzzer scan the heap after each one, 100 times slower. So
    a text is parsed first as zconfig_load would (zconfig_chunk_load on the
    same bytes) and loaded only when it parses; the refusal of a text that
    does not is loaded once, at start, under this suppression. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:zfile_new\n";
}

/*  Makes the file hold data[size]. */
static void s_write(const void *data, size_t size)
{
    FUZZ_CHECK(ftruncate(s_fd, 0) == 0 && pwrite(s_fd, data, size, 0) == (ssize_t)size,
               "cannot write the temporary file");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* czmq would take over SIGINT and SIGTERM once started: leave them to
       libFuzzer, so that Ctrl-C still stops it. zconfig prints a line on
       stdout for each text that does not parse: keep them off the screen
       (libFuzzer and the checks write on stderr). */
    zsys_handler_set(NULL);
    FUZZ_CHECK(freopen("/dev/null", "w", stdout), "cannot silence stdout");
    char name[1024];
    const char *dir = getenv("TMPDIR");
    int n =
        snprintf(name, sizeof name, "%s/fuzz_config.XXXXXX", dir && *dir ? dir : "/tmp");
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof name, "TMPDIR is too long");
    s_fd = mkstemp(name);
    FUZZ_CHECK(s_fd >= 0, "cannot create a temporary file");
    unlink(name);
    snprintf(s_path, sizeof s_path, "/proc/self/fd/%d", s_fd);

    const char bad[] = "section\n  two spaces\n";
    s_write(bad, sizeof bad - 1);
    eda_config_t cfg;
    eda_config_defaults(&cfg, "order-service");
    char why[512] = "";
    FUZZ_CHECK(eda_config_load_file(&cfg, s_path, why, sizeof why) == -1,
               "a text that does not parse must be refused");
    FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    return 0;
}

/*  What any configuration must hold, whatever was fed to it. */
static void s_check_config(const eda_config_t *cfg)
{
    FUZZ_CHECK(cfg->npeers >= 3 && cfg->npeers <= EDA_PEERS_MAX, "peer count");
    FUZZ_CHECK(fuzz_terminated(cfg->db, sizeof cfg->db), "db overran");
    FUZZ_CHECK(cfg->log_format == EDA_LOG_TEXT || cfg->log_format == EDA_LOG_JSON,
               "log format out of range");
    FUZZ_CHECK(cfg->log_level <= EDA_LOG_DEBUG, "log level out of range");
    for (size_t i = 0; i < cfg->npeers; i++) {
        const eda_endpoint_t *ep = &cfg->peers[i];
        FUZZ_CHECK(fuzz_terminated(ep->name, sizeof ep->name), "peer name overran");
        FUZZ_CHECK(fuzz_terminated(ep->events, sizeof ep->events), "events overran");
        FUZZ_CHECK(fuzz_terminated(ep->commands, sizeof ep->commands),
                   "commands overran");
        FUZZ_CHECK(eda_config_peer(cfg, ep->name) == ep, "two peers share a name");
    }
    for (size_t i = 0; cfg->options && cfg->options[i].name; i++) {
        FUZZ_CHECK(fuzz_terminated(cfg->option_values[i], EDA_OPTION_LEN),
                   "option overran");
        const char *v = eda_config_option(cfg, cfg->options[i].name);
        FUZZ_CHECK(v == cfg->option_values[i], "an option cannot be found");
        char why[256] = "";
        FUZZ_CHECK(!cfg->options[i].check ||
                       cfg->options[i].check(cfg->options[i].name, v, why, sizeof why) ==
                           0,
                   "an option holds a value its check refuses");
    }
    const eda_endpoint_t *own =
        cfg->service[0] ? eda_config_peer(cfg, cfg->service) : NULL;
    FUZZ_CHECK(!cfg->service[0] || own, "a service lost its own endpoints");
}

static void s_fresh(eda_config_t *cfg, const char *service)
{
    eda_config_defaults(cfg, service);
    eda_config_declare(cfg, service[0] ? s_options : NULL);
}

static void s_load(const char *service)
{
    eda_config_t cfg;
    s_fresh(&cfg, service);
    char why[512] = "";
    if (eda_config_load_file(&cfg, s_path, why, sizeof why) != 0)
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    s_check_config(&cfg);
}

/*  Sets --peer `value` and checks that an accepted peer is found as given. */
static void s_set_peer(eda_config_t *cfg, const char *value)
{
    char why[512] = "";
    int rc = eda_config_set(cfg, "peer", value, why, sizeof why);
    FUZZ_CHECK(rc == 0 || rc == -1, "--peer is a known option");
    if (rc < 0) {
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
        return;
    }
    const char *eq = strchr(value, '='), *comma = eq ? strchr(eq + 1, ',') : NULL;
    FUZZ_CHECK(eq && comma, "accepted a --peer without '=' and ','");
    char name[64];
    size_t nlen = (size_t)(eq - value);
    FUZZ_CHECK(nlen > 0 && nlen < sizeof name, "accepted a --peer name too long");
    memcpy(name, value, nlen);
    name[nlen] = '\0';
    if (strcmp(name, cfg->service) == 0)
        return; /* a service's own endpoints come from --events/--commands */
    const eda_endpoint_t *ep = eda_config_peer(cfg, name);
    FUZZ_CHECK(ep, "an accepted peer cannot be found");
    size_t elen = (size_t)(comma - eq - 1);
    FUZZ_CHECK(strlen(ep->events) == elen && memcmp(ep->events, eq + 1, elen) == 0,
               "peer events differ from --peer");
    FUZZ_CHECK(strcmp(ep->commands, comma + 1) == 0, "peer commands differ from --peer");
}

/*  Sets "NAME VALUE" (the line up to its first space, then the rest). */
static void s_set_named(eda_config_t *cfg, char *line)
{
    char *space = strchr(line, ' ');
    if (!space)
        return;
    *space = '\0';
    char why[512] = "";
    int rc = eda_config_set(cfg, line, space + 1, why, sizeof why);
    FUZZ_CHECK(rc >= -1 && rc <= 1, "eda_config_set returns 0, 1 or -1");
    if (rc < 0)
        FUZZ_CHECK(fuzz_reason_ok(why, sizeof why), "a refusal must give a reason");
    *space = ' ';
}

/*  Feeds each line of the bytes (cut at NUL) as settings. */
static void s_set_lines(const uint8_t *data, size_t size, const char *service)
{
    eda_config_t cfg;
    s_fresh(&cfg, service);
    size_t start = 0;
    for (int n = 0; n < S_LINES_MAX && start < size; n++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t len = nl ? (size_t)(nl - data) - start : size - start;
        char *line = malloc(len + 1);
        FUZZ_CHECK(line, "out of memory");
        memcpy(line, data + start, len);
        line[len] = '\0';
        s_set_peer(&cfg, line);
        s_set_named(&cfg, line);
        s_check_config(&cfg);
        free(line);
        start += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zchunk_t *chunk = zchunk_new(data, size);
    FUZZ_CHECK(chunk, "out of memory");
    zconfig_t *parsed = zconfig_chunk_load(chunk);
    zchunk_destroy(&chunk);
    if (parsed) {
        zconfig_destroy(&parsed);
        s_write(data, size);
        s_load("order-service");
        s_load("");
    }
    s_set_lines(data, size, "order-service");
    s_set_lines(data, size, "");
    return 0;
}
