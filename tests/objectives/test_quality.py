"""Quality objectives on a tiny seeded Llama and a tiny seeded classifier, against brute force."""

from __future__ import annotations

import copy
import math
import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import tradeoff  # noqa: E402
from tradeoff.objectives import (  # noqa: E402
    Accuracy,
    KLToDense,
    Objective,
    Perplexity,
    QualityFn,
)
from tradeoff.search import Fidelity  # noqa: E402
from tradeoff.spaces import QuantizationSpace  # noqa: E402

VOCAB, N_SEQS, SEQ_LEN = 64, 6, 12


def tiny_llama(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        attention_dropout=dropout,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


def ids(n: int = N_SEQS, length: int = SEQ_LEN, high: int = VOCAB, seed: int = 1):
    return torch.randint(0, high, (n, length), generator=torch.Generator().manual_seed(seed))


def perturbed(model: nn.Module, scale: float, seed: int = 2) -> nn.Module:
    """A copy with seeded Gaussian noise of ``scale`` times each weight's std added."""
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=gen))
    return out


class Sequences:
    """Counts the sequences the forward passes of the models it watches see."""

    def __init__(self, model: nn.Module | None = None) -> None:
        self.seen = 0
        if model is not None:
            self.watch(model)

    def watch(self, model: nn.Module) -> nn.Module:
        model.register_forward_pre_hook(self.hook, with_kwargs=True)
        return model

    def hook(self, module, args, kwargs):
        self.seen += len(kwargs["input_ids"] if "input_ids" in kwargs else args[0])


def brute_log_probs(model: nn.Module, seq: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=seq[None]).logits[0].float(), dim=-1)


@pytest.fixture(scope="module")
def dense():
    return tiny_llama()


@pytest.fixture(scope="module")
def kl(dense):
    quality = KLToDense(ids(), batch_size=2)
    quality.prepare(dense)
    return quality


# KLToDense ------------------------------------------------------------------------------------
def test_kl_of_the_dense_model_to_itself_is_zero(dense, kl):
    assert kl.measure(dense) == 0.0
    assert kl.measure(copy.deepcopy(dense), 2) == 0.0


def test_kl_is_positive_and_grows_as_weights_are_perturbed_more(dense, kl):
    values = [kl.measure(perturbed(dense, scale)) for scale in (0.02, 0.1, 0.5)]
    assert 0 < values[0] < values[1] < values[2]


def test_kl_at_full_budget_is_the_mean_of_brute_force_per_sequence_kls(dense):
    kl = KLToDense(ids(), batch_size=4)  # 6 sequences: a full batch and a partial one
    kl.prepare(dense)
    model = perturbed(dense, 0.2)
    per_seq = [
        F.kl_div(brute_log_probs(model, s), brute_log_probs(dense, s), log_target=True,
                 reduction="sum") / SEQ_LEN
        for s in ids()
    ]  # fmt: skip
    assert kl.measure(model) == pytest.approx(float(torch.stack(per_seq).mean()), rel=1e-5)
    assert kl.measure(model, 2) == pytest.approx(float(torch.stack(per_seq[:2]).mean()), rel=1e-5)


def test_warm_start_runs_only_the_new_sequences_and_equals_a_cold_evaluation(dense, kl):
    model = perturbed(dense, 0.2)
    counter = Sequences(model)
    low = kl.measure(model, 2, key="cfg")
    assert counter.seen == 2
    high = kl.measure(model, 6, key="cfg")
    assert counter.seen == 6  # sequences 3..6 only
    assert kl.measure(model, 4, key="cfg") == kl.measure(model, 4)  # a prefix: nothing new runs
    assert counter.seen == 6 + 4
    # Rungs at multiples of batch_size: the same batches as cold, so exactly the same number.
    assert high == kl.measure(model, 6) and low == kl.measure(model, 2)
    assert counter.seen == 10 + 6 + 2
    # Elsewhere a sequence may meet other batch-mates: the same up to float rounding.
    odd = kl.measure(model, 1, key="odd"), kl.measure(model, 5, key="odd")
    assert counter.seen == 18 + 5
    assert odd == pytest.approx((kl.measure(model, 1), kl.measure(model, 5)), rel=1e-6, abs=0)


