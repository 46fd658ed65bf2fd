"""How fraudwatch's Kafka clients authenticate: one place for the producer, the admin client,
the landing consumer (librdkafka settings) and the Spark Kafka source (`kafka.*` options).

From the environment (docs/streaming.md):

    FRAUDWATCH_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
    FRAUDWATCH_KAFKA_SASL_MECHANISM     SCRAM-SHA-512 (default with SASL) | SCRAM-SHA-256 | PLAIN
    FRAUDWATCH_KAFKA_USERNAME           the SASL user
    FRAUDWATCH_KAFKA_PASSWORD           its password, else the file $FRAUDWATCH_SECRETS_DIR/kafka-password
    FRAUDWATCH_KAFKA_CA_FILE            PEM bundle the brokers' certificates are checked against

The Strimzi cluster the Pulumi stack deploys listens with SASL_SSL and SCRAM-SHA-512.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudwatch.errors import UserError
from fraudwatch.locations.secrets_dir import secret

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = {
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
}
PASSWORD_FILE = "kafka-password"


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UserError(
                f"FRAUDWATCH_KAFKA_SECURITY_PROTOCOL={self.protocol!r} is not one of "
                f"{', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise UserError(
                    f"FRAUDWATCH_KAFKA_SASL_MECHANISM={self.mechanism!r} is not one of "
                    f"{', '.join(MECHANISMS)}"
                )
            if not self.username or not self.password:
                raise UserError(
                    f"{self.protocol} needs FRAUDWATCH_KAFKA_USERNAME and a password in "
                    "FRAUDWATCH_KAFKA_PASSWORD or $FRAUDWATCH_SECRETS_DIR/kafka-password"
                )
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UserError(
                f"FRAUDWATCH_KAFKA_CA_FILE={self.ca_file} does not exist; give the brokers' CA "
                "bundle (PEM)"
            )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> KafkaSecurity:
        env = os.environ if environ is None else environ
        protocol = env.get("FRAUDWATCH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
        password = secret("FRAUDWATCH_KAFKA_PASSWORD", PASSWORD_FILE, env) or None
        ca = env.get("FRAUDWATCH_KAFKA_CA_FILE")
        sasl = protocol.startswith("SASL_")
        return cls(
            protocol=protocol,
            mechanism=env.get("FRAUDWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
            if sasl
            else None,
            username=env.get("FRAUDWATCH_KAFKA_USERNAME") or None,
            password=password or None,
            ca_file=Path(ca) if ca else None,
        )

    def librdkafka(self) -> dict[str, Any]:
        """Settings for confluent-kafka's Producer, Consumer and AdminClient."""
        settings: dict[str, Any] = {"security.protocol": self.protocol.lower()}
        if self.sasl:
            settings.update(
                {
                    "sasl.mechanism": self.mechanism,
                    "sasl.username": self.username,
                    "sasl.password": self.password,
                }
            )
        if self.ca_file is not None:
            settings["ssl.ca.location"] = str(self.ca_file)
        return settings

    def spark_options(self) -> dict[str, str]:
        """`kafka.*` options for Spark's Kafka source (the Java client's names)."""
        options = {"kafka.security.protocol": self.protocol}
        if self.sasl:
            assert self.mechanism is not None and self.username and self.password
            options["kafka.sasl.mechanism"] = self.mechanism
            options["kafka.sasl.jaas.config"] = (
                f"{MECHANISMS[self.mechanism]} required "
                f"username={_jaas_quote(self.username)} password={_jaas_quote(self.password)};"
            )
        if self.ca_file is not None:
            options["kafka.ssl.truststore.type"] = "PEM"
            options["kafka.ssl.truststore.location"] = str(self.ca_file)
        return options


def client_config(bootstrap: str, **settings: Any) -> dict[str, Any]:
    """librdkafka settings for a client of `bootstrap`, with the environment's security."""
    return {"bootstrap.servers": bootstrap, **KafkaSecurity.from_env().librdkafka(), **settings}
