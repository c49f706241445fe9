"""
The echo server behind C{twistd echo}.

  - L{echotwist.server.options}: the command line, checked.
  - L{echotwist.server.endpoints}: what an endpoint description is and
    allows (backlog, sharing between workers).
  - L{echotwist.server.tap}: the service the options describe (twistd's
    entry point).
  - L{echotwist.server.protocol}: the TCP echo protocol and its factory;
    L{echotwist.server.fastpath}: its direct read and write paths.
  - L{echotwist.server.udp}: the UDP echo, rate-limited per source.
  - L{echotwist.server.accept_errors}, L{echotwist.server.shared_socket},
    L{echotwist.server.listeners}: the listening ports.
  - L{echotwist.server.shutdown}: graceful shutdown on SIGTERM.
  - L{echotwist.server.counts}: the counts a process reports;
    L{echotwist.server.metrics}: them, for Prometheus.
  - L{echotwist.server.workers}: C{--workers}, several processes on the same
    ports.
  - L{echotwist.server.reactor}: the echotwist-epoll reactor;
    L{echotwist.server.collector}: the garbage collector, set for a server.
"""
