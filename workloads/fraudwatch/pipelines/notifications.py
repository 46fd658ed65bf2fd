"""Notifications of the pipelines: an event appended to the home's notifications.jsonl and,
when the configured webhook variable is set, POSTed there (failed tasks, refused candidates,
alert conditions)."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from datetime import UTC, datetime

from fraudwatch.pipelines.config import PipelineConfig

log = logging.getLogger("fraudwatch.pipelines")


def notify(config: PipelineConfig, message: str) -> None:
    """Append to notifications.jsonl and, when the webhook variable is set, POST it there."""
    event = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "message": message}
    config.notifications_file.parent.mkdir(parents=True, exist_ok=True)
    with config.notifications_file.open("a") as f:
        f.write(json.dumps(event) + "\n")
    log.warning("%s", message)
    url = os.environ.get(config.alert_webhook_env)
    if url:
        request = urllib.request.Request(
            url, json.dumps(event).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except OSError as exc:  # a failing webhook must not hide the original failure
            log.error("could not post the notification to $%s: %s", config.alert_webhook_env, exc)
