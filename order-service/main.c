/*  order-service: accepts orders and settles them from its peers' events. */
#include "order_service.h"

static const char *s_usage =
    "usage: order-service [options]\n"
    "Accepts orders (PlaceOrder, GetOrder, ListOrders) and publishes their\n"
    "domain events; settles each order from customer-service's and\n"
    "inventory-service's events.\n"
    "options:\n"
    "  --saga choreography|orchestration  default saga of new orders\n"
    "  --command-timeout MS   orchestrator command timeout (default 1000)\n"
    "  --saga-deadline MS     orchestrator saga deadline (default 30000)\n";

int main(int argc, char **argv)
{
    char usage[2048];
    snprintf(usage, sizeof usage, "%s%s", s_usage, eda_config_common_usage);
    return eda_service_main(&order_service_def, argc, argv, usage);
}
