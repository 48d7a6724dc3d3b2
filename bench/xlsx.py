"""Benchmark: memory of the Excel writer (render/xlsx.py) for 10,000 vs 200,000 rows, constant-memory vs in-memory.

Run as `python -m bench.xlsx [--rows 10000,200000] [--trace]`. Each measurement runs in a child process of its
own, which writes a 12-column table (text with CJK, USCC-like codes, counts, amounts, dates, instants, flags)
from a generator to a temporary file and reports its peak resident set size (ru_maxrss) above the process's
size before writing, and with --trace also its peak traced Python memory (tracemalloc, which slows the writing
several times over). Side by side: the service's writer
(XlsxWriter's constant_memory) and XlsxWriter keeping the sheet in memory, as a baseline. Constant memory
means the 200,000-row peak stays near the 10,000-row one. Prints a table and the ratios; exits 0 either way.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from decimal import Decimal


def table(rows: int):
    from gi_service.render.tables import Column, Table

    columns = [Column("id", "编号", "integer"), Column("producer", "生产者"), Column("uscc", "统一社会信用代码"),
               Column("adcode", "行政区划代码"), Column("gi", "地理标志"), Column("issued", "发放", "integer"),
               Column("activated", "启用", "integer"), Column("output_kg", "产量kg", "decimal", places=3),
               Column("value", "产值元", "decimal", places=2), Column("day", "日期", "date"),
               Column("at", "时间", "datetime"), Column("ok", "账实相符", "flag")]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

    def generate():
        for i in range(rows):
            yield [i, f"亳州市第{i}中药材种植专业合作社", f"91341602MA{i:07d}X", "341602", "亳白芍", i % 5000,
                   i % 4000, Decimal(i) / 7, Decimal(i * 13) / 3, (start + dt.timedelta(days=i % 365)).date(),
                   start + dt.timedelta(minutes=i), i % 3 == 0]

    return Table("基准 bench", columns, generate())


def child(mode: str, rows: int, trace: bool) -> dict:
    import tempfile

    import xlsxwriter

    from gi_service.render import xlsx

    table(1)   # imports done before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        if mode == "constant":
            xlsx.write_xlsx(table(rows), out)
        else:
            original = xlsxwriter.Workbook

            def in_memory(target, options):
                return original(target, {**options, "constant_memory": False})

            xlsx.xlsxwriter.Workbook = in_memory
            try:
                xlsx.write_xlsx(table(rows), out)
            finally:
                xlsx.xlsxwriter.Workbook = original
        size = out.tell()
    seconds = time.perf_counter() - t0
    peak = None
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "rows": rows, "traced_peak_mb": peak / 2**20 if peak is not None else None, "rss_growth_mb": (after - before) / 1024,
            "seconds": seconds, "file_mb": size / 2**20}


def measure(mode: str, rows: int, trace: bool) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.xlsx", "--child", mode, str(rows),
                          *(["--trace"] if trace else [])], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,200000", help="comma-separated row counts")
    parser.add_argument("--trace", action="store_true", help="also measure the peak traced Python memory")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.trace)))
        return 0
    sizes = [int(n) for n in args.rows.split(",")]
    results = {(mode, n): measure(mode, n, args.trace) for mode in ("constant", "in-memory") for n in sizes}
    print(f"{'writer':<12}{'rows':>10}{'RSS growth MB':>15}{'traced peak MB':>16}{'rows/s':>9}{'file MB':>9}")
    for (mode, n), r in results.items():
        traced = f"{r['traced_peak_mb']:.1f}" if r["traced_peak_mb"] is not None else "-"
        print(f"{mode:<12}{n:>10,}{r['rss_growth_mb']:>15.1f}{traced:>16}{n / r['seconds']:>9,.0f}"
              f"{r['file_mb']:>9.1f}")
    small, large = sizes[0], sizes[-1]
    for mode in ("constant", "in-memory"):
        a, b = results[(mode, small)], results[(mode, large)]
        print(f"{mode}: {large / small:g}x the rows -> {b['rss_growth_mb'] / max(a['rss_growth_mb'], 0.1):.1f}x "
              "the RSS growth")
    ratio = results[("in-memory", large)]["rss_growth_mb"] / max(results[("constant", large)]["rss_growth_mb"], 0.1)
    print(f"at {large:,} rows the in-memory writer grows the process {ratio:.0f}x as much as the constant-memory one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
