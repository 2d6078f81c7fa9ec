"""gunicorn for ``tianya serve``: the server object and a worker with a header deadline.

A client that opens a connection and sends its request line and headers a byte at a
time holds a worker thread for as long as it likes: gunicorn reads headers before any
application code runs. :class:`Worker` gives every request ``TIANYA_HEADER_SECONDS`` to
arrive up to its body; then the connection's read side is shut, gunicorn sees the
client gone and frees the thread (no answer is sent, as nginx does for
``client_header_timeout``). The shell calls :func:`tianya.edge.headers_received` as the
application starts, which stops the clock; the body has its own deadline
(:mod:`tianya.edge`).

``tianya serve`` runs :class:`Server` (gunicorn started from Python, not its command line)
with ``worker_class="tianya.worker.Worker"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from tianya.edge import start_header_clock


class Worker(ThreadWorker):
    """:class:`gunicorn.workers.gthread.ThreadWorker` with a header deadline."""

    def handle(self, conn):
        with start_header_clock(conn.sock):
            return super().handle(conn)


class Server(BaseApplication):
    """gunicorn serving the WSGI app that ``factory()`` returns, built in each worker.

    ``options`` are gunicorn settings by their Python names (``bind``, ``workers``,
    ``worker_class`` …); nothing is read from gunicorn's command line, environment
    (``GUNICORN_CMD_ARGS``) or configuration file. The workers are forked from this
    process, so whatever ``factory`` closes over (the settings object) reaches them as it is.
    """

    def __init__(self, factory: Callable[[], Callable], options: Mapping[str, object]):
        self.factory = factory
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return self.factory()
