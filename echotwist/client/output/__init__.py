"""
How the prober's results are written: lines for people
(L{echotwist.client.output.format}), JSON lines for monitoring systems
(L{echotwist.client.output.jsonl}).
"""
