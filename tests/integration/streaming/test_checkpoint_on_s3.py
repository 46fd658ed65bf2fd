"""A deployment keeps the stream's checkpoint on Ceph S3 (the Helm chart's default): the
stream resumes from it, and the users' history goes to a local folder keyed by it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from fraudwatch.locations import storage
from fraudwatch.streaming.job import run_stream
from fraudwatch.streaming.produce import produce_raw
from fraudwatch.streaming.stream_settings import StreamSettings

pytestmark = pytest.mark.spark


def test_a_checkpoint_on_s3_resumes_where_the_last_run_stopped(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, ceph_s3, tmp_path, monkeypatch
):
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "home"))
    tag = uuid.uuid4().hex[:8]
    bucket, prefix, index = f"stream-{tag}", f"s3ck{tag}.", f"stream-s3-{tag}"
    fs = storage.s3_filesystem()
    fs.create_dir(bucket)
    counts = produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
    settings = StreamSettings(
        bootstrap_servers=kafka_broker.url,
        models_dir=tiny_data_set.models_dir,
        es_url=elasticsearch_node.url,
        checkpoint=f"s3://{bucket}/checkpoints/stream",
        topic_prefix=prefix,
        es_index=index,
        available_now=True,
    )

    first = run_stream(settings, spark)
    assert sum(r.indexed for r in first.results) == counts["transactions"]
    written = fs.get_file_info(pafs.FileSelector(f"{bucket}/checkpoints/stream", recursive=True))
    assert any("/offsets/" in info.path for info in written)
    assert any("/commits/" in info.path for info in written)
    # DuckDB needs a local file: the history is under $FRAUDWATCH_HOME, named by the checkpoint.
    assert settings.history_path.is_file()
    assert settings.history_path.is_relative_to(Path(tmp_path / "home" / "stream-state"))

    again = run_stream(settings, spark)  # nothing new in the topics: resumes at the end
    assert sum(r.valid["transactions"] for r in again.results) == 0
