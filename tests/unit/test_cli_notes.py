"""What `openagg serve` says at start about how it was installed."""

from __future__ import annotations

import logging

import pytest

from openagg import cli
from openagg.ofx import accel


def test_serve_says_when_the_ofx_codec_runs_without_its_c_part(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(accel, "native", None)
    with caplog.at_level(logging.WARNING, logger="openagg"):
        cli._note_a_pure_python_codec()
    assert "OFX codec's C part is not built" in caplog.text
    assert "about 5x slower" in caplog.text


def test_serve_says_nothing_when_it_is_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(accel, "native", object())
    with caplog.at_level(logging.WARNING, logger="openagg"):
        cli._note_a_pure_python_codec()
    assert caplog.text == ""
