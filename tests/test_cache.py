"""The artifact cache: built once, reused by key, safe against torn files."""

from __future__ import annotations

import pytest
import torch

from robustgate.cache import ArtifactCache, content_key


def test_artifact_is_built_once_and_reused_across_sessions(tmp_path) -> None:
    calls = []

    def build() -> torch.Tensor:
        calls.append(1)
        return torch.arange(5)

    first = ArtifactCache(tmp_path).get_or_create("logits", content_key("a"), build)
    second = ArtifactCache(tmp_path).get_or_create("logits", content_key("a"), build)
    assert torch.equal(first, second) and len(calls) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_key_changes_with_any_part_and_is_stable() -> None:
    assert content_key("trained", {"epochs": 6}, "abc") == content_key("trained", {"epochs": 6}, "abc")
    assert content_key("trained", {"epochs": 6}, "abc") != content_key("trained", {"epochs": 7}, "abc")
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})


def test_truncated_entry_is_discarded_and_rebuilt(tmp_path) -> None:
    cache = ArtifactCache(tmp_path)
    key = content_key("b")
    cache.get_or_create("steps", key, lambda: {"w": torch.ones(100)})
    path = cache.path("steps", key)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match="discarding damaged cache entry .*truncated"):
        rebuilt = ArtifactCache(tmp_path).get_or_create("steps", key, lambda: {"w": torch.zeros(3)})
    assert torch.equal(rebuilt["w"], torch.zeros(3))
    assert torch.equal(ArtifactCache(tmp_path).get_or_create("steps", key, lambda: None)["w"], torch.zeros(3))


def test_failed_build_stores_nothing(tmp_path) -> None:
    cache = ArtifactCache(tmp_path)

    def broken() -> torch.Tensor:
        raise RuntimeError("training diverged")

    with pytest.raises(RuntimeError):
        cache.get_or_create("weights", content_key("c"), broken)
    assert not cache.path("weights", content_key("c")).exists()


def test_no_cache_mode_builds_every_time_and_writes_nothing(tmp_path) -> None:
    cache = ArtifactCache(None)
    calls = []
    for _ in range(2):
        cache.get_or_create("logits", content_key("d"), lambda: calls.append(1) or torch.ones(1))
    assert len(calls) == 2 and not list(tmp_path.iterdir())
