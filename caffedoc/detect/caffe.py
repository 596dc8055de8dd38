"""Rules about caffe (being written)."""
