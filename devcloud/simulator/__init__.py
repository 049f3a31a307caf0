"""The CloudStack API simulator: a real HTTP server answering signed API calls like a management server.

`server` is the HTTP side (signature and expiry checks, envelopes, paging, injected
failures), `api_commands` the API commands it answers, `synthetic` the generated fleet of
zones, hosts, networks, VPCs and routers (plus the lab's, read from its registration file).
"""
