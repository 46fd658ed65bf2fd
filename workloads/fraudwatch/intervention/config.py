"""Settings of the intervention service: one TOML file plus environment overrides.

The file is `$FRAUDWATCH_CONFIG`, else `$FRAUDWATCH_HOME/intervention.toml` when it exists;
`$FRAUDWATCH_HOME` defaults to `~/.fraudwatch`. Every key and its environment variable is
listed in docs/intervention.md. A bad value raises a UserError naming the key and the fix.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX, USERS_INDEX
from fraudwatch.errors import UserError
from fraudwatch.locations.home import fraudwatch_home
from fraudwatch.locations.secrets_dir import secret_file
from fraudwatch.scoring.thresholds import THRESHOLDS
from fraudwatch.streaming.user_history import DEFAULT_PER_USER


def default_scored_dir() -> Path:
    """Where `fraudwatch demo` writes its scored output."""
    return fraudwatch_home() / "demo" / "scored"


@dataclass(frozen=True)
class PolicySettings:
    step_up_at: float = THRESHOLDS.step_up_at
    lock_at: float = THRESHOLDS.lock_at
    dry_run: bool = False
    allow_list: frozenset[int] = frozenset()
    max_automated_locks: int = 10
    window_seconds: int = 3600
    #: After an analyst or admin acted on an account, automation leaves it alone this long
    #: (and for the rest of any alert that was already firing when they acted).
    human_override_seconds: int = 86400


@dataclass(frozen=True)
class OidcSettings:
    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    role_claim: str = "fraudwatch_role"

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


@dataclass(frozen=True)
class ElasticsearchSettings:
    """Where the Elasticsearch results reader looks (results.elasticsearch_*)."""

    url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    ca_cert: str = ""
    transactions_index: str = TRANSACTIONS_INDEX
    users_index: str = USERS_INDEX
    model_version: str = ""  # empty: the newest published run
    timeout_seconds: float = 10.0


#: What an inline decision may answer (`POST /v1/decisions`); also the choices of
#: decisions.fallback.
DECISION_VALUES = ("allow", "step_up", "block")


def default_decisions_registry() -> Path:
    """The model registry the daily pipeline promotes into ($FRAUDWATCH_HOME/models)."""
    return fraudwatch_home() / "models"


def default_decisions_history() -> Path:
    """The decision route's own per-user history (a DuckDB file, see docs/intervention.md)."""
    return fraudwatch_home() / "decisions" / "user-history.duckdb"


@dataclass(frozen=True)
class DecisionSettings:
    """The inline decision route (decisions.*, docs/intervention.md "Inline decisions")."""

    #: The model registry whose promoted version scores (re-read on every decision).
    registry: Path = field(default_factory=default_decisions_registry)
    #: The users' kept transactions, as the stream keeps them (streaming/user_history.py).
    history_path: Path = field(default_factory=default_decisions_history)
    history_per_user: int = DEFAULT_PER_USER
    #: An answer takes at most this long; past it the fallback is answered.
    budget_ms: int = 2000
    #: The answer when no model version is promoted, scoring fails or the budget runs out.
    fallback: str = "step_up"
    #: Decisions running at once; one more is shed with 503 + Retry-After.
    max_in_flight: int = 4
    #: Recorded decisions are kept this many days (pruned as decisions are written).
    retention_days: int = 30


@dataclass(frozen=True)
class Settings:
    state_url: str = ""
    scored_dir: Path = field(default_factory=default_scored_dir)
    elasticsearch_url: str = ""
    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    decisions: DecisionSettings = field(default_factory=DecisionSettings)
    hook_secret: str = ""
    hook_max_alerts: int = 1000
    hook_replay_window_seconds: int = 300
    hook_dedupe_seconds: int = 7 * 86400
    #: Body limit of the alert hooks: a notification of hooks.max_alerts Grafana alerts
    #: (a few KiB each with labels, annotations and URLs) must fit.
    hook_max_body_bytes: int = 4 * 1024 * 1024
    max_body_bytes: int = 65536
    #: Addresses/networks whose X-Forwarded-Proto is believed (the TLS ingress).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    #: True: every cookie is Secure and every response has HSTS, whatever the request said.
    always_https: bool = False
    #: Serve /docs and /redoc (the interactive API pages); off by default.
    api_docs: bool = False
    #: The key of the pseudonyms viewers see instead of device ids (docs/privacy.md); no
    #: default: unset, viewers get those values redacted.
    pseudonym_key: str = field(default="", repr=False)
    source: str = "defaults"

    def with_scored(self, scored: Path | None) -> Settings:
        return self if scored is None else replace(self, scored_dir=Path(scored))

    @property
    def resolved_state_url(self) -> str:
        return self.state_url or f"sqlite:///{fraudwatch_home() / 'intervention.sqlite3'}"


