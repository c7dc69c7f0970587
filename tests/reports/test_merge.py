"""``robustgate merge``: shards' results.json become one, valid against the schema, and the command exits with
the merged status; version-1 documents are upgraded; results of other specs, environments or newer schema
versions, and overlapping shards, are refused with a message naming the files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from robustgate.cli import main
from robustgate.checks.outcome import Gate
from robustgate.reports.merge import MergeRefused, merge_results, worst_exit_status
from robustgate.reports.previous_release import PreviousRelease
from robustgate.reports.record import ItemRecord
from robustgate.reports.results import SCHEMA, SCHEMA_VERSION, document

SPEC = "robustness_specs/tiny.yaml"
SHA = "a" * 64
OTHER_SHA = "b" * 64


def shard(*models: str, sha: str = SHA, checkout: str = "/ci/a", exit_status: int = 0, total: float = 10.0,
          **environment: str) -> dict[str, Any]:
    """A results document (with this machine's real environment) of one item per model."""
    items = [
        ItemRecord(nodeid=f"{SPEC}::{model}::accuracy[handwritten]", spec=SPEC, model=model,
                   contract="accuracy[handwritten]", kind="accuracy", datasets=["handwritten"], outcome="passed",
                   duration=2.0, metrics={"accuracy": 0.9},
                   gates=[Gate("accuracy", ">=", 0.5, 0.9, 0.85, "lower 95% bound")], technique=model)
        for model in models
    ]
    specs = {f"{checkout}/{SPEC}": {"name": "tiny", "sha256": sha}}
    doc = document(items, specs, exit_status, False, {"total_seconds": total, "contracts_seconds": 2.0 * len(items)})
    doc["environment"].update(environment)
    return doc


def test_shards_of_a_real_run_merge_into_the_full_run(tiny_project: pytest.Pytester, tmp_path: Path, capsys) -> None:
    collected = tiny_project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    full_run = {line for line in collected.outlines if line.startswith(SPEC + "::")}
    assert len(full_run) == 3
    results = tiny_project.path / "reports" / "results.json"
    tiny_project.runpytest("-p", "no:cacheprovider", "-k", "baseline").assert_outcomes(passed=1)
    shutil.copy(results, tmp_path / "baseline.json")
    tiny_project.runpytest("-p", "no:cacheprovider", "-k", "int8").assert_outcomes(passed=2)
    shutil.copy(results, tmp_path / "int8.json")
    out, md, html = tmp_path / "all.json", tmp_path / "all.md", tmp_path / "all.html"
    capsys.readouterr()  # the runs' own output

    assert main(["merge", str(tmp_path / "baseline.json"), str(tmp_path / "int8.json"), "-o", str(out),
                 "--md", str(md), "--html", str(html)]) == 0

    assert capsys.readouterr().out.strip() == f"merged 3 items from 2 files into {out} (exit status 0)"
    merged = json.loads(out.read_text())
    jsonschema.validate(merged, SCHEMA)
    shards = [json.loads((tmp_path / name).read_text()) for name in ("baseline.json", "int8.json")]
    assert [item["nodeid"] for item in merged["items"]] == [i["nodeid"] for s in shards for i in s["items"]]
    assert {item["nodeid"] for item in merged["items"]} == full_run
    assert merged["items"][0]["model"] == "baseline" and merged["items"][0] == shards[0]["items"][0]  # unchanged
    assert merged["exit_status"] == 0 and merged["interrupted"] is False
    assert merged["environment"] == shards[0]["environment"]
    assert [spec["name"] for spec in merged["specs"].values()] == ["tiny"]
    totals = [s["timings"]["total_seconds"] for s in shards]
    assert merged["timings"]["total_seconds"] == max(totals)
    assert merged["timings"]["shards_seconds"] == pytest.approx(sum(totals))
    assert merged["timings"]["contracts_seconds"] == pytest.approx(sum(s["timings"]["contracts_seconds"] for s in shards))
    assert "**3 contracts: 3 pass**" in md.read_text()
    assert html.read_text().count("<tr><td data-label='model'>") == 3


def test_different_contents_of_one_spec_are_refused_unless_allowed() -> None:
    docs = [("a.json", shard("baseline")), ("b.json", shard("int8", sha=OTHER_SHA, checkout="/ci/b"))]
    with pytest.raises(MergeRefused) as refused:
        merge_results(docs)
    message = str(refused.value)
    assert "a.json and b.json ran different contents of robustness_specs/tiny.yaml" in message
    assert "aaaaaaaaaaaa" in message and "bbbbbbbbbbbb" in message and "--allow-mismatch" in message

    merged = merge_results(docs, allow_mismatch=True)
    jsonschema.validate(merged, SCHEMA)
    assert merged["specs"] == {f"/ci/a/{SPEC}": {"name": "tiny", "sha256": SHA}}  # the first file's
    assert merged["items"][0].get("notes", []) == []
    assert "other contents of robustness_specs/tiny.yaml (sha256 bbbbbbbbbbbb)" in merged["items"][1]["notes"][0]


def test_one_spec_from_two_checkouts_is_one_entry_and_other_specs_are_a_union() -> None:
    merged = merge_results([("a.json", shard("baseline", checkout="/ci/a")), ("b.json", shard("int8", checkout="/ci/b"))])
    assert merged["specs"] == {f"/ci/a/{SPEC}": {"name": "tiny", "sha256": SHA}}
    other = shard("int8")
    other["specs"] = {"/ci/a/robustness_specs/other.yaml": {"name": "other", "sha256": OTHER_SHA}}
    for item in other["items"]:
        item["nodeid"], item["spec"] = item["nodeid"].replace("tiny", "other"), "robustness_specs/other.yaml"
    merged = merge_results([("a.json", shard("baseline")), ("b.json", other)])
    assert sorted(spec["name"] for spec in merged["specs"].values()) == ["other", "tiny"]


def test_another_torch_is_refused_unless_allowed_and_then_recorded() -> None:
    docs = [("a.json", shard("baseline")), ("b.json", shard("int8", torch="0.0.1"))]
    with pytest.raises(MergeRefused) as refused:
        merge_results(docs)
    assert "b.json ran in another environment than a.json: torch '0.0.1'" in str(refused.value)
    assert "--allow-mismatch" in str(refused.value)

    merged = merge_results(docs, allow_mismatch=True)
    jsonschema.validate(merged, SCHEMA)
    assert merged["environment"]["torch"] == docs[0][1]["environment"]["torch"]
    assert merged["environment"]["torch in b.json"] == "0.0.1"
    assert merged["items"][1]["notes"] == ["merged with --allow-mismatch: ran with torch 0.0.1 (the merged environment is a.json's)"]


def test_an_optional_runtime_installed_in_one_shard_only_is_a_mismatch() -> None:
    with_runtime = shard("int8")
    with_runtime["environment"]["onnxruntime"] = "0.0.2"  # an artifact variant ran in ONNX Runtime's kernels here
    without = shard("baseline")
    without["environment"].pop("onnxruntime", None)
    with pytest.raises(MergeRefused) as refused:
        merge_results([("a.json", without), ("b.json", with_runtime)])
    assert "b.json ran in another environment than a.json: onnxruntime '0.0.2' (a.json: not installed)" in str(refused.value)


def test_another_platform_string_is_not_a_mismatch() -> None:
    merged = merge_results([("a.json", shard("baseline")), ("b.json", shard("int8", platform="Linux-6.1-other"))])
    assert merged["environment"]["platform"] != "Linux-6.1-other" and "platform in b.json" not in merged["environment"]


def test_overlapping_shards_are_refused_even_when_mismatches_are_allowed() -> None:
    docs = [("a.json", shard("baseline", "int8")), ("b.json", shard("int8"))]
    with pytest.raises(MergeRefused, match=r"a.json and b.json both hold 1 item\(s\), e.g. .*::int8::accuracy"):
        merge_results(docs, allow_mismatch=True)


def test_another_schema_version_is_refused_even_when_mismatches_are_allowed() -> None:
    docs = [("a.json", shard("baseline")), ("future.json", {**shard("int8"), "schema_version": 99})]
    with pytest.raises(MergeRefused, match=r"^future.json: results schema version 99, this robustgate reads versions 1 to 2"):
        merge_results(docs, allow_mismatch=True)
    with pytest.raises(MergeRefused, match="not a robustgate results document"):
        merge_results([("a.json", {"schema_version": SCHEMA_VERSION, "items": []})])
    broken = shard("int8")
    del broken["items"][0]["gates"]
    with pytest.raises(MergeRefused, match=r"^b.json: item .*::int8::accuracy\[handwritten\] lacks gates"):
        merge_results([("a.json", shard("baseline")), ("b.json", broken)])


def test_different_baselines_are_refused_unless_allowed() -> None:
    a, b = shard("baseline"), shard("int8")
    a["baseline"] = {"path": "/ci/a/prev.json", "sha256": SHA}
    b["baseline"] = {"path": "/ci/b/prev.json", "sha256": SHA}
    assert merge_results([("a.json", a), ("b.json", b)])["baseline"] == a["baseline"]  # the path does not matter
    del b["baseline"]
    with pytest.raises(MergeRefused, match="b.json was compared with no baseline, a.json with baseline sha256 aaaa"):
        merge_results([("a.json", a), ("b.json", b)])
    jsonschema.validate(merge_results([("a.json", a), ("b.json", b)], allow_mismatch=True), SCHEMA)


def test_verdicts_and_timings_combine_whatever_the_order() -> None:
    assert worst_exit_status([0, 0]) == 0
    assert worst_exit_status([0, 1]) == worst_exit_status([1, 0]) == 1
    assert worst_exit_status([1, 2]) == 2  # interrupted: the results are incomplete
    assert worst_exit_status([0, 5]) == 5 and worst_exit_status([5, 1]) == 1  # a shard that ran nothing, unless worse
    a, b = shard("baseline", exit_status=1, total=30.0), shard("int8", total=10.0)
    b["interrupted"] = True
    merged = merge_results([("a.json", a), ("b.json", b)])
    assert merged["exit_status"] == 1 and merged["interrupted"] is True
    assert merged["timings"] == {"total_seconds": 30.0, "shards_seconds": 40.0, "contracts_seconds": 4.0}
    again = merge_results([("ab.json", merged), ("c.json", shard("pruned", total=5.0))])  # merged files merge again
    assert again["timings"] == {"total_seconds": 30.0, "shards_seconds": 45.0, "contracts_seconds": 6.0}
    jsonschema.validate(again, SCHEMA)


def test_the_cli_refuses_with_one_line_naming_the_file_and_exits_one(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.json").write_text(json.dumps(shard("baseline")))
    (tmp_path / "b.json").write_text(json.dumps(shard("int8", torch="0.0.1")))
    (tmp_path / "broken.json").write_text("{not json")
    out = tmp_path / "all.json"

    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{tmp_path / 'b.json'} ran in another environment" in err
    assert "Traceback" not in err and not out.exists()

    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "broken.json"), "-o", str(out)]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'broken.json'}: cannot read results: not JSON")
    assert main(["merge", str(tmp_path / "missing.json"), "-o", str(out)]) == 1
    assert f"{tmp_path / 'missing.json'}: cannot read results: No such file or directory" in capsys.readouterr().err

    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(out), "--allow-mismatch"]) == 0
    captured = capsys.readouterr()
    assert "merged anyway" in captured.err and "merged 2 items from 2 files" in captured.out
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)


