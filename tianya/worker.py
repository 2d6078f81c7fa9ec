"""gunicorn's threaded worker with a deadline on request headers.

A client that opens a connection and sends its request line and headers a byte at a
time holds a worker thread for as long as it likes: gunicorn reads headers before any
application code runs. This worker gives every request :data:`HEADER_SECONDS` to
arrive up to its body; then the connection's read side is shut, gunicorn sees the
client gone and frees the thread (no answer is sent, as nginx does for
``client_header_timeout``). The shell calls :func:`tianya.edge.headers_received` as the
application starts, which stops the clock; the body has its own deadline
(:mod:`tianya.edge`).

``tianya serve`` runs gunicorn with ``--worker-class tianya.worker.Worker``.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker

from tianya.edge import start_header_clock


class Worker(ThreadWorker):
    """:class:`gunicorn.workers.gthread.ThreadWorker` with a header deadline."""

    def handle(self, conn):
        with start_header_clock(conn.sock):
            return super().handle(conn)
