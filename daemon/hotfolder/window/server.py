"""The window's HTTP server: waitress, in threads of its own, bounded.

waitress because it is a production WSGI server in pure Python (no compiler, installs from a
wheel into the .deb's venv), well kept (the Pylons project), and its model fits a daemon that
must not be slowed by its window: one I/O thread multiplexes every connection (a slow client
costs a socket, not a thread), and a fixed pool of THREADS workers runs the application, so
however many clients poll, the window never has more than THREADS requests in hand and never
more than CONNECTIONS sockets open. Its threads only read the journal through their own
read-only connections, so they can hold no lock the daemon needs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

#: Workers running requests; the rest wait in waitress' queue.
THREADS = 4
#: Open connections at most (wall screens and phones, not the internet).
CONNECTIONS = 100
#: An idle connection is closed after this many seconds.
IDLE_SECONDS = 30


class Server:
    def __init__(self, app: Any, listen: Sequence[str], threads: int = THREADS) -> None:
        self._map: dict[int, Any] = {}
        self._server = create_server(
            app,
            map=self._map,
            listen=" ".join(listen),
            threads=threads,
            connection_limit=CONNECTIONS,
            channel_timeout=IDLE_SECONDS,
            ident="hotfolder",
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._server.run, name="window", daemon=True)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens, with the ports the kernel chose for ':0'."""
        server: Any = self._server  # the stubs leave out what the TCP servers set
        listen = getattr(server, "effective_listen", None)
        if listen is not None:
            return [(str(host), int(port)) for host, port in listen]
        return [(str(server.effective_host), int(server.effective_port))]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)
        self._thread.join(timeout)
