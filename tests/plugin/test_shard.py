"""``--robustgate-shard I/N``: N machines run disjoint parts of the contracts, whole models at a time, that
together are the whole run; `robustgate merge` joins them and refuses a set with a shard missing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustgate.cli import main
from robustgate.plugin.shard import assign

MATRIX_SPEC = """\
robustgate: 1
name: grid
matrix: {source: [handwritten, printed]}
model:
  arch: tinynet:build
  kwargs: {num_classes: 10}
  weights: train
  train: {on: "{source}", epochs: 1}
  input: {size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  handwritten: {builtin: digits, domain: handwritten}
  printed: {builtin: digits, domain: printed}
variants:
  int8: {ptq: {backend: x86}}
  pruned-{ratio}: {prune: {method: l1, ratio: [0.25, 0.5]}}
contracts:
  - accuracy: {on: "{source}", min: 0.0}
  - size: {max_ratio: 1.0}
"""


def _collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    return [line for line in result.stdout.lines if "::" in line]


def test_the_shards_partition_the_run_by_model(tiny_project: pytest.Pytester, write_spec) -> None:
    write_spec(MATRIX_SPEC, "grid.yaml")
    everything = _collected(tiny_project)
    shards = [_collected(tiny_project, f"--robustgate-shard={i}/3") for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(everything) and len(everything) == 3 + 2 * 7
    models = [{line.rsplit("::", 1)[0] for line in shard} for shard in shards]
    assert not (models[0] & models[1] or models[0] & models[2] or models[1] & models[2])  # a model is in one shard
    assert max(map(len, shards)) - min(map(len, shards)) <= 2  # balanced up to one model's contracts
    assert shards == [_collected(tiny_project, f"--robustgate-shard={i}/3") for i in (1, 2, 3)]  # deterministic
    # -k selects within a shard; it does not move models between shards
    assert _collected(tiny_project, "--robustgate-shard=2/3", "-k", "int8") == [line for line in shards[1] if "int8" in line]
    result = tiny_project.runpytest("--collect-only", "-p", "no:cacheprovider", "--robustgate-shard=1/3")
    result.stdout.fnmatch_lines([f"robustgate shard 1/3: {len(shards[0])} of 17 contracts, {len(models[0])} of 10 models"])


def test_shards_run_apart_and_merge_into_the_whole_run(tiny_project: pytest.Pytester) -> None:
    for index in (1, 2):
        result = tiny_project.runpytest("-p", "no:cacheprovider", f"--robustgate-shard={index}/2", f"--robustgate-report=shard{index}")
        assert result.ret == 0
    docs = [json.loads((tiny_project.path / f"shard{i}" / "results.json").read_text()) for i in (1, 2)]
    assert [doc["shard"] for doc in docs] == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    assert all(doc["items"] for doc in docs)
    files = [str(tiny_project.path / f"shard{i}" / "results.json") for i in (1, 2)]
    assert main(["merge", *files, "-o", str(tiny_project.path / "all.json")]) == 0
    merged = json.loads((tiny_project.path / "all.json").read_text())
    assert len(merged["items"]) == 3 and merged["shards"] == {"count": 2, "merged": [1, 2]} and "shard" not in merged


def test_a_merge_missing_a_shard_is_refused(tiny_project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-shard=2/2")
    assert result.ret == 0
    only = str(tiny_project.path / "reports" / "results.json")
    assert main(["merge", only, "-o", str(tiny_project.path / "all.json")]) == 1
    assert "shard 1/2 missing, so the merged report would look like the whole run without it" in capsys.readouterr().err
    assert main(["merge", only, "-o", str(tiny_project.path / "all.json"), "--allow-mismatch"]) == 0
    assert json.loads((tiny_project.path / "all.json").read_text())["shards"] == {"count": 2, "merged": [2]}


@pytest.mark.parametrize("value", ["3/2", "0/2", "1/0", "a/b", "2"])
def test_a_malformed_shard_is_a_usage_error(tiny_project: pytest.Pytester, value: str) -> None:
    result = tiny_project.runpytest(f"--robustgate-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--robustgate-shard {value}: expected I/N with 1 <= I <= N, e.g. --robustgate-shard 1/4*"])



@pytest.mark.parametrize("option", ["--robustgate-report", "--robustgate-save-baseline", "--robustgate-cache-dir"])
def test_an_empty_path_option_is_a_usage_error(pytester: pytest.Pytester, option: str) -> None:
    """An unset CI variable (``--robustgate-report=$OUT``) must not mean the current folder."""
    result = pytester.runpytest(f"{option}=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument {option}: needs a path, got an empty value*"])


@given(sizes=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(1, 20), min_size=1, max_size=30),
       count=st.integers(1, 8))
def test_every_model_goes_to_one_shard_and_loads_stay_within_one_model(sizes: dict[str, int], count: int) -> None:
    shard_of = assign(list(sizes), sizes, count)
    assert set(shard_of) == set(sizes) and set(shard_of.values()) <= set(range(count))
    loads = [sum(size for model, size in sizes.items() if shard_of[model] == k) for k in range(count)]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert assign(list(reversed(list(sizes))), sizes, count) == shard_of  # the order models arrive in does not matter
