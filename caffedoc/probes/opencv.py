"""opencv facts (being written)."""
