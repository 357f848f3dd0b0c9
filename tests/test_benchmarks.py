"""The benchmark scripts run (tiny settings) and write the JSON the README quotes from."""

import importlib
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def benchmark_module(name):
    """``benchmarks/<name>.py`` imported as a module (the folder is not a package on the path)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def run_script(name, out, *args):
    """Run ``benchmarks/<name>`` in its own process with ``--out out``; its process, after
    checking it exited 0 (each script starts and stops whatever it needs, e.g. Ray)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
@pytest.mark.ray
def test_engine_overhead_quick(tmp_path):
    out = tmp_path / "engine.json"
    proc = run_script("engine_overhead.py", out, "--quick")
    report = json.loads(out.read_text())
    engines = {row["engine"] for row in report["overhead"]}
    assert {"optuna study.optimize", "tradeoff local", "tradeoff ray"} <= engines
    assert any("tune" in e for e in engines)
    assert all(row["ms_per_trial"] > 0 for row in report["overhead"])
    assert all(0 < row["efficiency"] <= 1.05 for row in report["parallel"])
    cases = {(row["engine"], row["n_workers"]) for row in report["parallel"]}
    for engine in ("tradeoff ray", "tradeoff local"):
        assert {(engine, k) for k in (1, 2, 4)} <= cases
    assert {("ray tune + OptunaSearch", k) for k in (2, 4)} <= cases
    assert "tradeoff ray" in proc.stdout


@pytest.mark.slow
def test_storage_load_quick(tmp_path):
    out = tmp_path / "load.json"
    proc = run_script("storage_load.py", out, "--quick")
    report = json.loads(out.read_text())
    n = report["settings"]["n_trials"]
    rows = {(row["storage"], row["drivers"]): row for row in report["rows"]}
    assert set(rows) == {("memory", 1), ("sqlite", 1), ("journal", 1), ("sqlite", 2)}
    for row in rows.values():  # the count check: exactly the budget, nothing twice, nothing lost
        assert (row["complete"], row["duplicates"], row["lost"]) == (n, 0, 0), row
        assert row["evaluations"] == n and row["ms_per_trial"] > 0
    assert rows[("sqlite", 1)]["commits_per_trial"] > 0  # SQL counted on database storages
    assert "sqlite" in proc.stdout and report["machine"]["load_avg_1_5_15_at_start"]


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.ray
def test_faults_quick(tmp_path):
    out = tmp_path / "faults.json"
    run_script("faults.py", out, "--quick")
    r = json.loads(out.read_text())["results"]
    assert r["trials_lost"] == 0, json.dumps(r, indent=1)  # the diagnosis says what was lost
    assert r["completed"] + r["failed"] == r["trials_requested"]  # a trial may fail its retries
    assert r["finished_trials_rerun"] == 0 and r["worker_kills"] >= 1


def test_multi_fidelity_quick(tmp_path):
    out = tmp_path / "mf.json"
    args = ["--problems", "bits8", "--optimizers", "evolution,random", "--n-trials", "12"]
    run_script("multi_fidelity.py", out, *args, "--seeds", "1")
    report = json.loads(out.read_text())
    assert set(report["median_hv_fraction"]["bits8"]) == {"evolution", "random"}
    for run in report["runs"]:
        assert 0 < run["hv_fraction"] <= 1
        assert int(run["evaluations_by_rung"]["0"]) == 12  # every Config at the lowest budget


def test_main_job_evidence_is_make_runs_command_and_table():
    """benchmarks/results/mnist.json comes from the Makefile's run command as it is now, and
    records the table every fresh run printed."""
    main_job = benchmark_module("main_job")
    argv = main_job.make_run_command()
    assert argv[1] == "examples/mnist_compression.py" and "--seed" in argv
    evidence = json.loads((ROOT / "benchmarks" / "results" / "mnist.json").read_text())
    assert evidence["command"] == shlex.join(["python", *argv[1:]])
    assert evidence["tables_identical"] and evidence["runs"] >= 2 and evidence["fresh_model_cache"]
    assert evidence["machine"]["tradeoff_commit"] and evidence["machine"]["cpu_count"]
    stdout = "noise\n" + "\n".join(evidence["table"]) + "\n\nreport: x\n"
    assert main_job.printed_table(stdout) == evidence["table"]


