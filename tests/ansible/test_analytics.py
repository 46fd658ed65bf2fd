"""The analytics roles on one systemd host: Spark standalone (master + worker) and Airflow 3.

Both install from the artefact mirror's wheelhouses (pyspark for Spark, Airflow with the
fraudwatch wheel for its DAGs). Deploy twice (nothing changes the second time), then check them
as an operator would: services up and enabled, on the host's address only, small daemon heaps;
the worker registered with the master, a job submitted to the cluster returns the right answer
and a client without the cluster's secret is refused; Airflow's scheduler and DAG processor
healthy, the fraudwatch DAGs parsed without import errors, the API closed to anonymous callers
and open to the admin with the vault's password, and the daily DAG run by the scheduler once
unpaused.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml
from artifact_mirror import AIRFLOW_VERSION, REPO_ROOT, SPARK_VERSION
from conftest import request_json
from test_single_node import assert_serving

ADDRESS = "10.89.71.61"
HOST = "fraudwatch-1"
MASTER_UI = f"http://{ADDRESS}:8080"
AIRFLOW_API = f"http://{ADDRESS}:8090"
DAG_IDS = {"fraudwatch_daily", "fraudwatch_retrain"}
SPARK_SUBMIT = "/opt/spark/bin/spark-submit"
# Drivers and executors of the smoke jobs: small, next to 256 MB daemons in a 4 GB host.
JOB_MEMORY = "--driver-memory 512m --executor-memory 512m --total-executor-cores 1"
JOB = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("fraudwatch-smoke").getOrCreate()
numbers = spark.sparkContext.parallelize(range(1, 1001), 4)
print("sum-of-squares", numbers.map(lambda n: n * n).sum())
spark.stop()
"""

#: The pipelines' configuration on the host: a small day (tests/airflow's scale), retries off.
PIPELINE = {
    "models": ["iforest"],
    "fit_users": 500,
    "retries": 0,
    "demo": {"users": 1_000, "transactions": 10_000, "seed": 7, "fraud_rate": 0.02},
}

#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,spark,airflow")


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    site = site_factory(
        "single-node",
        {HOST: ADDRESS},
        groups={"spark_master": [HOST], "spark_worker": [HOST], "airflow": [HOST]},
        spark_daemon_memory="256m",
        spark_worker_memory="1g",
        spark_worker_cores=2,
        airflow_parallelism=2,
        airflow_fraudwatch_pipeline=PIPELINE,
        # Not what this module is about: no Prometheus server (the node exporter stays).
        prometheus_server_enabled=False,
    )
    return site


def get_json(url: str, token: str | None = None) -> Any:
    """GET from the test, i.e. across the network and the host's firewall."""
    return request_json("GET", url, token=token)


def status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def airflow_token(username: str, password: str) -> urllib.request.Request:
    return urllib.request.Request(
        f"{AIRFLOW_API}/auth/token",
        method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )


@pytest.fixture(scope="module")
def admin_token(site: Any, host: Any) -> str:
    """An API token of the admin, with the password from the vault."""
    password = site.secrets["vault_airflow_admin_password"]
    with urllib.request.urlopen(airflow_token("admin", password), timeout=60) as response:
        assert response.status == 201
        token: str = json.load(response)["access_token"]
        return token


def role_default(role: str, name: str) -> Any:
    defaults = REPO_ROOT / "ansible" / "roles" / role / "defaults" / "main.yml"
    return yaml.safe_load(defaults.read_text())[name]


