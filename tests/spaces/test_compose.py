"""Model-aware spaces compose: merged Configs apply arch -> prune -> quant -> peft."""

import os

import optuna
import pytest
import torch

from tradeoff.objectives import model_cost, trainable_parameters, weight_storage_bytes
from tradeoff.spaces import (
    ArchitectureSpace,
    PEFTSpace,
    PruningSpace,
    QuantizationSpace,
    SearchSpace,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from ..conftest import tiny_bert  # noqa: E402


@pytest.fixture(scope="module")
def bert():
    return tiny_bert(2)


@pytest.fixture(scope="module")
def space(bert):
    layers = "bert.encoder.layer.*"
    # Keyword order scrambled on purpose: application order comes from the stages.
    return SearchSpace.merge(
        peft=PEFTSpace.for_model(
            bert, methods=("lora",), ranks=(2, 4), targets=["query", "value"], task_type="SEQ_CLS"
        ),
        quant=QuantizationSpace.for_model(bert, bits=(4, 8), include=layers),
        prune=PruningSpace.for_model(bert, sparsity=(0.0, 0.5), include=layers),
        arch=ArchitectureSpace.elastic(bert, ffn_ratios=(0.5, 1.0)),
    )


def test_all_four_stages_apply_in_stage_order(bert, space):
    config = {k: v.values[-1] if hasattr(v, "values") else v.low for k, v in space.items()}
    config.update({k: 0.5 for k in space if k.startswith("arch.")})
    config.update({k: 4 for k in space if k.endswith(".bits")})
    config.update({k: 0.5 for k in space if k.endswith(".sparsity")})
    model = space.apply(bert, config)

    base = model.get_base_model()  # PEFT wraps last
    dense = base.bert.encoder.layer[0].intermediate.dense
    assert dense.out_features == 32  # arch sliced the FFN first...
    weight = dense.weight.detach()
    assert (weight == 0).float().mean().item() == pytest.approx(0.5)  # ...then prune...
    assert dense.tradeoff_quant.bits == 4  # ...then quantize the pruned weights...
    for row in weight:  # ...so the zeros survive and each row has <= 16 levels
        assert len(torch.unique(row)) <= 16
    assert trainable_parameters(model) < trainable_parameters(bert)  # ...then LoRA adapters
    tokens = torch.randint(0, 100, (2, 5))
    assert model(tokens).logits.shape == (2, 2)
    assert not hasattr(bert.bert.encoder.layer[0].intermediate.dense, "tradeoff_quant")


def test_random_merged_configs_apply_and_costs_track_them(bert, space):
    storage = model_cost(space, bert, weight_storage_bytes)
    dense_bytes = weight_storage_bytes(bert)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        assert 0 < storage(config) < dense_bytes
        study.tell(trial, 0.0)
