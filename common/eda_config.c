/*  eda_config: one topology for every process. The precedence is fixed in
    eda_config_from_args: defaults < file < environment < flags.
*/
#include "eda_config.h"

#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *eda_config_common_usage =
    "  --events EP            its own PUB endpoint\n"
    "  --commands EP          its own ROUTER endpoint\n"
    "  --peer NAME=EV,CMD     where peer NAME is (repeatable)\n"
    "  --db PATH              its SQLite file (:memory: keeps nothing)\n"
    "  --config FILE          settings and topology from a ZPL file\n"
    "  --log-format text|json event-flow lines as text (default) or JSON\n"
    "  --log-level LEVEL      error, warn, info (default), debug\n"
    "  --sync full|normal     full (default): a commit survives a power cut;\n"
    "                         normal: it survives a killed process only\n"
    "  --retain-events N      keep the newest N events of its log at least, and\n"
    "                         every one a peer has not applied; default: all\n"
    "  --keys DIR             CURVE security: its own secret certificate and the\n"
    "                         public ones it trusts (made by `eda keys init DIR`)\n"
    "  --help, --version\n"
    "Every option can also be set as EDA_<OPTION> in the environment\n"
    "(EDA_PEER holds several peers separated by ';'). Flags win over the\n"
    "environment, which wins over the file.\n";

static const eda_endpoint_t s_defaults[] = {
    {"order-service", "tcp://127.0.0.1:7101", "tcp://127.0.0.1:7102"},
    {"customer-service", "tcp://127.0.0.1:7201", "tcp://127.0.0.1:7202"},
    {"inventory-service", "tcp://127.0.0.1:7301", "tcp://127.0.0.1:7302"},
};

static const char *s_default_dbs[] = {"data/order.db", "data/customer.db",
                                      "data/inventory.db"};

void eda_config_defaults(eda_config_t *cfg, const char *service)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->service, sizeof cfg->service, "%s", service ? service : "");
    for (size_t i = 0; i < 3; i++) {
        cfg->peers[cfg->npeers++] = s_defaults[i];
        if (strcmp(cfg->service, s_defaults[i].name) == 0)
            snprintf(cfg->db, sizeof cfg->db, "%s", s_default_dbs[i]);
    }
    cfg->log_format = EDA_LOG_TEXT;
    cfg->log_level = EDA_LOG_INFO;
    cfg->sync = EDA_SYNC_FULL;
}

void eda_config_declare(eda_config_t *cfg, const eda_option_t *options)
{
    cfg->options = options;
    for (size_t i = 0; options && options[i].name; i++) {
        assert(i < EDA_OPTIONS_MAX);
        snprintf(cfg->option_values[i], EDA_OPTION_LEN, "%s", options[i].fallback);
    }
}

/*  The index of declared option `name`, or -1. */
static int s_option_index(const eda_config_t *cfg, const char *name)
{
    for (int i = 0; cfg->options && cfg->options[i].name; i++)
        if (streq(cfg->options[i].name, name))
            return i;
    return -1;
}

const char *eda_config_option(const eda_config_t *cfg, const char *name)
{
    int i = s_option_index(cfg, name);
    return i < 0 ? NULL : cfg->option_values[i];
}

const eda_endpoint_t *eda_config_peer(const eda_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npeers; i++)
        if (strcmp(cfg->peers[i].name, name) == 0)
            return &cfg->peers[i];
    return NULL;
}

/*  Returns the entry for `name`, adding it when new; NULL when full. */
static eda_endpoint_t *s_peer_slot(eda_config_t *cfg, const char *name)
{
    eda_endpoint_t *slot = (eda_endpoint_t *)eda_config_peer(cfg, name);
    if (slot || cfg->npeers == EDA_PEERS_MAX)
        return slot;
    slot = &cfg->peers[cfg->npeers++];
    memset(slot, 0, sizeof *slot);
    /* Not snprintf: `name` may be cfg->service, inside *cfg too, which gcc's
       -Wrestrict (Release) takes for an overlap. slot->name stays
       NUL-terminated: it was zeroed. */
    memcpy(slot->name, name, strnlen(name, sizeof slot->name - 1));
    return slot;
}

static int s_copy(char *out, size_t size, const char *value, const char *what, char *why,
                  size_t why_size)
{
    size_t n = strlen(value);
    if (n == 0 || n >= size) {
        snprintf(why, why_size, "%s must be 1 to %zu characters", what, size - 1);
        return -1;
    }
    memcpy(out, value, n + 1);
    return 0;
}

