"""Ingest throughput: Pledge's import path against plaintext inserts into bare SQLite.

    python bench/ingest.py --subjects 100000 [--profile] [--floor-parts]

Pledge: batches of 500, each one transaction through the CSV importer's path (validation and
normalisation, blind indexes, duplicate checks, data keys, encryption, audit chain).
Baseline: the same rows in plaintext, `executemany` per batch of 500, one commit per batch,
same pragmas (WAL, synchronous=NORMAL). The data is generated before either is timed.
Storage floor: the rows Pledge wrote (data keys, subjects, identities, sealed records, audit
entries), written again by bare `executemany` into empty copies of its schemas, same batches
and commits — what storing them costs with no Python work on the values.
Prints {"subjects", "pledge_per_s", "raw_per_s", "ratio", "floor_per_s", "floor_ratio"}
as the last line of stdout; `floor_ratio` is raw_per_s / floor_per_s, the lowest `ratio` any
code writing these rows could reach. `--floor-parts` adds the floor's µs a subject with each
part (keys, identities, records, audit entries) left out in turn: what the floor is made of.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

from _common import (
    FLOOR_PARTS,
    bench_env,
    emit,
    generate_people,
    ingest_floor,
    ingest_pledge,
    ingest_raw,
    log,
    parse_args,
    raw_db,
)

TOP = 25


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "", profile=True, floor_parts=True)
    n: int = args.subjects
    start = time.perf_counter()
    people = generate_people(n, args.seed)
    log(f"generated {n} subjects in {time.perf_counter() - start:.1f} s (not timed)")
    profiler = cProfile.Profile() if args.profile else None
    with bench_env() as env, raw_db(env.raw_path) as conn:
        if profiler is not None:
            log("profiling the Pledge part: its throughput below is slowed by cProfile")
            profiler.enable()
        pledge_s = ingest_pledge(env.runtime, env.slug, people)
        if profiler is not None:
            profiler.disable()
        log(f"pledge: {n} subjects in {pledge_s:.2f} s = {n / pledge_s:,.0f}/s")
        raw_s = ingest_raw(conn, people)
        log(f"raw:    {n} rows in {raw_s:.2f} s = {n / raw_s:,.0f}/s")
        floor_s = ingest_floor(env.home)
        log(f"floor:  {n} subjects' rows in {floor_s:.2f} s = {n / floor_s:,.0f}/s")
        parts = _floor_parts(env.home, n) if args.floor_parts else None
    if profiler is not None:
        for order in ("cumulative", "tottime"):
            log(f"\n--- top {TOP} functions by {order} time (Pledge ingest) ---")
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(TOP)
    pledge_per_s, raw_per_s, floor_per_s = n / pledge_s, n / raw_s, n / floor_s
    result: dict[str, object] = {
        "subjects": n,
        "pledge_per_s": round(pledge_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "ratio": round(raw_per_s / pledge_per_s, 2),
        "floor_per_s": round(floor_per_s, 1),
        "floor_ratio": round(raw_per_s / floor_per_s, 2),
    }
    if parts is not None:
        result["floor_us"] = round(floor_s / n * 1e6, 1)
        result["floor_us_without"] = parts
    if profiler is not None:
        result["profiled"] = True
    emit(result)


def _floor_parts(home: Path, n: int) -> dict[str, float]:
    """The floor again with parts left out: µs a subject for each (what the floor is made of)."""
    without: dict[str, float] = {}
    for leave_out in (*((p,) for p in FLOOR_PARTS), ("identities", "audit"), FLOOR_PARTS):
        name = "+".join(leave_out)  # all of them: the subjects' rows alone
        seconds = ingest_floor(home, leave_out)
        without[name] = round(seconds / n * 1e6, 1)
        log(f"floor without {name}: {without[name]} µs a subject")
    return without


if __name__ == "__main__":
    main()
