"""python facts (being written)."""
