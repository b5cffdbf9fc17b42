# the topology of the three services
order-service
    events = tcp://10.0.0.1:7101
    commands = tcp://10.0.0.1:7102
    db = /var/lib/eda/order.db
    log-level = debug
    log-format = json
    saga = orchestration
    saga-deadline = 5000
customer-service
    events = tcp://10.0.0.2:7201
    commands = tcp://10.0.0.2:7202
inventory-service
    events = "tcp://10.0.0.3:7301"
    commands = 'tcp://10.0.0.3:7302'
shipping-service
    events = ipc:///tmp/shipping-events
    commands = ipc:///tmp/shipping-commands
