"""
A benchmark for any echo server: closed-loop ping-pong or streaming load
from a small native C driver (built with the system's compiler when there is
one) or Python worker processes, latency percentiles, the server's CPU time
per echo and whether it was saturated, connection storms and connect rates,
and a side-by-side comparison of echotwist with other echo servers.

Run it as C{python -m echotwist.bench} (or C{echotwist-bench}).
"""
