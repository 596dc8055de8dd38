"""Rules about opencv (being written)."""