def test_prepare_again_forgets_the_warm_start_values(dense):
    quality = KLToDense(ids(), batch_size=4)
    quality.prepare(dense)
    model = perturbed(dense, 0.2)
    quality.measure(model, 2, key="cfg")
    quality.prepare(perturbed(dense, 0.1))  # a new dense reference
    assert quality.measure(model, 2, key="cfg") == quality.measure(model, 2)


def test_models_are_measured_in_eval_mode_and_left_as_they_were(dense, kl):
    model = tiny_llama(dropout=0.5).train()  # the dense weights, with attention dropout
    model.model.layers[0].eval()
    modes = {name: m.training for name, m in model.named_modules()}
    assert kl.measure(model) == 0.0  # no dropout: eval mode
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_float16_storage_biases_the_kl_little_and_bfloat16_more(dense):
    model = perturbed(dense, 0.2)
    kls = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        kls[dtype] = KLToDense(ids(), dtype=dtype)
        kls[dtype].prepare(dense)
    exact = kls[torch.float32].measure(model)
    assert abs(kls[torch.float16].measure(model) - exact) < 3e-6 < 1e-2 * exact
    assert 0 < kls[torch.float16].measure(dense) < 3e-6  # its rounding, seen as a divergence
    assert kls[torch.bfloat16].measure(dense) > 30 * kls[torch.float16].measure(dense)


def test_a_pickled_kl_needs_prepare_again_and_then_gives_the_same_number(dense, kl):
    model = perturbed(dense, 0.2)
    clone = pickle.loads(pickle.dumps(kl))
    assert not clone.prepared
    with pytest.raises(RuntimeError, match=r"call prepare\(dense_model\) before measure"):
        clone.measure(model)
    clone.prepare(dense)
    assert clone.measure(model) == kl.measure(model)


# Perplexity -----------------------------------------------------------------------------------
def test_perplexity_is_exp_of_the_mean_nll_by_brute_force(dense):
    model = perturbed(dense, 0.1)
    nll = [F.cross_entropy(brute_log_probs(model, s)[:-1], s[1:], reduction="sum") for s in ids()]
    quality = Perplexity(ids(), batch_size=4)
    full = math.exp(float(torch.stack(nll).sum()) / (N_SEQS * (SEQ_LEN - 1)))
    assert quality.measure(model) == pytest.approx(full, rel=1e-5)
    part = math.exp(float(torch.stack(nll[:3]).sum()) / (3 * (SEQ_LEN - 1)))
    assert quality.measure(model, 3, key="k") == pytest.approx(part, rel=1e-5)
    assert quality.measure(model, N_SEQS, key="k") == quality.measure(model)
    assert 1 < full < VOCAB * 2  # a random tiny LM is about as good as uniform guessing


