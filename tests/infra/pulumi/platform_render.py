"""Run the Pulumi program under `pulumi.runtime.set_mocks` (the official unit-test method;
no Kubernetes API server can run here) and turn what it registered into manifests.

`render("prod")` reads infra/Pulumi.prod.yaml exactly as `pulumi up --stack prod` would,
registers every resource against the mock monitor and returns what the program asked for.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
INFRA = REPO_ROOT / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))

from fraudwatch_infra import credentials  # noqa: E402
from fraudwatch_infra.config import parse_config  # noqa: E402
from fraudwatch_infra.platform import PlatformSecrets, build_platform  # noqa: E402

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"
# Values the test supplies as `pulumi config set --secret`; they must never appear in clear.
TABLEAU_PAT_SECRET = "tableau-pat-TEST-7f3a9c"
API_TOKEN_HASHES = "sha256:TEST-hashes-0d1e2f"
# The seed every generated credential is derived from (fraudwatch:credentialsSeed).
CREDENTIALS_SEED = "TEST-seed-for-the-mock-renderings-4c7e1b9a2f"
REDACTED = "<secret>"
BUILT_IN_GROUPS = {
    "core",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
}


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def is_core_kubernetes(self) -> bool:
        """A built-in Kubernetes kind (not a CustomResource, not a Helm release)."""
        if not self.type.startswith("kubernetes:"):
            return False
        return self.type.split(":")[1].split("/")[0] in BUILT_IN_GROUPS

    @property
    def is_custom_resource(self) -> bool:
        return (
            self.type.startswith("kubernetes:")
            and not self.is_core_kubernetes
            and not self.type.startswith("kubernetes:helm.sh")
        )

    @property
    def manifest_kind(self) -> str:
        return str(self.inputs.get("kind", self.kind))

    def manifest(self) -> dict[str, Any]:
        """The object as `kubectl apply` would receive it, secrets redacted."""
        return redact(self.inputs)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def redact(value: Any, inside_secret: bool = False) -> Any:
    """Drop the secret wrappers, replacing every string inside one by a placeholder."""
    if is_secret(value):
        return redact(value["value"], True)
    if isinstance(value, dict):
        return {k: redact(v, inside_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, inside_secret) for v in value]
    if inside_secret and isinstance(value, str):
        return REDACTED
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the RPC layer carries every number as a double
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string in `value` that is not inside a secret."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plain_strings(v)


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@dataclass
class Rendering:
    stack: str
    resources: list[Registered]
    generated_secrets: list[str]
    outputs: dict[str, Any]

    def of_kind(self, kind: str) -> list[Registered]:
        return [r for r in self.resources if r.manifest_kind == kind or r.kind == kind]

    def one(self, kind: str, name: str) -> Registered:
        matches = [
            r
            for r in self.of_kind(kind)
            if r.inputs.get("metadata", {}).get("name") == name or r.name == name
        ]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    @property
    def core(self) -> list[Registered]:
        return [r for r in self.resources if r.is_core_kubernetes]

    @property
    def custom(self) -> list[Registered]:
        return [r for r in self.resources if r.is_custom_resource]

    @property
    def releases(self) -> list[Registered]:
        return [r for r in self.resources if r.type == "kubernetes:helm.sh/v3:Release"]

    @property
    def secret_values(self) -> list[str]:
        return [*self.generated_secrets, TABLEAU_PAT_SECRET, API_TOKEN_HASHES, CREDENTIALS_SEED]


def stack_config(stack: str) -> dict[str, Any]:
    """The `fraudwatch:` keys of infra/Pulumi.<stack>.yaml, without the namespace."""
    document = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


def render(
    stack: str,
    *,
    stack_name: str | None = None,
    raw: dict[str, Any] | None = None,
    dashboards_dir: Path | None = None,
) -> Rendering:
    """Register the whole platform for a stack's configuration against the mocks."""
    raw_config = raw if raw is not None else stack_config(stack)
    config = parse_config(raw_config)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="fraudwatch", stack=stack_name or stack, preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        secrets = PlatformSecrets(
            tableau_pat_secret=pulumi.Output.secret(TABLEAU_PAT_SECRET),
            intervention_api_token_hashes=pulumi.Output.secret(API_TOKEN_HASHES),
            credentials_seed=pulumi.Output.secret(CREDENTIALS_SEED),
        )
        outputs.update(build_platform(config, secrets, dashboards_dir))

    program()
    generated = credentials.issued_values(CREDENTIALS_SEED)
    return Rendering(stack, mocks.resources, generated, outputs)


def config_as_pulumi_strings(raw: dict[str, Any]) -> dict[str, str]:
    """Stack config the way the Pulumi engine hands it to a program (objects as JSON)."""
    return {f"fraudwatch:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
