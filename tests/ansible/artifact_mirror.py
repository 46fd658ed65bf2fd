"""Fill the artefact mirror directory an air-gapped Ansible run installs from.

Layout (documented in docs/operations/bare-metal.md, consumed through `artifact_mirror_dir`):

    <mirror>/kafka/kafka-<version>.tar.gz        the broker and its tools: every runtime jar of
                                                 org.apache.kafka:kafka_2.13 + kafka-tools,
                                                 fetched from Maven Central with `mvn`
    <mirror>/elasticsearch/elasticsearch-oss-<version>-jars.tar.gz
                                                 the stand-in Elasticsearch (design.md §5): the
                                                 OSS 7.10.2 server and modules from Maven Central
                                                 (CodeLibs' cluster runner publishes them), with
                                                 a patched log4j
    <mirror>/python/fraudwatch-<version>-wheelhouse.tar.gz
                                                 the fraudwatch wheel built from this checkout
                                                 plus every dependency wheel (`pip download`)
    <mirror>/python/spark-<version>-wheelhouse.tar.gz
                                                 pyspark (Spark's jars and launchers) and py4j
    <mirror>/python/airflow-<version>-wheelhouse.tar.gz
                                                 apache-airflow with the fraudwatch wheel and
                                                 every dependency of both, resolved together
    <mirror>/ferretdb/ferretdb-<version>-linux-<arch>
                                                 the MongoDB stand-in, built with `go` from the
                                                 Go module proxy

Run directly (``python tests/ansible/artifact_mirror.py [DIR]``) or through the test fixtures.
Everything is cached under the repository's git-ignored ``.cache/ansible/mirror``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MIRROR = REPO_ROOT / ".cache" / "ansible" / "mirror"
# The version the sample inventories deploy, and the one upgrade.yml is tested rolling to.
KAFKA_VERSIONS = ("4.0.0", "4.1.0")
LOG4J_VERSION = "2.24.3"
# The Elasticsearch the tests converge: Elastic publishes no runnable distribution to Maven
# Central, so the role's `oss-jars` build is used (see roles/elasticsearch/defaults/main.yml).
ELASTICSEARCH_OSS_VERSION = "7.10.2"
# 7.10.2 was built with log4j 2.11.1 (CVE-2021-44228); the fixed line it runs with.
ELASTICSEARCH_LOG4J_VERSION = "2.17.2"
# Extras of the fraudwatch distribution a host needs to run `serve`, `stream` and `score`,
# taken when pyproject.toml declares them.
SERVICE_EXTRAS = ("serve", "intervention", "api", "stream", "kafka")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fraudwatch.tests</groupId><artifactId>kafka-mirror</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{kafka}</version></dependency>
    <!-- the broker logs through slf4j 1.x: route it to log4j2, which writes to the journal -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def kafka_archive(mirror: Path, version: str) -> Path:
    """Fetch the Kafka broker's runtime jars with Maven and pack them as one archive."""
    return _maven_archive(
        mirror / "kafka" / f"kafka-{version}.tar.gz",
        _POM.format(kafka=version, log4j=LOG4J_VERSION),
        f"kafka-{version}",
    )


_ES_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fraudwatch.tests</groupId><artifactId>elasticsearch-mirror</artifactId><version>1</version>
  <dependencyManagement><dependencies>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>org.codelibs</groupId><artifactId>elasticsearch-cluster-runner</artifactId>
      <version>{version}.0</version></dependency>
  </dependencies>
</project>
"""


def _maven_archive(archive: Path, pom_text: str, top: str) -> Path:
    """Copy a pom's runtime closure into `<top>/libs` and pack it as `archive` (once)."""
    if archive.exists():
        return archive
    if shutil.which("mvn") is None:
        raise SystemExit("mvn is not installed: run tests/ansible/install-host-tools.sh")
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(pom_text)
        libs = Path(work) / top / "libs"
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            check=True,
        )
        # Unique per process: two test sessions may fill the same cache at once.
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(libs.parent, arcname=top)
        partial.rename(archive)
    return archive


