"""A local web process seen from /proc: its resident memory and the CPU time it has used."""

from __future__ import annotations

import os
from pathlib import Path


class ProcessGone(Exception):
    """/proc has no such process (or it cannot be read); the message names the pid."""


def rss_kib(pid: int) -> int:
    """VmRSS: the process's resident memory, in KiB."""
    for line in _read(pid, "status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ProcessGone(f"process {pid} reports no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    # The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    fields = _read(pid, "stat").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError as exc:
        raise ProcessGone(f"cannot read process {pid}: {exc.strerror or exc}") from None
