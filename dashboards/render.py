"""Regenerate every generated file under dashboards/ from its Python source.

    python dashboards/render.py            # rewrite the committed files (`make render`)
    python dashboards/render.py --out DIR  # render into DIR instead (the stale-file test)
    python dashboards/render.py --check    # exit 1 and list the files that are stale

Generated: grafana/<dashboard>.json (one per *_dashboard.py), grafana/provisioning/alerting/
fraudwatch.yaml (alert_rules.py), grafana/provisioning/datasources/fraudwatch.yaml
(datasources.py) and tableau/fraudwatch.tds (fraudwatch.publish.tableau). The Elasticsearch
definitions under elasticsearch/ are hand-written JSON, not generated.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
GRAFANA_SOURCES = HERE / "grafana"
REGENERATE = "python dashboards/render.py (make render)"
#: Output file stem → the module under grafana/ whose build() returns the dashboard builder.
DASHBOARDS = {
    "anomaly-overview": "anomaly_overview_dashboard",
    "interventions": "interventions_dashboard",
    "pipeline-health": "pipeline_health_dashboard",
    "platform": "platform_dashboard",
}


def _import(name: str) -> Any:
    if str(GRAFANA_SOURCES) not in sys.path:
        sys.path.insert(0, str(GRAFANA_SOURCES))
    return importlib.import_module(name)


def dashboard_json(stem: str) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, with a key saying how to regenerate it."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    built = _import(DASHBOARDS[stem]).build().build()
    model = json.loads(JSONEncoder(sort_keys=True).encode(built))
    return {
        "__generated__": f"Generated from dashboards/grafana/{DASHBOARDS[stem]}.py by {REGENERATE}; do not edit.",
        **model,
    }


def _yaml(document: dict[str, Any], source: str) -> str:
    header = f"# Generated from dashboards/grafana/{source} by {REGENERATE}; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def rendered_files() -> dict[str, str]:
    """Relative path under dashboards/ → file content."""
    files: dict[str, str] = {}
    for stem in DASHBOARDS:
        text = json.dumps(dashboard_json(stem), indent=2, sort_keys=False, ensure_ascii=False)
        files[f"grafana/{stem}.json"] = text + "\n"
    files["grafana/provisioning/alerting/fraudwatch.yaml"] = _yaml(
        _import("alert_rules").provisioning(), "alert_rules.py"
    )
    files["grafana/provisioning/datasources/fraudwatch.yaml"] = _yaml(
        _import("datasources").provisioning(), "datasources.py"
    )
    from fraudwatch.publish.tableau import tds_template

    files["tableau/fraudwatch.tds"] = tds_template(REGENERATE)
    return files


def render(out: Path) -> list[Path]:
    """Write every generated file under `out`; return their paths."""
    written = []
    for relative, content in rendered_files().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale(committed: Path = HERE) -> list[str]:
    """Generated files whose committed copy differs from a fresh render (or is missing)."""
    with tempfile.TemporaryDirectory() as scratch:
        render(Path(scratch))
        return [
            relative
            for relative in rendered_files()
            if not (committed / relative).is_file()
            or (committed / relative).read_text(encoding="utf-8")
            != (Path(scratch) / relative).read_text(encoding="utf-8")
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE, help="default: dashboards/ itself")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.out)
        for name in names:
            print(f"stale: dashboards/{name} (run {REGENERATE})")
        return 1 if names else 0
    for path in render(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
