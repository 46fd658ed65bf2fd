"""Package the fraudwatch chart with the repository's Grafana dashboards inside.

The dashboards live once, in dashboards/grafana/*.json. This script copies the chart to a
scratch directory, puts the dashboards in its chart-local dashboards/ folder (git-ignored in
the source tree) and runs `helm package` through the Helm SDK, so the archive carries them
while the repository keeps no second copy.

    python charts/fraudwatch/scripts/package_chart.py --destination dist/

Needs helm-python-sdk (pip install helm-python-sdk).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

CHART_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = CHART_DIR.parents[1]
DEFAULT_DASHBOARDS = REPO_ROOT / "dashboards" / "grafana"
# Kubernetes caps a ConfigMap at 1 MiB; leave room for metadata.
MAX_DASHBOARD_BYTES = 900 * 1024


class DashboardError(ValueError):
    """A dashboard file that Grafana's sidecar could not load."""


def check_dashboard(path: Path) -> None:
    """Fail with a one-line message when `path` is not a loadable Grafana dashboard."""
    size = path.stat().st_size
    if size > MAX_DASHBOARD_BYTES:
        raise DashboardError(
            f"{path}: {size} bytes exceeds the {MAX_DASHBOARD_BYTES}-byte ConfigMap budget; "
            "split the dashboard"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DashboardError(f"{path}: not valid JSON ({exc}); regenerate the dashboard") from exc
    if not isinstance(document, dict) or not document.get("title"):
        raise DashboardError(
            f"{path}: not a Grafana dashboard (a JSON object with a 'title'); "
            "check the file under dashboards/grafana/"
        )


def stage_chart(chart_dir: Path, dashboards_dir: Path, staging: Path) -> tuple[Path, list[str]]:
    """Copy the chart into `staging` with the dashboards added; return its path and file names."""
    chart_dir = chart_dir.resolve()
    staged = staging / chart_dir.name
    skip_always = shutil.ignore_patterns("__pycache__", "*.tgz")

    def skip(directory: str, names: list[str]) -> set[str]:
        # A stale chart-local dashboards/ (left by hand) must not leak into the package.
        stale = {"dashboards"} if Path(directory) == chart_dir else set()
        return set(skip_always(directory, names)) | stale

    shutil.copytree(chart_dir, staged, ignore=skip)
    target = staged / "dashboards"
    target.mkdir()
    copied: list[str] = []
    if dashboards_dir.is_dir():
        for source in sorted(dashboards_dir.glob("*.json")):
            check_dashboard(source)
            shutil.copy2(source, target / source.name)
            copied.append(source.name)
    return staged, copied


def package_chart(
    destination: Path,
    *,
    chart_dir: Path = CHART_DIR,
    dashboards_dir: Path = DEFAULT_DASHBOARDS,
) -> tuple[Path, list[str]]:
    """Package the chart with the dashboards into `destination`; return the archive path."""
    import helm_python as helm

    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fraudwatch-chart-") as scratch:
        staged, copied = stage_chart(chart_dir, dashboards_dir, Path(scratch))
        lint = helm.lint(staged, strict=True)
        errors = [m["error"] for m in lint["messages"] if m["severity"] >= 2] + lint["errors"]
        if errors:
            raise DashboardError(f"the staged chart does not lint: {'; '.join(errors)}")
        archive = helm.package(staged, destination=destination.resolve())
    return Path(archive), copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destination", type=Path, default=REPO_ROOT / "dist")
    parser.add_argument("--chart", type=Path, default=CHART_DIR)
    parser.add_argument("--dashboards", type=Path, default=DEFAULT_DASHBOARDS)
    args = parser.parse_args(argv)
    try:
        archive, copied = package_chart(
            args.destination, chart_dir=args.chart, dashboards_dir=args.dashboards
        )
    except DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not copied:
        print(f"warning: no dashboards found in {args.dashboards}; packaged without any")
    print(f"packaged {archive} with {len(copied)} dashboard(s): {', '.join(copied) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