def version_1(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the first release wrote it: no ``kind``, ``datasets`` or ``not_run``."""
    items = [{key: value for key, value in item.items() if key not in ("kind", "datasets")} for item in doc["items"]]
    return {**{k: v for k, v in doc.items() if k != "not_run"}, "schema_version": 1, "items": items}


def test_a_failed_shard_makes_the_merge_exit_with_its_status_and_say_so(tmp_path: Path, capsys) -> None:
    failed = shard("int8", exit_status=1)
    failed["items"][0]["outcome"] = "failed"
    interrupted = shard("pruned", exit_status=2)
    interrupted.update(interrupted=True, not_run=[f"{SPEC}::pruned::size", f"{SPEC}::int8::accuracy[handwritten]"])
    for name, doc in (("a.json", shard("baseline")), ("b.json", failed), ("c.json", interrupted)):
        (tmp_path / name).write_text(json.dumps(doc))
    out, md = tmp_path / "all.json", tmp_path / "all.md"

    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(out)]) == 1
    assert capsys.readouterr().out.strip() == f"merged 2 items from 2 files into {out} (exit status 1)"
    assert json.loads(out.read_text())["exit_status"] == 1

    assert main(["merge", *(str(tmp_path / name) for name in ("a.json", "b.json", "c.json")), "-o", str(out),
                 "--md", str(md)]) == 2
    merged = json.loads(out.read_text())
    jsonschema.validate(merged, SCHEMA)
    assert merged["interrupted"] is True and merged["not_run"] == [f"{SPEC}::pruned::size"]  # int8's ran in b.json
    assert "**4 contracts: 2 pass, 1 fail, 1 did not run (the run was interrupted)**" in md.read_text()


def test_version_1_documents_merge_report_and_serve_as_baselines_with_kinds_derived(tmp_path: Path, capsys) -> None:
    old = version_1(shard("baseline", "int8"))
    old["items"].append({**old["items"][0], "nodeid": f"{SPEC}::int8::shift[handwritten->printed+noisy]",
                         "contract": "shift[handwritten->printed+noisy]", "model": "int8",
                         "metrics": {"source_accuracy": 0.9, "accuracy@printed": 0.7, "accuracy@noisy": 0.6}})
    old["items"].append({**old["items"][0], "nodeid": f"{SPEC}::int8::attack[pgd@handwritten#2]",
                         "contract": "attack[pgd@handwritten#2]", "model": "int8"})
    old["items"].append({**old["items"][0], "nodeid": f"{SPEC}::int8::size", "contract": "size", "model": "int8"})
    merged = merge_results([("old.json", old), ("new.json", shard("pruned"))])
    jsonschema.validate(merged, SCHEMA)
    assert merged["schema_version"] == SCHEMA_VERSION
    assert [(item["kind"], item["datasets"]) for item in merged["items"]] == [
        ("accuracy", ["handwritten"]), ("accuracy", ["handwritten"]), ("shift", ["handwritten", "printed", "noisy"]),
        ("attack", ["handwritten"]), ("size", []), ("accuracy", ["handwritten"])]

    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["report", str(tmp_path / "old.json"), "--md", str(tmp_path / "old.md"),
                 "--html", str(tmp_path / "old.html")]) == 0
    assert "**5 contracts: 5 pass**" in (tmp_path / "old.md").read_text()
    assert "accuracy by model and dataset" in (tmp_path / "old.html").read_text()
    assert PreviousRelease.load(tmp_path / "old.json").previous(f"{SPEC}::int8::accuracy[handwritten]") is not None
