"""Where a micro-batch's documents go: Elasticsearch, or nowhere (the bench's null sink).

`ElasticsearchSink` sends the documents `DocumentBuilder` serialised through the bulk writer
the batch publisher uses (`elasticsearch.bulk.bulk_index`: one retry policy, one set of
errors), with three differences that matter at 20,000 documents a second:

* the sources are sent as the JSON text they already are (`_PreSerialisedBulk`), not decoded
  into dicts and encoded again;
* the answer is filtered to each item's status and error (`filter_path`), not the whole
  per-item report;
* several bulk requests are in flight at once (`concurrency`), so that the node indexes on
  more than one thread. Documents are dealt to the lanes by tx_id, and each lane sends its
  chunks in order, so that two versions of one document in a batch are still written in the
  order they came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol, cast

import numpy as np

from fraudwatch.elasticsearch.bulk import BulkReport, RetryBudget, bulk_index
from fraudwatch.elasticsearch.client import ElasticsearchHttp
from fraudwatch.streaming.es_documents import ScoredDocuments

#: Documents per bulk request (about 6 MB of streamed documents).
DEFAULT_CHUNK = 10_000
#: Bulk requests in flight at once.
DEFAULT_CONCURRENCY = 2
#: What the bulk writer reads of the answer.
_FILTER_PATH = "errors,items.*.status,items.*.error"


class DocumentSink(Protocol):
    def write(self, documents: ScoredDocuments) -> BulkReport: ...

    def close(self) -> None: ...


class _PreSerialisedBulk:
    """The client `bulk_index` talks to: the client's own calls, but a bulk request's sources
    go out as the text they are and the answer comes back filtered."""

    def __init__(self, client: ElasticsearchHttp) -> None:
        self._client = client
        self.url = client.url

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.request(*args, **kwargs)

    def bulk(self, actions: Iterable[dict[str, Any] | str]) -> dict[str, Any]:
        lines = []
        for line in actions:
            if isinstance(line, str):
                lines.append(line)
            else:
                action = line["index"]
                lines.append(
                    f'{{"index":{{"_index":{encode_basestring_ascii(action["_index"])},'
                    f'"_id":{encode_basestring_ascii(action["_id"])}}}}}'
                )
        lines.append("")
        answer: dict[str, Any] = self._client.request(
            "POST", "/_bulk", ndjson="\n".join(lines), params={"filter_path": _FILTER_PATH}
        )
        return answer


class ElasticsearchSink:
    def __init__(
        self,
        client: ElasticsearchHttp,
        index: str,
        budget: RetryBudget,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.index = index
        self.budget = budget
        self.chunk_size = chunk_size
        self.concurrency = max(1, concurrency)
        self._bulk = cast(ElasticsearchHttp, _PreSerialisedBulk(client))
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fraudwatch-bulk")

    def _lane(self, pairs: Sequence[tuple[str, str]]) -> BulkReport:
        documents = cast(Sequence[tuple[str, dict[str, Any]]], pairs)
        return bulk_index(
            self._bulk, self.index, documents, chunk_size=self.chunk_size, budget=self.budget
        )

    def write(self, documents: ScoredDocuments) -> BulkReport:
        lanes = min(self.concurrency, max(1, -(-len(documents) // self.chunk_size)))
        lane_of = documents.tx_ids % lanes if lanes > 1 else np.zeros(len(documents), int)
        work = []
        for lane in range(lanes):
            rows = np.flatnonzero(lane_of == lane)
            # A source that is a str is JSON text already (`_PreSerialisedBulk.bulk`).
            ids, sources = documents.ids, documents.sources
            work.append([(ids[n], sources[n]) for n in rows])
        report = BulkReport()
        for part in self._pool.map(self._lane, work):
            report.indexed += part.indexed
            report.retries += part.retries
        return report

    def close(self) -> None:
        self._pool.shutdown()


class NullSink:
    """Takes the documents and sends them nowhere: the scorer's own ceiling in the bench."""

    def write(self, documents: ScoredDocuments) -> BulkReport:
        return BulkReport(indexed=len(documents))

    def close(self) -> None:
        pass
