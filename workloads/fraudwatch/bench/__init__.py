"""`make bench`: speed and quality figures, printed, never asserted (docs/benchmarks.md).

`python -m fraudwatch.bench` runs the throughput and wall-time figures, `python -m
fraudwatch.bench.quality` the detection-quality table against the peers, `python -m
fraudwatch.bench.stream` the streaming figures on their own."""