def elasticsearch_oss_archive(mirror: Path, version: str = ELASTICSEARCH_OSS_VERSION) -> Path:
    """The OSS Elasticsearch server and modules as jars, for the role's `oss-jars` build."""
    return _maven_archive(
        mirror / "elasticsearch" / f"elasticsearch-oss-{version}-jars.tar.gz",
        _ES_POM.format(version=version, log4j=ELASTICSEARCH_LOG4J_VERSION),
        f"elasticsearch-oss-{version}",
    )


def fraudwatch_extras() -> list[str]:
    """The extras of this checkout's pyproject.toml a service host installs."""
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    return [name for name in SERVICE_EXTRAS if name in declared]


def _checkout_fingerprint() -> str:
    digest = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes())
    for path in sorted((REPO_ROOT / "workloads" / "fraudwatch").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def fraudwatch_wheelhouse(mirror: Path) -> Path:
    """Build the fraudwatch wheel from this checkout and download its dependency wheels."""
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    archive = mirror / "python" / f"fraudwatch-{version}-wheelhouse.tar.gz"
    stamp = archive.with_suffix(".source")
    fingerprint = _checkout_fingerprint()
    if archive.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    with tempfile.TemporaryDirectory() as work:
        wheelhouse = Path(work) / "wheelhouse"
        build_dir = Path(work) / "build"
        shutil.copytree(
            REPO_ROOT,
            build_dir,
            ignore=shutil.ignore_patterns(
                ".git",
                ".cache",
                # Every virtualenv and tool cache of the checkout (gigabytes, none in the wheel).
                ".venv*",
                ".airflow-venv",
                ".*_cache",
                ".hypothesis",
                "*.egg-info",
                "build",
                "tests",
                "node_modules",
                "__pycache__",
            ),
        )
        subprocess.run(
            [*pip, "wheel", "--no-deps", "-w", str(wheelhouse), str(build_dir)], check=True
        )
        extras = fraudwatch_extras()
        requirement = (
            f"fraudwatch[{','.join(extras)}]=={version}" if extras else (f"fraudwatch=={version}")
        )
        subprocess.run(
            [
                *pip,
                "download",
                "--only-binary=:all:",
                "--find-links",
                str(wheelhouse),
                "-d",
                str(wheelhouse),
                requirement,
                "pip",
                "setuptools",
                "wheel",
            ],
            check=True,
        )
        # Unique per process: two test sessions may fill the same cache at once.
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            tar.add(wheelhouse, arcname=f"fraudwatch-{version}-wheelhouse")
        partial.rename(archive)
    stamp.write_text(fingerprint)
    return archive


def ferretdb_binary(mirror: Path) -> Path:
    """<mirror>/ferretdb/ferretdb-<version>-linux-<arch>: the mongodb role's `ferretdb` stand-in.

    FerretDB v1.24 (design.md §5), built with `go` from the Go module proxy by
    tests/servers/ferretdb.py's own build() (it works around the module zip's missing version
    file and keeps its build cache); the static binary is then copied into the mirror.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "fraudwatch_tests_ferretdb", REPO_ROOT / "tests" / "servers" / "ferretdb.py"
    )
    assert spec is not None and spec.loader is not None
    ferretdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ferretdb)
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    version = str(ferretdb.VERSION).removeprefix("v")
    target = mirror / "ferretdb" / f"ferretdb-{version}-linux-{arch}"
    if target.exists():
        return target
    if shutil.which("go") is None:
        raise SystemExit("go is not installed: FerretDB is built from the Go module proxy")
    built = Path(ferretdb.build())
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process: two test sessions may fill the same cache at once.
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.copyfile(built, partial)
    partial.chmod(0o755)
    partial.rename(target)
    return target


# The Spark and Airflow the analytics roles deploy (roles spark and airflow): the workloads'
# pyspark pin (pyproject.toml, extra `spark`) and the Airflow tier's (tests/airflow/
# setup_airflow_venv.sh). Raise them together with the roles' defaults; test_analytics.py
# checks that all of them agree.
SPARK_VERSION = "4.0.0"
AIRFLOW_VERSION = "3.3.2"


def _pip_wheels(target: Path, requirements: list[str], find_links: Path | None = None) -> None:
    """Every wheel `requirements` need, resolved together, into `target` (`pip wheel` from the
    package index by name: wheels as published, a wheel built here for a source-only release
    such as pyspark's)."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    links = ["--find-links", str(find_links)] if find_links else []
    subprocess.run([*pip, "wheel", *links, "-w", str(target), *requirements], check=True)


def _pack_wheelhouse(wheels: Path, archive: Path) -> None:
    """Pack a wheel directory as `archive` (its top folder named after the archive)."""
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        tar.add(wheels, arcname=archive.name.removesuffix(".tar.gz"))
    partial.rename(archive)


def spark_wheelhouse(mirror: Path, version: str = SPARK_VERSION) -> Path:
    """python/spark-<version>-wheelhouse.tar.gz: pyspark (Spark's jars and launchers) and py4j."""
    archive = mirror / "python" / f"spark-{version}-wheelhouse.tar.gz"
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        _pip_wheels(Path(work) / "wheels", [f"pyspark=={version}"])
        _pack_wheelhouse(Path(work) / "wheels", archive)
    return archive


def airflow_wheelhouse(mirror: Path, version: str = AIRFLOW_VERSION) -> Path:
    """python/airflow-<version>-wheelhouse.tar.gz: apache-airflow, the fraudwatch wheel of this
    checkout (its DAGs and steps) and every dependency of both, resolved together.

    The dependency wheels depend only on the Airflow version and fraudwatch's declared
    dependencies: when only fraudwatch's code changed, the previous archive's wheels are kept and
    just the fraudwatch wheel is replaced.
    """
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    archive = mirror / "python" / f"airflow-{version}-wheelhouse.tar.gz"
    stamp = archive.with_suffix(".source")
    dependencies = hashlib.sha256(
        "\n".join([version, *project["dependencies"]]).encode()
    ).hexdigest()[:12]
    wanted = f"{dependencies} {_checkout_fingerprint()}"
    previous = stamp.read_text().split() if archive.exists() and stamp.exists() else []
    if previous == wanted.split():
        return archive
    top = archive.name.removesuffix(".tar.gz")
    fraudwatch_wheel = f"fraudwatch-{project['version']}-py3-none-any.whl"
    with tempfile.TemporaryDirectory() as work:
        own = Path(work) / "fraudwatch"
        with tarfile.open(fraudwatch_wheelhouse(mirror)) as tar:
            member = tar.getmember(f"fraudwatch-{project['version']}-wheelhouse/{fraudwatch_wheel}")
            member.name = fraudwatch_wheel
            tar.extract(member, own, filter="data")
        wheels = Path(work) / top
        if previous[:1] == [dependencies]:
            with tarfile.open(archive) as tar:
                tar.extractall(work, filter="data")
            for old in wheels.glob("fraudwatch-*.whl"):
                old.unlink()
            shutil.copy2(own / fraudwatch_wheel, wheels / fraudwatch_wheel)
        else:
            archive.parent.mkdir(parents=True, exist_ok=True)
            _pip_wheels(
                wheels, [f"apache-airflow=={version}", f"fraudwatch=={project['version']}"], own
            )
        _pack_wheelhouse(wheels, archive)
    stamp.write_text(wanted)
    return archive


def analytics_wheelhouses(mirror: Path) -> list[Path]:
    """The wheelhouses of the spark and airflow roles."""
    return [spark_wheelhouse(mirror), airflow_wheelhouse(mirror)]


def build_mirror(mirror: Path = DEFAULT_MIRROR) -> Path:
    """Fill every artefact the roles install from; return the mirror directory."""
    for version in KAFKA_VERSIONS:
        kafka_archive(mirror, version)
    elasticsearch_oss_archive(mirror)
    fraudwatch_wheelhouse(mirror)
    ferretdb_binary(mirror)
    analytics_wheelhouses(mirror)
    return mirror


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MIRROR
    print(build_mirror(target))
