"""caffe facts (being written)."""
