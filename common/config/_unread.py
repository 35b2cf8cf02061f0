"""Variables that look like ours and that no setting reads: a misspelt name, most often.

``CONSUMER_DEADLETTER_TOPIC=orders.dlt`` would otherwise run a consumer
without a dead-letter topic. These are warnings, not errors: a setting of a
newer release, left in the environment of an older image, must not stop a
deployment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from common.config._env import env_variables
from common.config._files import file_variables
from common.config._settings import ConsumerSettings, ProducerSettings

#: The prefixes of our settings' variables.
PREFIXES = ("KAFKA_", "EVENTHUBS_", "PRODUCER_", "CONSUMER_", "METRICS_", "LOG_")
#: Kubernetes' service links (a Service named kafka gives every pod KAFKA_PORT,
#: KAFKA_SERVICE_HOST...) and Docker's legacy links: set for us, not by the user.
_SERVICE_LINK = re.compile(
    r"^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?"
    r"|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$"
)


def _known() -> frozenset[str]:
    """Every variable either service reads: one's settings in the other's environment
    (a shared .env) are not mistakes."""
    return frozenset(
        name
        for model in (ProducerSettings, ConsumerSettings)
        for name in (*env_variables(model), *file_variables(model))
    )


def unread_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each variable of *environ* with one of our prefixes that no setting reads, and the
    one it probably meant (None when none is close), in name order."""
    known = _known()
    found = []
    for name in sorted(environ):
        if not name.startswith(PREFIXES) or name in known or _SERVICE_LINK.match(name):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        found.append((name, close[0] if close else None))
    return found
