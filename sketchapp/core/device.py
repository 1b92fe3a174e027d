"""The one place that picks the compute device and the CPU thread count."""

from __future__ import annotations

import os

import torch

from sketchapp.core.errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: all available CPUs unless told otherwise.

    Oversubscribing a small machine (torch's default can exceed the cgroup quota)
    makes every op slower, so the count follows the CPUs this process may use.
    """
    count = threads if threads and threads > 0 else available_cpus()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def select_device(preference: str = "auto") -> torch.device:
    """Resolve "auto" to CUDA, then MPS, then CPU; check an explicit choice exists."""
    pref = (preference or "auto").lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_ok:
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {preference!r} requested but no CUDA GPU is available")
        try:
            device = torch.device(pref)
        except RuntimeError as exc:
            raise DeviceError(f"invalid device {preference!r} (use cuda or cuda:N)") from exc
        if device.type != "cuda" or (device.index is not None and device.index < 0):
            raise DeviceError(f"invalid device {preference!r} (use cuda or cuda:N)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {preference!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return device
    if pref == "mps":
        if not mps_ok:
            raise DeviceError("device 'mps' requested but Apple Metal is not available")
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {preference!r} (choose from {', '.join(DEVICE_CHOICES)})")


def available_devices() -> list[tuple[str, str]]:
    """(device name, label) of every device this machine can train on, the fastest first."""
    found = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            found.append((f"cuda:{index}", f"GPU {index}: {torch.cuda.get_device_name(index)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(("mps", "Apple GPU (Metal)"))
    found.append(("cpu", f"CPU ({available_cpus()} threads)"))
    return found