@pytest.mark.slow
@pytest.mark.ray
def test_make_run_prints_the_evidence_table_today():
    """`make run`'s command prints, today, the table of benchmarks/results/mnist.json (the
    README's): a change that moves the main job's results has to re-make its evidence."""
    import platform

    main_job = benchmark_module("main_job")
    evidence = json.loads((ROOT / "benchmarks" / "results" / "mnist.json").read_text())
    recorded = evidence["machine"]
    here = {"platform": platform.platform(), **benchmark_module("optimizers").cpu_info()}
    keys = ("cpu_model", "cpu_vector_isa") if "cpu_model" in recorded else ("platform",)
    if any(recorded.get(k) != here.get(k) for k in keys):
        # The same seeds draw another search on another machine (README, "Several asks at
        # once": float rounding differs with the CPU); the table is checked where it was made.
        pytest.skip(f"evidence recorded on another machine: {[recorded.get(k) for k in keys]}")
    table = main_job.run_once(main_job.make_run_command(), keep_cache=True)["table"]
    if table[0] != evidence["table"][0]:  # its model key: the CNN trained on this machine
        pytest.skip(f"another trained CNN here ({table[0]}): its results may differ")
    assert table == evidence["table"]


def test_known_costs_quick(tmp_path):
    out = tmp_path / "costs.json"
    args = ["--configs", "6", "--applied", "2", "--arch-models", "minilm", "--arch-applied", "2"]
    run_script("known_costs.py", out, *args)
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/known_costs.py --configs 6")
    assert report["machine"]["tradeoff_commit"] and report["machine"]["torch"]
    arch = [c for m in report["arch_results"].values() for c in m["results"].values()]
    for cost in [*report["results"].values(), *arch]:
        assert cost["analytic"] and cost["equal_on_applied_configs"]
        assert cost["known_states"]["median_us"] < cost["apply_and_measure"]["median_us"]


def test_variant_bank_quick(tmp_path):
    out = tmp_path / "bank.json"
    run_script("variant_bank.py", out, "--quick", "--methods", "rtn,gptq", "--configs", "2")
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/variant_bank.py --quick")
    assert report["machine"]["tradeoff_commit"] and report["machine"]["safetensors"]
    rows = {r["method"]: r for r in report["result"]["methods"]}
    assert rows["gptq"]["entries"] > 0 and rows["gptq"]["bank_mb"] > 0
    # GPTQ calibrated on held-out-disjoint Hamlet beats round-to-nearest at uniform 4 bits.
    assert rows["gptq"]["kl_uniform"]["4"] < rows["rtn"]["kl_uniform"]["4"]


def test_compress_quick(tmp_path):
    out = tmp_path / "compress.json"
    run_script("compress.py", out, "--quick", "--methods", "rtn")
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/compress.py --quick")
    run = report["result"]["runs"]["rtn"]
    budget = report["result"]["budget_mb"]
    assert run["pareto"] and all(p["size_mb"] <= budget for p in run["pareto"])
    kinds = {b["kind"] for b in run["baselines"]}
    assert {"dense", "uniform", "proxy"} <= kinds
    # The knapsack's Configs are the first trials, measured at full fidelity; the front holds
    # them or better, so it matches the knapsack at every knapsack budget.
    knap = report["result"]["knapsack_vs_front"]
    assert len(knap["budgets_mb"]) == 10 and knap["configs"] and knap["all_full_fidelity"]
    assert knap["start_trials"] == list(range(len(knap["start_trials"])))
    assert {p["trial"] for p in knap["configs"]} <= set(knap["start_trials"])
    assert knap["hypervolume_front"] >= knap["hypervolume_knapsack"]
    for row in knap["at_budgets"]:
        assert row["front"]["kl"] <= row["knapsack"]["kl"]
    first = report["result"]["first_front"]
    assert 0 < first["first_trial_s"] <= first["starts_done_s"] <= first["wall_s"]
    fidelity = report["result"]["fidelity"]
    assert set(fidelity["curves"]) == {"multi-fidelity", "full fidelity"}
    assert report["result"]["full_fidelity_run"]["pareto"]


