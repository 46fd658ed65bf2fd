"""Which results reader the service uses: the one place that knows both readers, so neither
reader module imports the other."""

from __future__ import annotations

from fraudwatch.intervention.config import Settings
from fraudwatch.intervention.elasticsearch_results import ElasticsearchResults
from fraudwatch.intervention.results import ResultsReader, ScoredResults


def open_results(settings: Settings) -> ResultsReader:
    """The reader the settings select: Elasticsearch when `results.elasticsearch_url` is set,
    else the scored Parquet in `results.scored`, served from its index (built on first load)."""
    if settings.elasticsearch.url:
        return ElasticsearchResults.from_settings(settings.elasticsearch)
    return ScoredResults(settings.scored_dir)