# key in the file -> environment variable that overrides it
ENV_OVERRIDES: dict[str, str] = {
    "state.url": "FRAUDWATCH_STATE_URL",
    "results.scored": "FRAUDWATCH_SCORED",
    "results.elasticsearch_url": "FRAUDWATCH_ELASTICSEARCH_URL",
    "results.elasticsearch_username": "FRAUDWATCH_ES_USERNAME",
    "results.elasticsearch_password": "FRAUDWATCH_ES_PASSWORD",
    "results.elasticsearch_api_key": "FRAUDWATCH_ES_API_KEY",
    "results.elasticsearch_ca_cert": "FRAUDWATCH_ES_CA_CERT",
    "results.elasticsearch_transactions_index": "FRAUDWATCH_ES_TRANSACTIONS_INDEX",
    "results.elasticsearch_users_index": "FRAUDWATCH_ES_USERS_INDEX",
    "results.elasticsearch_model_version": "FRAUDWATCH_ES_MODEL_VERSION",
    "results.elasticsearch_timeout_seconds": "FRAUDWATCH_ES_TIMEOUT_SECONDS",
    "oidc.issuer": "FRAUDWATCH_OIDC_ISSUER",
    "oidc.audience": "FRAUDWATCH_OIDC_AUDIENCE",
    "oidc.jwks_url": "FRAUDWATCH_OIDC_JWKS_URL",
    "oidc.role_claim": "FRAUDWATCH_OIDC_ROLE_CLAIM",
    "policy.step_up_at": "FRAUDWATCH_POLICY_STEP_UP_AT",
    "policy.lock_at": "FRAUDWATCH_POLICY_LOCK_AT",
    "policy.dry_run": "FRAUDWATCH_DRY_RUN",
    "policy.allow_list": "FRAUDWATCH_ALLOW_LIST",
    "circuit_breaker.max_automated_locks": "FRAUDWATCH_MAX_AUTOMATED_LOCKS",
    "circuit_breaker.window_seconds": "FRAUDWATCH_BREAKER_WINDOW_SECONDS",
    "hooks.hmac_secret": "FRAUDWATCH_HOOK_SECRET",
    "hooks.max_alerts": "FRAUDWATCH_HOOK_MAX_ALERTS",
    "hooks.replay_window_seconds": "FRAUDWATCH_HOOK_REPLAY_WINDOW_SECONDS",
    "hooks.dedupe_seconds": "FRAUDWATCH_HOOK_DEDUPE_SECONDS",
    "hooks.max_body_bytes": "FRAUDWATCH_HOOK_MAX_BODY_BYTES",
    "policy.human_override_seconds": "FRAUDWATCH_HUMAN_OVERRIDE_SECONDS",
    "server.max_body_bytes": "FRAUDWATCH_MAX_BODY_BYTES",
    "server.trusted_proxies": "FRAUDWATCH_TRUSTED_PROXIES",
    "server.always_https": "FRAUDWATCH_ALWAYS_HTTPS",
    "server.api_docs": "FRAUDWATCH_API_DOCS",
    "privacy.pseudonym_key": "FRAUDWATCH_PSEUDONYM_KEY",
    "decisions.registry": "FRAUDWATCH_DECISIONS_REGISTRY",
    "decisions.history_path": "FRAUDWATCH_DECISIONS_HISTORY",
    "decisions.history_per_user": "FRAUDWATCH_DECISIONS_HISTORY_PER_USER",
    "decisions.budget_ms": "FRAUDWATCH_DECISIONS_BUDGET_MS",
    "decisions.fallback": "FRAUDWATCH_DECISIONS_FALLBACK",
    "decisions.max_in_flight": "FRAUDWATCH_DECISIONS_MAX_IN_FLIGHT",
    "decisions.retention_days": "FRAUDWATCH_DECISIONS_RETENTION_DAYS",
}


