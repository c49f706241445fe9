"""
A benchmark for any echo server: closed-loop ping-pong or streaming load
from worker processes, latency percentiles, the server's CPU time per echo,
and a side-by-side comparison of echotwist with other echo servers.

Run it as C{python -m echotwist.bench} (or C{echotwist-bench}).
"""
