/*  cmd_shop: the shop's own commands. place-order (and --wait for its
    outcome), order, orders (every page of ListOrders, by its cursor),
    cancel, customer and stock: one service each, one command or a few.
*/
#include "cli.h"

#include "eda_items.h"
#include "eda_text.h"

#include <czmq.h>
#include <inttypes.h>

static const char *const s_statuses[] = {"PENDING", "APPROVED", "REJECTED", "CANCELLED"};
static const char *const s_sagas[] = {"choreography", "orchestration"};

#define S_NSTATUSES (sizeof s_statuses / sizeof s_statuses[0])

/* --- orders, shown ----------------------------------------------------------- */

static void s_print_order_header(void)
{
    printf("%-22s %-9s %-12s %12s  %-13s %s\n", "ORDER", "STATUS", "CUSTOMER", "TOTAL",
           "SAGA", "REASON");
}

static void s_print_order_line(const msgpack_object *order)
{
    char id[CLI_SHOWN], status[CLI_SHOWN], customer[CLI_SHOWN], reason[CLI_SHOWN],
        saga[CLI_SHOWN], money[32];
    cli_str(order, "reason", reason, sizeof reason);
    printf("%-22s %-9s %-12s %12s  %-13s %s\n", cli_str(order, "order_id", id, sizeof id),
           cli_str(order, "status", status, sizeof status),
           cli_str(order, "customer_id", customer, sizeof customer),
           cli_money(cli_i64(order, "total"), money, sizeof money),
           cli_str(order, "saga", saga, sizeof saga), streq(reason, "-") ? "" : reason);
}

static void s_print_order(const msgpack_object *order)
{
    char text[CLI_SHOWN], money[32];
    printf("order     %s\n", cli_str(order, "order_id", text, sizeof text));
    printf("status    %s", cli_str(order, "status", text, sizeof text));
    const msgpack_object *reason = eda_map_get(order, "reason");
    if (reason && reason->type == MSGPACK_OBJECT_STR)
        printf(" (%s)", cli_str(order, "reason", text, sizeof text));
    printf("\ncustomer  %s\n", cli_str(order, "customer_id", text, sizeof text));
    printf("saga      %s\n", cli_str(order, "saga", text, sizeof text));
    printf("total     %s\n", cli_money(cli_i64(order, "total"), money, sizeof money));
    const msgpack_object *items = eda_map_get(order, "items");
    for (uint32_t i = 0;
         items && items->type == MSGPACK_OBJECT_ARRAY && i < items->via.array.size; i++) {
        const msgpack_object *item = &items->via.array.ptr[i];
        printf("item      %-16s x %-6" PRId64 " at %s\n",
               cli_str(item, "sku", text, sizeof text), cli_i64(item, "qty"),
               cli_money(cli_i64(item, "price"), money, sizeof money));
    }
}

