"""Benchmark: labels per second into a PDF print file for a 10,000-mark range, one core and all cores, with memory.

Run as `python -m bench.labels [--labels N] [--small N] [--baseline-sample N] [--preset NAME] [--workers N]`.

Each measurement runs in a fresh child process (so peak RSS is its own) that
loads the label font once, then times `labels.write_pdf_sheets` over a
generator of real marks (serial, HMAC code, `{base}/v/{code}` URL made on the
fly, as the service does) into a null sink; the font subset is made inside the
timed call. Measured in the same run:

* one process pinned to one core, for --small (2,000) and --labels (10,000) marks;
* all cores (`workers` = every core this process may use), --labels marks;
* peak RSS of each child (and of its largest worker), and the tracemalloc peak
  of one-core runs for --small vs --labels marks after a 10-label warm-up that
  makes the cached font subset (memory flat in the range);
* the library's default path, `qrcode.make(url)` per label (QR image only, no
  page), on --baseline-sample URLs;
* the mask table behind `labels.qr.DEFAULT_MASK`: mean ISO 18004 penalty
  (qrcode's lost_point) of each mask over code URLs of this shape.

Targets: >= 1,000 labels/s per core, and memory flat in the range size (RSS
grows < 5 MB and the traced peak < 10% from --small to --labels). Prints PASS or
MISS per target and exits 0 either way: a benchmark reports, it does not gate.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

TARGET_PER_CORE = 1_000
RSS_GROWTH_MB = 5.0
TRACED_GROWTH = 1.10
BASE_URL = "https://gi.cnipa.gov.cn"


def _items(n: int):
    from gi_service.codes import (
        MarkKeyring,
        code_url,
        display_serial,
        format_serial,
        make_code,
    )
    from labels import LabelContent
    ring = MarkKeyring({"A": bytes(range(32))}, "A")
    for seq in range(1, n + 1):
        serial = format_serial("BBSH", 2026, seq)
        yield LabelContent("亳白芍", "91341600MA2N1X2Y3Z", "国家知识产权局公告第354号", serial,
                           code_url(BASE_URL, make_code(ring, serial)), display_serial(serial))


class _Null:
    def __init__(self):
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def _child(n: int, workers: int, pin: bool, trace: bool, preset: str) -> dict:
    """One measurement in this (fresh) process; returns figures as a dict."""
    from labels import CoverInfo, LabelSpec, default_font, write_pdf_sheets
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    default_font()                                    # the font is loaded once per process, before timing
    spec = LabelSpec.preset(preset)
    sink = _Null()
    cover = CoverInfo("PO-BENCH-1", "亳白芍", producer_name="亳州中药材有限公司", printer_name="安徽印务")
    if trace:       # the one-time font subset (fontTools, tens of MB) is not what we measure here
        write_pdf_sheets(_items(10), spec, _Null(), cover=cover)
        tracemalloc.start()
    started = time.perf_counter()
    result = write_pdf_sheets(_items(n), spec, sink, cover=cover, workers=workers)
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    return {"labels": result.count, "seconds": seconds, "rate": result.count / seconds, "bytes": sink.size,
            "sheets": result.sheets, "qr_version": result.qr_version, "mask": result.mask,
            "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "worker_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "traced": traced}


def _run_child(n: int, workers: int, pin: bool, trace: bool, preset: str) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "bench.labels", "--child", str(n), str(workers), str(int(pin)),
                          str(int(trace)), preset], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _baseline(sample: int) -> float:
    """qrcode.make per label: a general encoder that picks the version and scores all 8 masks each time."""
    import qrcode
    urls = [item.url for item in _items(sample)]
    started = time.perf_counter()
    for url in urls:
        qrcode.make(url)
    return sample / (time.perf_counter() - started)


def _mask_table(sample: int) -> list[float]:
    from qrcode.util import lost_point

    from labels.qr import plan, url_qr_version
    urls = [item.url for i, item in enumerate(_items(sample * 37)) if i % 37 == 0]
    version = url_qr_version(urls[0])
    return [statistics.mean(lost_point(plan(version, "M", m).matrix(u).astype(bool).tolist()) for u in urls)
            for m in range(8)]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        n, workers, pin, trace, preset = argv[1:6]
        print(json.dumps(_child(int(n), int(workers), pin == "1", trace == "1", preset)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--baseline-sample", type=int, default=300)
    parser.add_argument("--mask-sample", type=int, default=200)
    parser.add_argument("--preset", default="30x30")
    parser.add_argument("--workers", type=int, default=0, help="processes for the all-cores run (0: every core)")
    args = parser.parse_args(argv)
    cores = args.workers or _cores()

    small = _run_child(args.small, 1, True, False, args.preset)
    one = _run_child(args.labels, 1, True, False, args.preset)
    every = _run_child(args.labels, cores, False, False, args.preset)
    traced_small = _run_child(args.small, 1, True, True, args.preset)["traced"]
    traced_large = _run_child(args.labels, 1, True, True, args.preset)["traced"]
    baseline = _baseline(args.baseline_sample)
    masks = _mask_table(args.mask_sample)

    mb = 1024.0
    print(f"labels: Python {sys.version.split()[0]}, {_cores()} cores available; preset {args.preset}, "
          f"QR version {one['qr_version']}-M mask {one['mask']}, {one['sheets']} A4 sheets + cover, "
          f"{one['bytes'] / one['labels']:.0f} bytes/label")
    print(f"labels: one core   {small['labels']:>6,} labels {small['rate']:>8,.0f} labels/s  "
          f"peak RSS {small['rss_kb'] / mb:6.1f} MB")
    print(f"labels: one core   {one['labels']:>6,} labels {one['rate']:>8,.0f} labels/s  "
          f"peak RSS {one['rss_kb'] / mb:6.1f} MB")
    print(f"labels: {cores} workers  {every['labels']:>6,} labels {every['rate']:>8,.0f} labels/s  "
          f"peak RSS {every['rss_kb'] / mb:6.1f} MB main, {every['worker_rss_kb'] / mb:.1f} MB largest worker; "
          f"speed-up {every['rate'] / one['rate']:.2f} x")
    print(f"labels: default path qrcode.make per label {baseline:,.0f} labels/s (QR image only); "
          f"the PDF path is {one['rate'] / baseline:.0f} x that on one core")
    print(f"labels: traced peak {traced_small / mb / mb:.2f} MB for {args.small:,} labels, "
          f"{traced_large / mb / mb:.2f} MB for {args.labels:,}")
    best = min(range(8), key=masks.__getitem__)
    print("labels: mean QR penalty by mask (lost_point, lower is better): "
          + ", ".join(f"{m}: {p:.0f}" for m, p in enumerate(masks)) + f"; lowest: mask {best}")
    growth = (one["rss_kb"] - small["rss_kb"]) / mb
    print(f"labels: {_verdict(one['rate'] >= TARGET_PER_CORE)} one process >= {TARGET_PER_CORE:,} labels/s "
          f"on one core ({one['rate']:,.0f})")
    print(f"labels: {_verdict(every['rate'] / cores >= TARGET_PER_CORE)} all cores >= {TARGET_PER_CORE:,} "
          f"labels/s per core ({every['rate'] / cores:,.0f} x {cores})")
    print(f"labels: {_verdict(growth < RSS_GROWTH_MB and traced_large < TRACED_GROWTH * traced_small)} memory "
          f"flat: RSS {growth:+.1f} MB and traced peak x{traced_large / traced_small:.2f} from "
          f"{args.small:,} to {args.labels:,} labels")
    print(f"labels: {_verdict(best == one['mask'])} the fixed mask {one['mask']} has the lowest mean penalty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
