"""`caffedoc smoke`: a real MemoryData training step through pycaffe, the proof an install works.

`run_smoke` runs `child.py` inside the interpreter under test (in its own process,
with a timeout) and turns what it reports into a `SmokeResult`: pass, or a failure
diagnosed through the knowledge base. `caffedoc build` calls it last.
"""

from caffedoc.smoke.runner import SmokeResult, run_smoke
from caffedoc.smoke.text import render_text

__all__ = ["SmokeResult", "render_text", "run_smoke"]
