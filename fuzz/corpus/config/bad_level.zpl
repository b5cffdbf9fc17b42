order-service
    log-level = loud
