"""The registry every pluggable kind lives in: duplicates refused, misses answered with "did you mean"."""

from __future__ import annotations

import pytest

from robustgate.errors import RegistryError, RobustgateError
from robustgate.registry import Registry, did_you_mean


def make() -> Registry[object]:
    registry: Registry[object] = Registry("corruption", base=object)
    for name in ["gaussian_noise", "contrast", "brightness", "shot_noise"]:
        registry.register(name)(object())
    return registry


def test_register_returns_the_entry_and_get_finds_it() -> None:
    registry: Registry[object] = Registry("thing")

    @registry.register("fn")
    def fn() -> int:
        return 3

    assert fn() == 3  # the decorator hands back the function itself
    assert registry.get("fn") is fn
    assert "fn" in registry
    assert "other" not in registry


def test_registering_a_name_twice_is_an_error_and_keeps_the_first() -> None:
    registry: Registry[object] = Registry("contract kind", base=object)
    first, second = object(), object()
    registry.register("accuracy")(first)
    with pytest.raises(RegistryError) as info:
        registry.register("accuracy")(second)
    assert str(info.value) == "contract kind 'accuracy' is registered twice"
    assert isinstance(info.value, RobustgateError)
    assert registry.get("accuracy") is first
    assert registry.names() == ["accuracy"]


def test_an_unknown_name_close_to_one_suggests_it() -> None:
    with pytest.raises(RegistryError) as info:
        make().get("gausian_noise")
    assert str(info.value) == "unknown corruption 'gausian_noise': did you mean 'gaussian_noise'?"


def test_an_unknown_name_far_from_all_lists_them_sorted() -> None:
    with pytest.raises(RegistryError) as info:
        make().get("zzz")
    assert info.value.message == "unknown corruption 'zzz': expected one of: brightness, contrast, gaussian_noise, shot_noise"


def test_names_and_iteration_are_sorted_whatever_the_registration_order() -> None:
    registry = make()
    assert registry.names() == ["brightness", "contrast", "gaussian_noise", "shot_noise"]
    assert list(registry) == registry.names()


def test_an_empty_registry_has_no_names_and_says_so_on_a_miss() -> None:
    registry: Registry[object] = Registry("dataset kind")
    assert registry.names() == []
    with pytest.raises(RegistryError, match="unknown dataset kind 'builtin'"):
        registry.get("builtin")


def test_did_you_mean_picks_the_closest_choice() -> None:
    assert did_you_mean("epoch", ["epochs", "lr", "batch_size"]) == "did you mean 'epochs'?"
    assert did_you_mean("contract", ["contracts", "datasets", "variants"]) == "did you mean 'contracts'?"
    assert did_you_mean("qqq", ["b", "a"]) == "expected one of: a, b"


def test_the_builtin_registries_hold_the_shipped_kinds() -> None:
    from robustgate.checks import contract_kinds
    from robustgate.compressors import compression_steps
    from robustgate.data.kinds import dataset_kinds

    assert "accuracy" in contract_kinds
    assert "ptq" in compression_steps
    assert dataset_kinds.names() == ["builtin", "from", "imagefolder", "office31"]
    with pytest.raises(RegistryError, match="did you mean 'accuracy'"):
        contract_kinds.get("acuracy")


def test_entries_must_be_of_the_registry_base() -> None:
    class Base:
        pass

    registry: Registry[Base] = Registry("widget", base=Base)
    registry.register("ok")(Base())
    with pytest.raises(RegistryError, match="widget 'bad' must be Base, not int"):
        registry.register("bad")(3)


def test_entries_without_a_base_must_be_callable() -> None:
    registry: Registry[object] = Registry("corruption")
    with pytest.raises(RegistryError, match="must be a callable"):
        registry.register("bad")("not callable")
