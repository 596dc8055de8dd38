"""caffedoc: make Caffe work on a machine, and prove that it does."""

__version__ = "0.1.0"
