#!/usr/bin/env python3
"""The desktop client of the Pico W discovery protocol (shared/seeds/003),
with an exit: broadcast HELLO on UDP 37020, print the peers of the first FULL
from the registry as JSON, exit 0; exit 1 if none came within --timeout.

  ip netns exec NAME python3 hack/desktop_client.py --timeout 20
"""
import argparse, json, socket, sys, time

DISCOVERY_PORT = 37020


def send_hello(sock, name):
    name_bytes = name.encode("utf-8")[:32]
    sock.sendto(bytes([1, len(name_bytes)]) + name_bytes, ("255.255.255.255", DISCOVERY_PORT))


def decode_full(data):
    peers = {}
    if len(data) < 2 or data[0] != 2:
        return peers
    count, offset = data[1], 2
    for _ in range(count):
        if len(data) < offset + 5:
            break
        ip = socket.inet_ntoa(data[offset:offset + 4])
        n = data[offset + 4]
        peers[ip] = data[offset + 5:offset + 5 + n].decode("utf-8", "ignore")
        offset += 5 + n
    return peers


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", default="DesktopClient")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--every", type=float, default=0.5, help="seconds between HELLOs")
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.bind(("0.0.0.0", DISCOVERY_PORT))
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        send_hello(sock, args.name)
        sock.settimeout(args.every)
        try:
            while True:
                data, addr = sock.recvfrom(2048)
                peers = decode_full(data)
                if peers:
                    print(json.dumps({"registry": addr[0], "peers": peers}))
                    return 0
        except socket.timeout:
            continue
    print("no FULL within %gs" % args.timeout, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
