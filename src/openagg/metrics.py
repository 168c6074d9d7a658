"""Prometheus metrics.

Two kinds: what this process did (job durations, webhook POSTs: counters and
histograms in this process's registry), and what the database says now (queue
depth, recent success rate per institution, webhook backlog), read at scrape time
so any one API process tells the whole cluster's state. Worker processes serve
their own registry with ``openagg worker --metrics-port``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from openagg.db.engine import Database
from openagg.db.models import Attempt, Institution, Job, WebhookDelivery
from openagg.domain.states import DeliveryState, JobState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Success rate and failures are reported over this trailing window.
RECENT = dt.timedelta(hours=24)

PROCESS = CollectorRegistry()

JOB_SECONDS = Histogram(
    "openagg_job_duration_seconds",
    "Time from a job's start to its outcome, by job kind and outcome.",
    ["kind", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
    registry=PROCESS,
)
WEBHOOK_POSTS = Counter(
    "openagg_webhook_posts",
    "Webhook POSTs made by this process, by outcome.",
    ["outcome"],
    registry=PROCESS,
)

CONNECTOR_STALLS = Counter(
    "openagg_connector_stalls",
    "Times a connector held a worker's event loop (every job of it waiting) for over "
    "half a second without yielding, by connector.",
    ["connector"],
    registry=PROCESS,
)


def observe_job(kind: str, cause: str, seconds: float) -> None:
    JOB_SECONDS.labels(kind, "ok" if cause == "OK" else cause.lower()).observe(max(seconds, 0))


def observe_connector_stall(connector: str) -> None:
    CONNECTOR_STALLS.labels(connector).inc()


def observe_webhook_post(succeeded: bool) -> None:
    WEBHOOK_POSTS.labels("delivered" if succeeded else "failed").inc()


@dataclass
class Snapshot:
    """The cluster's state as the database holds it."""

    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, state)
    jobs_failed_recent: dict[str, int] = field(default_factory=dict)  # kind
    oldest_due_seconds: float = 0.0
    attempts_recent: dict[str, tuple[int, int]] = field(default_factory=dict)  # code: (ok, all)
    webhook_pending: int = 0
    webhook_oldest_pending_seconds: float = 0.0
    webhook_failed: int = 0

    def families(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "openagg_jobs",
            "Jobs queued, running or waiting for the end user.",
            labels=["kind", "state"],
        )
        for (kind, state), n in sorted(self.jobs.items()):
            jobs.add_metric([kind, state], n)
        yield jobs
        failed = GaugeMetricFamily(
            "openagg_jobs_failed_recent", "Jobs failed in the last 24 hours.", labels=["kind"]
        )
        for kind, n in sorted(self.jobs_failed_recent.items()):
            failed.add_metric([kind], n)
        yield failed
        yield GaugeMetricFamily(
            "openagg_queue_oldest_due_seconds",
            "How long the oldest due queued job has waited.",
            value=self.oldest_due_seconds,
        )
        rate = GaugeMetricFamily(
            "openagg_institution_success_ratio",
            "Share of attempts that succeeded in the last 24 hours, per institution.",
            labels=["institution"],
        )
        total = GaugeMetricFamily(
            "openagg_institution_attempts_recent",
            "Attempts finished in the last 24 hours, per institution.",
            labels=["institution"],
        )
        for code, (ok, all_) in sorted(self.attempts_recent.items()):
            rate.add_metric([code], ok / all_ if all_ else 1.0)
            total.add_metric([code], all_)
        yield rate
        yield total
        yield GaugeMetricFamily(
            "openagg_webhook_backlog",
            "Webhook deliveries not yet delivered.",
            value=self.webhook_pending,
        )
        yield GaugeMetricFamily(
            "openagg_webhook_oldest_pending_seconds",
            "Age of the oldest undelivered webhook.",
            value=self.webhook_oldest_pending_seconds,
        )
        yield GaugeMetricFamily(
            "openagg_webhook_failed",
            "Webhook deliveries given up after all retries (until replayed).",
            value=self.webhook_failed,
        )


async def read_snapshot(db: Database, now: dt.datetime) -> Snapshot:
    since = now - RECENT
    snap = Snapshot()
    async with db.read() as s:
        active = await s.execute(
            select(Job.kind, Job.state, func.count())
            .where(Job.active_member_id.is_not(None))
            .group_by(Job.kind, Job.state)
        )
        snap.jobs = {(kind, state): n for kind, state, n in active.all()}
        failed = await s.execute(
            select(Job.kind, func.count())
            .where(Job.state == JobState.FAILED, Job.finished_at >= since)
            .group_by(Job.kind)
        )
        snap.jobs_failed_recent = {kind: n for kind, n in failed.all()}
        oldest = await s.scalar(
            select(func.min(Job.run_after)).where(
                Job.state == JobState.QUEUED, Job.run_after <= now
            )
        )
        snap.oldest_due_seconds = (now - oldest).total_seconds() if oldest else 0.0
        attempts = await s.execute(
            select(
                Institution.code,
                func.sum(case((Attempt.cause == "OK", 1), else_=0)),
                func.count(),
            )
            .join(Institution, Institution.id == Attempt.institution_id)
            .where(Attempt.finished_at >= since)
            .group_by(Institution.code)
        )
        snap.attempts_recent = {code: (int(ok or 0), n) for code, ok, n in attempts.all()}
        pending, oldest_pending = (
            await s.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.state == DeliveryState.PENDING
                )
            )
        ).one()
        snap.webhook_pending = pending
        if oldest_pending is not None:
            snap.webhook_oldest_pending_seconds = (now - oldest_pending).total_seconds()
        snap.webhook_failed = (
            await s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.state == DeliveryState.FAILED)
            )
            or 0
        )
    return snap


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        return self.snapshot.families()


def render(snapshot: Snapshot | None) -> bytes:
    """This process's metrics, plus the database's when a snapshot is given."""
    text = generate_latest(PROCESS)
    if snapshot is not None:
        registry = CollectorRegistry()
        registry.register(_SnapshotCollector(snapshot))
        text += generate_latest(registry)
    return text
