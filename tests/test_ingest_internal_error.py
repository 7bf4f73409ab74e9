"""An unexpected exception inside ingest is footfall's own bug: dead-lettered as ``internal_error``
(logged with its traceback, counted, the message kept), never blamed on the sender."""

from __future__ import annotations

import json
import logging

import paho.mqtt.client as mqtt
import pytest

import footfall.ingest.service as service
from footfall.contracts.config import MqttSettings
from footfall.contracts.events import DEADLETTER_REASONS, EventError
from footfall.contracts.influx import InfluxClient
from footfall.ingest.service import IngestService, IngestSettings
from tests.event_samples import VALID

TOPIC = "footfall/v1/store-a/cam-1/crossing"


def _message(payload: bytes) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=0, topic=TOPIC.encode())
    msg.payload = payload
    return msg


def test_a_bug_in_ingest_is_an_internal_error_with_its_message_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(service, "message_lines", broken)  # stands in for any defect of ours
    ingest = IngestService(
        IngestSettings(mqtt=MqttSettings(host="127.0.0.1")), InfluxClient("http://127.0.0.1:9", "footfall")
    )
    payload = json.dumps(VALID["crossing"]).encode()
    with caplog.at_level(logging.ERROR, logger=service.log.name):
        ingest._on_message(ingest._client, None, _message(payload))
    (letter,) = ingest._pending.letters
    assert letter.reason == "internal_error"
    assert "a bug in the fast path" in letter.detail
    assert letter.payload == payload.decode()
    assert ingest._pending.deadletters == {"internal_error": 1}
    assert any(r.exc_info and "a bug in the fast path" in str(r.exc_info[1]) for r in caplog.records)


def test_internal_error_is_a_dead_letter_reason_but_never_the_senders() -> None:
    assert "internal_error" in DEADLETTER_REASONS
    assert "internal_error" not in EventError.REASONS
