/*  eda_config: a service's settings and the topology of its peers, from
    defaults, a ZPL `--config FILE`, `EDA_*` environment variables and
    command-line flags, each overriding the one before.
*/
#ifndef EDA_CONFIG_H_INCLUDED
#define EDA_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDA_ENDPOINT_MAX 256
#define EDA_PATH_MAX     1024
#define EDA_PEERS_MAX    8
#define EDA_OPTIONS_MAX  8   /* options of one service's own */
#define EDA_OPTION_LEN   128 /* bytes in one such option's value */

typedef struct {
    char name[64];
    char events[EDA_ENDPOINT_MAX];
    char commands[EDA_ENDPOINT_MAX];
} eda_endpoint_t;

/*  An option one service has and the others have not (order-service's
    --saga). It is set like the common ones, from the file, EDA_<NAME> and
    --NAME; `check` (may be NULL) refuses a bad value with a reason. */
typedef struct {
    const char *name;     /* without "--", e.g. "saga" */
    const char *fallback; /* the default value */
    int (*check)(const char *name, const char *value, char *why, size_t why_size);
} eda_option_t;

typedef enum { EDA_LOG_TEXT, EDA_LOG_JSON } eda_log_format_t;
typedef enum { EDA_LOG_ERROR, EDA_LOG_WARN, EDA_LOG_INFO, EDA_LOG_DEBUG } eda_log_level_t;
/*  --sync: FULL, an acknowledged commit survives a power cut; NORMAL, it
    survives a killed process only (SQLite's synchronous pragma in WAL mode). */
typedef enum { EDA_SYNC_FULL, EDA_SYNC_NORMAL } eda_sync_t;

typedef struct {
    char service[64]; /* own name; "" for a client */
    char db[EDA_PATH_MAX];
    char keys[EDA_PATH_MAX];             /* CURVE keys folder; "" for plain sockets */
    eda_endpoint_t peers[EDA_PEERS_MAX]; /* every known service, own included:
                                            --events and --commands set own */
    size_t npeers;
    eda_log_format_t log_format;
    eda_log_level_t log_level;
    eda_sync_t sync;             /* EDA_SYNC_FULL unless --sync normal */
    uint64_t retain_events;      /* --retain-events N; 0: keep the whole log */
    const eda_option_t *options; /* the service's own, ends with {NULL} */
    char option_values[EDA_OPTIONS_MAX][EDA_OPTION_LEN];
} eda_config_t;

/*  Fills `cfg` with the defaults of DESIGN section 1 for `service` (one of
    order-service, customer-service, inventory-service, or "" for a client).
    Can't fail. */
void eda_config_defaults(eda_config_t *cfg, const char *service);

/*  Declares the service's own options (a table ending with {NULL}, at most
    EDA_OPTIONS_MAX, kept by pointer) and sets each to its default. Can't
    fail. */
void eda_config_declare(eda_config_t *cfg, const eda_option_t *options);

/*  The value of a declared option, or NULL when `name` is not declared. */
const char *eda_config_option(const eda_config_t *cfg, const char *name);

/*  Parses a number of milliseconds from 1 to 3600000 for option `name`
    (without "--"). 0, or -1 with a reason. Usable as an option's check. */
int eda_config_parse_ms(const char *name, const char *value, uint32_t *out, char *why,
                        size_t why_size);

/*  An option check: eda_config_parse_ms without the result. */
int eda_config_check_ms(const char *name, const char *value, char *why, size_t why_size);

/*  Sets option `name` (a long option without "--", e.g. "events", "peer",
    "log-format") to `value`. Returns 0, 1 when the option is unknown, or -1
    with a one-line reason in `why` when the value is bad. */
int eda_config_set(eda_config_t *cfg, const char *name, const char *value, char *why,
                   size_t why_size);

/*  Reads a ZPL file: the service's own section for its settings, every
    section for the topology, and a top-level `keys = DIR` for every process
    (a service's own section may override it). 0, or -1 with a reason. */
int eda_config_load_file(eda_config_t *cfg, const char *path, char *why, size_t why_size);

/*  Applies EDA_EVENTS, EDA_COMMANDS, EDA_DB, EDA_PEER (peers separated by
    ';'), EDA_LOG_FORMAT, EDA_LOG_LEVEL, EDA_KEYS, EDA_SYNC and EDA_<NAME> of each
    declared option. 0, or -1 with a reason. */
int eda_config_load_env(eda_config_t *cfg, char *why, size_t why_size);

/*  Loads everything for a service binary: defaults and its own `options`
    (may be NULL), then the file named by
    --config (or EDA_CONFIG), then the environment, then every flag of argv.
    Returns 0 when the service should run, 1 when --help or --version was
    printed, -1 with a reason on bad options. `usage` is printed for --help. */
int eda_config_from_args(eda_config_t *cfg, const char *service,
                         const eda_option_t *options, int argc, char **argv,
                         const char *usage, char *why, size_t why_size);

/*  Returns the endpoints of service `name`, or NULL when unknown. The
    service's own are eda_config_peer (cfg, cfg->service). */
const eda_endpoint_t *eda_config_peer(const eda_config_t *cfg, const char *name);

/*  The usage text every service shares, for its --help. */
extern const char *eda_config_common_usage;

#endif
