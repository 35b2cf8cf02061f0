"""An example source: sign-up events from a CSV export, keyed by user, with a header.

Run it with ``PRODUCER_SOURCE=examples.signups:events`` and ``SIGNUPS_CSV`` naming
the file (from a checkout, or with this folder on PYTHONPATH).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator

from producer.source import Outgoing, Skipped


def events() -> Iterator[Outgoing | Skipped]:
    """Called once at start; the producer exits once it has sent what this yields."""
    with open(os.environ["SIGNUPS_CSV"], newline="") as export:
        for row in csv.DictReader(export):
            where = f"row {row.get('id') or '?'}"
            if not row.get("user"):
                # Counted and logged as source.skipped; the rest is still sent.
                yield Skipped(where, "no user")
                continue
            yield Outgoing(
                # A dict goes out as compact JSON; text as UTF-8; bytes as they are.
                {"user": row["user"], "plan": row.get("plan", "free")},
                key=row["user"],
                headers={"source": "signup-export"},
            )
