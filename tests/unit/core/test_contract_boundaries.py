"""The detector does not know the simulator: features, models and scoring import nothing
from fraudwatch.generator, nor do the event schemas the stream and landing validate against
(shared constants and the raw events' vocabulary and schemas live in fraudwatch.contract)."""

from __future__ import annotations

import ast
from pathlib import Path

import fraudwatch
import pytest

ROOT = Path(fraudwatch.__file__).parent
DETECTOR_PACKAGES = ("features", "models", "scoring")
#: Modules outside the detector that read events and must not take their vocabulary from the
#: simulator (the `produce` command, which replays generated data into Kafka, may).
EVENT_READERS = ("streaming", "landing.py", "contract")  # every module of streaming/ ...
# ... but the producer: it sends the simulator's events to Kafka, so it is the generator's side.
EVENT_WRITERS = ("streaming/produce.py",)


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source text imports, at the top or inside a function; `package` is the
    package the file belongs to (to resolve relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def generator_imports(source: str, package: str) -> list[str]:
    return sorted(
        m
        for m in imported_modules(source, package)
        if m == "fraudwatch.generator" or m.startswith("fraudwatch.generator.")
    )


def detector_files() -> list[Path]:
    return sorted(f for p in DETECTOR_PACKAGES for f in (ROOT / p).rglob("*.py"))


def event_reader_files() -> list[Path]:
    found: list[Path] = []
    for name in EVENT_READERS:
        path = ROOT / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in found if str(f.relative_to(ROOT)) not in EVENT_WRITERS]


def test_every_detector_package_is_scanned():
    scanned = {f.relative_to(ROOT).parts[0] for f in detector_files()}
    assert scanned == set(DETECTOR_PACKAGES)


@pytest.mark.parametrize("path", detector_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_detector_modules_do_not_import_the_generator(path: Path):
    package = ".".join(("fraudwatch", *path.relative_to(ROOT).parts[:-1]))
    found = generator_imports(path.read_text(encoding="utf-8"), package)
    assert found == [], f"{path.name} imports {found}; move what it needs to fraudwatch.contract"


@pytest.mark.parametrize("path", event_reader_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_event_readers_and_the_contract_do_not_import_the_generator(path: Path):
    assert path.is_file(), f"{path} is gone: update EVENT_READERS"
    package = ".".join(("fraudwatch", *path.relative_to(ROOT).parts[:-1]))
    found = generator_imports(path.read_text(encoding="utf-8"), package)
    assert found == [], f"{path.name} imports {found}; read fraudwatch.contract.events instead"


@pytest.mark.parametrize(
    "source",
    [
        "from fraudwatch.generator.scenarios import SCENARIOS\n",
        "def f():\n    import fraudwatch.generator.personas\n",
        "from ..generator import scenarios\n",
        "from fraudwatch import generator\n",
    ],
)
def test_the_scan_catches_every_form_of_import(source: str):
    assert generator_imports(source, "fraudwatch.features") != []


#: Packages downstream of publishing or beside it import nothing from it: they talk to
#: Elasticsearch through fraudwatch.elasticsearch and read a scored directory through
#: fraudwatch.contract.
PUBLISH_INDEPENDENT = ("intervention", "streaming", "privacy", "feedback")
PUBLISHER = "fraudwatch.publish"


def publish_independent_files() -> list[Path]:
    return sorted(f for p in PUBLISH_INDEPENDENT for f in (ROOT / p).rglob("*.py"))


@pytest.mark.parametrize(
    "path", publish_independent_files(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_services_do_not_import_publishing(path: Path):
    package = ".".join(("fraudwatch", *path.relative_to(ROOT).parts[:-1]))
    found = sorted(
        m
        for m in imported_modules(path.read_text(encoding="utf-8"), package)
        if m == PUBLISHER or m.startswith(f"{PUBLISHER}.")
    )
    assert found == [], (
        f"{path.name} imports {found}; use fraudwatch.elasticsearch or fraudwatch.contract"
    )


#: The pipelines orchestrate every job, the retention and subject-request jobs included; the
#: jobs themselves import nothing from the pipelines (their configuration reaches them as
#: arguments: pipelines/retention.py).
ORCHESTRATED = ("privacy", "scoring", "features", "models", "publish", "intervention", "streaming")
PIPELINES = "fraudwatch.pipelines"


@pytest.mark.parametrize(
    "path",
    sorted(f for p in ORCHESTRATED for f in (ROOT / p).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_jobs_do_not_import_the_pipelines_that_run_them(path: Path):
    package = ".".join(("fraudwatch", *path.relative_to(ROOT).parts[:-1]))
    found = sorted(
        m
        for m in imported_modules(path.read_text(encoding="utf-8"), package)
        if m == PIPELINES or m.startswith(f"{PIPELINES}.")
    )
    assert found == [], f"{path.name} imports {found}; pass the configuration in instead"
