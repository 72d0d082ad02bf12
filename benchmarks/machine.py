"""What the figures were measured on: they only mean something next to this."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

__all__ = ["machine_info"]

_PACKAGES = ("boto3", "botocore", "fastapi", "mangum", "pydantic", "aws-lambda-powertools", "moto")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _usable_cpus() -> int | None:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "cpu model", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu count": f"{os.cpu_count()} (usable by this process: {_usable_cpus()})",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "load average at start (1/5/15 min)": (
            " / ".join(f"{v:.2f}" for v in load) if load else "n/a"
        ),
        "packages": ", ".join(f"{p} {_version(p)}" for p in _PACKAGES),
    }
