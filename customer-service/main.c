/*  customer-service: customers and their credit. */
#include "customer_service.h"

static const char *s_usage =
    "usage: customer-service [options]\n"
    "Keeps customers and their credit (CreateCustomer, GetCustomer) and holds\n"
    "or refuses credit for each new order from order-service's events.\n"
    "options:\n";

int main(int argc, char **argv)
{
    char usage[2048];
    snprintf(usage, sizeof usage, "%s%s", s_usage, eda_config_common_usage);
    return eda_service_main(&customer_service_def, argc, argv, usage);
}
