/*  inventory-service: stock per SKU. */
#include "inventory_service.h"

static const char *s_usage =
    "usage: inventory-service [options]\n"
    "Keeps stock per SKU (AddStock, GetStock) and holds or refuses stock for\n"
    "each order once its credit is held, from order-service's and\n"
    "customer-service's events.\n"
    "options:\n";

int main(int argc, char **argv)
{
    char usage[2048];
    snprintf(usage, sizeof usage, "%s%s", s_usage, eda_config_common_usage);
    return eda_service_main(&inventory_service_def, argc, argv, usage);
}
