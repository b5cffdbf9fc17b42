/*  testutil: what several test files share: private temp folders and
    endpoints, and (for end-to-end tests) starting and stopping the real
    service binaries and talking to them.

    A tu_system_t is one private deployment: a temp folder holding each
    service's ipc:// endpoints, database and log, so two runs never collide.
    Helpers return 0 on success and -1 with a one-line reason in sys->why,
    so a test writes cr_assert_eq (tu_x (&sys, ...), 0, "%s", sys.why).
*/
#ifndef EDA_TESTUTIL_H_INCLUDED
#define EDA_TESTUTIL_H_INCLUDED

#include "eda_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*  Creates a fresh private folder under $TMPDIR (or /tmp) and writes its path
    into out[size]. Returns 0 or -1. */
int tu_tempdir(char *out, size_t size);

/*  Removes a folder and everything below it. */
void tu_rmtree(const char *path);

/* --- a deployment of the three services ------------------------------------ */

typedef enum { TU_ORDER, TU_CUSTOMER, TU_INVENTORY, TU_NSERVICES } tu_service_t;

#define TU_CALL_TIMEOUT_MS 5000  /* one command's reply */
#define TU_SETTLE_MS       20000 /* every order decided, every peer caught up */
#define TU_MAX_SKUS        64
#define TU_MAX_CUSTOMERS   64
#define TU_MAX_ENV         6

typedef struct {
    char dir[256];
    char events[TU_NSERVICES][300];
    char commands[TU_NSERVICES][300];
    char db[TU_NSERVICES][300];
    char log[TU_NSERVICES][300];
    pid_t pid[TU_NSERVICES]; /* 0 when not running */
    char config[300];        /* when set, services get only --config FILE */
    char env[TU_NSERVICES][TU_MAX_ENV][360]; /* NAME=VALUE for each start */
    char keys_dir[300];                      /* "" unless secured */
    int nofile[TU_NSERVICES];                /* file descriptor limit; 0 none */
    eda_keys_t *keys;                        /* the client certificate, or NULL */
    eda_client_t *client[TU_NSERVICES];
    char why[1024];
    /* What the test put in, for the invariants. */
    char skus[TU_MAX_SKUS][EDA_NAME_MAX + 1];
    int64_t stock_added[TU_MAX_SKUS];
    size_t nskus;
    char customers[TU_MAX_CUSTOMERS][EDA_NAME_MAX + 1];
    size_t ncustomers;
    char netns[TU_NSERVICES][64];    /* "" or the network namespace to start in */
    char log_level[TU_NSERVICES][8]; /* --log-level of each start; "" is warn */
} tu_system_t;

/*  Returns the binary name of a service, e.g. "order-service". */
const char *tu_service_name(tu_service_t svc);

/*  Makes the temp folder and the endpoints; starts nothing. 0 or -1. When
    EDA_TEST_SAGA is set in the environment (choreography or orchestration),
    order-service is started with that default saga: ctest runs the
    end-to-end suites once for each pattern. */
int tu_system_init(tu_system_t *sys);

/*  Secures the deployment: makes a keys folder in the temp folder (eda keys
    init), starts every service with EDA_KEYS, and makes the test's clients
    speak CURVE with the "client" certificate. tu_system_init calls it when
    EDA_TEST_KEYS is set, so ctest runs suites secured too. 0 or -1. */
int tu_system_secure(tu_system_t *sys);

/*  Sets environment variable `name` (e.g. "EDA_SAGA_DEADLINE") to `value`
    for every later start of `svc`, so a test gives one service an option.
    0, or -1 when there are already TU_MAX_ENV. */
int tu_system_setenv(tu_system_t *sys, tu_service_t svc, const char *name,
                     const char *value);

/*  The saga pattern order-service uses by default in this run. */
const char *tu_saga(void);

/*  Moves the deployment to tcp://127.0.0.1 on ports free at run time and
    writes the whole topology (endpoints and databases) to one ZPL file,
    sys->config, which is then all that each service is given. 0 or -1. */
int tu_system_use_config(tu_system_t *sys);

/*  Starts one service (fork/exec of the real binary, stderr to its log) and
    waits until it answers Ping. Fails at once when the process exits. */
int tu_system_start(tu_system_t *sys, tu_service_t svc);

/*  Starts the three services. */
int tu_system_start_all(tu_system_t *sys);

/*  tu_system_start in two halves, for a service that cannot be reached yet
    (its network is cut): spawn forks and execs it and fails only when that
    fails; wait_ready then waits up to timeout_ms until it answers Ping. */
int tu_system_spawn(tu_system_t *sys, tu_service_t svc);
int tu_system_wait_ready(tu_system_t *sys, tu_service_t svc, int timeout_ms);

/*  Fills ports[n] (n <= 6) with distinct TCP ports that nothing uses on
    127.0.0.1 now. 0 or -1. */
int tu_free_ports(int *ports, int n);

