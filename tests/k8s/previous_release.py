"""The previous release of this repository, for the upgrade tests of the k8s tier.

There are no release tags yet, so the tests name a commit: PREVIOUS_RELEASE, the last commit
before the refactors of infra/ on 2026-12-07 whose program ran green under `make test-k8s`
(its infra/ and charts/ are those of 4103bf9, the commit that completed test_k8s_pulumi). When
a release is tagged, put its commit here.

`materialise()` writes that commit's files into a temporary directory with `git archive` (the
working tree is never touched). A clone without that commit (a shallow CI clone) fails the
test with a message saying to clone with history: it is never skipped.

Run as a script (`python previous_release.py REQUEST.json`, with PYTHONPATH naming the
previous release's infra/), it runs that release's own program (fraudwatch_infra.program.main)
as an Automation API inline program: `pulumi up` of one stack, in a process of its own, since
one Python process cannot import two versions of the package fraudwatch_infra.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PREVIOUS_RELEASE = "b7ebcaf964a126457f8690349bd0bbcffbf52a95"


class MissingHistory(AssertionError):
    """The clone lacks the commit the upgrade tests start from."""


def require_commit(commit: str = PREVIOUS_RELEASE) -> None:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
    )
    if found.returncode != 0:
        raise MissingHistory(
            f"commit {commit} (the previous release the upgrade tests start from, "
            "tests/k8s/previous_release.py) is not in this clone. Clone with history "
            "(git clone without --depth, or `git fetch --unshallow`) to run the upgrade tests."
        )


def materialise(target: Path, paths: tuple[str, ...], commit: str = PREVIOUS_RELEASE) -> Path:
    """`paths` (repository-relative) as they were at `commit`, unpacked under `target`."""
    require_commit(commit)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "--", *paths],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _up(request: dict) -> dict:
    """`pulumi up` of the stack described by `request` with the previous release's program."""
    from fraudwatch_infra import program
    from pulumi import automation as auto

    module = Path(program.__file__).resolve()
    if not module.is_relative_to(Path(request["infra"]).resolve()):
        raise SystemExit(f"fraudwatch_infra imported from {module}, not the previous release")
    stack = auto.create_or_select_stack(
        request["stack"],
        project_name="fraudwatch",
        program=program.main,
        opts=auto.LocalWorkspaceOptions(
            work_dir=request["work_dir"],
            pulumi_home=request["env"]["PULUMI_HOME"],
            env_vars=request["env"],
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=request["cli_root"], skip_version_check=True),
        ),
    )
    for key, value in request["secrets"].items():
        stack.set_config(key, auto.ConfigValue(value, secret=True))
    result = stack.up(color="never", on_output=print)
    return {
        "result": result.summary.result,
        "resource_changes": result.summary.resource_changes or {},
    }


if __name__ == "__main__":
    outcome = _up(json.loads(Path(sys.argv[1]).read_text()))
    Path(sys.argv[2]).write_text(json.dumps(outcome))
