"""
Plain-C{socket} echo programs from the labs, kept as the readable baseline.

Read them next to the Twisted version (L{echotwist.server.protocol}):

  - L{echotwist.reference.blocking}: one client at a time, blocking calls.
  - L{echotwist.reference.selecting}: many clients, one thread, C{select}.
  - L{echotwist.reference.client}: connect, send, read the echo back, close.

L{echotwist.reference.startup} holds what the two servers share: their
command line, their listening socket and their start-up errors.
"""
