#!/usr/bin/env python3
# The desktop script of shared/seeds/003, unchanged but for its indentation,
# which the seed's text lost (Python needs it back to run at all).
import socket
import time
DISCOVERY_PORT = 37020
NAME = "DesktopClient"
def send_hello(sock: socket.socket):
    name_bytes = NAME.encode("utf-8")[:32]
    payload = bytes([1, len(name_bytes)]) + name_bytes
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.sendto(payload, ("255.255.255.255", DISCOVERY_PORT))
def decode_full(data: bytes):
    peers = {}
    if len(data) < 2 or data[0] != 2:
        return peers
    count = data[1]
    offset = 2
    for _ in range(count):
        if len(data) < offset + 5:
            break
        ip_bytes = data[offset : offset + 4]
        offset += 4
        name_len = data[offset]
        offset += 1
        name = data[offset : offset + name_len].decode("utf-8", "ignore")
        offset += name_len
        ip_str = socket.inet_ntoa(ip_bytes)
        peers[ip_str] = name
    return peers
def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", DISCOVERY_PORT))
    send_hello(sock)
    print("Broadcasted discovery HELLO... listening for peers")
    while True:
        sock.settimeout(5)
        try:
            data, addr = sock.recvfrom(1024)
        except socket.timeout:
            send_hello(sock)
            continue
        peers = decode_full(data)
        if peers:
            print(f"Registry {addr[0]} reports peers: {peers}")
if __name__ == "__main__":
    main()
