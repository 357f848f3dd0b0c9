"""tradeoff.compress end to end: a tiny seeded Llama (KL, GPTQ/RTN, dropped blocks) and a tiny
CNN (accuracy), locally and on Ray; resume; baselines and their domination; bad input."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers: nothing downloads
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402

import tradeoff  # noqa: E402
from tests import models  # noqa: E402
from tests.models import tiny_cnn  # noqa: E402
from tradeoff._compress import CompressResult  # noqa: E402
from tradeoff._compress_baselines import budget_texts  # noqa: E402
from tradeoff.objectives import Accuracy, KLToDense, QualityFn  # noqa: E402

QUIET = {"show_progress": False}
# A tiny calibration set: GPTQ warns that it wants more tokens.
pytestmark = pytest.mark.filterwarnings("ignore:collect_hessians:UserWarning")


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 128, (9, 16), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def cnn_data():
    """Images and the dense CNN's own predictions as labels (dense accuracy 1.0)."""
    return models.cnn_data()


def brute_dominated_by(result: CompressResult) -> list[list[int]]:
    names, dirs = result.objectives.names, result.objectives.directions
    sign = {"minimize": 1.0, "maximize": -1.0}
    out = []
    for _, base in result.baselines.iterrows():
        hits = []
        for _, p in result.pareto.iterrows():
            a = [sign[d] * p[n] for n, d in zip(names, dirs)]
            b = [sign[d] * base[n] for n, d in zip(names, dirs)]
            if all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b)):
                hits.append(int(p["trial"]))
        out.append(sorted(hits))
    return out


def test_llama_gptq_kl_blocks_and_budget(llama, ids, tmp_path):
    quality = KLToDense(ids)
    result = tradeoff.compress(
        llama, quality=quality, drop_blocks=True, budget={"size_mb": 0.12}, n_trials=12,
        quantize={"bits": (3, 4, 8), "method": "gptq", "granularity": "group",
                  "group_size": 32, "bank": tmp_path / "bank"},
        seed=0, **QUIET,
    )  # fmt: skip
    assert isinstance(result, CompressResult) and isinstance(result, tradeoff.SearchResult)
    space = result.space
    # One group per block (quant.model.layers.<i>.bits) plus the untied head; block keep knobs.
    assert sorted(space) == sorted(
        [f"arch.model.layers.{i}.keep" for i in range(3)]
        + [f"quant.model.layers.{i}.bits" for i in range(3)]
        + ["quant.lm_head.bits"]
    )
    # The first trials are the uniform levels within the budget, every block kept.
    first = result.configs(pareto=False)[:2]
    assert [{v for k, v in c.items() if k.endswith(".bits")} for c in first] == [{3}, {4}]
    assert all(v for c in first for k, v in c.items() if k.endswith(".keep"))
    assert "budget" in result.trials  # the fidelity ladder from quality.rungs(): 1, 3, 9
    assert set(result.trials["budget"].dropna()) <= {1, 3, 9}
    base = result.baselines
    assert list(base["baseline"]) == [
        "dense", "uniform bits=3", "uniform bits=4", "uniform bits=8",
        "additive proxy, size_mb <= 0.12",
    ]  # fmt: skip
    assert list(base["feasible"]) == [False, True, True, False, True]
    assert base["kl"].notna().all() and base.loc[0, "kl"] == pytest.approx(0.0, abs=1e-9)
    assert base["dominated_by"].tolist() == brute_dominated_by(result)
    # The result holds no bank entry or Hessian (they are on disk: for SmolLM2 GPTQ, 2.6 GB
    # of dequantized levels); a Pareto trial's model reads the bank's weights again and
    # measures what the trial measured.
    quantizer = space.children["quant"].quantizer
    assert len(quantizer.bank) == 0 and not quantizer.hessians
    row = result.pareto.iloc[0]
    quality.prepare(llama)
    loaded = quantizer.bank.loaded
    assert quality.measure(result.model(row)) == pytest.approx(row["kl"], rel=1e-6)
    assert quantizer.bank.loaded > loaded and len(quantizer.bank) == 0
    assert "Baselines:" in result.report() and "additive proxy" in result.report()
    assert (result.pareto["size_mb"] <= 0.12).all()


