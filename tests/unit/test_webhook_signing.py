"""Standard Webhooks signing, secrets and the retry schedule."""

from __future__ import annotations

import random

import pytest

from openagg.services.webhooks import new_secret, retry_delay, secret_key, sign


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (also in its libraries' tests).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_any_change_changes_the_signature() -> None:
    secret = new_secret()
    base = sign(secret, "EVT-1", 1700000000, b"{}")
    assert sign(secret, "EVT-2", 1700000000, b"{}") != base
    assert sign(secret, "EVT-1", 1700000001, b"{}") != base
    assert sign(secret, "EVT-1", 1700000000, b"{ }") != base
    assert sign(new_secret(), "EVT-1", 1700000000, b"{}") != base


def test_generated_secrets_are_32_random_bytes() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_")
    assert len(secret_key(a)) == 32


@pytest.mark.parametrize(
    "bad", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="]
)
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        secret_key(bad)


def test_retry_delay_doubles_with_jitter_and_a_cap() -> None:
    rand = random.Random(7)
    for attempt, full in [(1, 10), (2, 20), (3, 40), (4, 80), (9, 300), (30, 300)]:
        delays = [retry_delay(attempt, 10, 300, rand) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4  # jitter spreads them out
