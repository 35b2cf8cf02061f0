"""The one exception localkafka raises for anything a user can act on."""


class LocalKafkaError(RuntimeError):
    """The broker could not be prepared, started or stopped; the message says why."""