def test_a_second_call_on_a_warm_bank_collects_no_hessians(llama, ids, tmp_path, monkeypatch):
    # Collecting GPTQ's Hessians is a pass of the model over the calibration set (minutes for
    # a real language model); a call whose bank holds every entry makes none, resumes too.
    from tradeoff.spaces import _calibration

    passes, real = [], _calibration.collect_hessians

    def counted(*args, **kwargs):
        passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_calibration, "collect_hessians", counted)
    kw = {
        "quantize": {"bits": (4, 8), "method": "gptq", "bank": tmp_path / "bank"},
        "drop_blocks": True, "fidelity": False, "baselines": False, "seed": 0, **QUIET,
        "storage": f"sqlite:///{tmp_path / 's.db'}",
    }  # fmt: skip
    first = tradeoff.compress(llama, quality=KLToDense(ids), n_trials=2, study_name="a", **kw)
    assert len(passes) == 1
    again = tradeoff.compress(llama, quality=KLToDense(ids), n_trials=2, study_name="b", **kw)
    resumed = tradeoff.compress(llama, quality=KLToDense(ids), n_trials=3, study_name="a", **kw)
    assert len(passes) == 1 and len(resumed.trials) == 3
    assert again.trials["kl"].tolist() == first.trials["kl"].tolist()  # the same entries
    row = resumed.trials.iloc[-1]
    quality = KLToDense(ids)
    quality.prepare(llama)
    assert quality.measure(resumed.model(int(row["trial"]))) == pytest.approx(row["kl"], rel=1e-6)


def test_llama_rtn_without_fidelity_starts_from_uniform_levels(llama, ids):
    result = tradeoff.compress(
        llama, quality=KLToDense(ids), quantize={"bits": (4, 8)}, fidelity=False,
        cost=("size_mb", "gbitops"), n_trials=6, seed=0, **QUIET,
    )  # fmt: skip
    trials, base = result.trials, result.baselines
    assert result.objectives.names == ["kl", "size_mb", "gbitops"]
    # gbitops from the quality's ids[:1] (16 tokens): 8-bit weights x 32-bit activations.
    uniform8 = base.set_index("baseline").loc["uniform bits=8"]
    assert 0 < uniform8["gbitops"] < base.loc[0, "gbitops"]
    assert "budget" not in trials and len(trials) == 6
    uniform = base[base["kind"] == "uniform"]
    assert uniform["trial"].notna().all()  # every uniform level ran as a trial (initial_configs)
    by_trial = trials.set_index("trial")["kl"]
    for _, row in uniform.iterrows():
        assert by_trial[int(row["trial"])] == row["kl"]
    # The proxy without a budget: at each uniform level's cost but the dearest.
    assert list(base[base["kind"] == "proxy"]["baseline"]) == [
        f"additive proxy, size_mb <= {uniform['size_mb'].min():.4g}"
    ]
    assert base["dominated_by"].tolist() == brute_dominated_by(result)


def test_cnn_accuracy_with_failed_trials(cnn_data):
    model = tiny_cnn()
    calls = []

    def accuracy_or_nan(m: nn.Module, budget: object) -> float:
        calls.append(budget)
        w = m[-1].weight
        if w.unique().numel() <= 4:  # 2 bits, one scale: say the model broke
            return math.nan
        return float((m(cnn_data[0]).argmax(1) == cnn_data[1]).float().mean())

    quality = QualityFn(accuracy_or_nan, "accuracy", "maximize")
    result = tradeoff.compress(
        model, quality=quality, quantize={"bits": (2, 4, 8), "granularity": "tensor"},
        n_trials=8, seed=1, **QUIET,
    )  # fmt: skip
    failed = result.failures
    assert len(failed) >= 1 and failed["failure"].str.contains("nan").all()
    base = result.baselines.set_index("baseline")
    assert base.loc["dense", "accuracy"] == 1.0
    assert math.isnan(base.loc["uniform bits=2", "accuracy"])
    assert "nan" in base.loc["uniform bits=2", "failure"]
    assert base.loc["uniform bits=8", "trial"] is not None
    assert result.baselines["dominated_by"].tolist() == brute_dominated_by(result)


