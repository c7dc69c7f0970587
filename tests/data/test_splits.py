"""Stratified parts and subsamples: disjoint, complete, seeded, and fair to every class."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustgate.data.splits import stratified_part, stratified_sample
from robustgate.errors import DataError

label_sets = st.lists(st.integers(2, 40), min_size=2, max_size=8).map(
    lambda counts: torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(counts)])
)


@settings(max_examples=50, deadline=None)
@given(labels=label_sets, share=st.floats(0.3, 0.8), seed=st.integers(0, 2**16))
def test_parts_are_disjoint_cover_everything_and_keep_class_shares(labels, share, seed) -> None:
    train = stratified_part(labels, "train", share, seed)
    test = stratified_part(labels, "test", share, seed)
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))
    for cls, total in enumerate(torch.bincount(labels).tolist()):
        in_train = int((labels[train] == cls).sum())
        assert 1 <= in_train <= total - 1  # both parts hold every class
        assert abs(in_train - share * total) <= 1


@settings(max_examples=30, deadline=None)
@given(labels=label_sets, seed=st.integers(0, 2**16))
def test_parts_are_deterministic_per_seed(labels, seed) -> None:
    assert torch.equal(stratified_part(labels, "test", 0.7, seed), stratified_part(labels, "test", 0.7, seed))


@settings(max_examples=30, deadline=None)
@given(labels=label_sets, data=st.data())
def test_subsample_has_the_asked_size_and_every_class(labels, data) -> None:
    classes = int(labels.max()) + 1
    samples = data.draw(st.integers(classes, len(labels)))
    chosen = stratified_sample(labels, samples, seed=0)
    assert len(chosen) == samples and len(set(chosen.tolist())) == samples
    assert set(labels[chosen].tolist()) == set(range(classes))
    counts, picked = torch.bincount(labels), torch.bincount(labels[chosen], minlength=classes)
    # proportional to class size, beyond the one image every class is guaranteed
    expected = 1 + (samples - classes) * (counts - 1) / (len(labels) - classes)
    assert torch.all((picked - expected).abs() < 1 + 1e-9)


def test_a_class_with_one_image_cannot_be_stratified() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    with pytest.raises(DataError, match="class 1 has a single image"):
        stratified_part(labels, "train", 0.5, 0)


def test_fewer_samples_than_classes_is_a_clear_error() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(DataError, match="cannot take a stratified sample of 2 from 3 classes"):
        stratified_sample(labels, 2, 0)


# Office-31's shape: 31 classes of 7 to 100 images each, in the order a folder scan interleaves them.
office31_like = st.tuples(st.lists(st.integers(7, 100), min_size=31, max_size=31), st.integers(0, 2**16)).map(
    lambda drawn: torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(drawn[0])])[
        torch.randperm(sum(drawn[0]), generator=torch.Generator().manual_seed(drawn[1]))
    ]
)


@settings(max_examples=25, deadline=None)
@given(labels=office31_like, share=st.sampled_from([0.5, 0.7, 0.8]), seed=st.integers(0, 2**16))
def test_office31_shaped_parts_stay_stratified_disjoint_and_stable(labels, share, seed) -> None:
    train = stratified_part(labels, "train", share, seed)
    test = stratified_part(labels, "test", share, seed)
    assert set(train.tolist()).isdisjoint(test.tolist()) and len(train) + len(test) == len(labels)
    counts = torch.bincount(labels, minlength=31)
    in_train = torch.bincount(labels[train], minlength=31)
    assert torch.all(in_train >= 1) and torch.all(counts - in_train >= 1)  # the 7-image classes too
    assert torch.all((in_train - share * counts).abs() <= 1)
    assert torch.equal(train, stratified_part(labels, "train", share, seed))  # the same parts on every run
    assert not torch.equal(train, stratified_part(labels, "train", share, seed + 1))  # the seed decides them
