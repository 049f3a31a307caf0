#!/bin/bash
# CloudStack checkrouter.sh: the VIP on the guest NIC (router) or the public NIC state (vpcrouter)
# decides PRIMARY/BACKUP; keepalived not running means FAULT.
if ! { [ -s /run/keepalived.pid ] && kill -0 "$(cat /run/keepalived.pid)" 2>/dev/null; }; then
    echo "Status: FAULT"
    exit 0
fi
ROUTER_TYPE=$(python3 -c 'import json;print(json.load(open("/etc/cloudstack/cmdline.json"))["config"]["type"])')
if [ "$ROUTER_TYPE" = "router" ]; then
    ROUTER_STATE=$(ip -4 addr show dev eth0 | grep -c inet)
    if [ "$ROUTER_STATE" -eq 2 ]; then STATUS=PRIMARY; else STATUS=BACKUP; fi
else
    if ip link show eth1 | grep -q "state UP"; then STATUS=PRIMARY; else STATUS=BACKUP; fi
fi
echo "Status: ${STATUS}"