def test_cnn_accuracy_fidelity_ladder(cnn_data):
    result = tradeoff.compress(
        tiny_cnn(), quality=Accuracy(cnn_data, batch_size=20), quantize={"bits": (2, 3, 4, 8)},
        budget={"size_mb": 0.004}, n_trials=8, n_workers=2, seed=0, **QUIET,
    )  # fmt: skip
    assert set(result.trials["budget"].dropna()) <= {7, 20, 60}
    assert result.objectives.directions == ["maximize", "minimize"]
    assert result.baselines["dominated_by"].tolist() == brute_dominated_by(result)
    assert (result.baselines["kind"] == "proxy").sum() == 1


REF = {"accuracy": 0.0, "size_kb": 10.0, "mbitops": 4.0}


def test_cnn_pruning_and_quantization_with_channels_and_costs_in_kb_and_mbitops(cnn_data):
    model = tiny_cnn()
    result = tradeoff.compress(
        model, quality=Accuracy(cnn_data), fidelity=False, quantize={"bits": (4, 8)},
        prune={"sparsity": (0.0, 0.5), "pattern": ("unstructured", "channel")},
        cost=("size_kb", "mbitops"), n_trials=10, seed=0, reference=REF, **QUIET,
    )  # fmt: skip
    assert [n for n in result.space if n.startswith("prune.")][:2] == [
        "prune.0.sparsity",
        "prune.0.pattern",
    ]
    assert result.space["prune.5.pattern"].values == ("unstructured",)  # the logits stay
    base = result.baselines.set_index("baseline")
    assert base.loc["dense", "size_kb"] == pytest.approx(
        sum(p.numel() for p in model.parameters()) * 4 / 1024
    )
    assert base.loc["dense", "mbitops"] > base.loc["uniform sparsity=0.0, bits=8", "mbitops"]
    # The knapsack chose among the patterns too: a channel-pruned layer is one of its options.
    proxy = result.baselines[result.baselines["kind"] == "proxy"]
    assert len(proxy) >= 1 and proxy["trial"].notna().all()  # its Configs started the search
    # Both patterns at sparsity 0 cost the same: one budget, never a range "a..a"; 4 digits.
    uniform = result.baselines[result.baselines["kind"] == "uniform"]["size_kb"]
    budgets = {f"{v:.4g}" for v in uniform if v < uniform.max()}
    ends = [label.rsplit("<= ", 1)[1].split("..") for label in proxy["baseline"]]
    assert all(len(set(e)) == len(e) for e in ends) and {x for e in ends for x in e} <= budgets
    assert len(set(proxy["baseline"])) == len(proxy)
    channel = [
        (n, c)
        for n, c in zip(result.trials["trial"], result.configs(pareto=False))
        if any(c[f"prune.{i}.pattern"] == "channel" and c[f"prune.{i}.sparsity"] for i in (0, 3))
    ]
    assert channel  # and the compressed model is really narrower
    number, _ = channel[0]
    small = result.model(number)
    widths = {"0": small[0].out_channels, "3": small[3].out_features}
    assert any(w < {"0": 4, "3": 16}[i] for i, w in widths.items())
    assert [sorted(d) for d in result.baselines["dominated_by"]] == brute_dominated_by(result)
    report = result.to_dict()  # the hypervolume against the reference given
    assert report["objectives"] == {"accuracy": "maximize", "size_kb": "minimize",
                                    "mbitops": "minimize"}  # fmt: skip
    assert [row["trial"] for row in report["pareto"]] == result.pareto["trial"].tolist()
    assert report["hypervolume"] == result.hypervolume(list(REF.values())) > 0
    # optuna-dashboard notes: the baselines table on the study, what each Pareto trial beats.
    study = result.study
    notes = " ".join(map(str, study._storage.get_study_system_attrs(study._study_id).values()))
    assert "### Baselines" in notes and "| uniform sparsity=0.0, bits=8 |" in notes
    beats = [row for _, row in result.baselines.iterrows() if row["dominated_by"]]
    assert not beats or f"Dominates: {beats[0]['baseline']}" in notes
    assert "uniform baseline" in notes and "proxy baseline" in notes  # the front's figure
    assert report["baselines"][0]["baseline"] == "dense"


