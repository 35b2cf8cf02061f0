"""An idempotent PostgreSQL sink: each record one row, however often it is delivered.

Run it with ``CONSUMER_HANDLER=examples.postgres_sink:bulk`` (a batch at a time, one
transaction each), ``examples.postgres_sink:handler`` (a record at a time), or
``examples.postgres_sink:upsert`` (one row per key, the latest), and the
database named by ``SINK_DATABASE_URL`` (a libpq connection string or URI)
or libpq's own variables (``PGHOST``, ``PGUSER``, ``PGPASSWORD``...).
docs/postgres-sink.md says how it works and how to check the table.
"""

from examples.postgres_sink.sink import TABLE, bulk, handler, upsert

__all__ = ["TABLE", "bulk", "handler", "upsert"]
