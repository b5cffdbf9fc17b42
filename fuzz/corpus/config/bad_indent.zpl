order-service
  events = tcp://x:1
	commands
