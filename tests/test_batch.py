"""Batch mode: `mi scan` / `mi inspect` over many targets as JSON lines, resumable, and the same records from
`modelscope_inspect.batch.record` run by Dask over a local cluster.

Oracles: each target's record agrees with the single-target `--json` document of the same command (status, exit
code, findings), parameter counts with the safetensors library's own reading of the file, and the Dask run with
the single-process `--jsonl` run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelscope_inspect.batch import record
from tests.conftest import FIXTURES, run_cli

WHOLE = str(FIXTURES / "tiny_seed_whole.pth")  # a whole-module pickle: findings (exit 1)
CLEAN = str(FIXTURES / "tiny_seed.safetensors")
CKPT = str(FIXTURES / "tiny_checkpoint.pth")
BAD = "/nonexistent/model.pth"


def lines(stdout: str) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in stdout.splitlines()]
    assert all(isinstance(r, dict) for r in out)
    return out


def test_scan_jsonl_one_record_per_target_and_a_bad_target_does_not_stop_it() -> None:
    r = run_cli("scan", WHOLE, BAD, CLEAN, "--jsonl", "--jobs", "2")
    assert r.code == 1, r.stderr  # worst of the targets: one found something
    recs = {x["target"]: x for x in lines(r.stdout)}
    assert set(recs) == {WHOLE, BAD, CLEAN}
    assert recs[BAD]["exit_code"] == 2 and recs[BAD]["status"] == "error" and "no such file" in recs[BAD]["error"]
    assert "\n" not in recs[BAD]["error"]
    assert recs[CLEAN]["exit_code"] == 0 and recs[CLEAN]["findings"] == []
    single = json.loads(run_cli("scan", WHOLE, "--json").stdout)
    assert recs[WHOLE]["exit_code"] == single["exit_code"] == 1
    assert [(x["path"], x["target"], x["offset"]) for x in recs[WHOLE]["findings"]] == [
        (f["path"], x["target"], x["offset"]) for f in single["files"] for x in f["findings"]
    ]


@pytest.mark.parametrize(
    ("targets", "code"), [([CLEAN, CKPT], 0), ([CLEAN, BAD], 2), ([BAD, WHOLE], 1), ([WHOLE, CLEAN, BAD], 1)]
)
def test_overall_exit_code_is_the_worst(targets: list[str], code: int) -> None:
    assert run_cli("scan", *targets, "--jsonl").code == code


def test_from_file_skips_comments_and_blanks(tmp_path: Path) -> None:
    lst = tmp_path / "targets.txt"
    lst.write_text(f"# the registry\n\n{CLEAN}\n   \n# {WHOLE}\n{CKPT}\n{CLEAN}\n")
    r = run_cli("scan", "--from", str(lst))  # --from alone is batch mode
    assert r.code == 0, r.stderr
    assert sorted(x["target"] for x in lines(r.stdout)) == sorted([CLEAN, CKPT])


def test_resume_skips_recorded_targets_and_appends(tmp_path: Path) -> None:
    out = tmp_path / "scan.jsonl"
    assert run_cli("scan", CLEAN, WHOLE, "--resume", str(out)).code == 1
    first = lines(out.read_text())
    assert sorted(x["target"] for x in first) == sorted([CLEAN, WHOLE])
    # A stopped run leaves half a line: that target is not "done" and the next record starts on a new line.
    with out.open("a") as f:
        f.write(json.dumps({"target": BAD, "exit_code": 2})[:15])
    r = run_cli("scan", CLEAN, WHOLE, CKPT, BAD, "--resume", str(out))
    assert r.code == 1, r.stderr  # the earlier records count: WHOLE found something
    assert r.stdout == "" and "2 targets read, 2 already in" in r.stderr
    text = out.read_text().splitlines()
    assert text[:2] == [json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in first]
    later = [json.loads(t) for t in text[3:]]
    assert sorted(x["target"] for x in later) == sorted([CKPT, BAD])
    assert run_cli("scan", CLEAN, "--resume", str(out)).code == 0  # only CLEAN's own record counts


def test_resume_file_is_never_an_input(tmp_path: Path) -> None:
    r = run_cli("scan", str(tmp_path), "--resume", str(tmp_path / "scan.jsonl"))
    assert r.code == 2 and "inside the input folder" in r.stderr


def test_single_target_output_unchanged() -> None:
    r = run_cli("scan", WHOLE, CLEAN, "--json")
    doc = json.loads(r.stdout)  # one merged document, as before batch mode
    assert doc["path"] == f"{WHOLE}, {CLEAN}" and len(doc["files"]) == 2


def test_inspect_jsonl_summary_counts_match_safetensors() -> None:
    st = pytest.importorskip("safetensors")
    import math

    with st.safe_open(CLEAN, "np") as f:
        numel = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    r = run_cli("inspect", CLEAN, BAD, "--jsonl")
    assert r.code == 2, r.stderr
    recs = {x["target"]: x for x in lines(r.stdout)}
    assert recs[CLEAN]["summary"]["total_params"] == numel and recs[CLEAN]["exit_code"] == 0
    assert recs[CLEAN]["summary"]["format"] == "safetensors"
    assert recs[BAD]["exit_code"] == 2 and recs[BAD]["error"]


def test_inspect_several_targets_without_jsonl_is_a_usage_error() -> None:
    r = run_cli("inspect", CLEAN, CKPT)
    assert r.code == 2 and "--jsonl" in r.stderr


def test_record_is_json_serialisable_and_the_jsonl_line() -> None:
    rec = record(WHOLE)
    r = run_cli("scan", WHOLE, "--jsonl")
    assert lines(r.stdout) == [json.loads(json.dumps(rec))]
    with pytest.raises(ValueError):
        record(WHOLE, "graph")


def test_dask_local_cluster_gives_the_jsonl_records(tmp_path: Path) -> None:
    """The README recipe: `record` mapped by Dask distributed over a LocalCluster on 127.0.0.1."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    targets = [WHOLE, CLEAN, CKPT, BAD, str(FIXTURES)]
    r = run_cli("scan", *targets, "--jsonl")
    local = sorted(lines(r.stdout), key=lambda x: x["target"])
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        assert c.scheduler_address.startswith("tcp://127.0.0.1:")
        assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
        records = client.gather(client.map(record, targets, pure=False))
    assert sorted(records, key=lambda x: x["target"]) == local
