"""The config file and its environment overrides; bad values name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from fraudwatch.errors import UserError
from fraudwatch.intervention.config import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intervention.toml"
    path.write_text(text)
    return path


def test_defaults_follow_fraudwatch_home(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", {"FRAUDWATCH_HOME": str(tmp_path)})
    assert (settings.policy.step_up_at, settings.policy.lock_at) == (0.99, 0.999)
    assert settings.policy.dry_run is False


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[state]
url = "mongodb://127.0.0.1:27017/fraudwatch"
[policy]
step_up_at = 0.7
allow_list = [11, 12]
[circuit_breaker]
max_automated_locks = 3
""",
    )
    settings = load_settings(path, {"FRAUDWATCH_POLICY_LOCK_AT": "0.9"})
    assert settings.state_url.startswith("mongodb://")
    assert settings.policy.step_up_at == 0.7 and settings.policy.lock_at == 0.9
    assert settings.policy.allow_list == frozenset({11, 12})
    assert settings.policy.max_automated_locks == 3


@pytest.mark.parametrize(
    ("text", "env", "words"),
    [
        ("[policy]\nlock_at = 1.5\n", {}, "policy.lock_at = 1.5"),
        ("[policy]\nlock_at = 0.5\n", {}, "raise policy.lock_at"),
        ("[policy]\nthreshold = 0.5\n", {}, "unknown config key 'policy.threshold'"),
        ('[state]\nurl = "postgres://x"\n', {}, "sqlite:///"),
        ("[policy\n", {}, "not valid TOML"),
        ("", {"FRAUDWATCH_DRY_RUN": "maybe"}, "FRAUDWATCH_DRY_RUN"),
        ("", {"FRAUDWATCH_MAX_AUTOMATED_LOCKS": "-1"}, "circuit_breaker.max_automated_locks"),
        ('[oidc]\nissuer = "https://idp.invalid"\n', {}, "oidc.audience"),
    ],
)
def test_bad_config_names_the_key_and_the_fix(
    tmp_path: Path, text: str, env: dict[str, str], words: str
) -> None:
    with pytest.raises(UserError) as err:
        load_settings(write(tmp_path, text), env)
    assert words in str(err.value)
    assert "\n" not in str(err.value)