def test_proxy_budgets_read_with_4_digits_or_as_many_as_tell_them_apart():
    assert budget_texts([1.396484375, 23.51612, 91.4473]) == ["1.396", "23.52", "91.45"]
    assert budget_texts([1.39641, 1.39648, 20.0]) == ["1.3964", "1.3965", "20"]


def test_the_knapsack_measures_at_proxy_budget_while_trials_use_all_the_data(cnn_data):
    budgets = []

    def error(m: nn.Module, budget: object) -> float:
        budgets.append(budget)
        n = int(budget)
        return float((m(cnn_data[0][:n]).argmax(1) != cnn_data[1][:n]).float().mean())

    quality = QualityFn(error, "error", max_budget=60)
    tradeoff.compress(
        tiny_cnn(), quality=quality, quantize={"bits": (2, 4, 8)}, fidelity=False,
        proxy_budget=20, n_trials=6, seed=0, **QUIET,
    )  # fmt: skip
    proxy = 1 + 3 * 2  # the base and each layer's 2 other levels
    assert budgets[0] == 60  # the dense check
    assert budgets[1 : 1 + proxy] == [20] * proxy
    assert set(budgets[1 + proxy :]) == {60}  # every trial, on all the data
    with pytest.raises(ValueError, match=r"proxy_budget: .*beyond the data"):
        tradeoff.compress(tiny_cnn(), quality=quality, quantize={"bits": (2, 4, 8)},
                          proxy_budget=61, **QUIET)  # fmt: skip
    # By default, under a ladder, at its second rung: the lowest is too little data to
    # measure one layer's change.
    budgets.clear()
    tradeoff.compress(tiny_cnn(), quality=quality, quantize={"bits": (2, 4, 8)}, n_trials=6,
                      seed=0, **QUIET)  # fmt: skip
    rungs = quality.rungs()
    assert len(rungs) == 3 and budgets[1 : 1 + proxy] == [rungs[1]] * proxy


def test_resume_runs_only_the_missing_trials(cnn_data, tmp_path):
    calls = []

    def error(m: nn.Module, budget: object) -> float:
        calls.append(1)
        return float((m(cnn_data[0]).argmax(1) != cnn_data[1]).float().mean())

    kw = {
        "quality": QualityFn(error, "error"), "quantize": {"bits": (2, 4, 8)},
        "storage": f"sqlite:///{tmp_path / 'c.db'}", "study_name": "cnn", "seed": 0, **QUIET,
    }  # fmt: skip
    first = tradeoff.compress(tiny_cnn(), n_trials=6, **kw)
    n_first = len(calls)
    second = tradeoff.compress(tiny_cnn(), n_trials=9, **kw)
    # 3 new trials and the dense check: the uniform levels and the proxy are not re-measured.
    assert len(calls) - n_first == 3 + 1
    assert len(first.trials) == 6 and len(second.trials) == 9
    pd_first, pd_second = first.baselines, second.baselines
    assert pd_first["error"].tolist() == pd_second["error"].tolist()