int eda_config_parse_ms(const char *name, const char *value, uint32_t *out, char *why,
                        size_t why_size)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno || end == value || *end || v == 0 || v > 3600000 || value[0] == '-') {
        snprintf(why, why_size,
                 "--%s must be a number of milliseconds from 1 to 3600000, not '%s'",
                 name, value);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int eda_config_check_ms(const char *name, const char *value, char *why, size_t why_size)
{
    uint32_t ms;
    return eda_config_parse_ms(name, value, &ms, why, why_size);
}

/*  --peer NAME=EVENTS_EP,COMMANDS_EP */
static int s_set_peer(eda_config_t *cfg, const char *value, char *why, size_t why_size)
{
    const char *eq = strchr(value, '=');
    const char *comma = eq ? strchr(eq + 1, ',') : NULL;
    if (!eq || !comma || eq == value || comma == eq + 1 || !comma[1]) {
        snprintf(why, why_size, "--peer wants NAME=EVENTS_EP,COMMANDS_EP, not '%s'",
                 value);
        return -1;
    }
    char name[64], events[EDA_ENDPOINT_MAX], commands[EDA_ENDPOINT_MAX];
    size_t nlen = (size_t)(eq - value), elen = (size_t)(comma - eq - 1);
    if (nlen >= sizeof name || elen >= sizeof events ||
        strlen(comma + 1) >= sizeof commands) {
        snprintf(why, why_size, "--peer value is too long");
        return -1;
    }
    memcpy(name, value, nlen);
    name[nlen] = '\0';
    memcpy(events, eq + 1, elen);
    events[elen] = '\0';
    snprintf(commands, sizeof commands, "%s", comma + 1);
    if (strcmp(name, cfg->service) == 0)
        return 0; /* a service's own endpoints come from --events/--commands */
    eda_endpoint_t *slot = s_peer_slot(cfg, name);
    if (!slot) {
        snprintf(why, why_size, "too many peers (at most %d)", EDA_PEERS_MAX);
        return -1;
    }
    memcpy(slot->events, events, sizeof events);
    memcpy(slot->commands, commands, sizeof commands);
    return 0;
}

int eda_config_set(eda_config_t *cfg, const char *name, const char *value, char *why,
                   size_t why_size)
{
    if (streq(name, "events") || streq(name, "commands")) {
        eda_endpoint_t *self = cfg->service[0] ? s_peer_slot(cfg, cfg->service) : NULL;
        if (!self)
            return 1; /* a client has no endpoints of its own */
        bool events = streq(name, "events");
        return s_copy(events ? self->events : self->commands, EDA_ENDPOINT_MAX, value,
                      events ? "--events" : "--commands", why, why_size);
    }
    if (streq(name, "db"))
        return s_copy(cfg->db, sizeof cfg->db, value, "--db", why, why_size);
    if (streq(name, "keys"))
        return s_copy(cfg->keys, sizeof cfg->keys, value, "--keys", why, why_size);
    if (streq(name, "peer"))
        return s_set_peer(cfg, value, why, why_size);
    if (streq(name, "log-format")) {
        if (streq(value, "text") || streq(value, "json")) {
            cfg->log_format = streq(value, "json") ? EDA_LOG_JSON : EDA_LOG_TEXT;
            return 0;
        }
        snprintf(why, why_size, "--log-format must be text or json, not '%s'", value);
        return -1;
    }
    if (streq(name, "log-level")) {
        const char *levels[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++)
            if (streq(value, levels[i])) {
                cfg->log_level = (eda_log_level_t)i;
                return 0;
            }
        snprintf(why, why_size,
                 "--log-level must be error, warn, info or debug, not '%s'", value);
        return -1;
    }
    if (streq(name, "sync")) {
        if (streq(value, "full") || streq(value, "normal")) {
            cfg->sync = streq(value, "full") ? EDA_SYNC_FULL : EDA_SYNC_NORMAL;
            return 0;
        }
        snprintf(why, why_size, "--sync must be full or normal, not '%s'", value);
        return -1;
    }
    if (streq(name, "retain-events")) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(value, &end, 10);
        if (value[0] >= '1' && value[0] <= '9' && end && !*end && errno == 0 &&
            n <= INT64_MAX) {
            cfg->retain_events = n;
            return 0;
        }
        snprintf(why, why_size, "--retain-events must be a whole number from 1, not '%s'",
                 value);
        return -1;
    }
    int option = s_option_index(cfg, name);
    if (option < 0)
        return 1;
    const eda_option_t *opt = &cfg->options[option];
    if (opt->check && opt->check(name, value, why, why_size))
        return -1;
    return s_copy(cfg->option_values[option], EDA_OPTION_LEN, value, name, why, why_size);
}

