"""Whether the Hugging Face hub can be used right now: the one probe every hub caller asks.

Loading a model (``generate/identity.py``) and importing a hub dataset (``corpus/readers.py``)
both ask before they touch the network, so that an offline machine fails in seconds with one
clear line instead of minutes of the hub client's retries.

Offline mode is read the way ``huggingface_hub`` reads it (its ``constants.py``: ``HF_HUB_OFFLINE``
or ``TRANSFORMERS_OFFLINE``, true when the value upper-cased is one of ``ENV_VARS_TRUE_VALUES``,
i.e. 1/ON/YES/TRUE), at call time (in a run the same values huggingface_hub read when it was
imported), plus ``datasets``' own ``HF_DATASETS_OFFLINE`` (its
``config.py``) for dataset loads.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Offline switches of huggingface_hub (model and dataset downloads alike).
HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
#: datasets' own switch, which only dataset loads obey.
DATASETS_OFFLINE_VARS = ("HF_DATASETS_OFFLINE",)


def _truthy(value: str | None) -> bool:
    try:
        from huggingface_hub.constants import ENV_VARS_TRUE_VALUES
    except ImportError:  # pragma: no cover - transformers and datasets depend on huggingface_hub
        ENV_VARS_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
    return (value or "").upper() in ENV_VARS_TRUE_VALUES


def unreachable(timeout: float = 3.0, *, datasets: bool = False) -> str | None:
    """Why the hub cannot be used now (an offline switch, or no connection), or None.

    ``datasets`` also honours ``HF_DATASETS_OFFLINE``. The connection probe opens one TCP
    connection to ``HF_ENDPOINT`` (huggingface_hub's default: https://huggingface.co) and gives
    up after ``timeout`` seconds."""
    for var in HUB_OFFLINE_VARS + (DATASETS_OFFLINE_VARS if datasets else ()):
        if _truthy(os.environ.get(var)):
            return f"{var} is set (offline mode)"
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"no network: the Hugging Face Hub is unreachable at {host}:{port} ({exc.strerror or exc})"
    return None