/*  Asks for one order; 0 with the reply, CLI_FAILED (printed) otherwise. */
static int s_get_order(eda_client_t *client, const char *order_id, int timeout_ms,
                       eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(client, "GetOrder", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    return cli_call(client, "order-service", timeout_ms, reply);
}

/* --- place-order --------------------------------------------------------------- */

/*  Reads one --item SKU:QTY:PRICE. 0 or -1. */
static int s_parse_item(const char *text, eda_item_t *item)
{
    const char *c1 = strchr(text, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == text || (size_t)(c1 - text) > EDA_NAME_MAX)
        return -1;
    char num[32];
    memcpy(item->sku, text, (size_t)(c1 - text));
    item->sku[c1 - text] = '\0';
    size_t qlen = (size_t)(c2 - c1 - 1);
    if (qlen == 0 || qlen >= sizeof num)
        return -1;
    memcpy(num, c1 + 1, qlen);
    num[qlen] = '\0';
    if (cli_parse_i64(num, 1, INT64_MAX, &item->qty) ||
        cli_parse_i64(c2 + 1, 0, INT64_MAX, &item->price))
        return -1;
    return 0;
}

/*  Reads every --item into items[EDA_ITEMS_MAX]. 0, or CLI_USAGE (printed). */
static int s_parse_items(const cli_args_t *args, eda_item_t *items, size_t *n)
{
    *n = 0;
    for (int i = 0; i < args->nopts; i++) {
        if (!streq(args->opts[i].name, "item"))
            continue;
        if (*n == EDA_ITEMS_MAX)
            return cli_usage_error(args, "at most %d items", EDA_ITEMS_MAX);
        if (s_parse_item(args->opts[i].value, &items[(*n)++]))
            return cli_usage_error(args, "--item wants SKU:QTY:PRICE, e.g. apple:2:150");
    }
    return 0;
}

/*  Tells, as far as a Ping of every service can, what a PENDING order waits
    for: the services that do not answer, or its saga. */
static void s_explain_pending(cli_t *cli, const char *order_id, int64_t waited_ms)
{
    cli_answer_t answers[CLI_SERVICES];
    int timeout = cli->timeout_ms < 1000 ? cli->timeout_ms : 1000;
    cli_ask_all(cli, "Ping", cli_services, CLI_SERVICES, timeout, answers);
    char silent[128] = "";
    for (int i = 0; i < CLI_SERVICES; i++)
        if (!answers[i].answered)
            snprintf(silent + strlen(silent), sizeof silent - strlen(silent), "%s%s",
                     silent[0] ? ", " : "", answers[i].service);
    cli_answers_free(answers, CLI_SERVICES);
    if (silent[0])
        cli_fail("order %s still PENDING after %" PRId64
                 " ms: waiting for %s (no answer to Ping)",
                 order_id, waited_ms, silent);
    else
        cli_fail("order %s still PENDING after %" PRId64
                 " ms: waiting for its saga; every service answers Ping "
                 "(eda trace %s shows how far it got)",
                 order_id, waited_ms, order_id);
}

/*  Follows an order by GetOrder until it leaves PENDING or --timeout has
    passed since `start`. 0 with its last state in `reply`, or CLI_FAILED. */
static int s_wait_order(cli_t *cli, eda_client_t *client, const char *order_id,
                        int64_t start, eda_envelope_t *reply)
{
    int64_t deadline = start + cli->timeout_ms;
    int rc = s_get_order(client, order_id, cli->timeout_ms, reply);
    char status[16] = "";
    while (rc == 0 && !zsys_interrupted) {
        cli_raw(&reply->data, "status", "", status, sizeof status);
        int64_t left = deadline - zclock_mono();
        if (!streq(status, "PENDING") || left <= 0)
            break;
        zclock_sleep(20); /* a client polling a read model, not a test */
        rc = s_get_order(client, order_id, (int)(left > 20 ? left : 20), reply);
    }
    return rc;
}

/*  Prints the order --wait followed and turns its status into the exit
    code: APPROVED (or CANCELLED since) 0, REJECTED 3, PENDING 4. */
static int s_waited(cli_t *cli, const char *order_id, const eda_envelope_t *reply,
                    int64_t start)
{
    char status[16], reason[64], id_shown[CLI_SHOWN], status_shown[CLI_SHOWN],
        reason_shown[CLI_SHOWN];
    cli_raw(&reply->data, "status", "", status, sizeof status);
    cli_raw(&reply->data, "reason", "", reason, sizeof reason);
    if (cli->json && cli_print_json(&reply->data))
        return CLI_FAILED;
    if (!cli->json)
        printf("order %s %s%s%s\n", cli_esc(order_id, id_shown, sizeof id_shown),
               cli_esc(status, status_shown, sizeof status_shown), reason[0] ? ": " : "",
               cli_esc(reason, reason_shown, sizeof reason_shown));
    if (streq(status, "REJECTED"))
        return CLI_REJECTED;
    if (streq(status, "PENDING")) {
        s_explain_pending(cli, order_id, zclock_mono() - start);
        return CLI_PENDING;
    }
    return CLI_OK;
}

/*  Packs and sends PlaceOrder. 0 with the reply, or CLI_FAILED. */
static int s_place(cli_t *cli, eda_client_t *client, const cli_args_t *args,
                   const char *saga, const eda_item_t *items, size_t n,
                   eda_envelope_t *reply)
{
    const char *request_id = cli_opt(args, "request-id");
    msgpack_packer *pk = eda_client_begin(client, "PlaceOrder", NULL);
    msgpack_pack_map(pk, 2 + (request_id ? 1 : 0) + (saga ? 1 : 0));
    eda_pack_kv_str(pk, "customer_id", cli_opt(args, "customer"));
    eda_pack_key(pk, "items");
    eda_items_pack(pk, items, n, true);
    if (request_id)
        eda_pack_kv_str(pk, "request_id", request_id);
    if (saga)
        eda_pack_kv_str(pk, "saga", saga);
    return cli_call(client, "order-service", cli->timeout_ms, reply);
}

int cmd_place_order(cli_t *cli, const cli_args_t *args)
{
    eda_item_t items[EDA_ITEMS_MAX];
    size_t n;
    int rc = s_parse_items(args, items, &n);
    if (rc)
        return rc;
    const char *saga = cli_opt(args, "saga");
    if (saga && !(saga = cli_match(saga, s_sagas, 2, false)))
        return cli_usage_error(args, "--saga must be choreography or orchestration");
    if (!cli_opt(args, "customer") || n == 0)
        return cli_usage_error(args, "needs --customer and at least one --item");
    if (args->noperands)
        return cli_usage_error(args, "takes no operands, only options");
    eda_client_t *client = cli_client(cli, "order-service");
    if (!client)
        return CLI_FAILED;
    int64_t start = zclock_mono();
    eda_envelope_t reply;
    char order_id[EDA_NAME_MAX + 1] = "", status[16] = "", shown[CLI_SHOWN],
                                 status_shown[CLI_SHOWN];
    rc = s_place(cli, client, args, saga, items, n, &reply);
    if (rc == 0) {
        cli_raw(&reply.data, "order_id", "", order_id, sizeof order_id);
        cli_raw(&reply.data, "status", "", status, sizeof status);
    }
    if (rc == 0 && cli_flag(args, "wait")) {
        rc = s_wait_order(cli, client, order_id, start, &reply);
        if (rc == 0)
            rc = s_waited(cli, order_id, &reply, start);
    } else if (rc == 0 && cli->json)
        rc = cli_print_json(&reply.data);
    else if (rc == 0)
        printf("order %s %s\n", cli_esc(order_id, shown, sizeof shown),
               cli_esc(status, status_shown, sizeof status_shown));
    eda_client_destroy(&client);
    return rc;
}

/* --- order, orders, cancel ------------------------------------------------------ */

int cmd_order(cli_t *cli, const cli_args_t *args)
{
    if (args->noperands != 1)
        return cli_usage_error(args, "needs one ORDER_ID");
    eda_client_t *client = cli_client(cli, "order-service");
    if (!client)
        return CLI_FAILED;
    eda_envelope_t reply;
    int rc = s_get_order(client, args->operands[0], cli->timeout_ms, &reply);
    if (rc == 0 && cli->json)
        rc = cli_print_json(&reply.data);
    else if (rc == 0)
        s_print_order(&reply.data);
    eda_client_destroy(&client);
    return rc;
}

/*  What `orders` asked for. */
typedef struct {
    const char *status; /* NULL: any */
    int64_t limit;      /* orders to show; 0 with --all */
    int64_t page;       /* orders to ask for at most in one ListOrders */
} s_listing_t;

/*  Reads the options of `orders`. 0, or CLI_USAGE (printed). */
static int s_parse_listing(const cli_args_t *args, s_listing_t *l)
{
    *l = (s_listing_t){.limit = 100, .page = 1000};
    const char *status = cli_opt(args, "status");
    if (status && !(l->status = cli_match(status, s_statuses, S_NSTATUSES, false)))
        return cli_usage_error(args, "--status must be PENDING, APPROVED, REJECTED or "
                                     "CANCELLED (any case)");
    int rc = cli_opt_i64(args, "limit", 1, INT64_MAX, &l->limit);
    if (rc == 0)
        rc = cli_opt_i64(args, "page", 1, 10000, &l->page);
    if (rc == 0 && cli_flag(args, "all") && cli_opt(args, "limit"))
        rc = cli_usage_error(args, "--all and --limit exclude each other");
    if (rc == 0 && args->noperands)
        rc = cli_usage_error(args, "takes no operands, only options");
    if (cli_flag(args, "all"))
        l->limit = 0;
    return rc;
}

/*  Sends one ListOrders for up to `want` orders after cursor `after`. */
static int s_list_page(cli_t *cli, eda_client_t *client, const s_listing_t *l,
                       uint64_t after, int64_t want, eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(client, "ListOrders", NULL);
    msgpack_pack_map(pk, 1 + (l->status ? 1 : 0) + (after ? 1 : 0));
    eda_pack_kv_i64(pk, "limit", want);
    if (l->status)
        eda_pack_kv_str(pk, "status", l->status);
    if (after)
        eda_pack_kv_u64(pk, "after", after);
    return cli_call(client, "order-service", cli->timeout_ms, reply);
}

/*  Shows (or adds to `list` with --json) the orders of one page, at most
    `room` of them (all with room 0). Returns how many. */
static int64_t s_show_page(const msgpack_object *orders, int64_t room, json_t *list)
{
    int64_t shown = 0;
    for (uint32_t i = 0; orders && orders->type == MSGPACK_OBJECT_ARRAY &&
                         i < orders->via.array.size && (room == 0 || shown < room);
         i++, shown++) {
        if (list)
            json_array_append_new(list, cli_json(&orders->via.array.ptr[i]));
        else
            s_print_order_line(&orders->via.array.ptr[i]);
    }
    return shown;
}

/*  Follows ListOrders' cursor (`more`, `next`) page after page until the
    limit, or the end. The cursor is a position in creation order: each order
    comes once, orders placed meanwhile in later pages. */
int cmd_orders(cli_t *cli, const cli_args_t *args)
{
    s_listing_t l;
    int rc = s_parse_listing(args, &l);
    eda_client_t *client = rc ? NULL : cli_client(cli, "order-service");
    if (!client)
        return rc ? rc : CLI_FAILED;
    json_t *list = cli->json ? json_array() : NULL;
    if (!cli->json)
        s_print_order_header();
    uint64_t after = 0;
    int64_t shown = 0;
    bool more = true;
    while (rc == 0 && more && (l.limit == 0 || shown < l.limit)) {
        int64_t want = l.limit && l.limit - shown < l.page ? l.limit - shown : l.page;
        eda_envelope_t reply;
        rc = s_list_page(cli, client, &l, after, want, &reply);
        if (rc)
            break;
        shown += s_show_page(eda_map_get(&reply.data, "orders"),
                             l.limit ? l.limit - shown : 0, list);
        uint64_t next = 0;
        more = eda_get_bool(&reply.data, "more", &more) == 0 && more;
        if (more && (eda_get_u64(&reply.data, "next", &next) || next <= after))
            rc = cli_fail("order-service: ListOrders gave no usable next cursor");
        after = next;
    }
    if (rc == 0 && list)
        rc = cli_print_json_value(json_incref(list));
    else if (rc == 0 && more)
        fprintf(stderr, "eda: more orders follow (--all, or a larger --limit)\n");
    json_decref(list);
    eda_client_destroy(&client);
    return rc;
}

/*  CancelOrder: only an APPROVED order can be cancelled (CONFLICT otherwise);
    a repeat on a CANCELLED one is answered the same. */
int cmd_cancel(cli_t *cli, const cli_args_t *args)
{
    if (args->noperands != 1)
        return cli_usage_error(args, "needs one ORDER_ID");
    const char *order_id = args->operands[0];
    eda_client_t *client = cli_client(cli, "order-service");
    if (!client)
        return CLI_FAILED;
    msgpack_packer *pk = eda_client_begin(client, "CancelOrder", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_envelope_t reply;
    int rc = cli_call(client, "order-service", cli->timeout_ms, &reply);
    char status[EDA_NAME_MAX + 1] = "", id_shown[CLI_SHOWN];
    if (rc == 0)
        cli_raw(&reply.data, "status", "-", status, sizeof status);
    if (rc == 0 && !streq(status, "CANCELLED"))
        rc = cli_fail("order-service: order %s is %s, not CANCELLED", order_id, status);
    else if (rc == 0 && cli->json)
        rc = cli_print_json(&reply.data);
    else if (rc == 0)
        printf("order %s %s\n", cli_esc(order_id, id_shown, sizeof id_shown), status);
    eda_client_destroy(&client);
    return rc;
}

/* --- customers and stock --------------------------------------------------- */

/*  Reads `customer create ID --name NAME --credit CENTS` or `customer show
    ID`. 0, or CLI_USAGE (printed). */
static int s_parse_customer(const cli_args_t *args, bool *create, int64_t *credit)
{
    *create = args->noperands == 2 && streq(args->operands[0], "create");
    bool show = args->noperands == 2 && streq(args->operands[0], "show");
    if (!*create && !show)
        return cli_usage_error(args, "wants create ID or show ID");
    if (show && args->nopts)
        return cli_usage_error(args, "show takes no options");
    if (*create && (!cli_opt(args, "name") || !cli_opt(args, "credit")))
        return cli_usage_error(args, "create needs --name and --credit");
    return *create ? cli_opt_i64(args, "credit", 0, INT64_MAX, credit) : 0;
}

int cmd_customer(cli_t *cli, const cli_args_t *args)
{
    bool create;
    int64_t credit = 0;
    int rc = s_parse_customer(args, &create, &credit);
    eda_client_t *client = rc ? NULL : cli_client(cli, "customer-service");
    if (!client)
        return rc ? rc : CLI_FAILED;
    const char *id = args->operands[1];
    msgpack_packer *pk =
        eda_client_begin(client, create ? "CreateCustomer" : "GetCustomer", NULL);
    msgpack_pack_map(pk, create ? 3 : 1);
    eda_pack_kv_str(pk, "customer_id", id);
    if (create) {
        eda_pack_kv_str(pk, "name", cli_opt(args, "name"));
        eda_pack_kv_i64(pk, "credit_limit", credit);
    }
    eda_envelope_t reply;
    rc = cli_call(client, "customer-service", cli->timeout_ms, &reply);
    char id_shown[CLI_SHOWN];
    cli_esc(id, id_shown, sizeof id_shown);
    if (rc == 0 && cli->json)
        rc = cli_print_json(&reply.data);
    else if (rc == 0 && create)
        printf("customer %s created\n", id_shown);
    else if (rc == 0) {
        char text[CLI_SHOWN], m1[32], m2[32], m3[32];
        printf("%s (%s): credit limit %s, reserved %s, available %s\n", id_shown,
               cli_str(&reply.data, "name", text, sizeof text),
               cli_money(cli_i64(&reply.data, "credit_limit"), m1, sizeof m1),
               cli_money(cli_i64(&reply.data, "reserved"), m2, sizeof m2),
               cli_money(cli_i64(&reply.data, "available"), m3, sizeof m3));
    }
    eda_client_destroy(&client);
    return rc;
}

int cmd_stock(cli_t *cli, const cli_args_t *args)
{
    int64_t qty = 0;
    bool add = args->noperands == 3 && streq(args->operands[0], "add");
    if (!add && !(args->noperands == 2 && streq(args->operands[0], "show")))
        return cli_usage_error(args, "wants add SKU QTY or show SKU");
    if (add && cli_parse_i64(args->operands[2], 1, INT64_MAX, &qty))
        return cli_usage_error(args, "QTY must be a whole number >= 1");
    const char *sku = args->operands[1];
    eda_client_t *client = cli_client(cli, "inventory-service");
    if (!client)
        return CLI_FAILED;
    msgpack_packer *pk = eda_client_begin(client, add ? "AddStock" : "GetStock", NULL);
    msgpack_pack_map(pk, add ? 2 : 1);
    eda_pack_kv_str(pk, "sku", sku);
    if (add)
        eda_pack_kv_i64(pk, "qty", qty);
    eda_envelope_t reply;
    int rc = cli_call(client, "inventory-service", cli->timeout_ms, &reply);
    char shown[CLI_SHOWN];
    cli_esc(sku, shown, sizeof shown);
    if (rc == 0 && cli->json)
        rc = cli_print_json(&reply.data);
    else if (rc == 0 && add)
        printf("%s: %" PRId64 " available\n", shown, cli_i64(&reply.data, "available"));
    else if (rc == 0)
        printf("%s: %" PRId64 " available, %" PRId64 " reserved\n", shown,
               cli_i64(&reply.data, "available"), cli_i64(&reply.data, "reserved"));
    eda_client_destroy(&client);
    return rc;
}