def test_compress_fidelity_only_quick(tmp_path):
    out, bank = tmp_path / "fidelity.json", tmp_path / "bank"
    args = ["--quick", "--fidelity-only", "--seeds", "0,1", "--n-trials", "8"]
    run_script("compress.py", out, *args, "--bank", str(bank), "--rank-configs", "3")
    result = json.loads(out.read_text())["result"]
    assert not result["bank"]["was_warm"] and any(bank.iterdir())  # built once, then reused
    assert result["bank"]["hessians_s"] > 0 and result["bank"]["hessian_collections_after_it"] == 0
    assert [p["seed"] for p in result["pairs"]] == [0, 1]
    assert [p["order"][0] for p in result["pairs"]] == ["multi-fidelity", "full fidelity"]
    for pair in result["pairs"]:
        assert pair["same_knapsack"]
        mf, full = pair["runs"]["multi-fidelity"], pair["runs"]["full fidelity"]
        assert [r["rung"] for r in mf["rungs"]] == [0, 1] and not full["rungs"]
        start, first = pair["from_call_start"], pair["from_first_trial"]
        assert start["offsets_s"][0] > 0 and first["offsets_s"] == [0.0, 0.0]
        assert start["full_final_hypervolume"] == first["full_final_hypervolume"]
    assert len(result["rank_check"]["configs"]) == 3
    assert result["rank_check"]["kl"][0][-1] == pytest.approx(
        result["rank_check"]["recorded_full_kl"][0], rel=1e-5
    )


def test_compress_warm_calls_quick(tmp_path):
    out = tmp_path / "warm.json"
    run_script("compress.py", out, "--quick", "--warm-calls", "2")
    calls = json.loads(out.read_text())["result"]["calls"]
    # The first call builds the bank, collecting the Hessians once; on the warm bank a call
    # collects none, unless the kept digests are removed (as every call did before).
    assert [c["kind"] for c in calls] == ["first", "warm", "as before"]
    assert [c["hessian_collections"] for c in calls] == [1, 0, 1]
    assert [c["entries_built"] > 0 for c in calls] == [True, False, False]


@pytest.mark.slow
def test_result_memory_quick(tmp_path):
    out = tmp_path / "memory.json"
    bank = str(tmp_path / "b")
    run_script("result_memory.py", out, "--quick", "--n-trials", "4", "--bank", bank,
               "--max-memory-mb", "0,60")  # fmt: skip
    free, limited = json.loads(out.read_text())["result"]["runs"]
    for r in (free, limited):
        # The result reaches the dense model's tensors and next to nothing else (the bank's
        # entries and the Hessians are released); model(best) still measures its trial's KL.
        assert r["result_holds_mb"] >= r["dense_model_mb"] > 1.0
        assert r["result_holds_beyond_dense_mb"] < 0.01 * r["dense_model_mb"]
        assert r["model_kl"] == pytest.approx(r["best_kl"], rel=1e-6)
    # The second call reads the bank the first built, under a memory limit (the forgetting
    # itself is test_bank's); it searches the same Configs to the same front.
    assert (free["max_memory_mb"], limited["max_memory_mb"]) == (None, 60.0)
    assert free["entries_read"] == 0 and limited["entries_read"] > 0
    assert limited["pareto"] == free["pareto"]