int eda_config_load_file(eda_config_t *cfg, const char *path, char *why, size_t why_size)
{
    zconfig_t *root = zconfig_load(path);
    if (!root) {
        snprintf(why, why_size, "cannot read config file '%s'", path);
        return -1;
    }
    int rc = 0;
    for (zconfig_t *section = zconfig_child(root); section && rc == 0;
         section = zconfig_next(section)) {
        const char *name = zconfig_name(section);
        if (streq(name, "keys") && zconfig_value(section)) {
            /* top level: every process's keys folder, unless its section
               says otherwise (read later, so it wins) */
            if (!cfg->keys[0])
                rc = s_copy(cfg->keys, sizeof cfg->keys, zconfig_value(section), "keys",
                            why, why_size);
            continue;
        }
        bool own = cfg->service[0] && streq(name, cfg->service);
        if (strlen(name) >= sizeof cfg->peers[0].name) {
            /* cut to fit, it would name another service than the file says */
            snprintf(why, why_size, "%s: section name '%.40s...' is over %zu characters",
                     path, name, sizeof cfg->peers[0].name - 1);
            rc = -1;
            break;
        }
        eda_endpoint_t *slot = own ? NULL : s_peer_slot(cfg, name);
        for (zconfig_t *item = zconfig_child(section); item && rc == 0;
             item = zconfig_next(item)) {
            const char *key = zconfig_name(item);
            const char *value = zconfig_value(item);
            if (!value)
                continue;
            if (own)
                rc = eda_config_set(cfg, key, value, why, why_size);
            else if (slot && streq(key, "events"))
                rc = s_copy(slot->events, sizeof slot->events, value, "events", why,
                            why_size);
            else if (slot && streq(key, "commands"))
                rc = s_copy(slot->commands, sizeof slot->commands, value, "commands", why,
                            why_size);
            if (rc == 1) {
                snprintf(why, why_size, "%s: unknown setting '%s' in section '%s'", path,
                         key, name);
                rc = -1;
            }
        }
    }
    zconfig_destroy(&root);
    return rc;
}

/*  Applies EDA_<NAME> for option `name`, when set. 0 or -1. */
static int s_load_env_one(eda_config_t *cfg, const char *name, char *why, size_t why_size)
{
    char var[64] = "EDA_";
    size_t n = strlen(var);
    for (const char *c = name; *c && n + 1 < sizeof var; c++)
        var[n++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    var[n] = '\0';
    const char *value = getenv(var);
    /* 1: a setting this process has not (a client's own endpoints) */
    if (value && *value && eda_config_set(cfg, name, value, why, why_size) < 0)
        return -1;
    return 0;
}

int eda_config_load_env(eda_config_t *cfg, char *why, size_t why_size)
{
    static const char *names[] = {"events",    "commands", "db",   "log-format",
                                  "log-level", "keys",     "sync", "retain-events"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s_load_env_one(cfg, names[i], why, why_size))
            return -1;
    for (size_t i = 0; cfg->options && cfg->options[i].name; i++)
        if (s_load_env_one(cfg, cfg->options[i].name, why, why_size))
            return -1;
    const char *peers = getenv("EDA_PEER");
    if (peers && *peers) {
        char *copy = strdup(peers);
        if (!copy)
            return -1;
        int rc = 0;
        char *save = NULL;
        for (char *one = strtok_r(copy, ";", &save); one && rc == 0;
             one = strtok_r(NULL, ";", &save))
            rc = s_set_peer(cfg, one, why, why_size);
        free(copy);
        if (rc)
            return -1;
    }
    return 0;
}

int eda_config_from_args(eda_config_t *cfg, const char *service,
                         const eda_option_t *options, int argc, char **argv,
                         const char *usage, char *why, size_t why_size)
{
    eda_config_defaults(cfg, service);
    eda_config_declare(cfg, options);
    const char *file = getenv("EDA_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
            printf("%s", usage);
            return 1;
        }
        if (streq(argv[i], "--version")) {
            printf("%s %s\n", service, EDA_VERSION);
            return 1;
        }
        if (streq(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9; /* the flags loop below accepts this form too */
    }
    if (file && *file && eda_config_load_file(cfg, file, why, why_size))
        return -1;
    if (eda_config_load_env(cfg, why, why_size))
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(why, why_size, "unexpected argument '%s' (try --help)", arg);
            return -1;
        }
        char name[64];
        const char *value = strchr(arg, '=');
        size_t n = value ? (size_t)(value - arg - 2) : strlen(arg + 2);
        if (n >= sizeof name) {
            snprintf(why, why_size, "unknown option '%s' (try --help)", arg);
            return -1;
        }
        memcpy(name, arg + 2, n);
        name[n] = '\0';
        if (value)
            value++;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            snprintf(why, why_size, "option '%s' needs a value", arg);
            return -1;
        }
        if (streq(name, "config"))
            continue;
        int rc = eda_config_set(cfg, name, value, why, why_size);
        if (rc == 1)
            snprintf(why, why_size, "unknown option '--%s' (try --help)", name);
        if (rc)
            return -1;
    }
    return 0;
}
