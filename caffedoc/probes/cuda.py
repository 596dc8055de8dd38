"""cuda facts (being written)."""