@pytest.mark.slow
def test_knapsack_proxy_quick(tmp_path):
    out = tmp_path / "proxy.json"
    run_script("knapsack_proxy.py", out, "--quick", "--proxy-budgets", "1,3")
    rep = json.loads(out.read_text())["result"]
    assert [r["proxy_budget_seqs"] for r in rep["runs"]] == [1, 3]
    for r in rep["runs"]:  # the knapsack's Configs, each measured on all the held-out windows
        assert r["configs"] and r["all_full_fidelity"]
        assert all(p["size_mb"] <= rep["budget_mb"] + 1e-9 for p in r["configs"])
        assert r["hypervolume_with_uniform"] >= r["hypervolume_knapsack"] > 0


def test_quantizers_quick(tmp_path):
    out = tmp_path / "quantizers.json"
    args = ["--models", "minilm", "--minilm-blocks", "0", "--bits", "2,3", "--multiples", "1,2"]
    proc = run_script("quantizers.py", out, *args, "--held-out", "512")
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/quantizers.py --models minilm")
    assert report["machine"]["tradeoff_commit"] and report["machine"]["torch"]
    (minilm,) = report["models"]
    assert len({r["layer"] for r in minilm["layers"]}) == 6
    median = minilm["median"]
    for bits in ("2", "3"):  # calibrated beats round-to-nearest on held-out tokens
        assert median["gptq"][bits] < median["rtn"][bits]
    assert [r["multiple"] for r in minilm["sweep"]] == [1, 2]
    assert "token sweep" in proc.stdout


@pytest.mark.slow
def test_structural_pruning_quick(tmp_path):
    out = tmp_path / "structural.json"
    args = ["--sparsities", "0.5", "--epochs", "2", "--finetune-epochs", "1"]
    proc = run_script(
        "structural_pruning.py", out, *args, "--minilm-train", "48", "--minilm-eval", "32"
    )
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/structural_pruning.py --sparsities")
    assert report["machine"]["tradeoff_commit"] and report["machine"]["torch-pruning"]
    resnet, minilm = report["models"]
    assert resnet["space"] == ["block1.conv1.sparsity", "block2.conv1.sparsity", "stem.sparsity"]
    assert len(minilm["space"]) == 6 and minilm["rows"][0]["intermediate_size"] == 768
    for result in (resnet, minilm):
        (row,) = result["rows"]
        # Equal parameter counts: unstructured keeps within 1% of channel pruning's count.
        assert abs(row["unstructured"]["parameters"] / row["channel"]["parameters"] - 1) < 0.01
        assert row["channel"]["parameters"] < result["dense"]["parameters"]
    assert "channel / unstructured" in proc.stdout


def test_mnist_gptq_quick(tmp_path):
    out = tmp_path / "mnist_gptq.json"
    run_script("mnist_gptq.py", out, "--quick", "--n-trials", "8", "--seeds", "0")
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/mnist_gptq.py --quick")
    result = report["result"]
    rtn, gptq = result["runs"]["0"]["rtn"], result["runs"]["0"]["gptq"]
    assert rtn["hypervolume"] > 0 and gptq["hypervolume"] > 0
    two_bits = "uniform sparsity=0.0, bits=2"  # calibrated 2 bits keep more than rounding
    assert gptq["uniform"][two_bits]["accuracy"] > rtn["uniform"][two_bits]["accuracy"]
    assert gptq["uniform"][two_bits]["size_kb"] == rtn["uniform"][two_bits]["size_kb"]
    assert result["median"]["hypervolume"]["rtn"] == rtn["hypervolume"]
    # The same Configs measured with both methods: every Config either run tried, each run's
    # own values reproduced, and the PNG written beside the JSON.
    same = result["same_configs"]
    assert same["configs"] >= 8 and same["rerun_vs_run"]["compared"] >= 8
    check = same["rerun_vs_run"]
    assert check["max_abs_diff"] < 1e-9 and check["max_size_diff"] < 1e-9
    assert len(same["points"]) == same["configs"]
    assert out.with_suffix(".png").stat().st_size > 0
    # Each RTN front point GPTQ's front misses, re-measured beside its own pruning at 8 bits:
    # its accuracy with RTN levels is the one the comparison recorded.
    explained = result["unmatched_explained"]
    missed = same["unmatched"]["unmatched"]
    assert sorted(r["size_kb"] for r in explained) == sorted(p["size"] for p in missed)
    recorded = {p["size"]: p["rtn"] for p in missed}
    for row in explained:
        assert row["accuracy_rtn"] == recorded[row["size_kb"]]
        assert 0 <= row["accuracy_8bit"] <= 1 and min(row["kl_rtn"], row["kl_gptq"]) >= 0


