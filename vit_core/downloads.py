"""Failing fast without data: the error every data function raises when its files are
missing, and a short network probe so that an offline machine fails at once instead of
hanging inside a download."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from urllib.parse import urlsplit

# offline, the reachability probe gives up after this many seconds instead of hanging
CONNECT_TIMEOUT_S = 10


class DataUnavailableError(FileNotFoundError):
    """The data is not on disk and may not (or could not) be downloaded; the message says
    which file or folder to provide."""


def check_reachable(url: str, hint: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) one TCP connection to `url`'s host, so that an offline machine fails
    within `timeout` seconds with DataUnavailableError(hint) instead of hanging in a download.
    Only this probe has a timeout: nothing process-wide (like socket's default) is changed."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:  # DNS failure, refused, unreachable, timed out
        raise DataUnavailableError(f"cannot reach {parts.hostname} "
                                   f"({type(error).__name__}: {error}); {hint}") from error


@contextmanager
def download_errors(what: str, hint: str):
    """Turn a download that fails half-way (network or archive errors) into DataUnavailableError."""
    try:
        yield
    except (OSError, RuntimeError) as error:  # URLError and socket.timeout are OSErrors
        if isinstance(error, DataUnavailableError):
            raise
        raise DataUnavailableError(f"could not download {what} ({type(error).__name__}: {error}); "
                                   f"{hint}") from error
