"""/metrics in Prometheus format, request ids, and log lines tagged with them."""

from __future__ import annotations

import io
import logging
from http.server import BaseHTTPRequestHandler

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from openagg import logs
from tests.conftest import Platform, free_port
from tests.integration.api_helpers import create_member, new_user
from tests.support import serving


async def scrape(p: Platform) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await p.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


async def test_metrics_follow_jobs_attempts_and_webhooks(platform: Platform) -> None:
    p = platform
    before = await scrape(p)
    ok_key = ("openagg_job_duration_seconds_count", (("kind", "aggregate"), ("outcome", "ok")))
    user = await new_user(p.http)
    await create_member(p.http, user, "any-password", expect=202)
    await create_member(p.http, user, "SERVER_ERROR", expect=202)

    queued = await scrape(p)
    assert queued[("openagg_jobs", (("kind", "aggregate"), ("state", "queued")))] == 2
    assert queued[("openagg_queue_oldest_due_seconds", ())] >= 0

    await p.drain()
    after = await scrape(p)
    assert ("openagg_jobs", (("kind", "aggregate"), ("state", "queued"))) not in after
    # The process histogram counted both runs (it is process-wide: compare to before).
    assert after[ok_key] - before.get(ok_key, 0) == 1
    assert (
        sum(
            v - before.get(k, 0)
            for k, v in after.items()
            if k[0] == "openagg_job_duration_seconds_count" and dict(k[1])["kind"] == "aggregate"
        )
        == 2
    )
    # One of the two mxbank attempts succeeded.
    assert after[("openagg_institution_attempts_recent", (("institution", "mxbank"),))] == 2
    assert after[("openagg_institution_success_ratio", (("institution", "mxbank"),))] == 0.5

    # A webhook endpoint nobody answers: its deliveries pile up in the backlog.
    dead = f"http://127.0.0.1:{free_port()}/hook"
    r = await p.http.post("/webhook_endpoints", json={"webhook_endpoint": {"url": dead}})
    assert r.status_code == 200, r.text
    await create_member(p.http, user, "another-password", expect=200, skip_aggregation=True)
    backlog = await scrape(p)
    assert backlog[("openagg_webhook_backlog", ())] >= 1
    assert backlog[("openagg_webhook_failed", ())] == 0


async def test_request_ids_are_echoed_or_made(platform: Platform) -> None:
    given = await platform.http.get("/institutions", headers={"X-Request-Id": "crm-42.a"})
    assert given.headers["x-request-id"] == "crm-42.a"
    made = await platform.http.get("/institutions")
    assert len(made.headers["x-request-id"]) == 32
    # Anything else is replaced, never echoed (no header injection, no log forging).
    odd = await platform.http.get("/institutions", headers={"X-Request-Id": "a b\tc" * 30})
    assert odd.headers["x-request-id"] != "a b\tc" * 30
    assert len(odd.headers["x-request-id"]) == 32


def test_log_lines_carry_request_and_job_ids() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for fmt in ("json", "text"):
            logs.configure(fmt)  # type: ignore[arg-type]
            stream = io.StringIO()
            root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
            rtoken = logs.request_id.set("req-1")
            jtoken = logs.job_id.set("JOB-7")
            logging.getLogger("openagg.test").warning("member %s settled", "MBR-1")
            logs.request_id.reset(rtoken)
            logs.job_id.reset(jtoken)
            logging.getLogger("openagg.test").warning("no context")
            first, second = stream.getvalue().splitlines()
            if fmt == "json":
                entry = orjson.loads(first)
                assert entry["message"] == "member MBR-1 settled"
                assert (entry["request_id"], entry["job_id"]) == ("req-1", "JOB-7")
                assert "request_id" not in orjson.loads(second)
            else:
                assert first.endswith("member MBR-1 settled [request_id=req-1 job_id=JOB-7]")
                assert second.endswith("no context")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


class _Teapot(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(418)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_outgoing_request_urls_stay_out_of_the_log() -> None:
    """A connector's request URL can hold a secret; the server's logging keeps the HTTP
    client's request lines out, even at DEBUG."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("text", logging.DEBUG)
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        with serving(_Teapot) as port:
            httpx.get(f"http://127.0.0.1:{port}/accounts?access=s3cret-canary", timeout=5)
        logging.getLogger("openagg.test").debug("still logging")
        assert "s3cret-canary" not in stream.getvalue()
        assert "still logging" in stream.getvalue()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
