"""Live tails: a router's logs followed over SSH and streamed to every operator watching them.

One tail per (router, log) runs in a tail worker process (`manage.py tail_worker`, see
worker.py), shared by every viewer; viewers ask for it through Redis (store.py), the worker
publishes numbered batches of lines to the tail's channel-layer group and keeps a bounded
backlog from which a reconnecting or slow page catches up (flow.py decides how much each
viewer gets). sources.py is the allowlist of logs and their fixed commands; lines.py turns
bytes from the router into safe, classified, timestamped lines.
"""