def config_path() -> Path:
    explicit = os.environ.get("FRAUDWATCH_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return fraudwatch_home() / "intervention.toml"


def _flatten(doc: dict[str, Any], origin: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise UserError(
                f"config key {section!r} in {origin}: expected a [{section}] table; "
                f"known keys: {', '.join(sorted(ENV_OVERRIDES))}"
            )
        for key, value in body.items():
            flat[f"{section}.{key}"] = value
    unknown = sorted(set(flat) - set(ENV_OVERRIDES))
    if unknown:
        raise UserError(
            f"unknown config key {unknown[0]!r} in {origin}: "
            f"use one of {', '.join(sorted(ENV_OVERRIDES))}"
        )
    return flat


def _number(key: str, value: Any, origin: str, low: float, high: float, example: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not (low <= number <= high):
        raise UserError(
            f"config key {key} = {value!r} in {origin}: must be a number in [{low:g}, {high:g}]; "
            f"set it to e.g. {example}"
        )
    return number


def _integer(key: str, value: Any, origin: str, low: int, example: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = low - 1
    if isinstance(value, bool) or number < low:
        raise UserError(
            f"config key {key} = {value!r} in {origin}: must be a whole number >= {low}; "
            f"set it to e.g. {example}"
        )
    return number


def _boolean(key: str, value: Any, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise UserError(f"config key {key} = {value!r} in {origin}: must be true or false")


def _allow_list(key: str, value: Any, origin: str) -> frozenset[int]:
    items = value.split(",") if isinstance(value, str) else value
    try:
        return frozenset(int(str(item).strip()) for item in items if str(item).strip())
    except (TypeError, ValueError):
        raise UserError(
            f"config key {key} = {value!r} in {origin}: must be a list of user ids, "
            f"e.g. [1001, 1002] in the file or 1001,1002 in the environment"
        ) from None


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the config file (when present) and apply environment overrides."""
    env = dict(os.environ if environ is None else environ)
    path = path or config_path()
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    source = "defaults"
    if path.is_file():
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise UserError(
                f"config file {path} is not valid TOML ({err}): fix the syntax"
            ) from None
        values.update(_flatten(doc, str(path)))
        origins.update(dict.fromkeys(values, str(path)))
        source = str(path)
    elif env.get("FRAUDWATCH_CONFIG"):
        raise UserError(
            f"FRAUDWATCH_CONFIG points at {path}, which does not exist: create it or unset it"
        )
    for key, var in ENV_OVERRIDES.items():
        if env.get(var) not in (None, ""):
            values[key] = env[var]
            origins[key] = f"environment variable {var}"

    def origin(key: str) -> str:
        return origins.get(key, "defaults")

    defaults = PolicySettings()
    step_up = _number(
        "policy.step_up_at",
        values.get("policy.step_up_at", defaults.step_up_at),
        origin("policy.step_up_at"),
        0,
        1,
        str(THRESHOLDS.step_up_at),
    )
    lock = _number(
        "policy.lock_at",
        values.get("policy.lock_at", defaults.lock_at),
        origin("policy.lock_at"),
        0,
        1,
        str(THRESHOLDS.lock_at),
    )
    if lock < step_up:
        raise UserError(
            f"config key policy.lock_at = {lock} is below policy.step_up_at = {step_up}: "
            "locking must need a higher score than step-up; raise policy.lock_at"
        )
    policy = PolicySettings(
        step_up_at=step_up,
        lock_at=lock,
        dry_run=_boolean(
            "policy.dry_run", values.get("policy.dry_run", False), origin("policy.dry_run")
        ),
        allow_list=_allow_list(
            "policy.allow_list", values.get("policy.allow_list", []), origin("policy.allow_list")
        ),
        max_automated_locks=_integer(
            "circuit_breaker.max_automated_locks",
            values.get("circuit_breaker.max_automated_locks", defaults.max_automated_locks),
            origin("circuit_breaker.max_automated_locks"),
            0,
            "10",
        ),
        window_seconds=_integer(
            "circuit_breaker.window_seconds",
            values.get("circuit_breaker.window_seconds", defaults.window_seconds),
            origin("circuit_breaker.window_seconds"),
            1,
            "3600",
        ),
        human_override_seconds=_integer(
            "policy.human_override_seconds",
            values.get("policy.human_override_seconds", defaults.human_override_seconds),
            origin("policy.human_override_seconds"),
            0,
            "86400",
        ),
    )
    oidc = OidcSettings(
        issuer=str(values.get("oidc.issuer", "")),
        audience=str(values.get("oidc.audience", "")),
        jwks_url=str(values.get("oidc.jwks_url", "")),
        role_claim=str(values.get("oidc.role_claim", "fraudwatch_role")),
    )
    if oidc.enabled and not (oidc.audience and oidc.jwks_url):
        raise UserError(
            "config key oidc.issuer is set but oidc.audience or oidc.jwks_url is empty: "
            "set both (or clear oidc.issuer to use API tokens only)"
        )
    state_url = str(values.get("state.url", ""))
    if state_url and not state_url.startswith(("sqlite:///", "mongodb://", "mongodb+srv://")):
        raise UserError(
            f"config key state.url = {state_url!r} in {origin('state.url')}: use "
            "sqlite:///ABSOLUTE/PATH or mongodb://HOST:PORT/DATABASE"
        )
    scored = values.get("results.scored")
    elasticsearch = _elasticsearch(values, origin, env)
    decisions = _decisions(values, origin)
    return Settings(
        state_url=state_url,
        scored_dir=Path(str(scored)).expanduser() if scored else default_scored_dir(),
        elasticsearch_url=elasticsearch.url,
        elasticsearch=elasticsearch,
        oidc=oidc,
        policy=policy,
        decisions=decisions,
        hook_secret=str(values.get("hooks.hmac_secret", "")),
        hook_max_alerts=_integer(
            "hooks.max_alerts",
            values.get("hooks.max_alerts", 1000),
            origin("hooks.max_alerts"),
            1,
            "1000",
        ),
        hook_replay_window_seconds=_integer(
            "hooks.replay_window_seconds",
            values.get("hooks.replay_window_seconds", 300),
            origin("hooks.replay_window_seconds"),
            1,
            "300",
        ),
        hook_dedupe_seconds=_integer(
            "hooks.dedupe_seconds",
            values.get("hooks.dedupe_seconds", 7 * 86400),
            origin("hooks.dedupe_seconds"),
            0,
            "604800",
        ),
        hook_max_body_bytes=_integer(
            "hooks.max_body_bytes",
            values.get("hooks.max_body_bytes", Settings.hook_max_body_bytes),
            origin("hooks.max_body_bytes"),
            1024,
            str(Settings.hook_max_body_bytes),
        ),
        max_body_bytes=_integer(
            "server.max_body_bytes",
            values.get("server.max_body_bytes", 65536),
            origin("server.max_body_bytes"),
            1024,
            "65536",
        ),
        trusted_proxies=_networks(
            "server.trusted_proxies",
            values.get("server.trusted_proxies", ["127.0.0.1", "::1"]),
            origin("server.trusted_proxies"),
        ),
        always_https=_boolean(
            "server.always_https",
            values.get("server.always_https", False),
            origin("server.always_https"),
        ),
        api_docs=_boolean(
            "server.api_docs", values.get("server.api_docs", False), origin("server.api_docs")
        ),
        pseudonym_key=_pseudonym_key(values, origin, env),
        source=source,
    )


def _decisions(values: dict[str, Any], origin: Any) -> DecisionSettings:
    """The decisions.* keys, checked."""
    defaults = DecisionSettings()
    fallback = str(values.get("decisions.fallback", defaults.fallback)).strip().lower()
    if fallback not in DECISION_VALUES:
        raise UserError(
            f"config key decisions.fallback = {fallback!r} in {origin('decisions.fallback')}: "
            f"use one of {', '.join(DECISION_VALUES)} (step_up is the safe default)"
        )

    def whole(key: str, low: int, default: int) -> int:
        return _integer(
            f"decisions.{key}",
            values.get(f"decisions.{key}", default),
            origin(f"decisions.{key}"),
            low,
            str(default),
        )

    registry = values.get("decisions.registry")
    history = values.get("decisions.history_path")
    return DecisionSettings(
        registry=Path(str(registry)).expanduser() if registry else defaults.registry,
        history_path=Path(str(history)).expanduser() if history else defaults.history_path,
        history_per_user=whole("history_per_user", 1, defaults.history_per_user),
        budget_ms=whole("budget_ms", 1, defaults.budget_ms),
        fallback=fallback,
        max_in_flight=whole("max_in_flight", 1, defaults.max_in_flight),
        retention_days=whole("retention_days", 1, defaults.retention_days),
    )


def _networks(key: str, value: Any, origin: str) -> tuple[str, ...]:
    import ipaddress

    items = value.split(",") if isinstance(value, str) else value
    try:
        return tuple(
            str(ipaddress.ip_network(str(item).strip(), strict=False))
            for item in items
            if str(item).strip()
        )
    except (TypeError, ValueError):
        raise UserError(
            f"config key {key} = {value!r} in {origin}: must be IP addresses or networks, "
            'e.g. ["10.0.0.0/8"] in the file or 10.0.0.0/8,127.0.0.1 in the environment'
        ) from None


#: The shortest pseudonym key accepted (a short key can be guessed, and with it every
#: pseudonym reversed by hashing candidate device ids).
MIN_PSEUDONYM_KEY_CHARS = 16


def _pseudonym_key(values: dict[str, Any], origin: Any, env: dict[str, str]) -> str:
    """privacy.pseudonym_key (or $FRAUDWATCH_SECRETS_DIR/pseudonym-key), checked; "" when unset."""
    key = str(values.get("privacy.pseudonym_key", "")).strip() or secret_file("pseudonym-key", env)
    if key and len(key) < MIN_PSEUDONYM_KEY_CHARS:
        raise UserError(
            f"config key privacy.pseudonym_key in {origin('privacy.pseudonym_key')} is "
            f"{len(key)} characters: use at least {MIN_PSEUDONYM_KEY_CHARS} random ones, e.g. "
            "the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return key


def _elasticsearch(
    values: dict[str, Any], origin: Any, env: dict[str, str]
) -> ElasticsearchSettings:
    """The results.elasticsearch_* keys, checked. Credentials are optional (an open node needs
    none) and have no default: an API key, else a username with its password."""
    url = str(values.get("results.elasticsearch_url", "")).strip()
    if url and not url.startswith(("http://", "https://")):
        raise UserError(
            f"config key results.elasticsearch_url = {url!r} in "
            f"{origin('results.elasticsearch_url')}: must start with http:// or https://, "
            "e.g. http://127.0.0.1:9200"
        )
    defaults = ElasticsearchSettings()
    api_key = str(values.get("results.elasticsearch_api_key", "")) or secret_file("es-api-key", env)
    username = str(values.get("results.elasticsearch_username", ""))
    password = str(values.get("results.elasticsearch_password", "")) or secret_file(
        "es-password", env
    )
    if url and username and not api_key and not password:
        raise UserError(
            f"config key results.elasticsearch_username is set in "
            f"{origin('results.elasticsearch_username')} but no password: set "
            "FRAUDWATCH_ES_PASSWORD (or $FRAUDWATCH_SECRETS_DIR/es-password), or use an API key"
        )
    ca_cert = str(values.get("results.elasticsearch_ca_cert", ""))
    if url and ca_cert and not Path(ca_cert).expanduser().is_file():
        raise UserError(
            f"config key results.elasticsearch_ca_cert = {ca_cert!r} in "
            f"{origin('results.elasticsearch_ca_cert')}: no such file; give the cluster's CA file"
        )
    indices: dict[str, str] = {}
    for key, default in (
        ("transactions_index", defaults.transactions_index),
        ("users_index", defaults.users_index),
    ):
        name = str(values.get(f"results.elasticsearch_{key}", "") or default)
        if not name or name != name.lower() or any(c in name for c in ' "*\\/<>|?,#'):
            raise UserError(
                f"config key results.elasticsearch_{key} = {name!r} in "
                f"{origin(f'results.elasticsearch_{key}')}: not an index or alias name; "
                f"use e.g. {default}"
            )
        indices[key] = name
    return ElasticsearchSettings(
        url=url,
        username=username,
        password=password,
        api_key=api_key,
        ca_cert=ca_cert,
        transactions_index=indices["transactions_index"],
        users_index=indices["users_index"],
        model_version=str(values.get("results.elasticsearch_model_version", "")),
        timeout_seconds=_number(
            "results.elasticsearch_timeout_seconds",
            values.get("results.elasticsearch_timeout_seconds", defaults.timeout_seconds),
            origin("results.elasticsearch_timeout_seconds"),
            0.1,
            300,
            "10",
        ),
    )
