"""How many queries a latency contract times: enough for every bound it gates on, speed-up included."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from robustgate.latency.measure import BLOCK, Plan, loop_runner, queries_needed, query_of, time_queries
from robustgate.latency.percentiles import median_lower_bound, queries_for_bound

ONE_SIDED = 0.975  # what a gate at confidence 0.95 reads


def test_a_speedup_gate_times_enough_block_pairs_for_its_lower_bound() -> None:
    small, large = nn.Linear(64, 10), nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    batch = torch.rand(4, 64)
    # min_queries: 10 is one block pair: the sign-test bound on the median ratio is undefined with it
    asked = Plan(warmup=2, min_queries=10, min_seconds=0.0)
    too_few = time_queries(query_of(small, batch), asked, loop_runner, query_of(large, batch))
    assert too_few.ratios is not None and math.isnan(median_lower_bound(too_few.ratios, ONE_SIDED))

    needed = queries_needed(10, [], speedup=True, one_sided=ONE_SIDED)
    assert needed == BLOCK * queries_for_bound(0.5, ONE_SIDED) == 60
    timings = time_queries(query_of(small, batch), Plan(2, needed, 0.0), loop_runner, query_of(large, batch))
    assert timings.ratios is not None and len(timings.ratios) == 6
    low = median_lower_bound(timings.ratios, ONE_SIDED)
    assert math.isfinite(low) and low <= float(np.median(timings.ratios))


def test_the_count_is_the_largest_that_any_gated_bound_needs() -> None:
    assert queries_needed(100, [0.9], speedup=False, one_sided=None) == 100  # point gates need no bound
    assert queries_needed(10, [0.99], speedup=False, one_sided=ONE_SIDED) == queries_for_bound(0.99, ONE_SIDED) == 368
    assert queries_needed(10, [0.5], speedup=True, one_sided=0.995) == BLOCK * 8  # 1 - 0.5**8 >= 0.995
    assert queries_needed(500, [0.5], speedup=True, one_sided=ONE_SIDED) == 500