/*  Moves one service to other endpoints (e.g. tcp://ADDR:PORT on an address
    of a test network) for its later starts and its peers' (not with
    tu_system_use_config), and gives the test a new client of it. 0 or -1. */
int tu_system_set_endpoints(tu_system_t *sys, tu_service_t svc, const char *events,
                            const char *commands);

/*  Later starts of `svc` run in network namespace `name` (made with ip netns
    add: the child joins /run/netns/NAME before exec, so sys->pid stays the
    service's own pid); NULL or "" for the test's own. Needs root. 0 or -1. */
int tu_system_set_netns(tu_system_t *sys, tu_service_t svc, const char *name);

/*  The --log-level of later starts of `svc` ("info" to see what it logs at
    info, e.g. a silent peer heard again); warn unless set. 0 or -1. */
int tu_system_set_log_level(tu_system_t *sys, tu_service_t svc, const char *level);

/*  kill -9 of one service, reaped. */
int tu_system_kill(tu_system_t *sys, tu_service_t svc);

/*  SIGTERM, a bounded wait, then SIGKILL. Returns the exit status (0 for a
    clean exit), or -1 when the service had to be killed or was not running. */
int tu_system_stop(tu_system_t *sys, tu_service_t svc);

/*  Stops every running service with SIGTERM and checks that each exited 0
    and that no log holds a sanitizer report. 0, or -1 with the first fault. */
int tu_system_shutdown(tu_system_t *sys);

/*  Stops everything started and removes the temp folder (kept when
    EDA_TEST_KEEP is set). Safe to call on a zeroed or half-made system. */
void tu_system_fini(tu_system_t *sys);

/*  Prints the last lines of each service's log to stderr. */
void tu_system_dump_logs(tu_system_t *sys);

/* --- the eda client, as a user runs it ------------------------------------------ */

#define TU_EDA_OUT_MAX (1 << 20) /* stdout or stderr kept of one run */

/*  What one run of eda left. */
typedef struct {
    int status; /* the exit status, -1 when it did not exit */
    char out[TU_EDA_OUT_MAX];
    char err[TU_EDA_OUT_MAX];
    size_t out_len, err_len;
    int64_t ms; /* how long it ran */
} tu_eda_t;

/*  Puts the deployment's --peer options (and --keys when secured) at
    argv[n] onwards, their texts in peer[], and a NULL after them. Returns
    the new count: argv needs room for n + 2 * TU_NSERVICES + 3 entries. */
int tu_peer_args(tu_system_t *sys, char **argv, int n, char peer[TU_NSERVICES][700]);

/*  Runs the real eda with args[] (NULL-ended, without the program) and,
    when `peers`, the deployment's --peer options (and --keys when secured)
    after them, as global options after the command; waits for it to exit
    (60 s at most, then kills it), reading its stdout and stderr into *run.
    0, or -1 with the reason in sys->why: it could not be started, or its
    stderr holds a sanitizer report. */
int tu_eda(tu_system_t *sys, tu_eda_t *run, char **args, bool peers);

/*  tu_eda with the arguments as a NULL-ended list, and the deployment's
    --peer options after them: tu_eda_run(sys, run, "trace", id, NULL). */
int tu_eda_run(tu_system_t *sys, tu_eda_t *run, const char *first, ...);

/*  Whether a line of the service's log holds `needle`. */
bool tu_log_has(tu_system_t *sys, tu_service_t svc, const char *needle);

/*  Copies the database of a stopped service, with its -wal file, to
    `to` (and `to`-wal), removing any -shm beside `to`: a backup, or a
    restore when `to` is sys->db[svc]. 0 or -1. */
int tu_copy_db(tu_system_t *sys, const char *from, const char *to);

/* --- commands ---------------------------------------------------------------- */

/*  Begins a command to `svc`; pack exactly one data map, then tu_call. */
msgpack_packer *tu_begin(tu_system_t *sys, tu_service_t svc, const char *type);

/*  Sends the command begun and waits up to TU_CALL_TIMEOUT_MS. 0 with the
    reply (ok or not; valid until the next command to `svc`), -1 on timeout. */
int tu_call(tu_system_t *sys, tu_service_t svc, eda_envelope_t *reply);

/*  Same with a timeout of the caller's choosing. */
int tu_call_ms(tu_system_t *sys, tu_service_t svc, int timeout_ms, eda_envelope_t *reply);

/*  Copies an error reply's code ("" for an ok reply) into code[size]. */
const char *tu_error_code(const eda_envelope_t *reply, char *code, size_t size);

/*  Sends a command of `type` with an empty data map. */
int tu_call_empty(tu_system_t *sys, tu_service_t svc, const char *type,
                  eda_envelope_t *reply);

typedef struct {
    const char *sku;
    int64_t qty;
    int64_t price;
} tu_item_t;

