"""
A deliberately broken echo server for the prober's live tests, on loopback:
C{python tests/bad_echo.py MODE} listens on a TCP and a UDP port the system
picks, prints C{tcp PORT udp PORT}, and serves until killed.

Modes: C{corrupt} flips the last byte of each chunk or datagram;
C{truncate} echoes each chunk or datagram without its last byte (over TCP,
then closes the connection); C{once} echoes one chunk per connection, then
closes it (a server that drops connections mid-run).
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading

HOST = "127.0.0.1"
MODE = sys.argv[1] if len(sys.argv) > 1 else "corrupt"


def spoil(data: bytes) -> bytes:
    """
    @return: C{data} as this mode sends it back.
    """
    if MODE == "corrupt":
        return data[:-1] + bytes([data[-1] ^ 0xFF])
    if MODE == "truncate":
        return data[:-1]
    return data


class Stream(socketserver.BaseRequestHandler):
    """
    Echo over TCP, badly.
    """

    def handle(self) -> None:
        sock: socket.socket = self.request
        while data := sock.recv(65536):
            sock.sendall(spoil(data))
            if MODE in ("truncate", "once"):
                return


class Datagrams(socketserver.BaseRequestHandler):
    """
    Echo over UDP, badly.
    """

    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(spoil(data), self.client_address)


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    """
    Serve until killed.
    """
    tcp = TCPServer((HOST, 0), Stream)
    udp = socketserver.UDPServer((HOST, 0), Datagrams)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    print(f"tcp {tcp.server_address[1]} udp {udp.server_address[1]}", flush=True)
    tcp.serve_forever()


if __name__ == "__main__":
    main()
