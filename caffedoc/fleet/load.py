"""Reading `check --json` reports: each reduced at once to a small `Host`, so that ten
thousand reports fit in memory; a file that is not one is named, and the rest still load."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from caffedoc.fleet.facts import summarize
from caffedoc.identity import SCHEMA

SEVERITIES = ("error", "warning", "info")
STATUSES = ("ok", "warning", "error")


@dataclass(frozen=True)
class Host:
    """One machine, as its report describes it."""

    name: str
    source: str  # the report file
    status: str
    hostname: str | None
    machine_id: str | None
    time: str | None
    version: str  # the caffedoc that wrote the report
    findings: tuple[tuple[str, str, str], ...]  # (id, severity, title), report order
    facts: dict[str, str | None]  # the drift facts, fleet.facts.FACTS keys

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "hostname": self.hostname,
            "machine_id": self.machine_id,
            "time": self.time,
            "caffedoc": self.version,
            "findings": [{"id": i, "severity": s, "title": t} for i, s, t in self.findings],
            "facts": self.facts,
        }


class Unreadable(Exception):
    """A file that is not a caffedoc report this version can read; the message says why."""


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Each file as given; a directory's *.json files, sorted, not recursing."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
        else:
            yield path


def read(path: Path) -> Host:
    """The host a report file describes, or Unreadable."""
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except IsADirectoryError:
        raise Unreadable("is a directory") from None
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"not JSON ({_short(exc)})") from None
    return _host(path, data)


def _host(path: Path, data: object) -> Host:
    if not (
        isinstance(data, dict)
        and isinstance(data.get("caffedoc"), str)
        and data.get("status") in STATUSES
        and isinstance(data.get("findings"), list)
        and isinstance(data.get("facts"), dict)
    ):
        raise Unreadable("not a caffedoc check --json report")
    schema = data.get("schema", 0)  # reports before the identity fields had no schema
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
        raise Unreadable(f"not a caffedoc check --json report (schema {schema!r})")
    if schema > SCHEMA:
        raise Unreadable(
            f"written by a newer caffedoc ({data['caffedoc']}, report schema {schema}; "
            f"this one reads up to {SCHEMA}): upgrade caffedoc here"
        )
    host = data.get("host") if isinstance(data.get("host"), dict) else {}
    findings = []
    for f in data["findings"]:
        if not (isinstance(f, dict) and isinstance(f.get("id"), str)):
            raise Unreadable("not a caffedoc check --json report (a finding without an id)")
        severity = f.get("severity") if f.get("severity") in SEVERITIES else "error"
        findings.append((f["id"], severity, str(f.get("title", ""))))
    return Host(
        name=_text(host.get("name")) or path.stem,
        source=str(path),
        status=data["status"],
        hostname=_text(host.get("hostname")),
        machine_id=_text(host.get("machine_id")),
        time=_text(data.get("time")),
        version=data["caffedoc"],
        findings=tuple(findings),
        facts=summarize(data["facts"]),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Loaded:
    hosts: list[Host]  # by name
    unreadable: list[tuple[str, str]]  # (file, why)
    superseded: list[tuple[str, str]]  # (file, the newer file for the same host)


def load(paths: Iterable[Path]) -> Loaded:
    """Every report under `paths`; of two reports for one host name the newer one counts."""
    by_name: dict[str, Host] = {}
    problems: list[tuple[str, str]] = []
    superseded: list[tuple[str, str]] = []
    for path in expand(paths):
        try:
            host = read(path)
        except Unreadable as exc:
            problems.append((str(path), str(exc)))
            continue
        old = by_name.get(host.name)
        if old is not None:
            newer, older = (host, old) if (host.time or "") >= (old.time or "") else (old, host)
            superseded.append((older.source, newer.source))
            host = newer
        by_name[host.name] = host
    return Loaded(sorted(by_name.values(), key=lambda h: h.name), problems, superseded)
