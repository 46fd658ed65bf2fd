"""Ceph radosgw serves S3: boto3 and pyarrow's S3 file system put, get and list, path-style."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


@pytest.fixture
def s3(ceph_s3):
    return boto3.client(
        "s3",
        endpoint_url=ceph_s3.endpoint,
        aws_access_key_id=ceph_s3.access_key,
        aws_secret_access_key=ceph_s3.secret_key,
        region_name=ceph_s3.region,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def _arrow_s3(ceph_s3) -> fs.S3FileSystem:
    scheme, _, host = ceph_s3.endpoint.partition("://")
    return fs.S3FileSystem(
        access_key=ceph_s3.access_key,
        secret_key=ceph_s3.secret_key,
        endpoint_override=host,
        scheme=scheme,
        region=ceph_s3.region,
        force_virtual_addressing=False,
    )


def test_boto3_put_get_list(s3, bucket):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"raw/part-{i}.json", Body=f'{{"i": {i}}}'.encode())

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="raw/")
    assert [o["Key"] for o in listed["Contents"]] == [f"raw/part-{i}.json" for i in range(3)]
    assert s3.get_object(Bucket=bucket, Key="raw/part-1.json")["Body"].read() == b'{"i": 1}'


def test_wrong_secret_is_refused(ceph_s3, bucket):
    intruder = boto3.client(
        "s3",
        endpoint_url=ceph_s3.endpoint,
        aws_access_key_id=ceph_s3.access_key,
        aws_secret_access_key="not-the-secret",
        region_name=ceph_s3.region,
    )
    with pytest.raises(ClientError) as refused:
        intruder.list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")


def test_pyarrow_parquet_round_trip_seen_by_boto3(ceph_s3, s3, bucket):
    arrow = _arrow_s3(ceph_s3)
    table = pa.table({"user_id": ["u1", "u2", "u3"], "amount": [1.5, 20.0, 300.25]})
    pq.write_table(table, f"{bucket}/raw/transactions/part-0.parquet", filesystem=arrow)

    assert pq.read_table(f"{bucket}/raw/transactions", filesystem=arrow).equals(table)
    listed = arrow.get_file_info(fs.FileSelector(f"{bucket}/raw", recursive=True))
    assert f"{bucket}/raw/transactions/part-0.parquet" in {i.path for i in listed}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["raw/transactions/part-0.parquet"]
