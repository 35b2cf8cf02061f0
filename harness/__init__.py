"""Our services as an operator runs them: processes with an environment, signals and JSON logs.

The tests, ``make demo`` and the benchmarks share it; it knows the services'
log vocabulary, so localkafka does not have to.
"""

from harness.environment import entra_env, service_env, walkthrough_env
from harness.processes import ServiceGroup, ServiceProcess

__all__ = ["ServiceGroup", "ServiceProcess", "entra_env", "service_env", "walkthrough_env"]
