"""``get_jmap_client`` / ``get_async_jmap_client``: clients from arguments or the environment.

Keyword arguments win; otherwise ``JMAP_URL``, ``JMAP_USERNAME``, ``JMAP_PASSWORD`` and
``JMAP_TOKEN`` (a Bearer token, used when no password is set) are read. Without a URL there is
nothing to connect to and the factories return None.
"""

from __future__ import annotations

import os
from typing import Any

from jmapsyncd.jmap.async_client import AsyncJMAPClient
from jmapsyncd.jmap.client import JMAPClient


def _config(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    config = dict(kwargs)
    env = os.environ
    if not config.get("url"):
        url = env.get("JMAP_URL")
        if not url:
            return None
        config["url"] = url
        if "username" not in config and env.get("JMAP_USERNAME"):
            config["username"] = env["JMAP_USERNAME"]
        if "password" not in config:
            if env.get("JMAP_PASSWORD"):
                config["password"] = env["JMAP_PASSWORD"]
            elif env.get("JMAP_TOKEN"):
                config["password"] = env["JMAP_TOKEN"]
                config.setdefault("auth_type", "bearer")
    return config


def get_jmap_client(**kwargs: Any) -> JMAPClient | None:
    """A :class:`JMAPClient` from arguments or ``JMAP_*`` variables; None if unconfigured."""
    config = _config(kwargs)
    return JMAPClient(**config) if config else None


def get_async_jmap_client(**kwargs: Any) -> AsyncJMAPClient | None:
    """An :class:`AsyncJMAPClient` from arguments or ``JMAP_*`` variables; None if unconfigured."""
    config = _config(kwargs)
    return AsyncJMAPClient(**config) if config else None
