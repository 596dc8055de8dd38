"""Rules about protobuf (being written)."""
