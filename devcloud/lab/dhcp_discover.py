"""Send one real DHCPDISCOVER from a lab "VM" namespace; run as a script inside that namespace.

Used by the stale-lease fault: a VM whose address is leased to another MAC asks for its address,
and the router's dnsmasq answers it the way a real VR does (it logs `no address available`).
Stdlib only, so it starts fast under nsenter.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

SO_BINDTODEVICE = 25


def discover_packet(mac: str, hostname: str) -> bytes:
    """A BOOTREQUEST carrying DHCP message type DISCOVER for this MAC, broadcast flag set."""
    hardware = bytes(int(part, 16) for part in mac.split(":"))
    header = struct.pack(
        "!BBBBIHHIIII16s64s128s",
        1,
        1,
        6,
        0,
        int.from_bytes(os.urandom(4), "big"),
        0,
        0x8000,
        0,
        0,
        0,
        0,
        hardware,
        b"",
        b"",
    )
    name = hostname.encode()[:60]
    options = b"\x63\x82\x53\x63" + b"\x35\x01\x01" + b"\x0c" + bytes([len(name)]) + name
    options += b"\x3d\x07\x01" + hardware + b"\x37\x04\x01\x03\x06\x0f" + b"\xff"
    return header + options


def send_discover(device: str, mac: str, hostname: str) -> None:
    """Broadcast the DISCOVER from 0.0.0.0:68 out of device."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
        sock.bind(("0.0.0.0", 68))
        sock.sendto(discover_packet(mac, hostname), ("255.255.255.255", 67))
    finally:
        sock.close()


if __name__ == "__main__":
    send_discover(sys.argv[1], sys.argv[2], sys.argv[3])
