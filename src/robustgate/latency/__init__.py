"""Latency measurement: per-query samples, percentiles with order-statistic bounds, interleaved
speed-ups, and the machine they were measured on. Knows nothing of pytest; the plugin hands in a
pytest-benchmark runner so the samples land in its storage and comparisons."""
