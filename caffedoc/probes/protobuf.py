"""protobuf facts (being written)."""
