"""Who wrote a `check --json` report, and when: what a fleet view needs to tell hosts apart.

Chroots and containers share the machine's hostname, and copies of one image share its
machine id, so the name a fleet knows a host by (Ansible's inventory name) can be given
in CAFFEDOC_HOST_NAME; the hostname and machine id are kept beside it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timezone

# Version of the report's layout. `caffedoc report` reads every schema up to its own and
# refuses newer ones; add a field freely, bump this when a field changes meaning.
SCHEMA = 1
NAME_ENV = "CAFFEDOC_HOST_NAME"
MACHINE_ID = "/etc/machine-id"


def machine_id(path: str = MACHINE_ID) -> str | None:
    """systemd's stable machine id, where the machine has one (an empty file is none)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            value = f.read(64).strip()
    except OSError:
        return None
    return value or None


def stamp(env: Mapping[str, str] = os.environ) -> dict:
    """The identity fields of a report: schema, host and UTC time."""
    hostname = socket.gethostname()
    return {
        "schema": SCHEMA,
        "host": {
            "name": env.get(NAME_ENV, "").strip() or hostname,
            "hostname": hostname,
            "machine_id": machine_id(),
        },
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
