"""The gate: one check in process and through the API, and an audience over every subject.

    python bench/gate.py --subjects 1000000 [--profile] [--analyze]

Set-up (not timed): a tenant with the Clik preset (seed 004), whose "newsletter" purpose is
consent-based direct marketing on e-mail with the topic "newsletter". It then holds N
subjects:

* 1,000 (or N, when smaller) come through the real service path — `intake.collect` at the
  "newsletter" collection point (70 % tick the box), then, through the services, some
  withdraw, opt out of all marketing or of the topic, object, are restricted or erased.
* The others are **synthetic**: the rows the gate reads, written straight into the data store
  with Core `executemany` in batches — `subjects` (status and privacy flags),
  `subject_identities` (an e-mail for 97 %, a phone for 40 %, as random 32-byte blind
  indexes), `consent_states` and `consent_records` for "newsletter", `objections`,
  `channel_optouts` and `suppressions`. What is synthetic about them: no personal data
  (no `subject_records`, no data keys in the keystore, blind indexes are random bytes rather
  than keyed hashes of real addresses), no audit entries for their history, consent records
  without a signed receipt or real IP/user-agent MACs (random bytes), and no relationships
  (`subject_purposes`, which the newsletter's consent basis does not read). Ids are UUIDv7
  spread over three years, in creation order, like the real ones. Independent draws per
  subject: newsletter consent granted 60 %, withdrawn 10 % (a grant then a withdrawal; a tenth
  of them also objected to the newsletter), never asked 30 %; objected to product-marketing
  5 %; e-mail opt-out of all marketing (`*`) 5 %; e-mail opt-out of the topic "newsletter"
  3 %; e-mail address suppressed 0.5 % (plus addresses of erased subjects); restricted 1 %;
  erased 1 % (status erased, identities gone, consent rows kept — as erasure leaves them);
  sale/sharing opt-out 4 %, limit-sensitive 0.5 %, children 0.3 % (half with a parent's
  consent).

After the set-up, `settle_heap` freezes what it left in memory out of the garbage
collector's sight, as `pledge serve` does with its start-up objects.

Measured, all on the embedded SQLite data store:

1. `check`: `gate.may(ctx, subject, "newsletter", "email", topic="newsletter")` for 2,000
   random subjects, each in its own transaction (`runtime.tenant_context`: tenant look-up,
   the check, its audit entry, the commit) — p50/p95 in µs. Also the same checks run in one
   transaction (`check_in_txn_*`: audit entry, no commit per check).
2. `api`: POST /api/v1/gate/check through the app (FastAPI TestClient over `create_app`,
   API key with the gate:check scope; the route commits at the edge). p50/p95 in ms over
   1,000 calls.
3. `audience`: `gate_audience.audience(ctx, "newsletter", "email", topic="newsletter")` over
   the whole tenant, one transaction with its audit entry and commit, against the raw baseline
   `SELECT id FROM subjects WHERE tenant_id = ?` on the same table with the stdlib sqlite3
   module, every row fetched. Three runs each, alternating; the medians are reported.

Every single check is cross-checked against the audience (allowed ⇔ in the audience), and the
audience's size against the one the synthetic states imply plus the real subjects' answers.
Prints {"subjects", "check_p50_us", "check_p95_us", "check_in_txn_p95_us", "api_p50_ms",
"api_p95_ms", "audience_s", "raw_scan_s", "ratio", "allowed"} as the last line.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from fastapi.testclient import TestClient
from sqlalchemy import Table, text

from _common import (
    DATA_FILE,
    SEED,
    BenchEnv,
    Progress,
    bench_env,
    emit,
    generate_people,
    log,
    percentile,
    settle_heap,
    summarise_ms,
)
from pledge.access import service as access
from pledge.access.permissions import Scope
from pledge.consent import intake, privacy_state
from pledge.consent import service as consent
from pledge.consent.intake import ConsentChoice
from pledge.consent.models import ConsentRecord, ConsentState, Objection
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.notices import service as notices
from pledge.preferences import service as preferences
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut, Suppression
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.runtime import Runtime
from pledge.subjects import erasure
from pledge.subjects.models import Subject, SubjectIdentity, SubjectStatus
from pledge.subjects.service import FieldInput
from pledge.web.app import create_app

PURPOSE, CHANNEL, TOPIC = "newsletter", "email", "newsletter"
REAL_SUBJECTS = 1_000
CHECKS = 2_000
API_CALLS = 1_000
API_WARMUP = 50
AUDIENCE_RUNS = 3
BATCH = 25_000  # synthetic subjects per transaction
REAL_BATCH = 100  # real subjects per transaction
SPAN = timedelta(days=3 * 365)  # subjects were created over the last three years
API_ROUTE = "/api/v1/gate/check"
TOP = 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000, help="subjects in the tenant")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic data")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one audience and the checks, to stderr"
    )
    parser.add_argument(
        "--analyze", action="store_true", help="run ANALYZE after the set-up (not by default)"
    )
    args = parser.parse_args()
    if args.subjects < 1:
        parser.error("--subjects must be at least 1")
    return args


# ---------------------------------------------------------------------------------------------
# Set-up: the preset, real subjects, synthetic subjects


@dataclass(frozen=True)
class TenantIds:
    tenant_id: uuid.UUID
    newsletter: uuid.UUID
    product_marketing: uuid.UUID
    point: uuid.UUID
    wording_id: uuid.UUID
    wording_sha256: str
    privacy_version_id: uuid.UUID


def apply_preset(env: BenchEnv) -> TenantIds:
    with env.runtime.tenant_context(env.slug) as ctx:
        clik(ctx)
    with env.runtime.tenant_context(env.slug) as ctx:
        newsletter = purposes.get_purpose(ctx, PURPOSE)
        point = purposes.get_collection_point(ctx, "newsletter")
        wording = notices.current_version(ctx, notices.get_notice(ctx, "newsletter-consent").id)
        privacy = notices.current_version(ctx, notices.get_notice(ctx, "privacy").id)
        assert wording is not None and privacy is not None
        return TenantIds(
            ctx.tenant_id,
            newsletter.id,
            purposes.get_purpose(ctx, "product-marketing").id,
            point.id,
            wording.id,
            wording.sha256,
            privacy.id,
        )


def real_subjects(env: BenchEnv, n: int, seed: int) -> list[uuid.UUID]:
    """`n` subjects through the services: collected at the newsletter sign-up, then changed."""
    rng = random.Random(seed + 2)
    people = generate_people(n, seed + 3)
    ids: list[uuid.UUID] = []
    progress = Progress("real subjects (intake.collect)", n)
    for begin in range(0, n, REAL_BATCH):
        with env.runtime.tenant_context(env.slug) as ctx:
            for email, phone, first, _last, _company in people[begin : begin + REAL_BATCH]:
                fields = [
                    FieldInput("email", email),
                    FieldInput("first_name", first, "user.name.first"),
                ]
                if rng.random() < 0.4:
                    fields.append(FieldInput("phone", phone))
                ticked = rng.random() < 0.7
                sid = intake.collect(
                    ctx, "newsletter", fields, [ConsentChoice(PURPOSE, ticked)]
                ).subject_id
                ids.append(sid)
                if ticked and rng.random() < 0.12:
                    consent.record_consent(
                        ctx, sid, consent.ConsentInput(PURPOSE, "withdraw", "unsubscribe")
                    )
                if rng.random() < 0.05:
                    preferences.opt_out(ctx, sid, CHANNEL, ALL_MARKETING, "preference_center")
                if rng.random() < 0.03:
                    preferences.opt_out(ctx, sid, CHANNEL, TOPIC, "unsubscribe_link")
                if rng.random() < 0.02:
                    consent.record_objection(ctx, sid, PURPOSE)
                if rng.random() < 0.05:
                    consent.record_objection(ctx, sid, "product-marketing")
                if rng.random() < 0.01:
                    privacy_state.set_restriction(ctx, sid, True, "rights request")
                if rng.random() < 0.01:
                    erasure.erase_subject(ctx, sid)
        progress.advance(len(people[begin : begin + REAL_BATCH]))
    return ids


def _uuid7(ms: int, rng: random.Random) -> uuid.UUID:
    """RFC 9562 UUIDv7 at `ms` (like `pledge.core.ids.new_id`, with a seeded generator)."""
    rand = rng.getrandbits(74)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62
    return uuid.UUID(int=value | (rand & 0x3FFF_FFFF_FFFF_FFFF))


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def synthetic_subjects(env: BenchEnv, ids: TenantIds, n: int, seed: int) -> int:
    """Write `n` synthetic subjects and their gate state; returns how many the gate should
    allow for the newsletter on e-mail (topic newsletter)."""
    rng = random.Random(seed + 4)
    tid = ids.tenant_id
    end = datetime.now(UTC) - timedelta(days=1)
    start = end - SPAN
    step = SPAN / max(n, 1)
    expected = 0
    progress = Progress("synthetic subjects (Core executemany)", n)
    for begin in range(0, n, BATCH):
        rows: dict[str, list[dict[str, Any]]] = {
            name: []
            for name in (
                "subjects",
                "identities",
                "records",
                "states",
                "objections",
                "optouts",
                "suppressions",
            )
        }
        for i in range(begin, min(n, begin + BATCH)):
            created = start + step * i
            sid = _uuid7(int(created.timestamp() * 1000), rng)
            erased = rng.random() < 0.01
            restricted = not erased and rng.random() < 0.01
            child = rng.random() < 0.003
            parental = child and rng.random() < 0.5
            sale = rng.random() < 0.04
            limited = rng.random() < 0.005
            later = created + timedelta(days=rng.uniform(1, 300))
            rows["subjects"].append(
                {
                    "tenant_id": tid,
                    "id": sid,
                    "status": (SubjectStatus.ERASED if erased else SubjectStatus.ACTIVE).value,
                    "created_at": created,
                    "updated_at": later if (erased or restricted or sale) else created,
                    "erased_at": later if erased else None,
                    "restricted_at": later if restricted else None,
                    "sale_opt_out_at": later if sale else None,
                    "sale_opt_out_source": "gpc" if sale else None,
                    "limit_sensitive_at": later if limited else None,
                    "is_child": child,
                    "parental_consent_at": created if parental else None,
                }
            )
            has_email = rng.random() < 0.97
            email_bidx = rng.randbytes(32)
            if has_email and not erased:  # erasure removes identities
                rows["identities"].append(
                    {
                        "tenant_id": tid,
                        "kind": "email",
                        "blind_index": email_bidx,
                        "subject_id": sid,
                    }
                )
            if rng.random() < 0.4 and not erased:
                rows["identities"].append(
                    {
                        "tenant_id": tid,
                        "kind": "phone",
                        "blind_index": rng.randbytes(32),
                        "subject_id": sid,
                    }
                )
            u = rng.random()
            state = "granted" if u < 0.60 else "withdrawn" if u < 0.70 else None
            if state is not None:
                granted_at = created + timedelta(seconds=rng.uniform(0, 60))
                actions = [("grant", granted_at)]
                if state == "withdrawn":
                    actions.append(("withdraw", granted_at + timedelta(days=rng.uniform(1, 400))))
                record_id = sid
                for action, at in actions:
                    record_id = _uuid7(int(at.timestamp() * 1000), rng)
                    rows["records"].append(_consent_record(ids, sid, record_id, action, at, rng))
                rows["states"].append(
                    {
                        "tenant_id": tid,
                        "subject_id": sid,
                        "purpose_id": ids.newsletter,
                        "granted": state == "granted",
                        "record_id": record_id,
                        "updated_at": actions[-1][1],
                    }
                )
            objected = state == "withdrawn" and rng.random() < 0.1
            for purpose_id, chance in (
                (ids.newsletter, 1.0 if objected else 0.0),
                (ids.product_marketing, 0.05),
            ):
                if rng.random() < chance:
                    rows["objections"].append(
                        {
                            "tenant_id": tid,
                            "subject_id": sid,
                            "purpose_id": purpose_id,
                            "since": later,
                            "grounds_sealed": None,
                            "overridden_at": None,
                        }
                    )
            opted_all = rng.random() < 0.05
            opted_topic = rng.random() < 0.03
            for topic, opted, source in (
                (ALL_MARKETING, opted_all, "preference_center"),
                (TOPIC, opted_topic, "unsubscribe_link"),
            ):
                if opted:
                    rows["optouts"].append(
                        {
                            "tenant_id": tid,
                            "subject_id": sid,
                            "channel": CHANNEL,
                            "topic": topic,
                            "source": source,
                            "created_at": later,
                        }
                    )
            suppressed = has_email and rng.random() < (0.3 if erased else 0.005)
            if suppressed:
                rows["suppressions"].append(
                    {
                        "tenant_id": tid,
                        "kind": "email",
                        "blind_index": email_bidx,
                        "channel": CHANNEL,
                        "reason": "hard_bounce",
                        "created_at": later,
                    }
                )
            allowed = (
                not erased
                and not restricted
                and state == "granted"
                and not objected
                and not opted_all
                and not opted_topic
                and has_email
                and not suppressed
                and (not child or parental)
            )
            expected += allowed
        with env.runtime.engine.begin() as conn:
            for model, key in (
                (Subject, "subjects"),
                (SubjectIdentity, "identities"),
                (ConsentRecord, "records"),
                (ConsentState, "states"),
                (Objection, "objections"),
                (ChannelOptOut, "optouts"),
                (Suppression, "suppressions"),
            ):
                if rows[key]:
                    conn.execute(_table(model).insert(), rows[key])
        progress.advance(len(rows["subjects"]))
    return expected


def _consent_record(
    ids: TenantIds,
    sid: uuid.UUID,
    record_id: uuid.UUID,
    action: str,
    at: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    grant = action == "grant"
    return {
        "tenant_id": ids.tenant_id,
        "id": record_id,
        "subject_id": sid,
        "purpose_id": ids.newsletter,
        "action": action,
        "recorded_at": at,
        "method": "web_form" if grant else "unsubscribe",
        "collection_point_id": ids.point if grant else None,
        "wording_version_id": ids.wording_id if grant else None,
        "wording_sha256": ids.wording_sha256 if grant else None,
        "notice_version_id": ids.privacy_version_id if grant else None,
        "gpc": False,
        "dnt": None,
        "ip_mac": rng.randbytes(32) if grant else None,
        "user_agent_mac": rng.randbytes(32) if grant else None,
        "actor_kind": "anonymous",
        "actor_id": None,
        "receipt_jws": None,
    }


# ---------------------------------------------------------------------------------------------
# Measurements


def profiled(enabled: bool, label: str, fn: Callable[[], Any]) -> Any:
    if not enabled:
        return fn()
    profiler = cProfile.Profile()
    result = profiler.runcall(fn)
    for order in ("cumulative", "tottime"):
        log(f"\n--- {label}: top {TOP} functions by {order} time ---")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(TOP)
    return result


def single_checks(
    env: BenchEnv, picks: list[uuid.UUID]
) -> tuple[list[float], dict[uuid.UUID, bool]]:
    """One transaction per check; returns the times in µs and the answers."""
    times: list[float] = []
    answers: dict[uuid.UUID, bool] = {}
    progress = Progress("checks, one transaction each", len(picks))
    for sid in picks:
        t0 = time.perf_counter()
        with env.runtime.tenant_context(env.slug) as ctx:
            decision = gate.may(ctx, sid, PURPOSE, CHANNEL, topic=TOPIC)
        times.append((time.perf_counter() - t0) * 1e6)
        answers[sid] = decision.allowed
        progress.advance()
    return times, answers


def checks_in_one_transaction(env: BenchEnv, picks: list[uuid.UUID]) -> list[float]:
    times: list[float] = []
    with env.runtime.tenant_context(env.slug) as ctx:
        for sid in picks:
            t0 = time.perf_counter()
            gate.may(ctx, sid, PURPOSE, CHANNEL, topic=TOPIC)
            times.append((time.perf_counter() - t0) * 1e6)
    return times


def api_checks(
    env: BenchEnv, picks: list[uuid.UUID], answers: dict[uuid.UUID, bool]
) -> list[float]:
    with env.runtime.tenant_context(env.slug) as ctx:
        _key, token = access.create_api_key(
            ctx, name="gate bench", scopes=frozenset({Scope.GATE_CHECK})
        )
    app = create_app(env.runtime)
    client = TestClient(app, raise_server_exceptions=True)
    client.headers["Authorization"] = f"Bearer {token}"

    def body(sid: uuid.UUID) -> dict[str, str]:
        return {"subject_id": str(sid), "purpose": PURPOSE, "channel": CHANNEL, "topic": TOPIC}

    route = API_ROUTE
    log(f"API check through {route}")
    for sid in picks[:API_WARMUP]:
        client.post(route, json=body(sid))
    times: list[float] = []
    progress = Progress("API checks", len(picks))
    for sid in picks:
        t0 = time.perf_counter()
        response = client.post(route, json=body(sid))
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200 or response.json()["allowed"] != answers[sid]:
            raise RuntimeError(f"API check of {sid}: {response.status_code} {response.text[:200]}")
        progress.advance()
    client.close()
    return times


def run_audience(env: BenchEnv) -> tuple[float, gate_audience.Audience]:
    t0 = time.perf_counter()
    with env.runtime.tenant_context(env.slug) as ctx:
        result = gate_audience.audience(ctx, PURPOSE, CHANNEL, topic=TOPIC)
    return time.perf_counter() - t0, result


def run_raw_scan(conn: sqlite3.Connection, tenant_id: uuid.UUID) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows = conn.execute(
        "SELECT id FROM subjects WHERE tenant_id = ?", (tenant_id.bytes,)
    ).fetchall()
    return time.perf_counter() - t0, len(rows)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    n: int = args.subjects
    n_real = min(REAL_SUBJECTS, n)
    with bench_env() as env:
        runtime: Runtime = env.runtime
        t0 = time.perf_counter()
        ids = apply_preset(env)
        real_ids = real_subjects(env, n_real, args.seed)
        expected = synthetic_subjects(env, ids, n - n_real, args.seed)
        with runtime.tenant_context(env.slug) as ctx:
            real_allowed = sum(
                gate.may(ctx, sid, PURPOSE, CHANNEL, topic=TOPIC, audited=False).allowed
                for sid in real_ids
            )
        expected += real_allowed
        if args.analyze:
            with runtime.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            log("ran ANALYZE")
        log(
            f"set-up: {n} subjects ({n_real} real, {n - n_real} synthetic), "
            f"{expected} should be allowed, in {time.perf_counter() - t0:.1f} s (not timed)"
        )
        with runtime.engine.connect() as conn:
            for table in ("subjects", "subject_identities", "consent_states", "consent_records"):
                count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                log(f"  {table}: {count} rows")

        rng = random.Random(args.seed + 5)
        with runtime.engine.connect() as conn:
            every = [
                uuid.UUID(bytes=bytes(b))
                for (b,) in conn.exec_driver_sql(
                    "SELECT id FROM subjects WHERE tenant_id = ?", (ids.tenant_id.bytes,)
                )
            ]
        picks = rng.sample(every, min(CHECKS, len(every)))
        # Real subjects are a small share of N: make sure single checks meet them too.
        picks[: min(len(real_ids), len(picks) // 10)] = real_ids[: len(picks) // 10]
        del every
        settle_heap()

        check_us, answers = profiled(
            args.profile, "single checks", lambda: single_checks(env, picks)
        )
        summarise_ms("check, one transaction each (ms)", [t / 1000 for t in check_us])
        in_txn_us = checks_in_one_transaction(env, picks)
        summarise_ms("check, all in one transaction (ms)", [t / 1000 for t in in_txn_us])

        api_ms = api_checks(env, picks[:API_CALLS], answers)
        summarise_ms(f"API check ({API_ROUTE})", api_ms)

        raw = sqlite3.connect(env.home / DATA_FILE)
        try:
            audience_s: list[float] = []
            raw_s: list[float] = []
            result: gate_audience.Audience | None = None
            for run in range(AUDIENCE_RUNS):
                seconds, result = run_audience(env)
                audience_s.append(seconds)
                seconds, rows = run_raw_scan(raw, ids.tenant_id)
                raw_s.append(seconds)
                if rows != n:
                    raise RuntimeError(f"raw scan found {rows} rows, not {n}")
                log(f"  run {run + 1}: audience {audience_s[-1]:.3f} s, raw scan {raw_s[-1]:.3f} s")
            if args.profile:
                profiled(True, "audience", lambda: run_audience(env))
        finally:
            raw.close()
        assert result is not None
        if len(result.allowed) != expected:
            raise RuntimeError(f"audience has {len(result.allowed)} subjects, expected {expected}")
        members = set(result.allowed)
        wrong = [sid for sid, allowed in answers.items() if allowed != (sid in members)]
        if wrong:
            raise RuntimeError(f"{len(wrong)} single checks disagree with the audience")
        log(
            f"audience: {len(result.allowed)} allowed of {result.candidates} candidates; "
            f"{len(answers)} single checks agree with it"
        )

    audience_med, raw_med = statistics.median(audience_s), statistics.median(raw_s)
    out: dict[str, object] = {
        "subjects": n,
        "check_p50_us": round(percentile(check_us, 50), 1),
        "check_p95_us": round(percentile(check_us, 95), 1),
        "check_in_txn_p95_us": round(percentile(in_txn_us, 95), 1),
        "api_p50_ms": round(percentile(api_ms, 50), 3),
        "api_p95_ms": round(percentile(api_ms, 95), 3),
        "audience_s": round(audience_med, 3),
        "raw_scan_s": round(raw_med, 3),
        "ratio": round(audience_med / raw_med, 2),
        "allowed": len(result.allowed),
    }
    if args.analyze:
        out["analyzed"] = True
    if args.profile:
        out["profiled"] = True
    emit(out)


if __name__ == "__main__":
    main()
