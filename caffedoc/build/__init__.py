"""`caffedoc build`: a known-good Caffe from a recipe, built, installed, pinned and proved.

plan (recipe + host + flags, printable) → steps (packages, source, verify, patch,
configure, compile, install), each logged to a file and resumable → a cache of
finished builds keyed by every input → an all-or-nothing install → the pin → smoke.
"""