def test_00_roles_deploy_the_versions_the_project_runs() -> None:
    """The roles, the mirror and the workloads agree on Spark's and Airflow's versions."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    spark_extra = pyproject["project"]["optional-dependencies"]["spark"]
    assert f"pyspark=={SPARK_VERSION}" in spark_extra
    assert role_default("spark", "spark_version") == SPARK_VERSION
    setup = (REPO_ROOT / "tests" / "airflow" / "setup_airflow_venv.sh").read_text()
    assert re.findall(r'"apache-airflow==([^"]+)"', setup) == [AIRFLOW_VERSION]
    assert role_default("airflow", "airflow_version") == AIRFLOW_VERSION
    assert role_default("airflow", "airflow_fraudwatch_version") == pyproject["project"]["version"]


@pytest.fixture(scope="module")
def no_secret_submit(site: Any, first_deploy: Any) -> str:
    """The smoke job submitted by a client without the cluster's secret, in the background.

    The driver gives up on an unresponsive master only after three 20-second registration
    attempts: it starts once the first deploy has brought the master up and runs while the
    second deploy and the other checks do; the last test reads its outcome (it changes nothing
    the deploy manages).
    """
    import testinfra

    assert first_deploy.returncode == 0, first_deploy.explain()
    host = testinfra.get_host(f"podman://{site.hosts[0].container}")
    host.run(f"cat > /root/smoke.py <<'EOF'\n{JOB}EOF")
    host.run("touch /root/no-secret.conf && rm -f /root/no-secret.rc /root/no-secret.out")
    started = host.run(
        "systemd-run --unit spark-no-secret-probe --collect sh -c "
        f"'SPARK_LOCAL_IP={ADDRESS} timeout 300 {SPARK_SUBMIT} --properties-file "
        f"/root/no-secret.conf --master spark://{ADDRESS}:7077 {JOB_MEMORY} /root/smoke.py "
        "> /root/no-secret.out 2>&1; echo $? > /root/no-secret.rc'"
    )
    assert started.rc == 0, started.stderr
    return "/root/no-secret.rc"


def test_01_deploy_converges(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(no_secret_submit: str, second_deploy: Any) -> None:
    assert second_deploy.returncode == 0, second_deploy.explain()
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


# --- spark --------------------------------------------------------------------------------


def test_spark_daemons_serve_on_the_host_address_only(host: Any) -> None:
    assert_serving(host, "spark-master", 7077, ADDRESS)
    assert_serving(host, "spark-master", 8080, ADDRESS)
    assert_serving(host, "spark-worker", 7078, ADDRESS)
    assert_serving(host, "spark-worker", 8081, ADDRESS)
    daemons = host.process.filter(user="spark", comm="java")
    assert len(daemons) == 2
    assert all("-Xmx256m" in daemon.args for daemon in daemons)
    assert host.file("/opt/spark/current").linked_to == f"/opt/spark/venv-{SPARK_VERSION}"
    settings = host.file("/etc/spark/spark-defaults.conf")
    assert (settings.user, settings.group, settings.mode) == ("root", "spark", 0o640)
    assert "spark.authenticate              true" in settings.content_string


def test_the_worker_is_registered_with_the_master(host: Any) -> None:
    master = get_json(f"{MASTER_UI}/json/")
    assert master["status"] == "ALIVE"
    assert master["aliveworkers"] == 1
    (worker,) = master["workers"]
    assert (worker["host"], worker["state"]) == (ADDRESS, "ALIVE")
    assert (worker["cores"], worker["memory"]) == (2, 1024)


def test_a_job_submitted_to_the_cluster_returns_the_right_answer(host: Any) -> None:
    submitted = host.run(
        f"SPARK_LOCAL_IP={ADDRESS} {SPARK_SUBMIT} --master spark://{ADDRESS}:7077 "
        f"{JOB_MEMORY} /root/smoke.py"
    )
    assert submitted.rc == 0, submitted.stderr[-3000:]
    assert "sum-of-squares 333833500" in submitted.stdout
    finished = get_json(f"{MASTER_UI}/json/")["completedapps"]
    assert [(app["name"], app["state"]) for app in finished] == [("fraudwatch-smoke", "FINISHED")]


# --- airflow ------------------------------------------------------------------------------


def test_airflow_runs_with_its_api_on_the_host_address_only(host: Any) -> None:
    for unit in ("airflow-scheduler", "airflow-dag-processor"):
        service = host.service(unit)
        assert service.is_running, host.run(f"journalctl -u {unit} -n 40 --no-pager").stdout
        assert service.is_enabled
    assert host.service("airflow-db-migrate").is_enabled
    assert_serving(host, "airflow-api-server", 8090, ADDRESS)
    assert host.file("/opt/airflow/current").linked_to == f"/opt/airflow/venv-{AIRFLOW_VERSION}"
    environment = host.file("/etc/airflow/airflow.env")
    assert (environment.user, environment.group, environment.mode) == ("root", "airflow", 0o640)
    passwords = host.file("/var/lib/airflow/passwords.json")
    assert (passwords.user, passwords.mode) == ("airflow", 0o600)


def test_airflow_reports_a_healthy_scheduler_and_dag_processor(host: Any) -> None:
    health = get_json(f"{AIRFLOW_API}/api/v2/monitor/health")
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    assert health["dag_processor"]["status"] == "healthy"


def test_the_api_refuses_anonymous_callers_and_serves_the_admin(
    host: Any, admin_token: str
) -> None:
    assert status_of(urllib.request.Request(f"{AIRFLOW_API}/api/v2/dags")) in {401, 403}
    assert status_of(airflow_token("admin", "not-the-password")) == 401
    assert "dags" in get_json(f"{AIRFLOW_API}/api/v2/dags", admin_token)


def test_the_fraudwatch_dags_are_parsed_without_import_errors(host: Any, admin_token: str) -> None:
    # The DAG processor parses the folder shortly after it starts; give it time on a busy host.
    deadline = time.monotonic() + 300
    while True:
        dags = get_json(f"{AIRFLOW_API}/api/v2/dags", admin_token)["dags"]
        if {dag["dag_id"] for dag in dags} >= DAG_IDS or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert {dag["dag_id"] for dag in dags} == DAG_IDS
    # New DAGs wait paused until an operator unpauses them.
    assert all(dag["is_paused"] for dag in dags)
    assert get_json(f"{AIRFLOW_API}/api/v2/importErrors", admin_token)["total_entries"] == 0
    # The same through the airflow command an operator runs on the host.
    listed = host.run("/opt/airflow/bin/airflow dags list --output json")
    assert listed.rc == 0, listed.stderr
    # (its last line: Airflow prints warnings to standard output before it)
    assert {dag["dag_id"] for dag in json.loads(listed.stdout.splitlines()[-1])} == DAG_IDS


def test_the_scheduler_runs_the_daily_dag_once_unpaused(host: Any, admin_token: str) -> None:
    """Unpaused, the scheduler starts the latest day's run; the LocalExecutor runs every step."""
    unpause = urllib.request.Request(
        f"{AIRFLOW_API}/api/v2/dags/fraudwatch_daily",
        method="PATCH",
        data=json.dumps({"is_paused": False}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"},
    )
    assert status_of(unpause) == 200
    runs_url = f"{AIRFLOW_API}/api/v2/dags/fraudwatch_daily/dagRuns"
    deadline = time.monotonic() + 600
    while True:
        runs = get_json(runs_url, admin_token)["dag_runs"]
        if any(run["state"] in {"success", "failed"} for run in runs):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(5)
    run = next(run for run in runs if run["state"] in {"success", "failed"})
    tasks = get_json(f"{runs_url}/{run['dag_run_id']}/taskInstances", admin_token)
    states = {task["task_id"]: task["state"] for task in tasks["task_instances"]}
    assert run["state"] == "success", states
    # Publishing is off in the pipeline's configuration: those steps are skipped.
    assert states.pop("publish_elasticsearch") == states.pop("publish_tableau") == "skipped"
    assert set(states.values()) == {"success"}, states
    scored = host.run("ls /var/lib/airflow/fraudwatch/pipeline/scored/*/")
    assert scored.rc == 0 and ".parquet" in scored.stdout, scored.stdout + scored.stderr


def test_a_client_without_the_cluster_secret_is_refused(host: Any, no_secret_submit: str) -> None:
    deadline = time.monotonic() + 360
    while not host.file(no_secret_submit).exists and time.monotonic() < deadline:
        time.sleep(5)
    output = host.file("/root/no-secret.out").content_string
    assert host.file(no_secret_submit).content_string.strip() not in {"0", "124"}, output[-3000:]
    assert "sum-of-squares" not in output
    # Refused for the reason intended: the master demands authentication (SASL).
    assert "SASL" in output, output[-3000:]
    master = get_json(f"{MASTER_UI}/json/")
    assert [app["name"] for app in master["completedapps"] + master["activeapps"]] == [
        "fraudwatch-smoke"
    ]
