"""Run every benchmark under bench/ (`make bench`); each prints its own ratios and targets."""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["bench.jurisdiction", "bench.codes", "bench.ledger", "bench.labels", "bench.xlsx", "bench.load", "bench.scaleout"]


def main() -> int:
    selected = [b for b in BENCHMARKS if len(sys.argv) < 2 or any(arg in b for arg in sys.argv[1:])]
    for name in selected:
        print(f"\n### {name}", flush=True)
        module = importlib.import_module(name)
        module.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
