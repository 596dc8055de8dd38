"""Rules about python (being written)."""