def _suite_problems():
    """``benchmarks/suite_problems.py``; skips without the ``bench`` extra."""
    for module in ("paretobench", "cocoex"):
        pytest.importorskip(module, reason="the bench extra: pip install -e '.[bench]'")
    return benchmark_module("suite_problems")


@pytest.mark.slow
def test_suites_quick_resumes(tmp_path):
    _suite_problems()
    out = tmp_path / "suites.json"
    grid = ("--problems", "wfg4-m2,mixint-f001-d05", "--optimizers", "auto,optuna-random")
    run_script("suites.py", out, *grid, "--seeds", "2", "--n-trials", "6")
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert len(runs) == 8 and not [r["error"] for r in runs if r.get("error")]
    assert all(r["evaluations"] == 6 and r["s_per_proposal"] > 0 for r in runs)
    for row in report["score"].values():
        assert all(
            v["q25"] <= v["median"] <= v["q75"] and v["seeds"] == [0, 1] for v in row.values()
        )
    for r in runs:  # COCO's indicator against its placeholder reference 1.0 (none compiled in)
        if r["problem"].startswith("mixint"):
            assert r["coco_reference_value"] == 1.0
            assert r["score"] == pytest.approx(1.0 - r["coco_indicator"])
        else:
            assert 0.0 <= r["score"] <= 1.0
    # Resumed: cells already there are skipped; nothing starts after --max-minutes.
    run_script("suites.py", out, *grid, "--seeds", "3", "--n-trials", "6")
    run_script("suites.py", out, *grid, "--seeds", "4", "--n-trials", "6", "--max-minutes", "0")
    again = json.loads(out.read_text())
    assert again["runs"][:8] == runs and len(again["runs"]) == 12
    assert [s["cells_run"] for s in again["sessions"]] == [8, 4, 0]
    assert again["sessions"][-1]["stopped"].endswith("4 cells left")


@pytest.mark.slow
def test_suite_reference_values_match_the_published_ones():
    sp = _suite_problems()
    # cocoex compiles in bbob-biobj's reference hypervolumes (its logger reports them);
    # f01 is sphere/sphere, whose normalized front hypervolume is 5/6.
    f01 = sp.coco_reference_value("bbob-biobj", 1, 1, 5)
    assert f01 == pytest.approx(0.833332871970114, abs=1e-15)
    assert abs(f01 - 5 / 6) < 1e-6
    # None for bbob-biobj-mixint: the suite scores 1 - COCO's indicator, not a fraction.
    assert sp.coco_reference_value("bbob-biobj-mixint", 1, 1, 5) is None
    # paretobench's fronts against the closed forms: reference = nadir + 10% of the range.
    wfg, dtlz = {"n": 8, "k": 4}, {"n": 8}
    cases = [
        ("DTLZ1", 2, dtlz, [0.55] * 2, 0.55**2 - 1 / 8),
        ("DTLZ2", 2, dtlz, [1.1] * 2, 1.1**2 - math.pi / 4),
        ("DTLZ2", 3, dtlz, [1.1] * 3, 1.1**3 - math.pi / 6),
        ("WFG3", 2, wfg, [2.2, 4.4], 2.2 * 4.4 - 4.0),
        ("WFG4", 2, wfg, [2.2, 4.4], 2.2 * 4.4 - 2 * math.pi),
    ]
    for name, m, params, reference, exact in cases:
        got = sp.front_reference(name, {**params, "m": m}, m)
        assert got["reference_point"] == pytest.approx(reference, rel=1e-6), name
        assert got["true_hv"] == pytest.approx(exact, rel=1e-12), name
        # The sampled front is a lower bound, close at 2 objectives, ~3% low at 3.
        assert exact * (0.99 if m == 2 else 0.96) < got["front_hv"] <= exact, name
    # At 3 objectives (fronts slow to sample): the simplex and the ellipsoid with axes 2, 4, 6.
    assert sp.closed_form_hv("DTLZ1", 3, np.full(3, 0.55)) == pytest.approx(0.55**3 - 1 / 48)
    box = np.array([2.2, 4.4, 6.6])
    assert sp.closed_form_hv("WFG9", 3, box) == pytest.approx(np.prod(box) - 8 * math.pi)
    # The recorded results used these truths.
    recorded = json.loads((ROOT / "benchmarks" / "results" / "suites.json").read_text())
    for name, problem in recorded["problems"].items():
        if problem.get("true_hv_from") == "closed form":
            pb_name, m = name.split("-")[0].upper(), problem["objectives"]
            exact = sp.closed_form_hv(pb_name, m, np.array(problem["reference_point"]))
            assert problem["true_hv"] == pytest.approx(exact, rel=1e-12), name


