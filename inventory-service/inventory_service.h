/*  inventory_service: inventory-service's table for the eda_service engine. */
#ifndef INVENTORY_SERVICE_H_INCLUDED
#define INVENTORY_SERVICE_H_INCLUDED

#include "eda_service.h"

extern const eda_service_def_t inventory_service_def;

#endif
