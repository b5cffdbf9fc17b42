/*  order_service: order-service's table for the eda_service engine. */
#ifndef ORDER_SERVICE_H_INCLUDED
#define ORDER_SERVICE_H_INCLUDED

#include "eda_service.h"

extern const eda_service_def_t order_service_def;

#endif