@pytest.mark.ray
def test_ray_backend_reads_the_bank_built_up_front(ray_session, llama, ids, tmp_path):
    result = tradeoff.compress(
        llama, quality=KLToDense(ids), drop_blocks="model.layers", n_trials=5, n_workers=2,
        quantize={"bits": (4, 8), "method": "gptq", "bank": tmp_path / "bank"},
        fidelity=False, backend="ray", seed=0, baselines=False, **QUIET,
    )  # fmt: skip
    trials = result.trials
    assert (trials["status"] == "complete").all() and len(trials) == 5
    assert not trials["worker"].str.contains(f":{os.getpid()}").any()  # other processes
    assert list(result.baselines["kind"]) == ["dense", "uniform", "uniform"]
    row = result.pareto.iloc[-1]
    quality = KLToDense(ids)
    quality.prepare(llama)
    assert quality.measure(result.model(int(row["trial"]))) == pytest.approx(row["kl"], rel=1e-6)


@pytest.mark.ray
def test_ray_workers_compute_gptq_entries_of_pruned_layers(ray_session, llama, ids, tmp_path):
    # Pruned (masked or channel-narrowed) layers need GPTQ entries no build lists up front: the
    # workers compute them from the Hessians shipped with the space.
    result = tradeoff.compress(
        llama, quality=KLToDense(ids), n_trials=4, n_workers=2,
        prune={"sparsity": (0.0, 0.5), "pattern": ("unstructured", "channel"),
               "include": r"re:.*mlp\.(gate|up)_proj$"},
        quantize={"bits": (4, 8), "method": "gptq", "bank": tmp_path / "bank"},
        fidelity=False, backend="ray", seed=0, baselines=False, **QUIET,
    )  # fmt: skip
    trials = result.trials
    assert (trials["status"] == "complete").all(), trials["failure"].dropna().tolist()
    assert not trials["worker"].str.contains(f":{os.getpid()}").any()  # other processes
    sparsity = trials[[c for c in trials if c.endswith(".sparsity")]]
    pruned = trials[(sparsity > 0).any(axis=1)]
    assert len(pruned)  # some trial pruned a layer: its entries came from a worker
    row = pruned.iloc[-1]
    quality = KLToDense(ids)
    quality.prepare(llama)
    assert quality.measure(result.model(int(row["trial"]))) == pytest.approx(row["kl"], rel=1e-6)


# Bad input: a clear error before any trial or storage write ---------------------------------------
def bad(model: nn.Module, error: type[Exception], match: str, tmp_path, **kw: object) -> None:
    db = tmp_path / "bad.db"
    kw.setdefault("quantize", {"bits": (4, 8)})
    with pytest.raises(error, match=match):
        tradeoff.compress(model, storage=f"sqlite:///{db}", study_name="x", **QUIET, **kw)
    assert not db.exists()


def test_bad_input(cnn_data, llama, ids, tmp_path):
    acc = Accuracy(cnn_data)
    cnn = tiny_cnn()
    bad(nn.Sequential(nn.ReLU()), ValueError, "No layers to quantize", tmp_path, quality=acc)
    bad(cnn, ValueError, r"unknown keys \['bitz'\]", tmp_path, quality=acc,
        quantize={"bitz": (4, 8)})  # fmt: skip
    bad(cnn, ValueError, "closest uniform setting, 'bits=4'", tmp_path, quality=acc,
        budget={"size_mb": 1e-4})  # fmt: skip
    bad(cnn, TypeError, "quality must be", tmp_path, quality="accuracy")
    bad(cnn, ValueError, "dense model itself", tmp_path,
        quality=QualityFn(lambda m, b: math.inf, "q"))  # fmt: skip
    bad(cnn, ValueError, "Nothing to compress", tmp_path, quality=acc, quantize=None)
    bad(cnn, ValueError, "needs calibration", tmp_path, quality=acc,
        quantize={"bits": (4, 8), "method": "gptq"})  # fmt: skip
    bad(cnn, ValueError, "neither a cost", tmp_path, quality=acc, budget={"latency": 1.0})
    bad(cnn, TypeError, "sets", tmp_path, quality=acc, initial_configs=[])
    bad(cnn, ValueError, "drop_blocks: No transformer blocks", tmp_path, quality=acc,
        drop_blocks=True)  # fmt: skip
    bad(llama, ValueError, "vocabulary", tmp_path, quality=KLToDense(ids + 200))
    bad(cnn, ValueError, r"prune has unknown keys \['sparsty'\]", tmp_path, quality=acc,
        prune={"sparsty": (0.0, 0.5)})  # fmt: skip
    bad(cnn, ValueError, "backend", tmp_path, quality=acc, backend="slurm")
    bad(cnn, ValueError, r"reference must give one value for each objective, \['accuracy', "
        r"'size_mb'\]", tmp_path, quality=acc, reference={"accuracy": 0.0})  # fmt: skip
    if not torch.cuda.is_available():
        bad(cnn, ValueError, r"device='cuda': torch \S+ sees no CUDA device.*; use device='cpu'",
            tmp_path, quality=acc, device="cuda")  # fmt: skip


