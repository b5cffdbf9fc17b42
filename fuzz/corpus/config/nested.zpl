a
    b
        c = 1
    events = tcp://a:1
