"""A smoke result as text: what ran where, the figures that show it learned, or why not."""

from __future__ import annotations

from caffedoc.render import render_finding
from caffedoc.smoke.runner import SmokeResult


def render_text(result: SmokeResult) -> str:
    verdict = "passed" if result.passed else "FAILED"
    where = f"on {result.device}" if result.device else f"({result.mode} mode)"
    why = f" ({result.why_device})" if result.why_device else ""
    lines = [f"smoke: {verdict} {where}{why} in {result.seconds:.1f} s"]
    v = result.versions
    who = f" (run as {result.user})" if result.user else ""
    if v:
        lines.append(
            f"    python {v.get('python')} at {result.python}: numpy {v.get('numpy')}, "
            f"protobuf {v.get('protobuf')}, caffe {v.get('caffe')} from {v.get('caffe_path')}{who}"
        )
    else:
        lines.append(f"    python at {result.python}{who}")
    if result.loss_start is not None and result.loss_end is not None:
        lines.append(
            f"    train: loss {result.loss_start:.4f} -> {result.loss_end:.4f} "
            f"in {result.iterations} iterations"
        )
    if result.test_accuracy is not None and result.test_loss is not None:
        lines.append(
            f"    test:  accuracy {result.test_accuracy:.2f}, loss {result.test_loss:.4f} "
            "(test net sharing the trained weights)"
        )
    if result.passed:
        lines.append("    snapshot saved and reloaded into a fresh net: same scores")
    if result.finding is not None:
        lines += render_finding(result.finding)
    return "\n".join(lines)
