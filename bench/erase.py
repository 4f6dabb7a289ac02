"""Erasure latency: Pledge's crypto-shredding against a plaintext DELETE on bare SQLite.

    python bench/erase.py --subjects 100000

After an untimed ingest of N subjects into both, 1000 random subjects are erased one by one.
Pledge: one transaction each, `erasure.erase_subject` (data keys shredded in the keystore
with its tombstones and WAL checkpoint, rows deleted, status updated, audit entry) and
commit. Baseline: `DELETE FROM contacts WHERE id = ?` and a commit per row.
Prints {"subjects", "p50_ms", "p95_ms", "raw_p95_ms", "ratio_p95"} as the last line of stdout.
"""

from __future__ import annotations

import time

from _common import (
    Progress,
    bench_env,
    emit,
    generate_people,
    ingest_both,
    log,
    parse_args,
    percentile,
    raw_db,
    sample_indices,
    summarise_ms,
)
from pledge.subjects import erasure, reading
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import STANDARD_CLASS, SubjectStatus

ERASURES = 1000


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "")
    n: int = args.subjects
    people = generate_people(n, args.seed)
    picks = sample_indices(n, ERASURES, args.seed)
    with bench_env() as env, raw_db(env.raw_path) as conn:
        ingest_both(env, conn, people)
        # Who to erase, resolved before timing (erasure is requested by subject id).
        with env.runtime.tenant_context(env.slug) as ctx:
            sids = [reading.find_subject_id(ctx, IdentityKind.EMAIL, people[i][0]) for i in picks]

        pledge_ms: list[float] = []
        progress = Progress("pledge erase", len(sids))
        for i, sid in zip(picks, sids, strict=True):
            if sid is None:
                raise RuntimeError(f"subject {i} not found")
            t0 = time.perf_counter()
            with env.runtime.tenant_context(env.slug) as ctx:
                result = erasure.erase_subject(ctx, sid)
            pledge_ms.append((time.perf_counter() - t0) * 1000)
            if result.status != SubjectStatus.ERASED.value or result.shredded_classes != [
                STANDARD_CLASS
            ]:
                raise RuntimeError(f"subject {i}: unexpected erasure result {result}")
            progress.advance()

        raw_ms: list[float] = []
        for i in picks:
            t0 = time.perf_counter()
            deleted = conn.execute("DELETE FROM contacts WHERE id = ?", (i + 1,)).rowcount
            conn.commit()
            raw_ms.append((time.perf_counter() - t0) * 1000)
            if deleted != 1:
                raise RuntimeError(f"raw row {i + 1} not deleted")

        with env.runtime.tenant_context(env.slug) as ctx:
            counts = reading.count_subjects(ctx)
        log(f"pledge subjects by status afterwards: {counts}")
        if counts.get(SubjectStatus.ERASED.value) != len(picks):
            raise RuntimeError("erased count does not match")

    summarise_ms("pledge erase", pledge_ms)
    summarise_ms("raw DELETE + commit", raw_ms)
    p95, raw_p95 = percentile(pledge_ms, 95), percentile(raw_ms, 95)
    emit(
        {
            "subjects": n,
            "p50_ms": round(percentile(pledge_ms, 50), 3),
            "p95_ms": round(p95, 3),
            "raw_p95_ms": round(raw_p95, 4),
            "ratio_p95": round(p95 / raw_p95, 1),
        }
    )


if __name__ == "__main__":
    main()
