order-service
    colour = blue
