"""make demo: the walkthrough on a real broker, without Docker."""
