"""Export-by-e-mail latency: Pledge against an indexed plaintext SELECT on bare SQLite.

    python bench/lookup.py --subjects 100000

After an untimed ingest of N subjects into both, 1000 random subjects are looked up by
e-mail. Pledge: one transaction each, `find_subject_id` (normalise, blind index, identity
look-up) then `export_subject` (key unwrap, decryption, interactions, audit entry) and
commit — what `pledge subjects export` and the API do. Baseline:
`SELECT * FROM contacts WHERE email = ?` with an index on email.
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
    parse_args,
    percentile,
    raw_db,
    sample_indices,
    summarise_ms,
)
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind

LOOKUPS = 1000


def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "")
    n: int = args.subjects
    people = generate_people(n, args.seed)
    picks = sample_indices(n, LOOKUPS, args.seed)
    with bench_env() as env, raw_db(env.raw_path) as conn:
        ingest_both(env, conn, people)
        conn.execute("CREATE INDEX ix_contacts_email ON contacts (email)")
        conn.commit()

        pledge_ms: list[float] = []
        progress = Progress("pledge export-by-email", len(picks))
        for i in picks:
            email = people[i][0]
            t0 = time.perf_counter()
            with env.runtime.tenant_context(env.slug) as ctx:
                sid = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
                if sid is None:
                    raise RuntimeError(f"subject {i} not found")
                doc = reading.export_subject(ctx, sid)
            pledge_ms.append((time.perf_counter() - t0) * 1000)
            values = {f["name"]: f["value"] for f in doc["fields"]}
            if values.get("email") != email or values.get("company") != people[i][4]:
                raise RuntimeError(f"subject {i}: export does not match the ingested row")
            progress.advance()

        raw_ms: list[float] = []
        for i in picks:
            email = people[i][0]
            t0 = time.perf_counter()
            rows = conn.execute("SELECT * FROM contacts WHERE email = ?", (email,)).fetchall()
            raw_ms.append((time.perf_counter() - t0) * 1000)
            if len(rows) != 1 or rows[0][0] != i + 1:
                raise RuntimeError(f"raw row {i + 1} not found by e-mail")

    summarise_ms("pledge export-by-email", pledge_ms)
    summarise_ms("raw indexed SELECT", raw_ms)
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