typedef struct {
    char order_id[EDA_NAME_MAX + 1];
    char customer_id[EDA_NAME_MAX + 1];
    char status[16];
    char reason[64];
    int64_t total;
    int nitems;
} tu_order_t;

/*  Packs the data of a PlaceOrder (customer_id, request_id and saga may be
    NULL: left out). */
void tu_pack_place_order(msgpack_packer *pk, const char *customer_id,
                         const tu_item_t *items, size_t n, const char *request_id,
                         const char *saga);

/*  CreateCustomer, which must succeed. */
int tu_create_customer(tu_system_t *sys, const char *customer_id, int64_t credit_limit);

/*  AddStock, which must succeed. */
int tu_add_stock(tu_system_t *sys, const char *sku, int64_t qty);

/*  PlaceOrder (choreography). On an ok reply returns 0 with the order id and
    status; on an error reply returns -1 with the code in `code` (may be
    NULL) and the message in sys->why. `request_id` may be NULL. */
int tu_place_order(tu_system_t *sys, const char *customer_id, const tu_item_t *items,
                   size_t n, const char *request_id, char *order_id, char *status,
                   char *code);

/*  PlaceOrder with a request_id, retried on timeout (the service may be
    restarting) until `timeout_ms` passes. 0 with the order id, or -1. */
int tu_place_order_retry(tu_system_t *sys, const char *customer_id,
                         const tu_item_t *items, size_t n, const char *request_id,
                         int timeout_ms, char *order_id);

/*  Queues a PlaceOrder without waiting for its reply (a burst). A later
    call on the same client skips the replies to these. 0 or -1. */
int tu_send_place_order(tu_system_t *sys, const char *customer_id, const tu_item_t *items,
                        size_t n, const char *request_id);

/*  GetOrder. 0, or -1 (NOT_FOUND included). */
int tu_get_order(tu_system_t *sys, const char *order_id, tu_order_t *order);

/*  Polls GetOrder every 20 ms until the order has left PENDING. */
int tu_wait_order(tu_system_t *sys, const char *order_id, int timeout_ms,
                  tu_order_t *order);

/*  ListOrders into orders[max]; status may be NULL, limit 0 for none.
    Returns the count, or -1. */
int tu_list_orders(tu_system_t *sys, const char *status, uint64_t limit,
                   tu_order_t *orders, int max);

/*  GetCustomer: reserved and available (either may be NULL). */
int tu_get_customer(tu_system_t *sys, const char *customer_id, int64_t *reserved,
                    int64_t *available);

/*  GetStock: available and reserved (either may be NULL). */
int tu_get_stock(tu_system_t *sys, const char *sku, int64_t *available,
                 int64_t *reserved);

/*  Checks a customer's reserved and available credit: 0, or -1 saying what
    differs. */
int tu_expect_credit(tu_system_t *sys, const char *customer_id, int64_t reserved,
                     int64_t available);

/*  Checks a SKU's available and reserved stock: 0, or -1 saying what
    differs. */
int tu_expect_stock(tu_system_t *sys, const char *sku, int64_t available,
                    int64_t reserved);

/*  Reads one unsigned counter of a service's Stats, e.g. "bad_input". */
int tu_stat(tu_system_t *sys, tu_service_t svc, const char *key, uint64_t *value);

/*  Reads one counter of the service's own Stats map ("own"), e.g.
    order-service's "sagas_in_flight". */
int tu_stat_own(tu_system_t *sys, tu_service_t svc, const char *key, int64_t *value);

/*  Reads a service's own epoch and last_seq from Stats. */
int tu_stat_self(tu_system_t *sys, tu_service_t svc, char *epoch, uint64_t *last_seq);

/*  Reads what service `svc` has applied of `peer`: epoch and last_seq. */
int tu_stat_peer(tu_system_t *sys, tu_service_t svc, tu_service_t peer, char *epoch,
                 uint64_t *last_seq);

/* --- outcomes ------------------------------------------------------------------ */

/*  Waits until no order is PENDING, no orchestrated saga is in flight and
    every service has applied every event its peers published (same epoch,
    same last seq): the system is quiet.
    Polls every 20 ms; on timeout dumps the logs and returns -1. */
int tu_wait_quiet(tu_system_t *sys, int timeout_ms);

/*  Checks DESIGN section 4's invariants on a quiet system: every order
    APPROVED, REJECTED or CANCELLED; each customer created through
    tu_create_customer has reserved == the totals of its APPROVED orders;
    each SKU added through tu_add_stock has reserved == the quantities in
    APPROVED orders and available + reserved == all stock added. */
int tu_check_invariants(tu_system_t *sys);

/*  Reads a service's whole event log with ReplayEvents and checks it: seqs
    1..last_seq with no gap, each envelope decodes, and no order has two
    decisions of one kind (two OrderCreated, two credit verdicts, ...).
    Stores the number of events in *count (may be NULL). */
int tu_check_event_log(tu_system_t *sys, tu_service_t svc, uint64_t *count);

#endif
