"""The dev cloud: a one-machine CloudStack for the demo, the tests and the benchmarks.

It holds the CloudStack API simulator (`devcloud.simulator`), the lab of routers built from
real software in network namespaces (`devcloud.lab`), the tools that capture probe fixtures
from them (`devcloud.capture`) and their management commands (`lab`, `cloudstack_sim`,
`run_local`). CloudStack's own developers call their one-machine cloud "DevCloud".

It is never part of a deployment: settings install it only when VRCONSOLE_DEVCLOUD is true
(scripts/run, scripts/test and bench/ set it), the Dockerfile does not copy it, and nothing in
`vrconsole/` or `diagnostics/` imports it.
"""
