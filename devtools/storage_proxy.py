"""A TCP proxy in front of Azurite's ports that passes, refuses, hangs or answers "server busy", switchable
while it runs (`proxy.mode = "hang"`): Storage failing the ways the app must survive, for tests and chaos.

- `pass`: bytes go both ways, as if the proxy were not there.
- `refuse`: a new connection is reset as soon as it is accepted, an open one at its next bytes (what a client
  sees of a storage front end that is down: a connection error, azure-core's ServiceRequestError).
- `hang`: connections are accepted and requests read, and nothing is ever answered (a storage node that
  stopped responding: only the client's read timeout ends the wait). A connection that hung stays dead after
  the mode changes, as the client has given up on it; new connections work.
- `busy`: every request is answered 503 "Server Busy", the answer Azure Storage gives when it throttles or
  is too busy ("Server Busy: 503", https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes,
  and the scalability targets page: "the service begins to return error code 503 (Server busy)").

Used by `Stack(storage_proxy=True)`, which gives the app the proxy's ports instead of Azurite's.
"""

from __future__ import annotations

import socket
import struct
import threading

MODES = ("pass", "refuse", "hang", "busy")
_BUSY_BODY = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
              b"<Message>The server is busy.</Message></Error>")
BUSY = (b"HTTP/1.1 503 The server is busy.\r\nContent-Type: application/xml\r\nx-ms-error-code: ServerBusy\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class StorageProxy:
    def __init__(self, target_ports: list[int]):
        self.target_ports = list(target_ports)
        self.ports: dict[int, int] = {}  # target port → the proxy's own port in front of it
        self._mode = "pass"
        self._changed = threading.Condition()
        self._stopped = False
        self._listeners: list[socket.socket] = []

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    def start(self) -> "StorageProxy":
        for target in self.target_ports:
            listener = socket.create_server(("127.0.0.1", 0), backlog=256)
            self._listeners.append(listener)
            self.ports[target] = listener.getsockname()[1]
            threading.Thread(target=self._accept, args=(listener, target), name=f"storage-proxy-{target}",
                             daemon=True).start()
        return self

    def rewrite(self, connection_string: str) -> str:
        """The connection string with each target port replaced by the proxy's in front of it."""
        for target, port in self.ports.items():
            connection_string = connection_string.replace(f":{target}/", f":{port}/")
        return connection_string

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        for listener in self._listeners:
            listener.close()

    def _accept(self, listener: socket.socket, target: int) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._mode == "refuse":
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client, target), name="storage-proxy-conn",
                             daemon=True).start()

    def _serve(self, client: socket.socket, target: int) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        threading.Thread(target=self._pump, args=(upstream, client), name="storage-proxy-back", daemon=True).start()
        self._pump(client, upstream, requests=True)

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool = False) -> None:
        try:
            while chunk := source.recv(65536):
                if not self._may_pass(source, requests):
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        _close(source, sink)

    def _may_pass(self, source: socket.socket, requests: bool) -> bool:
        """Whether bytes read now may go on; waits as long as the mode is `hang`, then ends the connection."""
        mode = self._mode
        if mode == "busy" and requests:
            source.sendall(BUSY)
        if mode == "hang":
            with self._changed:
                self._changed.wait_for(lambda: self._mode != "hang" or self._stopped)
        return mode == "pass"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a refused connection is seen by the client."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
