#!/usr/bin/env bash
# Create <repo>/.airflow-venv: Apache Airflow 3 with the Kubernetes provider (pods and
# SparkApplications) and the Apache Spark provider (SparkSubmitOperator), kubernetes-validate
# and pytest, plus fraudwatch's runtime dependencies and what the daily DAG's steps use in the
# worker: confluent-kafka (source: kafka) and the Tableau Hyper API (publish_tableau).
# spark-submit itself is not installed here (the provider pulls the thin pyspark-client): the
# spark-submit runner finds it on PATH, e.g. <repo>/.venv/bin from the workloads' pyspark.
#
# Airflow pins many packages of its own, so it lives apart from the workloads' .venv.
# fraudwatch itself is not pip-installed here: a .pth file puts <repo>/workloads on the path,
# so the DAGs and the tests always run the checked-out code and no build writes egg-info
# into the shared source tree. Re-running the script is safe and quick.
#
# Usage: bash tests/airflow/setup_airflow_venv.sh   (PYTHON=python3.11 to pick an interpreter)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${AIRFLOW_VENV:-$REPO/.airflow-venv}"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

# fraudwatch's runtime dependencies, read from pyproject.toml (no copy to drift out of date).
mapfile -t FRAUDWATCH_DEPS < <("$PY" - "$REPO/pyproject.toml" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PYEOF
)

# Pinned to the versions the tests were written against (Airflow's own constraint files are
# not reachable from CI); raise them together and rerun tests/airflow.
"$PY" -m pip install --quiet \
    "apache-airflow==3.3.2" \
    "apache-airflow-providers-cncf-kubernetes==10.25.0" \
    "apache-airflow-providers-apache-spark==6.3.4" \
    "confluent-kafka>=2.6" \
    "tableauhyperapi>=0.0.20000" \
    "kubernetes-validate==1.37.0" \
    "PyYAML>=6" \
    "pytest>=8" \
    "${FRAUDWATCH_DEPS[@]}"

SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$REPO/workloads" > "$SITE/fraudwatch-workloads.pth"

"$PY" -c 'import airflow, fraudwatch; print("airflow", airflow.__version__, "+ fraudwatch ready in", __import__("sys").prefix)'
