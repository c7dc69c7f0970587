"""Cache keys follow the code: robustgate's own source per subsystem, the libraries, the CPU, the user's model.

Editing an attack recomputes attacks and nothing else; a comment in a user's factory retrains and the run
says so; `robustgate cache prune` drops what no current key can reach; int8-relevant keys follow the ISA.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import robustgate
from robustgate import provenance
from robustgate.cache import ArtifactCache
from robustgate.cache_inventory import CURRENT, OTHER_VERSIONS, scan
from robustgate.provenance import artifact_key, cpu_flags, environment

SPEC = """\
robustgate: 1
name: keyed
seed: 0
model:
  arch: tinynet:build
  kwargs: {num_classes: 10}
  weights: train
  train: {on: digits-train, epochs: 2, lr: 0.01}
  input: {size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  digits-train: {builtin: digits, domain: handwritten, part: train}
  handwritten: {builtin: digits, domain: handwritten, part: test}
variants:
  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 64}}}
contracts:
  - accuracy: {on: handwritten, min: 0.0}
"""
ATTACK = "  - attack: {kind: fgsm, eps: 2/255, on: handwritten, samples: 40, min: 0.0, variants: [baseline]}\n"
RUN = ("--robustgate-cache-dir=cache", "-p", "no:cacheprovider")


def edited_source(tmp_path: Path, relative: str, text: str = "\n# an edit that changes no behaviour\n") -> Path:
    """A copy of robustgate's source tree with ``text`` appended to one file: a real edit, hashed for real."""
    copy = tmp_path / "edited" / "robustgate"
    shutil.copytree(Path(robustgate.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / relative).open("a") as handle:
        handle.write(text)
    return copy


def entries(cache: Path) -> dict[str, int]:
    return {kind.name: len(list(kind.glob("*/*.pt"))) for kind in cache.iterdir() if not kind.name.startswith(".")}


def test_an_edited_attack_changes_the_attacks_digest_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unedited = {kind: environment(kind) for kind in provenance.ARTIFACT_CODE}
    monkeypatch.setattr(provenance, "SOURCE_ROOT", edited_source(tmp_path, "attacks/fgsm.py"))
    edited = {kind: environment(kind) for kind in provenance.ARTIFACT_CODE}
    assert [kind for kind in unedited if unedited[kind] != edited[kind]] == ["attacks", "masking", "adversarial"]
    changed = {name for name in edited["attacks"] if edited["attacks"][name] != unedited["attacks"][name]}
    assert changed == {"robustgate attacks code"}


@pytest.mark.cold_cache  # counts what a warm run rebuilds and says
def test_editing_an_attack_recomputes_attacks_only(tiny_project: pytest.Pytester, write_spec, monkeypatch) -> None:
    write_spec(SPEC + ATTACK, "tiny.yaml")
    cold = tiny_project.runpytest(*RUN)
    cold.assert_outcomes(passed=3)
    built = entries(tiny_project.path / "cache")
    assert built["weights"] == 1 and built["steps"] == 1 and built["attacks"] == 1 and built["masking"] == 1
    assert built["adversarial"] == 1  # the baseline's white-box images, which an int8 transfer leg would read

    monkeypatch.setattr(provenance, "SOURCE_ROOT", edited_source(tiny_project.path, "attacks/fgsm.py"))
    warm = tiny_project.runpytest(*RUN)
    warm.assert_outcomes(passed=3)
    out = warm.stdout.str()
    warm.stdout.fnmatch_lines(["robustgate: attacks: robustgate attacks code changed",
                               "*attacking baseline with fgsm*"])
    warm.stdout.fnmatch_lines(["robustgate: masking: robustgate attacks code changed"])
    assert "training" not in out and "compressing" not in out and "robustgate: logits:" not in out
    after = entries(tiny_project.path / "cache")
    # Weights, the int8 model and every prediction were read back; attacks, their images and checks were made anew.
    assert after == {**built, "attacks": 2, "masking": 2, "adversarial": 2}
    warm.stdout.fnmatch_lines([f"cache: {sum(built.values()) - 3} artifacts reused, 3 built*"])


@pytest.mark.cold_cache  # asserts the rebuild explanations of a warm run
def test_a_comment_in_the_model_factory_retrains_and_says_why(tiny_project: pytest.Pytester, write_spec) -> None:
    write_spec(SPEC, "tiny.yaml")
    tiny_project.runpytest(*RUN).assert_outcomes(passed=2)
    factory = tiny_project.path / "tinynet.py"
    factory.write_text(factory.read_text() + "\n# a comment only\n")

    warm = tiny_project.runpytest(*RUN)
    warm.assert_outcomes(passed=2)
    warm.stdout.fnmatch_lines([
        "robustgate: weights: model code changed (tinynet.py)",
        "*training tinynet:build on 'digits-train'*",
    ])
    out = warm.stdout.str()
    assert "robustgate: steps: rebuilt because its model changed: model code changed (tinynet.py)" in out
    # One line per kind and reason: the baseline's and the int8 model's predictions share theirs.
    assert out.count("robustgate: logits: rebuilt because its model changed: model code changed (tinynet.py)") == 1

    again = tiny_project.runpytest(*RUN)  # nothing changed since: nothing rebuilt, nothing said
    again.assert_outcomes(passed=2)
    assert "changed" not in again.stdout.str() and "training" not in again.stdout.str()


def test_prune_drops_entries_keyed_by_other_code_or_versions_and_keeps_current_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from robustgate.cli import main

    cache = ArtifactCache(tmp_path / "cache")

    def store(kind: str, what: tuple, provenance_: dict[str, str]) -> Path:
        key = artifact_key(what, provenance_)
        cache.get_or_create(kind, key, lambda: torch.ones(4))
        return cache.path(kind, key.digest)

    # Written while robustgate's attacks code was another (an edited tree, hashed for real).
    monkeypatch.setattr(provenance, "SOURCE_ROOT", edited_source(tmp_path, "attacks/pgd.py"))
    old_attack = store("attacks", ("attack", 1), environment("attacks"))
    logits_then = store("logits", ("logits", 1), environment("logits"))  # the attacks code is not in its key
    monkeypatch.setattr(provenance, "SOURCE_ROOT", None)

    old_numpy = store("logits", ("logits", 2), {**environment("logits"), "numpy": "1.26.0"})
    other_cpu = store("logits", ("logits", 3), {**environment("logits"), "cpu flags": "avx avx2 fma"})
    current = store("attacks", ("attack", 2), environment("attacks"))
    # A user's model code cannot be judged without its spec: such an entry is left alone.
    user_model = store("weights", ("trained", 1), {**environment("weights"), "model code (mine.py)": "0" * 64})

    states = {found.path: found for found in scan(tmp_path / "cache")}
    unreachable = {path for path, found in states.items() if found.state == OTHER_VERSIONS}
    assert unreachable == {old_attack, old_numpy, other_cpu}
    assert states[old_attack].problem == "robustgate attacks code changed"
    assert states[old_numpy].problem == f"numpy 1.26.0 -> {provenance.library_versions()['numpy']}"
    assert states[logits_then].state == states[current].state == states[user_model].state == CURRENT

    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert f"removed {old_attack} " in out and "robustgate attacks code changed)" in out
    assert "numpy 1.26.0 -> " in out and "in 3 files" in out
    assert not old_attack.exists() and not old_numpy.exists() and not other_cpu.exists()
    assert logits_then.exists() and current.exists() and user_model.exists()


@pytest.mark.parametrize("kind", ["weights", "steps", "logits", "corrupted-logits", "attacks", "masking"])
def test_keys_follow_the_kernel_dispatch_overrides(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    what = (kind, "same spec")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    plain = artifact_key(what, environment(kind))
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    capped = artifact_key(what, environment(kind))
    assert capped.slot == plain.slot and capped.digest != plain.digest
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert artifact_key(what, environment(kind)).digest != capped.digest


def test_training_threads_enter_build_keys_but_not_evaluation_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import robustgate.threads

    # builds run on torch's thread count when the plugin loaded (a process started with OMP_NUM_THREADS=1 vs 2)
    monkeypatch.setattr(robustgate.threads, "DEFAULT_THREADS", 1)
    one = {kind: environment(kind) for kind in ("weights", "steps", "logits", "attacks")}
    monkeypatch.setattr(robustgate.threads, "DEFAULT_THREADS", 2)
    two = {kind: environment(kind) for kind in ("weights", "steps", "logits", "attacks")}
    assert one["weights"] != two["weights"] and one["steps"] != two["steps"]
    assert one["logits"] == two["logits"] and one["attacks"] == two["attacks"]  # same bits at any count


def test_cpu_flags_are_the_kernel_relevant_ones_of_the_first_cpu(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_int8\n"
                    "processor\t: 1\nflags\t\t: fpu avx512_bf16\n")
    assert cpu_flags(info) == {"avx2", "fma", "avx512f", "avx512_vnni", "amx_int8"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_a_rebuild_in_a_known_slot_says_which_component_changed(tmp_path: Path) -> None:
    said: list[str] = []
    cache = ArtifactCache(tmp_path, explain=said.append)
    env = environment("logits")
    model = artifact_key(("trained", 1), {**env, "model code (mine.py)": "a"})
    cache.get_or_create("weights", model, dict)
    cache.get_or_create("logits", artifact_key(("logits", 1), env, {"model": model}), lambda: torch.ones(1))
    assert said == []  # a cold cache builds without explaining

    newer = artifact_key(("logits", 1), {**env, "numpy": "9.9"}, {"model": model})
    cache.get_or_create("logits", newer, lambda: torch.ones(1))
    assert said == [f"logits: numpy {env['numpy']} -> 9.9"]

    edited = artifact_key(("trained", 1), {**env, "model code (mine.py)": "b"})
    cache.get_or_create("weights", edited, dict)
    cache.get_or_create("logits", artifact_key(("logits", 1), env, {"model": edited}), lambda: torch.ones(1))
    assert said[1:] == [
        "weights: model code changed (mine.py)",
        # its own numpy is back to the slot's first value too: both are said, the model's cause is not repeated
        f"logits: numpy 9.9 -> {env['numpy']}",
    ]
    downstream = artifact_key(("logits", 2), env, {"model": model})
    cache.get_or_create("logits", downstream, lambda: torch.ones(1))
    cache.get_or_create("weights", model, dict)  # still stored: a hit, nothing said
    cache.get_or_create("logits", artifact_key(("logits", 2), env, {"model": edited}), lambda: torch.ones(1))
    assert said[-1] == "logits: rebuilt because its model changed: model code changed (mine.py)"


def test_int8_sums_saturate_on_x86_cpus_without_vnni_only() -> None:
    from robustgate.provenance import int8_sums_saturate

    assert int8_sums_saturate({"avx", "avx2", "fma"})  # e.g. an AMD EPYC before Zen 4: vpmaddubsw's 16-bit sums
    assert not int8_sums_saturate({"avx2", "avx512f", "avx512_vnni"}) and not int8_sums_saturate({"avx2", "avx_vnni"})
    assert not int8_sums_saturate({"asimd", "asimddp"})  # ARM's dot product accumulates in 32 bits
