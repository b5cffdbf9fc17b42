/*  test_config: the options of DESIGN section 1, their defaults, the ZPL file,
    the EDA_* environment and the flags, each overriding the one before.
    Criterion runs each test in its own process, so setenv stays in the test.
*/
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eda_config.h"
#include "order_service.h"
#include "testutil.h"

static char s_dir[512];

static const char *s_env_vars[] = {
    "EDA_EVENTS",        "EDA_COMMANDS",  "EDA_DB",   "EDA_PEER",
    "EDA_LOG_FORMAT",    "EDA_LOG_LEVEL", "EDA_SAGA", "EDA_COMMAND_TIMEOUT",
    "EDA_SAGA_DEADLINE", "EDA_CONFIG",    "EDA_SYNC"};

static void s_setup(void)
{
    for (size_t i = 0; i < sizeof s_env_vars / sizeof s_env_vars[0]; i++)
        unsetenv(s_env_vars[i]);
    s_dir[0] = '\0';
}

static void s_teardown(void)
{
    for (size_t i = 0; i < sizeof s_env_vars / sizeof s_env_vars[0]; i++)
        unsetenv(s_env_vars[i]);
    if (s_dir[0])
        tu_rmtree(s_dir);
}

/*  Writes `text` to a file in a fresh temp folder and returns its path. */
static const char *s_write_file(const char *text)
{
    static char path[600];
    if (!s_dir[0])
        cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    snprintf(path, sizeof path, "%s/eda.cfg", s_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/*  Runs eda_config_from_args on a NULL-terminated list of arguments. */
#define S_ARGS_MAX 32
static int s_from_args(eda_config_t *cfg, const char *service, const char **args,
                       char *why, size_t why_size)
{
    char *argv[S_ARGS_MAX];
    int argc = 0;
    argv[argc++] = (char *)"test-service";
    for (; args && args[argc - 1]; argc++) {
        cr_assert(argc < S_ARGS_MAX - 1);
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;
    why[0] = '\0';
    /* Each service brings its own options, as its main() does. */
    const eda_option_t *options =
        strcmp(service, "order-service") == 0 ? order_service_def.options : NULL;
    return eda_config_from_args(cfg, service, options, argc, argv, "usage: test\n", why,
                                why_size);
}

static void s_assert_peer(const eda_config_t *cfg, const char *name, const char *events,
                          const char *commands)
{
    const eda_endpoint_t *ep = eda_config_peer(cfg, name);
    cr_assert_not_null(ep, "no peer %s", name);
    cr_assert_str_eq(ep->events, events, "%s events", name);
    cr_assert_str_eq(ep->commands, commands, "%s commands", name);
}

static void s_assert_default_peers(const eda_config_t *cfg)
{
    s_assert_peer(cfg, "order-service", "tcp://127.0.0.1:7101", "tcp://127.0.0.1:7102");
    s_assert_peer(cfg, "customer-service", "tcp://127.0.0.1:7201",
                  "tcp://127.0.0.1:7202");
    s_assert_peer(cfg, "inventory-service", "tcp://127.0.0.1:7301",
                  "tcp://127.0.0.1:7302");
}

TestSuite(config, .init = s_setup, .fini = s_teardown);

/* --- defaults ------------------------------------------------------------ */

Test(config, defaults_per_service)
{
    static const struct {
        const char *service, *db;
    } cases[] = {{"order-service", "data/order.db"},
                 {"customer-service", "data/customer.db"},
                 {"inventory-service", "data/inventory.db"}};
    for (size_t i = 0; i < 3; i++) {
        eda_config_t cfg;
        eda_config_defaults(&cfg, cases[i].service);
        cr_assert_str_eq(cfg.service, cases[i].service);
        cr_assert_str_eq(cfg.db, cases[i].db);
        cr_assert_eq(cfg.npeers, 3);
        s_assert_default_peers(&cfg);
        cr_assert_eq(cfg.log_format, EDA_LOG_TEXT);
        cr_assert_eq(cfg.log_level, EDA_LOG_INFO);
        cr_assert_null(eda_config_option(&cfg, "saga"), "no service options yet");
        cr_assert_not_null(eda_config_peer(&cfg, cfg.service), "its own endpoints");
    }
    /* a client knows every service and has no database */
    eda_config_t cfg;
    eda_config_defaults(&cfg, "");
    cr_assert_str_eq(cfg.db, "");
    s_assert_default_peers(&cfg);
    cr_assert_null(eda_config_peer(&cfg, "no-such-service"));
}

Test(config, no_arguments_gives_the_defaults)
{
    eda_config_t cfg;
    char why[256];
    cr_assert_eq(s_from_args(&cfg, "inventory-service", NULL, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(cfg.db, "data/inventory.db");
    s_assert_default_peers(&cfg);
}

/* --- --peer -------------------------------------------------------------- */

Test(config, peer_good)
{
    eda_config_t cfg;
    eda_config_defaults(&cfg, "order-service");
    char why[256] = "";
    cr_assert_eq(
        eda_config_set(&cfg, "peer",
                       "customer-service=tcp://10.0.0.2:7201,tcp://10.0.0.2:7202", why,
                       sizeof why),
        0, "%s", why);
    s_assert_peer(&cfg, "customer-service", "tcp://10.0.0.2:7201", "tcp://10.0.0.2:7202");
    s_assert_peer(&cfg, "inventory-service", "tcp://127.0.0.1:7301",
                  "tcp://127.0.0.1:7302");

    /* any endpoint kind, and a peer the service does not use is kept */
    cr_assert_eq(eda_config_set(&cfg, "peer",
                                "audit-service=ipc:///tmp/a.ev,inproc://a-cmd", why,
                                sizeof why),
                 0, "%s", why);
    s_assert_peer(&cfg, "audit-service", "ipc:///tmp/a.ev", "inproc://a-cmd");
    cr_assert_eq(cfg.npeers, 4);

    /* repeating a peer replaces it rather than adding one */
    cr_assert_eq(eda_config_set(&cfg, "peer", "audit-service=tcp://h:1,tcp://h:2", why,
                                sizeof why),
                 0);
    s_assert_peer(&cfg, "audit-service", "tcp://h:1", "tcp://h:2");
    cr_assert_eq(cfg.npeers, 4);
}

Test(config, peer_malformed)
{
    static const char *bad[] = {
        "customer-service",                     /* missing '=' */
        "customer-service=tcp://h:1",           /* missing ',' */
        "customer-service:tcp://h:1,tcp://h:2", /* ':' is not '=' */
        "=tcp://h:1,tcp://h:2",                 /* empty name */
        "customer-service=,tcp://h:2",          /* empty events */
        "customer-service=tcp://h:1,",          /* empty commands */
        "customer-service=",                    /* both empty */
        "",                                     /* nothing */
        "customer-service=tcp://h:1;tcp://h:2", /* ';' is not ',' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eda_config_t cfg;
        eda_config_defaults(&cfg, "order-service");
        char why[256] = "";
        cr_assert_eq(eda_config_set(&cfg, "peer", bad[i], why, sizeof why), -1, "'%s'",
                     bad[i]);
        cr_assert(why[0] != '\0', "a reason for '%s'", bad[i]);
        s_assert_default_peers(&cfg);
        cr_assert_eq(cfg.npeers, 3, "'%s' added nothing", bad[i]);
    }
}

Test(config, peer_too_long_or_too_many)
{
    eda_config_t cfg;
    eda_config_defaults(&cfg, "order-service");
    char why[256] = "";
    char value[EDA_ENDPOINT_MAX + 64];
    char ep[EDA_ENDPOINT_MAX + 1];
    memset(ep, 'x', EDA_ENDPOINT_MAX);
    ep[EDA_ENDPOINT_MAX] = '\0';
    snprintf(value, sizeof value, "p=%s,tcp://h:2", ep);
    cr_assert_eq(eda_config_set(&cfg, "peer", value, why, sizeof why), -1);
    snprintf(value, sizeof value, "p=tcp://h:2,%s", ep);
    cr_assert_eq(eda_config_set(&cfg, "peer", value, why, sizeof why), -1);

    /* three defaults and five more fill the table; the ninth is refused */
    for (int i = 0; i < EDA_PEERS_MAX - 3; i++) {
        snprintf(value, sizeof value, "extra-%d=tcp://h:%d,tcp://h:%d", i, i, i + 100);
        cr_assert_eq(eda_config_set(&cfg, "peer", value, why, sizeof why), 0, "%s", why);
    }
    cr_assert_eq(cfg.npeers, EDA_PEERS_MAX);
    cr_assert_eq(
        eda_config_set(&cfg, "peer", "one-too-many=tcp://h:1,tcp://h:2", why, sizeof why),
        -1);
    cr_assert(why[0] != '\0');
    /* an existing one can still be changed */
    cr_assert_eq(
        eda_config_set(&cfg, "peer", "extra-0=tcp://z:1,tcp://z:2", why, sizeof why), 0);
    s_assert_peer(&cfg, "extra-0", "tcp://z:1", "tcp://z:2");
}

/* --- precedence ---------------------------------------------------------- */

static const char s_zpl[] = "order-service\n"
                            "    events = tcp://10.0.0.1:7101\n"
                            "    commands = tcp://10.0.0.1:7102\n"
                            "    db = /file/order.db\n"
                            "    log-level = debug\n"
                            "    log-format = json\n"
                            "customer-service\n"
                            "    events = tcp://10.0.0.2:7201\n"
                            "    commands = tcp://10.0.0.2:7202\n"
                            "    db = /file/customer.db\n"
                            "inventory-service\n"
                            "    events = tcp://10.0.0.3:7301\n"
                            "    commands = tcp://10.0.0.3:7302\n";

Test(config, file_sets_own_settings_and_the_topology)
{
    const char *path = s_write_file(s_zpl);
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
    s_assert_peer(&cfg, "order-service", "tcp://10.0.0.1:7101", "tcp://10.0.0.1:7102");
    s_assert_peer(&cfg, "customer-service", "tcp://10.0.0.2:7201", "tcp://10.0.0.2:7202");
    s_assert_peer(&cfg, "inventory-service", "tcp://10.0.0.3:7301",
                  "tcp://10.0.0.3:7302");
    cr_assert_str_eq(cfg.db, "/file/order.db");
    cr_assert_eq(cfg.log_level, EDA_LOG_DEBUG);
    cr_assert_eq(cfg.log_format, EDA_LOG_JSON);

    /* the same file read by another service: its own section only */
    cr_assert_eq(s_from_args(&cfg, "customer-service", args, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(cfg.db, "/file/customer.db");
    cr_assert_eq(cfg.log_level, EDA_LOG_INFO, "order-service's settings are not its own");
    s_assert_peer(&cfg, "order-service", "tcp://10.0.0.1:7101", "tcp://10.0.0.1:7102");
}

Test(config, file_then_env_then_flags)
{
    const char *path = s_write_file(s_zpl);
    setenv("EDA_DB", "/env/order.db", 1);
    setenv("EDA_LOG_LEVEL", "warn", 1);
    setenv("EDA_COMMANDS", "tcp://env:7102", 1);
    setenv("EDA_PEER", "customer-service=tcp://env:7201,tcp://env:7202", 1);
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--config",        path, "--log-level", "error", "--commands",
                          "tcp://flag:7102", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
    s_assert_peer(&cfg, "order-service", "tcp://10.0.0.1:7101", "tcp://flag:7102");
    cr_assert_str_eq(cfg.db, "/env/order.db", "env wins over the file");
    cr_assert_eq(cfg.log_level, EDA_LOG_ERROR, "a flag wins over env and file");
    cr_assert_eq(cfg.log_format, EDA_LOG_JSON, "the file wins over the default");
    s_assert_peer(&cfg, "customer-service", "tcp://env:7201", "tcp://env:7202");
    s_assert_peer(&cfg, "inventory-service", "tcp://10.0.0.3:7301",
                  "tcp://10.0.0.3:7302");
    cr_assert_str_eq(eda_config_option(&cfg, "command-timeout"), "1000",
                     "untouched settings keep their default");

    /* a --peer flag wins over EDA_PEER */
    const char *args2[] = {"--config", path, "--peer",
                           "customer-service=tcp://flag:7201,tcp://flag:7202", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args2, why, sizeof why), 0, "%s",
                 why);
    s_assert_peer(&cfg, "customer-service", "tcp://flag:7201", "tcp://flag:7202");
}

Test(config, env_without_file_and_eda_config)
{
    setenv("EDA_EVENTS", "tcp://env:7301", 1);
    setenv("EDA_LOG_FORMAT", "json", 1);
    eda_config_t cfg;
    char why[256];
    cr_assert_eq(s_from_args(&cfg, "inventory-service", NULL, why, sizeof why), 0, "%s",
                 why);
    s_assert_peer(&cfg, "inventory-service", "tcp://env:7301", "tcp://127.0.0.1:7302");
    cr_assert_eq(cfg.log_format, EDA_LOG_JSON);

    /* EDA_CONFIG names the file when there is no --config */
    unsetenv("EDA_EVENTS");
    setenv("EDA_CONFIG", s_write_file(s_zpl), 1);
    cr_assert_eq(s_from_args(&cfg, "inventory-service", NULL, why, sizeof why), 0, "%s",
                 why);
    s_assert_peer(&cfg, "inventory-service", "tcp://10.0.0.3:7301",
                  "tcp://10.0.0.3:7302");
}

Test(config, client_reads_the_shared_environment)
{
    /* The eda client shares a shell's EDA_* with the services: a service's own
       endpoints mean nothing to it and must not stop it. */
    setenv("EDA_EVENTS", "tcp://env:7101", 1);
    setenv("EDA_COMMANDS", "tcp://env:7102", 1);
    setenv("EDA_LOG_LEVEL", "debug", 1);
    setenv("EDA_PEER", "order-service=tcp://o:1,tcp://o:2", 1);
    eda_config_t cfg;
    eda_config_defaults(&cfg, "");
    char why[256] = "";
    cr_assert_eq(eda_config_load_env(&cfg, why, sizeof why), 0, "%s", why);
    cr_assert_eq(cfg.log_level, EDA_LOG_DEBUG);
    s_assert_peer(&cfg, "order-service", "tcp://o:1", "tcp://o:2");
    s_assert_peer(&cfg, "customer-service", "tcp://127.0.0.1:7201",
                  "tcp://127.0.0.1:7202");

    /* and a client reads every section of the file as a peer */
    cr_assert_eq(eda_config_load_file(&cfg, s_write_file(s_zpl), why, sizeof why), 0,
                 "%s", why);
    s_assert_peer(&cfg, "order-service", "tcp://10.0.0.1:7101", "tcp://10.0.0.1:7102");
    s_assert_peer(&cfg, "inventory-service", "tcp://10.0.0.3:7301",
                  "tcp://10.0.0.3:7302");
}

Test(config, empty_env_values_are_ignored)
{
    setenv("EDA_DB", "", 1);
    setenv("EDA_PEER", "", 1);
    eda_config_t cfg;
    char why[256];
    cr_assert_eq(s_from_args(&cfg, "customer-service", NULL, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(cfg.db, "data/customer.db");
}

Test(config, env_peer_holds_several_peers)
{
    setenv("EDA_PEER",
           "customer-service=tcp://a:1,tcp://a:2;inventory-service=tcp://b:1,tcp://b:2;"
           "audit=ipc:///tmp/x,ipc:///tmp/y;",
           1);
    eda_config_t cfg;
    char why[256];
    cr_assert_eq(s_from_args(&cfg, "order-service", NULL, why, sizeof why), 0, "%s", why);
    s_assert_peer(&cfg, "customer-service", "tcp://a:1", "tcp://a:2");
    s_assert_peer(&cfg, "inventory-service", "tcp://b:1", "tcp://b:2");
    s_assert_peer(&cfg, "audit", "ipc:///tmp/x", "ipc:///tmp/y");
    s_assert_peer(&cfg, "order-service", "tcp://127.0.0.1:7101", "tcp://127.0.0.1:7102");

    /* one malformed peer among good ones fails the whole */
    setenv("EDA_PEER", "customer-service=tcp://a:1,tcp://a:2;inventory-service=tcp://b:1",
           1);
    cr_assert_eq(s_from_args(&cfg, "order-service", NULL, why, sizeof why), -1);
    cr_assert(why[0] != '\0');
}

Test(config, bad_env_values_fail)
{
    static const char *cases[][2] = {{"EDA_LOG_FORMAT", "xml"},
                                     {"EDA_LOG_LEVEL", "loud"},
                                     {"EDA_COMMAND_TIMEOUT", "soon"},
                                     {"EDA_SAGA", "both"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(cases[i][0], cases[i][1], 1);
        eda_config_t cfg;
        char why[256];
        cr_assert_eq(s_from_args(&cfg, "order-service", NULL, why, sizeof why), -1,
                     "%s=%s", cases[i][0], cases[i][1]);
        cr_assert(why[0] != '\0');
        unsetenv(cases[i][0]);
    }
}

/* --- the file's failures ------------------------------------------------- */

Test(config, missing_file_fails_with_a_reason)
{
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--config", "/nonexistent/eda.cfg", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "/nonexistent/eda.cfg"), "%s", why);
}

Test(config, bad_settings_in_the_own_section_fail)
{
    static const char *files[] = {
        "order-service\n    colour = blue\n",
        "order-service\n    log-level = loud\n",
        "order-service\n    command-timeout = 0\n",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = s_write_file(files[i]);
        eda_config_t cfg;
        char why[256];
        const char *args[] = {"--config", path, NULL};
        cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1, "%s",
                     files[i]);
        cr_assert(why[0] != '\0');
    }
    /* another service's section may hold settings this one does not read */
    const char *path = s_write_file("order-service\n    db = /x.db\n    colour = blue\n");
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "customer-service", args, why, sizeof why), 0, "%s",
                 why);
}

/* --- flags --------------------------------------------------------------- */

Test(config, flags_with_equals_sign)
{
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--db=/tmp/x.db", "--events=tcp://*:9101", "--log-format=json",
                          NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.db, "/tmp/x.db");
    cr_assert_eq(cfg.log_format, EDA_LOG_JSON);
    s_assert_peer(&cfg, "order-service", "tcp://*:9101", "tcp://127.0.0.1:7102");
}

Test(config, config_flag_with_equals_sign)
{
    const char *path = s_write_file(s_zpl);
    char arg[700];
    snprintf(arg, sizeof arg, "--config=%s", path);
    eda_config_t cfg;
    char why[256];
    const char *args[] = {arg, NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.db, "/file/order.db", "--config=FILE reads the file");
}

Test(config, memory_db_is_accepted)
{
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--db", ":memory:", NULL};
    cr_assert_eq(s_from_args(&cfg, "customer-service", args, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(cfg.db, ":memory:");
}

Test(config, bad_values_fail_with_a_reason)
{
    static const char *cases[][2] = {
        {"--log-format", "xml"},
        {"--log-format", "TEXT"},
        {"--log-level", "verbose"},
        {"--log-level", ""},
        {"--saga", "both"},
        {"--saga", "Choreography"},
        {"--command-timeout", "0"},
        {"--command-timeout", "-1"},
        {"--command-timeout", "abc"},
        {"--command-timeout", "10x"},
        {"--command-timeout", ""},
        {"--command-timeout", "3600001"},
        {"--command-timeout", "99999999999999999999"},
        {"--saga-deadline", "0"},
        {"--db", ""},
        {"--events", ""},
        {"--peer", "nonsense"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eda_config_t cfg;
        char why[256];
        const char *args[] = {cases[i][0], cases[i][1], NULL};
        cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1,
                     "%s '%s'", cases[i][0], cases[i][1]);
        cr_assert(why[0] != '\0', "a reason for %s '%s'", cases[i][0], cases[i][1]);
    }
}

Test(config, good_values_for_order_service)
{
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--saga",      "orchestration",   "--command-timeout",
                          "2500",        "--saga-deadline", "3600000",
                          "--log-level", "debug",           NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(eda_config_option(&cfg, "saga"), "orchestration");
    cr_assert_str_eq(eda_config_option(&cfg, "command-timeout"), "2500");
    cr_assert_str_eq(eda_config_option(&cfg, "saga-deadline"), "3600000");
    cr_assert_eq(cfg.log_level, EDA_LOG_DEBUG);
}

Test(config, declared_options_start_at_their_defaults)
{
    eda_config_t cfg;
    eda_config_defaults(&cfg, "order-service");
    eda_config_declare(&cfg, order_service_def.options);
    cr_assert_str_eq(eda_config_option(&cfg, "saga"), "choreography");
    cr_assert_str_eq(eda_config_option(&cfg, "command-timeout"), "1000");
    cr_assert_str_eq(eda_config_option(&cfg, "saga-deadline"), "30000");
    cr_assert_null(eda_config_option(&cfg, "colour"));

    setenv("EDA_SAGA_DEADLINE", "4500", 1);
    char why[256];
    cr_assert_eq(eda_config_load_env(&cfg, why, sizeof why), 0, "%s", why);
    unsetenv("EDA_SAGA_DEADLINE");
    cr_assert_str_eq(eda_config_option(&cfg, "saga-deadline"), "4500",
                     "a service's own option is read from EDA_<NAME> too");
}

Test(config, order_options_are_refused_by_other_services)
{
    static const char *services[] = {"customer-service", "inventory-service"};
    static const char *cases[][2] = {{"--saga", "orchestration"},
                                     {"--command-timeout", "500"},
                                     {"--saga-deadline", "500"}};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < 3; i++) {
            eda_config_t cfg;
            char why[256];
            const char *args[] = {cases[i][0], cases[i][1], NULL};
            cr_assert_eq(s_from_args(&cfg, services[s], args, why, sizeof why), -1,
                         "%s %s", services[s], cases[i][0]);
            cr_assert_not_null(strstr(why, cases[i][0] + 2), "%s", why);
        }
    eda_config_t cfg;
    char why[256];
    const char *args[] = {"--saga", "orchestration", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), 0, "%s", why);
}

Test(config, unknown_option_and_stray_argument_fail)
{
    eda_config_t cfg;
    char why[256];
    const char *unknown[] = {"--colour", "blue", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", unknown, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "colour"), "%s", why);

    const char *stray[] = {"order.db", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", stray, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "order.db"), "%s", why);

    const char *single_dash[] = {"-db", "x.db", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", single_dash, why, sizeof why), -1);

    const char *long_name[] = {
        "--an-option-name-that-is-far-too-long-to-be-any-option-we-know", "x", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", long_name, why, sizeof why), -1);
}

Test(config, option_without_value_fails)
{
    static const char *opts[] = {"--db", "--events", "--peer", "--log-level", "--config"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        eda_config_t cfg;
        char why[256];
        const char *args[] = {opts[i], NULL};
        cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1, "%s",
                     opts[i]);
        cr_assert_not_null(strstr(why, opts[i]), "%s", why);
    }
}

Test(config, help_and_version_return_1, .init = cr_redirect_stdout)
{
    s_setup();
    eda_config_t cfg;
    char why[256];
    const char *help[] = {"--db", "x.db", "--help", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", help, why, sizeof why), 1);
    const char *h[] = {"-h", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", h, why, sizeof why), 1);
    const char *version[] = {"--version", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", version, why, sizeof why), 1);
    /* --help wins even over a bad option */
    const char *bad_and_help[] = {"--log-level", "loud", "--help", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", bad_and_help, why, sizeof why), 1);
    fflush(stdout);
    cr_assert_stdout_eq_str("usage: test\nusage: test\norder-service " EDA_VERSION
                            "\nusage: test\n");
}

Test(config, keys_come_from_flag_env_file_top_level_and_own_section)
{
    eda_config_t cfg;
    char why[256];
    const char *none[] = {NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", none, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.keys, "", "plain sockets unless asked");

    const char *path = s_write_file("keys = /all/keys\n"
                                    "order-service\n    events = tcp://127.0.0.1:7101\n"
                                    "customer-service\n    keys = /customer/keys\n");
    const char *file[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", file, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.keys, "/all/keys", "the top-level keys apply to every process");
    cr_assert_null(eda_config_peer(&cfg, "keys"), "a top-level setting is no peer");
    cr_assert_eq(s_from_args(&cfg, "customer-service", file, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(cfg.keys, "/customer/keys", "its own section wins");
    eda_config_defaults(&cfg, "");
    cr_assert_eq(eda_config_load_file(&cfg, path, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.keys, "/all/keys", "a client reads the top level too");

    setenv("EDA_KEYS", "/env/keys", 1);
    cr_assert_eq(s_from_args(&cfg, "order-service", file, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(cfg.keys, "/env/keys", "the environment wins over the file");
    const char *flag[] = {"--config", path, "--keys", "/flag/keys", NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", flag, why, sizeof why), 0, "%s", why);
    unsetenv("EDA_KEYS");
    cr_assert_str_eq(cfg.keys, "/flag/keys", "a flag wins over both");
}

Test(config, a_section_name_too_long_for_a_peer_is_refused)
{
    char name[80];
    memset(name, 'p', 70);
    name[70] = '\0';
    char text[400];
    snprintf(text, sizeof text,
             "%s\n    events = tcp://x:1\n%s\n    events = tcp://y:1\n", name, name);
    const char *path = s_write_file(text);
    eda_config_t cfg;
    char why[256] = "";
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1,
                 "cut to 63 characters it would name another service");
    cr_assert_not_null(strstr(why, "over 63 characters"), "%s", why);
}

/* --- --sync ---------------------------------------------------------------- */

Test(config, sync_defaults_to_full_and_comes_from_file_env_and_flag)
{
    eda_config_t cfg;
    char why[256];
    cr_assert_eq(s_from_args(&cfg, "customer-service", NULL, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(cfg.sync, EDA_SYNC_FULL, "the default survives a power cut");

    const char *path = s_write_file("customer-service\n    sync = normal\n");
    const char *file[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "customer-service", file, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(cfg.sync, EDA_SYNC_NORMAL, "from the own section");

    /* EDA_SYNC is in eda_config_load_env's list: the environment wins over
       the file, and the flag over both. */
    setenv("EDA_SYNC", "full", 1);
    cr_assert_eq(s_from_args(&cfg, "customer-service", file, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(cfg.sync, EDA_SYNC_FULL, "EDA_SYNC over the file");
    setenv("EDA_SYNC", "normal", 1);
    eda_config_defaults(&cfg, "inventory-service");
    cr_assert_eq(eda_config_load_env(&cfg, why, sizeof why), 0, "%s", why);
    cr_assert_eq(cfg.sync, EDA_SYNC_NORMAL, "eda_config_load_env reads EDA_SYNC");
    const char *flag[] = {"--config", path, "--sync", "full", NULL};
    cr_assert_eq(s_from_args(&cfg, "customer-service", flag, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(cfg.sync, EDA_SYNC_FULL, "the flag over the environment");
    cr_assert_not_null(strstr(eda_config_common_usage, "--sync full|normal"));
}

Test(config, bad_sync_values_fail_with_a_reason)
{
    eda_config_t cfg;
    char why[256] = "";
    eda_config_defaults(&cfg, "order-service");
    cr_assert_eq(eda_config_set(&cfg, "sync", "bogus", why, sizeof why), -1);
    cr_assert_str_eq(why, "--sync must be full or normal, not 'bogus'");
    cr_assert_eq(eda_config_set(&cfg, "sync", "FULL", why, sizeof why), -1,
                 "the values are lower case, like the other options'");

    setenv("EDA_SYNC", "off", 1);
    cr_assert_eq(s_from_args(&cfg, "order-service", NULL, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "'off'"), "%s", why);
    unsetenv("EDA_SYNC");

    const char *path = s_write_file("order-service\n    sync = sometimes\n");
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(s_from_args(&cfg, "order-service", args, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "'sometimes'"), "%s", why);
}