def test_the_search_starts_from_the_knapsack_and_its_front_holds_it(
    llama, ids, tmp_path, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    kw = {
        "quality": KLToDense(ids), "budget": {"size_mb": 0.12}, "fidelity": False, "seed": 0,
        "quantize": {"bits": (3, 4, 8)}, "storage": url, "study_name": "p", **QUIET,
    }  # fmt: skip
    result = tradeoff.compress(llama, n_trials=14, **kw)
    proxy = result.baselines[result.baselines["kind"] == "proxy"].iloc[0]
    assert proxy["feasible"]
    # The knapsack's Config at the budget was a trial of the search, not a separate run...
    assert not math.isnan(proxy["trial"])
    first = result.trials.sort_values("trial")["trial"].tolist()
    assert int(proxy["trial"]) in first[:14]
    # ... so no Pareto point of the budget is worse than it: one is it, or better.
    front = result.pareto
    assert ((front["kl"] <= proxy["kl"]) & (front["size_mb"] <= proxy["size_mb"])).any()
    # Resumed, the knapsack is not measured again (its starts are recorded on the study).
    from tradeoff._compress import CompressEvaluate

    calls = []
    original = CompressEvaluate.__call__

    def counting(self, config, budget=None):
        calls.append(config)
        return original(self, config, budget)

    monkeypatch.setattr(CompressEvaluate, "__call__", counting)
    tradeoff.compress(llama, n_trials=16, **kw)
    assert len(calls) == 2  # the two new trials only


# PEFT: adapters trained, merged, then compressed; FFN width; trainable and latency costs ---------
@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, num_labels=2,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config).eval()


