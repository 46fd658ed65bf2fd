"""Kafka client authentication from the environment: the same settings reach librdkafka (the
producer, admin client and landing consumer) and Spark's Kafka source. The real SASL listener
is exercised in tests/integration/streaming/test_kafka_sasl.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fraudwatch.errors import UserError
from fraudwatch.streaming.kafka_security import KafkaSecurity


def test_plaintext_by_default() -> None:
    security = KafkaSecurity.from_env({})
    assert security.librdkafka() == {"security.protocol": "plaintext"}
    assert security.spark_options() == {"kafka.security.protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram_and_a_ca_file_from_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "kafka-password").write_text('pa"ss\\word\n')
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    security = KafkaSecurity.from_env(
        {
            "FRAUDWATCH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "FRAUDWATCH_KAFKA_USERNAME": "fraudwatch-scorer",
            "FRAUDWATCH_SECRETS_DIR": str(tmp_path),
            "FRAUDWATCH_KAFKA_CA_FILE": str(ca),
        }
    )
    assert security.librdkafka() == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "fraudwatch-scorer",
        "sasl.password": 'pa"ss\\word',
        "ssl.ca.location": str(ca),
    }
    options = security.spark_options()
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    # Quotes and backslashes in the password are escaped for the JAAS line.
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="fraudwatch-scorer" password="pa\\"ss\\\\word";'
    )
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == str(ca)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FRAUDWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "is not one of PLAINTEXT, SSL"),
        (
            {"FRAUDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FRAUDWATCH_KAFKA_USERNAME": "u"},
            "needs FRAUDWATCH_KAFKA_USERNAME and a password",
        ),
        (
            {
                "FRAUDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "FRAUDWATCH_KAFKA_SASL_MECHANISM": "GSSAPI",
                "FRAUDWATCH_KAFKA_USERNAME": "u",
                "FRAUDWATCH_KAFKA_PASSWORD": "p",
            },
            "FRAUDWATCH_KAFKA_SASL_MECHANISM='GSSAPI' is not one of",
        ),
        ({"FRAUDWATCH_KAFKA_CA_FILE": "/nonexistent/ca.crt"}, "does not exist"),
    ],
)
def test_bad_settings_name_the_variable_and_the_fix(environ: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        KafkaSecurity.from_env(environ)
