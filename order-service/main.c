/*  order-service: accepts orders and settles them, by choreography (its
    peers' events) or by orchestration (its orchestrator's commands). */
#include "order_service.h"

static const char *s_usage =
    "usage: order-service [options]\n"
    "Accepts orders (PlaceOrder, GetOrder, ListOrders, CancelOrder) and\n"
    "publishes their domain events. Each order names its saga pattern:\n"
    "choreography settles it from customer-service's and inventory-service's\n"
    "events; orchestration drives them with commands (ReserveCredit,\n"
    "ReserveStock, and the releases that compensate), retried until a deadline.\n"
    "options:\n"
    "  --saga choreography|orchestration\n"
    "                         saga of orders that name none (default\n"
    "                         choreography)\n"
    "  --command-timeout MS   orchestrator command timeout (default 1000)\n"
    "  --saga-deadline MS     orchestrator saga deadline (default 30000)\n";

int main(int argc, char **argv)
{
    char usage[2048];
    snprintf(usage, sizeof usage, "%s%s", s_usage, eda_config_common_usage);
    return eda_service_main(&order_service_def, argc, argv, usage);
}