@pytest.mark.slow
def test_scale_quick(tmp_path):
    from tests.servers.postgres import pg_bin

    cases = ["memory", "fidelity", "sqlite", "tpe", "mobo", "evolution"]
    cases += ["postgres"] if pg_bin() else []
    out = tmp_path / "scale.json"
    proc = run_script("scale.py", out, "--quick", "--cases", ",".join(cases))
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["case"] for r in rows] == cases and report["settings"]["cases"] == cases
    assert set(report["targets"]) == {f"{case}_growth" for case in cases}
    for r in rows:  # the whole budget ran, and every gap between two evaluations is a tenth's
        assert r["configs_run"] == r["n_trials"] and not r["time_boxed"], r
        tenths = r["ms_per_trial_by_tenth"]
        assert len(tenths) == 10 and min(tenths) > 0
        assert r["growth"] == pytest.approx(tenths[-1] / tenths[0])
        assert report["targets"][f"{r['case']}_growth"]["measured"] == r["growth"]
        assert r["study_trials"] >= r["trials_run"]
    by_case = {r["case"]: r for r in rows}
    assert by_case["memory"]["complete"] == by_case["memory"]["trials_run"] == 200
    evaluations = by_case["fidelity"]["evaluations_by_budget"]
    assert evaluations["1"] == 60 > evaluations["3"] > evaluations["9"] >= 1  # promotions ran
    assert by_case["fidelity"]["trials_run"] == sum(evaluations.values())
    assert by_case["fidelity"]["complete"] == evaluations["9"]
    assert "fidelity_growth" in proc.stdout
    for case in ("tpe", "mobo"):  # the gaps split into the sampler's time and the rest
        r = by_case[case]
        assert r["complete"] == r["trials_run"] == 30
        sampler, rest = r["sampler_ms_per_trial_by_tenth"], r["driver_ms_per_trial_by_tenth"]
        assert len(sampler) == len(rest) == 10 and min(sampler) >= 0 and min(rest) > 0
    assert max(by_case["mobo"]["sampler_ms_per_trial_by_tenth"]) > 0  # its GP ran, timed
    evolution = by_case["evolution"]  # on the ladder, in SQLite, its sampler timed
    assert evolution["storage"] == "sqlite" and evolution["fidelity"] == [1, 3, 9]
    assert evolution["evaluations_by_budget"]["1"] == 30 == evolution["configs_run"]
    assert max(evolution["sampler_ms_per_trial_by_tenth"]) > 0


@pytest.mark.slow
def test_drivers_quick(tmp_path):
    from tests.servers.postgres import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    out = tmp_path / "drivers.json"
    run_script("drivers.py", out, "--quick")
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["drivers"] for r in rows] == [1, 2] and report["all_exact"]
    for r in rows:  # the budget is exact with two drivers on one study, nothing run twice
        assert r["complete"] == r["evaluations"] == r["n_trials"] == 40
        assert r["evaluated_twice"] == r["evaluated_not_complete"] == 0
        assert r["left_running_or_waiting"] == 0 and r["trials_per_s"] > 0
        assert len(r["per_driver_evaluations"]) == r["drivers"]
        assert sum(r["per_driver_evaluations"]) == r["evaluations"]
        assert r["driver_cpu_s_per_trial"] > 0
    assert min(rows[1]["per_driver_evaluations"]) > 0  # both drivers took part