# Accuracy -------------------------------------------------------------------------------------
def classifier_and_data(n: int = 50, classes: int = 4):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, classes))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(n, 8, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    return model.eval(), x, y


def test_accuracy_on_a_subset_is_the_brute_force_count():
    model, x, y = classifier_and_data()
    quality = Accuracy((x, y), batch_size=16)
    with torch.no_grad():
        hits = (model(x).argmax(1) == y).tolist()
    for budget in (1, 7, 20, 50):
        assert quality.measure(model, budget) == sum(hits[:budget]) / budget
    assert quality.measure(model) == sum(hits) / 50
    assert 0 < quality.measure(model) < 1  # the check can tell hits from misses
    assert quality.objective() == Objective("accuracy", "maximize")


def test_accuracy_from_a_dataloader_equals_accuracy_from_tensors_warm_or_cold():
    model, x, y = classifier_and_data()
    tensors = Accuracy((x, y), batch_size=16)
    loader = Accuracy(DataLoader(TensorDataset(x, y), batch_size=7))
    assert loader.max_budget == 50
    for budget in (3, 20, 50):
        assert loader.measure(model, budget, key="m") == tensors.measure(model, budget)
    model.train()
    assert tensors.measure(model, 20) == loader.measure(model, 20) and model.training


def test_accuracy_takes_dict_inputs_for_transformers_classifiers():
    from tests.conftest import tiny_bert

    model = tiny_bert()
    gen = torch.Generator().manual_seed(4)
    x = {"input_ids": torch.randint(0, 100, (12, 9), generator=gen),
         "attention_mask": torch.ones(12, 9, dtype=torch.long)}  # fmt: skip
    y = torch.randint(0, 2, (12,), generator=gen)
    with torch.no_grad():
        hits = (model(**x).logits.argmax(1) == y).tolist()
    quality = Accuracy((x, y), batch_size=5, device="cpu")
    quality.prepare(model)
    assert quality.measure(model, 8) == sum(hits[:8]) / 8


# QualityFn ------------------------------------------------------------------------------------
def test_quality_fn_passes_the_budget_and_returns_a_float():
    seen = []

    def loss(model, budget):
        seen.append(budget)
        return 1.0 / (budget or 1)

    q = QualityFn(loss, "loss", max_budget=90)
    assert q.rungs() == (10, 30, 90)
    assert q.measure(None, 30) == pytest.approx(1 / 30) and q.measure(None) == pytest.approx(1 / 90)
    assert QualityFn(loss, "loss").measure(None) == 1.0  # no ladder: budget None
    assert seen == [30, 90, None]
    assert q.objective(reference=1.0) == Objective("loss", reference=1.0)


# Ladders --------------------------------------------------------------------------------------
def test_rungs_fit_the_data_and_make_a_fidelity():
    quality = KLToDense(ids(n=18))
    assert quality.rungs() == (2, 6, 18)
    assert quality.rungs(2, eta=2) == (9, 18)
    assert Fidelity(quality.rungs()).budgets == (2, 6, 18)
    quality.check_budgets(Fidelity((2, 18)))
    with pytest.raises(ValueError, match=r"only 2 distinct rungs of 3.*more sequences"):
        KLToDense(ids(n=2)).rungs()


# Bad input ------------------------------------------------------------------------------------
BAD = [
    ("float ids", lambda d: KLToDense(ids().float()), TypeError, r"integer token ids.*input_ids"),
    ("list ids", lambda d: KLToDense([[1, 2]]), TypeError, r"calibration must be a tensor"),
    ("1-D ids", lambda d: KLToDense(ids()[0]), ValueError, r"2-D token ids.*view\(n, seq_len\)"),
    ("negative id", lambda d: KLToDense(ids() - 1), ValueError, r"negative token id"),
    ("ppl len 1", lambda d: Perplexity(ids(length=1)), ValueError, r"text_ids.*seq_len >= 2"),
    ("id >= vocab", lambda d: KLToDense(ids(high=VOCAB + 9)).prepare(d), ValueError,
     r"token id 7\d but the model's vocabulary has 64 ids.*tokenizer"),
    ("ppl id >= vocab", lambda d: Perplexity(ids(high=VOCAB + 9)).measure(d), ValueError,
     r"Perplexity\('perplexity'\): text_ids holds token id"),
    ("ladder too high", lambda d: KLToDense(ids()).check_budgets(Fidelity((2, 8))), ValueError,
     r"budget 8 is beyond the data \(6 sequences\); give at least 8 sequences"),
    ("budget 0", lambda d: KLToDense(ids()).measure(d, 0), ValueError, r"positive number"),
    ("budget 2.5", lambda d: KLToDense(ids()).measure(d, 2.5), ValueError, r"counts sequences"),
    ("not prepared", lambda d: KLToDense(ids()).measure(d, 2), RuntimeError,
     r"call prepare\(dense_model\) before measure"),
    ("unhashable key", lambda d: Perplexity(ids()).measure(d, key={"a": 1}), TypeError,
     r"key must be hashable.*tuple\(sorted\(config.items\(\)\)\)"),
    ("batch_size 0", lambda d: Perplexity(ids(), batch_size=0), ValueError, r"batch_size"),
    ("int dtype", lambda d: KLToDense(ids(), dtype=torch.int8), ValueError, r"float dtype"),
    ("bad name", lambda d: KLToDense(ids(), name=""), ValueError, r"non-empty string"),
    ("fn nan", lambda d: QualityFn(lambda m, b: math.nan, "loss").measure(d), ValueError,
     r"QualityFn\('loss'\): fn returned nan"),
    ("fn string", lambda d: QualityFn(lambda m, b: "0.3", "loss").measure(d), ValueError,
     r"fn returned '0.3'"),
    ("fn 1 arg", lambda d: QualityFn(lambda m: 1.0, "loss"), TypeError, r"fn\(model, budget\)"),
    ("fn no ladder", lambda d: QualityFn(lambda m, b: 1.0, "loss").rungs(), ValueError,
     r"no max_budget"),
    ("fn over budget", lambda d: QualityFn(lambda m, b: 1.0, "l", max_budget=1.0).measure(d, 2),
     ValueError, r"budget 2 is beyond"),
    ("x/y lengths", lambda d: Accuracy((torch.zeros(10, 8), torch.zeros(9, dtype=torch.long))),
     ValueError, r"x has 10 examples but y has 9 labels"),
    ("float labels", lambda d: Accuracy((torch.zeros(3, 8), torch.zeros(3))), ValueError,
     r"y must be integer class labels"),
    ("label range", lambda d: Accuracy((torch.zeros(3, 8), torch.tensor([0, 7, 1])))
     .prepare(classifier_and_data()[0]), ValueError, r"label 7 is out of the model's output "
     r"range 0..3"),
    ("label range in measure", lambda d: Accuracy((torch.zeros(3, 8), torch.tensor([0, 7, 1])))
     .measure(classifier_and_data()[0]), ValueError, r"label 7 is out"),
    ("shuffled loader", lambda d: Accuracy(DataLoader(TensorDataset(torch.zeros(3, 8),
     torch.zeros(3, dtype=torch.long)), shuffle=True)), ValueError, r"shuffle=False"),
    ("loader label range", lambda d: Accuracy(DataLoader(TensorDataset(torch.zeros(3, 8),
     torch.tensor([5, 0, 1])))).prepare(classifier_and_data()[0]), ValueError, r"label 5 is out"),
    ("not a pair", lambda d: Accuracy(torch.zeros(3, 8)), TypeError, r"must be \(x, y\)"),
]  # fmt: skip


@pytest.mark.parametrize("make, exc, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_a_clear_error(dense, make, exc, message):
    with pytest.raises(exc, match=message):
        make(dense)


def test_bad_input_is_refused_before_any_forward_pass(dense):
    model = copy.deepcopy(dense)
    counter = Sequences(model)
    for make in (
        lambda: KLToDense(ids(high=VOCAB + 1)).prepare(model),
        lambda: KLToDense(ids()).measure(model, 7),
        lambda: KLToDense(ids()).measure(model),
    ):
        with pytest.raises((ValueError, RuntimeError)):
            make()
    assert counter.seen == 0


def test_importing_objectives_does_not_import_torch():
    code = "import sys, tradeoff.objectives as o; o.Objective; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Inside optimize ------------------------------------------------------------------------------
def test_kl_in_a_multi_fidelity_search_over_rtn_bits():
    dense = tiny_llama()
    space = QuantizationSpace.for_model(dense, bits=(2, 8), include="model.layers.*")
    quality = KLToDense(ids(), batch_size=4)
    quality.prepare(dense)
    counter = Sequences()
    reached: dict[tuple, int] = {}

    def evaluate(config, budget):
        key = tuple(sorted(config.items()))
        reached[key] = max(reached.get(key, 0), budget)
        model = counter.watch(space.apply(dense, config))
        return {"kl": quality.measure(model, budget, key=key)}

    def mean_bits(config):
        return sum(config.values()) / len(config)

    result = tradeoff.optimize(
        evaluate, space, objectives=[quality.objective(), Objective("bits", fn=mean_bits)],
        fidelity=Fidelity(quality.rungs(2)), n_trials=6, optimizer="random", seed=0,
        show_progress=False,
    )  # fmt: skip
    trials = result.trials
    assert set(trials["budget"]) == {2, 6} and (trials["kl"] > 0).all()
    assert counter.seen == sum(reached.values())  # no sequence measured twice for a Config
    top = trials[trials["status"] == "complete"]
    assert len(top) >= 1
    for _, row in top.iterrows():
        config = {name: row[name] for name in space}
        cold = KLToDense(ids())
        cold.prepare(dense)
        assert row["kl"] == pytest.approx(cold.measure(space.apply(dense, config)), rel=1e-6)
    assert quality.measure(dense) == 0.0  # the dense model is untouched by the search
