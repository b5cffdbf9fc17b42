/*  customer_service: customer-service's table for the eda_service engine. */
#ifndef CUSTOMER_SERVICE_H_INCLUDED
#define CUSTOMER_SERVICE_H_INCLUDED

#include "eda_service.h"

extern const eda_service_def_t customer_service_def;

#endif
