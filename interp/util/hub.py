"""The Hugging Face hub, when it may be unreachable: answer in seconds, not after a minute of retries."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlparse


def hub_reachable(endpoint: str | None = None, timeout: float = 3.0) -> bool:
    """One TCP connect to the hub endpoint (default: huggingface_hub's configured one)."""
    if endpoint is None:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_offline_now() -> bool:
    """True when the user asked for offline mode or the hub does not answer."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or not hub_reachable(constants.ENDPOINT)


@contextmanager
def offline_mode() -> Iterator[None]:
    """Tell datasets and huggingface_hub not to touch the network (they read these flags per call)."""
    import datasets.config
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def load_hub_dataset(path: str, name: str | None = None, *, offline: bool, **kwargs):
    """`datasets.load_dataset`; with offline=True (see `hub_offline_now`) only the local cache, no retries.

    Exceptions propagate so callers can word their own one-line error.
    """
    import datasets

    if offline:
        with offline_mode():
            return datasets.load_dataset(path, name, **kwargs)
    return datasets.load_dataset(path, name, **kwargs)
