"""Business rules that are not database access."""
