"""Eval metrics as the small text table `interp eval` and `stage run` print."""

from __future__ import annotations

import math

from interp.analyses.ablation.scoring import LEAK_WARNING, mode_label


def format_metrics(metrics: dict) -> str:
    """metrics.json as a small text table (with the leak warning first when leaky)."""
    lines = [f"WARNING: {LEAK_WARNING}"] if metrics.get("leaky") else []
    mode = mode_label(metrics["attention"], metrics.get("bidirectional_layers")) + (" (LEAKY)" if metrics.get("leaky") else "")
    lines.append(f"model: {metrics.get('model', '?')}   attention: {mode}   format: {metrics.get('format', '?')}")
    lines.append(f"{'task':<18}{'n':>6}{'skipped':>9}{'acc':>9}{'±':>8}{'acc_norm':>10}{'±':>8}{'tok_norm':>10}"
                 f"{'acc_cc':>9}{'chance':>9}")
    for name, m in metrics["tasks"].items():
        lines.append(f"{name:<18}{m['n']:>6}{m['skipped']:>9}{fmt(m['acc'], 9)}{fmt(m.get('acc_stderr'), 8)}"
                     f"{fmt(m.get('acc_norm'), 10)}{fmt(m.get('acc_norm_stderr'), 8)}"
                     f"{fmt(m.get('acc_token_norm'), 10)}{fmt(m.get('acc_cc'), 9)}{fmt(m['chance'], 9)}")
    lines.append(f"{'macro':<18}{'':>6}{'':>9}{fmt(metrics['macro_acc'], 9)}{'':>8}"
                 f"{fmt(metrics['macro_acc_norm'], 10)}{'':>8}{fmt(metrics.get('macro_acc_token_norm'), 10)}"
                 f"{fmt(metrics.get('macro_acc_cc'), 9)}")
    return "\n".join(lines)



def fmt(value, width: int = 0) -> str:
    return f"{'—':>{width}}" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:>{width}.4f}"
