"""The state of the request being served: who calls, and the ``Content-Crs`` they sent.

The shell (:class:`tianya.app.Shell`) sets both for the duration of a request; the
pygeoapi plugins, which pygeoapi builds without a request argument, read them here. The
library never does: it is handed the principal and the CRS as arguments.
"""

from __future__ import annotations

from contextvars import ContextVar

from layers.access import PUBLIC, Principal

#: The caller of the request being served (the public outside a request).
PRINCIPAL: ContextVar[Principal] = ContextVar("tianya_principal", default=PUBLIC)
#: The request's ``Content-Crs`` header, if any.
CONTENT_CRS: ContextVar[str | None] = ContextVar("tianya_content_crs", default=None)


def principal() -> Principal:
    """The caller of the request being served."""
    return PRINCIPAL.get()


def content_crs() -> str | None:
    """The ``Content-Crs`` of the request being served (``None``: CRS84)."""
    return CONTENT_CRS.get()
