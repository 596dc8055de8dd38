"""Many machines' `check --json` reports, merged into one view of the fleet.

load (files → hosts, each reduced to what the view needs) → merge (findings by id,
drift) → render (text, JSON, one self-contained HTML page).
"""