@pytest.mark.slow
@pytest.mark.ray
def test_scale_efficiency_quick(tmp_path):
    out = tmp_path / "efficiency.json"
    args = ["--efficiency", "2,4", "--rounds", "2", "--sleep", "0.2"]
    run_script("scale.py", out, *args)
    report = json.loads(out.read_text())
    rows = report["efficiency"]  # the best of each engine's two runs per level
    cases = [(r["in_flight"], r["engine"]) for r in rows]
    assert cases == [(k, e) for k in (2, 4) for e in ("tradeoff ray", "bare ray tasks (floor)")]
    runs = report["runs"]  # every run, the order alternating between the engines
    engine, floor = "tradeoff ray", "bare ray tasks (floor)"
    assert [r["engine"] for r in runs] == [engine, floor, floor, engine] * 2
    for r in rows:
        same = [x for x in runs if (x["in_flight"], x["engine"]) == (r["in_flight"], r["engine"])]
        assert r["runs"] == len(same) == 2
        assert r["efficiency"] == max(x["efficiency"] for x in same)
        assert r["trials"] == 2 * r["in_flight"] and r["ideal_s"] == pytest.approx(0.4)
        assert 0 < r["efficiency"] <= 1.05 and r["driver_cpu_s_per_trial"] > 0
        assert r["efficiency"] == pytest.approx(r["ideal_s"] / r["wall_s"])


def test_propose_ahead_quick(tmp_path):
    out = tmp_path / "propose_ahead.json"
    run_script("propose_ahead.py", out, "--quick")
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["propose_ahead"] for r in rows] == [False, True]  # seed 0: plain first
    for r in rows:  # every trial ran once on a worker, the budget exact both ways
        assert r["trials"] == report["settings"]["n_trials"] and 0 < r["utilization"] <= 1
    cell = report["summary"]["random"]
    assert cell["span_ratio"] == cell["ahead"]["span_s"] / cell["plain"]["span_s"]
    assert report["machine"]["tradeoff_commit"]


def test_provenance_calls_a_run_of_another_checkouts_tradeoff_dirty(monkeypatch, tmp_path):
    # An editable install points `import tradeoff` at one checkout; a script run from a clone
    # of another commit would record the clone's commit for code it did not run.
    import types

    provenance = benchmark_module("provenance")
    here = provenance.commit_info()
    assert "tradeoff_imported_from" not in here  # this checkout's own tradeoff
    elsewhere = types.ModuleType("tradeoff")
    elsewhere.__file__ = str(tmp_path / "other" / "tradeoff" / "__init__.py")
    monkeypatch.setitem(sys.modules, "tradeoff", elsewhere)
    info = provenance.commit_info()
    assert info["tradeoff_dirty"] is True and info["tradeoff_commit"] == here["tradeoff_commit"]
    assert info["tradeoff_imported_from"] == str(tmp_path / "other" / "tradeoff")


def test_proposal_speed_in_a_row_quick(tmp_path):
    out = tmp_path / "in_a_row.json"
    args = ["--problems", "zdt1", "--samplers", "mobo", "--n-obs", "12", "--workers", "1"]
    run_script("proposal_speed.py", out, *args, "--proposals", "2", "--in-a-row", "3")
    report = json.loads(out.read_text())
    (timing,) = report["timings"]
    assert report["settings"]["in_a_row"] == 3 and len(timing["seconds"]) == 6
    groups = report["group_s"]["zdt1"]["mobo"]  # each group's asks summed, in order
    assert groups == pytest.approx([sum(timing["seconds"][:3]), sum(timing["seconds"][3:])])
