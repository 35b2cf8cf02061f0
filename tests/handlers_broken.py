"""A user's handler module that fails as it is imported."""

raise RuntimeError("DATABASE_URL is not set")
