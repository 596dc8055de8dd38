"""Rules about cuda (being written)."""