def test_peft_trains_merges_then_compresses_and_resumes_promoted_configs(bert):
    from tradeoff.objectives import trainable_parameters, weight_storage_bytes
    from tradeoff.search import Fidelity

    x = {"input_ids": torch.randint(0, 64, (12, 8), generator=torch.Generator().manual_seed(3))}
    y = torch.arange(12) % 2
    calls, seen = [], []

    def train(model, steps, start):  # a resumable loop: the state is (steps done, weights)
        assert not (start is not None and start[0] > steps)
        calls.append((model.peft_config["default"].peft_type.value, steps, start and start[0]))
        trainable = [p for p in model.parameters() if p.requires_grad]
        assert trainable and any("lora_" in n or "ia3_" in n for n, _ in model.named_parameters())
        if start is not None:
            with torch.no_grad():
                for p, saved in zip(trainable, start[1]):
                    p.copy_(saved)
        opt = torch.optim.SGD(trainable, lr=0.1)
        for _ in range(int(steps) - (start[0] if start else 0)):
            loss = nn.functional.cross_entropy(model(**x).logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return int(steps), [p.detach().clone() for p in trainable]

    def accuracy(model, steps):
        names = [n for n, _ in model.named_modules()]
        seen.append((model, not any("lora" in n or "ia3" in n for n in names)))
        with torch.no_grad():
            return float((model(**x).logits.argmax(-1) == y).float().mean())

    peft = {"train": train, "methods": ("lora", "ia3"), "ranks": (2, 4), "dropouts": (0.0,),
            "targets": ("query", "value", "intermediate.dense"), "layers": "last",
            "task_type": "SEQ_CLS"}  # fmt: skip
    result = tradeoff.compress(
        bert, quality=QualityFn(accuracy, "accuracy", "maximize", max_budget=6),
        peft=peft, ffn=(0.5, 1.0), quantize={"bits": (4, 8)},
        cost=("trainable_k", "size_mb", "latency_ms"), fidelity=Fidelity((2, 6), eta=2),
        sample_input={"input_ids": x["input_ids"][:2]}, n_trials=12, seed=0, **QUIET,
    )  # fmt: skip
    assert all(merged for _, merged in seen)  # the quality sees no adapter: merged first
    assert any(start == 2 for _, steps, start in calls if steps == 6)  # promoted: resumed
    trials = result.trials
    assert set(trials["budget"].dropna()) == {2, 6}
    config = result.configs()[0]
    assert {k.split(".")[0] for k in config} == {"peft", "arch", "quant"}
    # Known costs: the adapters' trainable parameters (classifier included, as peft counts);
    # the size of the compression of the merged model (adapters add nothing once merged).
    space = result.space.children["peft"]
    from tradeoff.spaces import PEFTSpace

    adapters = PEFTSpace.for_model(bert, **{k: v for k, v in peft.items() if k != "train"})
    assert set(space) == set(adapters)
    sub = {k[5:]: v for k, v in config.items() if k.startswith("peft.")}
    row = result.pareto.iloc[0]
    assert row["trainable_k"] == pytest.approx(
        trainable_parameters(adapters.apply(bert, sub)) / 1e3
    )
    compressed = result.model(int(row["trial"]))
    assert not any("lora" in n or "ia3" in n for n, _ in compressed.named_modules())
    assert row["size_mb"] == pytest.approx(weight_storage_bytes(compressed) * 1e-6)
    width = compressed.bert.encoder.layer[1].intermediate.dense.out_features
    assert width == 64 * config["arch.bert.encoder.layer.1.ffn"]
    base = result.baselines.set_index("baseline")
    assert base.loc["dense", "trainable_k"] == 0.0 and base.loc["dense", "latency_ms"] > 0
    # Each uniform compression after the default baseline adapters (every target and block),
    # measured as the first trials; no knapsack over adapters.
    assert set(base["kind"]) == {"dense", "uniform"}
    assert "uniform adapters, ffn=0.5, bits=4" in base.index
    assert base["trial"].notna().sum() == len(base) - 1
    assert result.baselines["dominated_by"].tolist() == brute_dominated_by(result)
    # Latency: a table lookup, equal for equal architectures, and the dense model's at full width.
    full = base.loc["uniform adapters, ffn=1.0, bits=8", "latency_ms"]
    assert (
        full
        == base.loc["dense", "latency_ms"]
        == base.loc["uniform adapters, ffn=1.0, bits=4", "latency_ms"]
    )


def test_peft_bad_input(bert, tmp_path):
    q = QualityFn(lambda m, b: 0.5, "q")
    bad(bert, TypeError, "peft needs 'train'", tmp_path, quality=q, peft={"ranks": (4,)})
    bad(bert, ValueError, r"peft has unknown keys \['rank'\]", tmp_path, quality=q,
        peft={"train": lambda m, s, st: None, "rank": 4})  # fmt: skip
    bad(bert, ValueError, "counts the adapters' parameters: give peft=", tmp_path, quality=q,
        cost=("size_mb", "trainable_k"))  # fmt: skip
    bad(bert, ValueError, "peft 'baselines' must map labels", tmp_path, quality=q,
        peft={"train": lambda m, s, st: None, "baselines": {"x": {"method": "lora"}}})  # fmt: skip
    bad(bert, TypeError, "ffn must be FFN width ratios", tmp_path, quality=q, ffn=0.5)
