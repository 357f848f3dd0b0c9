"""Calibrated levels in QuantizationSpace, the variant bank and the workspace.

The round trip (workspace == apply == a fresh quantization), the cache (reuse, invalidation
when weights or calibration change, corrupt entries rebuilt), two Ray workers building one
bank once, and the bad inputs of the calibrated methods.
"""

import logging
import pickle
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tradeoff.objectives import weight_storage_bytes
from tradeoff.spaces import ArchitectureSpace, PruningSpace, QuantizationSpace, SearchSpace
from tradeoff.spaces._bank import VariantBank
from tradeoff.spaces._calibration import collect_hessians
from tradeoff.spaces._gptq import gptq_quantize, rtn_quantize
from tradeoff.spaces._workspace import Workspace

transformers = pytest.importorskip("transformers")

N_BLOCKS = 3


def tiny_llama(seed: int = 0) -> nn.Module:
    """A 64-wide Llama with a tied embedding and LM head (random weights, nothing downloaded)."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=N_BLOCKS,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


def token_ids(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 128, (n, 32), generator=torch.Generator().manual_seed(seed))


BLOCKS = {f"b{i}": f"model.layers.{i}.*" for i in range(N_BLOCKS)}


def gptq_space(model, bank, calibration=None, **kw):
    kw = {"bits": (3, 4, 8), "granularity": "group", "group_size": 32, "tie": BLOCKS, **kw}
    ids = token_ids(64, seed=1) if calibration is None else calibration
    return QuantizationSpace.for_model(model, method="gptq", calibration=ids, bank=bank, **kw)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def kl(dense: nn.Module, model: nn.Module, ids: torch.Tensor) -> float:
    with torch.no_grad():
        p = F.log_softmax(dense(ids).logits, -1)
        q = F.log_softmax(model(ids).logits, -1)
    return float(F.kl_div(q, p, log_target=True, reduction="sum") / ids.numel())


# The round trip ------------------------------------------------------------------------------
def test_apply_gives_gptq_of_each_layer_with_its_calibration_hessian(tmp_path):
    model = tiny_llama()
    space = gptq_space(model, tmp_path)
    config = space.sample(0)
    applied = space.apply(model, config)
    layers = [n for names in space.groups.values() for n in names]
    hessians = collect_hessians(model, torch.split(token_ids(64, seed=1), 8), layers=layers)
    for prefix, names in space.groups.items():
        for name in names:
            dense = model.get_submodule(name).weight
            expected = gptq_quantize(
                dense, hessians[name], bits=config[f"{prefix}.bits"], group_size=32
            )
            assert torch.equal(applied.get_submodule(name).weight, expected), name
            info = applied.get_submodule(name).tradeoff_quant
            assert (info.method, info.bits, info.symmetric) == (
                "gptq",
                config[f"{prefix}.bits"],
                True,
            )


def test_workspace_assembles_exactly_what_apply_gives(tmp_path):
    model = tiny_llama()
    quant = gptq_space(model, tmp_path)
    space = SearchSpace.merge(arch=ArchitectureSpace.elastic(model, drop_blocks=True), quant=quant)
    workspace = Workspace(space, model)
    assert workspace.fast
    ids = token_ids(2, seed=5)
    for seed in range(6):
        config = space.sample(seed)
        applied, assembled = space.apply(model, config), workspace.assemble(config)
        assert same_weights(applied, assembled)
        with torch.no_grad():
            assert torch.equal(applied(ids).logits, assembled(ids).logits)
        for name, module in applied.named_modules():
            if hasattr(module, "tradeoff_quant"):
                assert assembled.get_submodule(name).tradeoff_quant == module.tradeoff_quant
    # The tied embedding reads the LM head's quantized weight, as after apply.
    assert assembled.lm_head.weight is assembled.model.embed_tokens.weight
    # The dense model is untouched.
    assert torch.equal(model.lm_head.weight, tiny_llama().lm_head.weight)


def test_gptq_levels_beat_rtn_levels_on_new_text(tmp_path):
    model = tiny_llama()
    # Calibrated on many more tokens than inputs (64 x 32 = 2048 rows for 64 and 128 inputs).
    gptq = gptq_space(model, tmp_path, bits=(3, 8))
    rtn = QuantizationSpace.for_model(
        model, bits=(3, 8), granularity="group", group_size=32, tie=BLOCKS
    )
    held_out = token_ids(16, seed=99)
    config = {name: 3 for name in gptq}
    assert kl(model, gptq.apply(model, config), held_out) < kl(
        model, rtn.apply(model, config), held_out
    )


# The bank on disk ----------------------------------------------------------------------------
def test_a_second_space_reads_the_bank_instead_of_recomputing(tmp_path):
    model = tiny_llama()
    first = gptq_space(model, tmp_path)
    n_layers = sum(len(layers) for layers in first.groups.values())
    assert first.build(model) == n_layers * 3  # 3 levels each
    again = gptq_space(model, tmp_path)
    assert again.build(model) == 0  # everything is on disk already
    config = again.sample(3)
    assert same_weights(again.apply(model, config), first.apply(model, config))
    assert again.quantizer.bank.built == 0 and again.quantizer.bank.loaded > 0


@pytest.fixture
def collections(monkeypatch):
    """Each collect_hessians call's layers, in order."""
    calls, real = [], collect_hessians

    def counted(model, batches, *, layers, device=None):
        calls.append(list(layers))
        return real(model, batches, layers=layers, device=device)

    monkeypatch.setattr("tradeoff.spaces._calibration.collect_hessians", counted)
    return calls


def test_a_warm_bank_collects_no_hessians_and_gives_the_same_keys(tmp_path, collections):
    model = tiny_llama()
    first = gptq_space(model, tmp_path)
    first.build(model)
    assert len(collections) == 1
    # The same model and calibration (another tensor of equal bytes, or the same batches as
    # an iterable, even a generator, read once) find every entry: no model pass.
    again = gptq_space(model, tmp_path, calibration=token_ids(64, seed=1).clone())
    batches = gptq_space(model, tmp_path, calibration=(b for b in token_ids(64, seed=1).split(8)))
    assert again.build(model) == 0 and batches.build(model) == 0 and len(collections) == 1
    config = again.sample(4)
    assert same_weights(again.apply(model, config), first.apply(model, config))
    assert not again.quantizer.hessians and again.quantizer.bank.built == 0
    # A level no entry has yet: its Hessians are collected, once, where it is first needed.
    wider = gptq_space(model, tmp_path, bits=(3, 4, 5, 8))
    assert len(collections) == 2  # for_model collects up front: it fails early on bad data
    assert wider.build(model) == sum(len(g) for g in wider.groups.values())
    assert len(collections) == 2


def test_a_lazy_space_merged_after_pruning_collects_when_a_pruned_entry_is_missing(
    tmp_path, collections
):
    model = tiny_llama()
    gptq_space(model, tmp_path).build(model)
    prune = PruningSpace.for_model(
        model, sparsity=(0.0, 0.5), include="*.mlp.*", sample_input=token_ids(8, seed=2)[:1]
    )
    space = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    space.children["quant"].build(model)
    assert len(collections) == 1  # the first space's
    config = {k: v.values[-1] for k, v in space.items()}  # 8 bits, 0.5 sparsity: masked
    out = space.apply(model, config)  # masked entries are new: the Hessians are needed now
    assert len(collections) == 2
    eager = SearchSpace.merge(prune=prune, quant=gptq_space(model, None))
    assert same_weights(out, eager.apply(model, config))
    # Shipped to a worker, a lazy space takes its Hessians along (collected first if needed).
    lazy = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    lazy.children["quant"].build(model)
    worker = pickle.loads(pickle.dumps(lazy))
    assert worker.children["quant"].quantizer.hessians and len(collections) == 4


def test_hessians_are_never_collected_from_a_model_changed_in_place(tmp_path):
    model = tiny_llama()
    gptq_space(model, tmp_path).build(model)
    space = gptq_space(model, tmp_path)  # lazy: the bank has every entry
    with torch.no_grad():  # say, a training step after the space was built
        model.model.layers[1].mlp.up_proj.weight.mul_(1.01)
    with pytest.raises(RuntimeError, match="weights changed since its QuantizationSpace"):
        space.apply(model, {k: 4 for k in space})  # the changed layer's entries are new


def test_changed_weights_or_calibration_are_new_entries_never_stale_ones(tmp_path):
    model = tiny_llama()
    gptq_space(model, tmp_path).build(model)
    changed = tiny_llama()
    with torch.no_grad():
        changed.model.layers[2].mlp.down_proj.weight.mul_(1.5)
    space = gptq_space(changed, tmp_path)
    # The changed layer's 3 levels, and the LM head's, whose inputs (so Hessian) changed too.
    assert space.build(changed) == 6
    recalibrated = gptq_space(model, tmp_path, calibration=token_ids(64, seed=2))
    n_entries = sum(len(layers) for layers in recalibrated.groups.values()) * 3
    assert recalibrated.build(model) == n_entries
    # And the new entries are GPTQ with the new Hessians.
    layers = [n for names in recalibrated.groups.values() for n in names]
    h = collect_hessians(model, torch.split(token_ids(64, seed=2), 8), layers=layers)
    name = "model.layers.0.self_attn.q_proj"
    out = recalibrated.apply(model, {k: 4 for k in recalibrated})
    expected = gptq_quantize(model.get_submodule(name).weight, h[name], bits=4, group_size=32)
    assert torch.equal(out.get_submodule(name).weight, expected)


def test_a_corrupt_entry_is_logged_rebuilt_and_never_used(tmp_path, caplog):
    model = tiny_llama()
    space = gptq_space(model, tmp_path)
    space.build(model)
    config = {k: 4 for k in space}
    good = space.apply(model, config)
    files = sorted(tmp_path.glob("*.safetensors"))
    files[0].write_bytes(b"not a safetensors file")
    data = bytearray(files[1].read_bytes())
    data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # flip the last bytes: the checksum fails
    files[1].write_bytes(bytes(data))
    fresh = gptq_space(model, tmp_path)
    with caplog.at_level(logging.WARNING, logger="tradeoff.spaces"):
        assert fresh.build(model) == 2
    assert sum("corrupt" in r.getMessage() for r in caplog.records) == 2
    assert same_weights(fresh.apply(model, config), good)


def test_a_second_build_reads_no_entry_this_process_verified(tmp_path, monkeypatch):
    model = tiny_llama()
    space = gptq_space(model, tmp_path, bits=(4, 8))
    assert space.build(model) > 0
    reads: list[str] = []
    real = VariantBank._read

    def read(self, key, **kw):
        reads.append(key)
        return real(self, key, **kw)

    monkeypatch.setattr(VariantBank, "_read", read)
    space.quantizer.bank._memory.clear()  # as after a restart of the search, same process
    assert space.build(model) == 0 and reads == []  # written here: known intact
    # A file changed since (size or time) is read and checked again: corrupt, so rebuilt.
    path = sorted(tmp_path.glob("*.safetensors"))[0]
    path.write_bytes(path.read_bytes()[:-8])
    assert space.build(model) == 1 and set(reads) == {path.stem}  # only that one is read
    assert space.quantizer.bank.rebuilt == 1


def test_a_built_space_pickles_without_hessians_or_weights(tmp_path):
    model = tiny_llama()
    space = gptq_space(model, tmp_path)
    before = len(pickle.dumps(space))
    space.build(model)
    after = pickle.loads(pickle.dumps(space))
    assert len(pickle.dumps(space)) < before / 4
    config = space.sample(1)
    assert same_weights(after.apply(model, config), space.apply(model, config))
    assert after.quantizer.bank.loaded > 0 and after.quantizer.bank.built == 0


def test_a_built_space_merged_after_pruning_ships_its_hessians(tmp_path):
    # Pruned Configs need masked or narrowed entries no build lists up front: a worker that
    # gets the pickled space computes them, so it needs the Hessians.
    model = tiny_llama()
    prune = PruningSpace.for_model(
        model,
        sparsity=(0.0, 0.5),
        pattern=("unstructured", "channel"),
        include="*.mlp.*",
        sample_input=token_ids(8, seed=2)[:1],
    )
    space = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    quant = space.children["quant"]
    quant.build(model)
    worker = pickle.loads(pickle.dumps(space))
    assert worker.children["quant"].quantizer.hessians  # shipped
    for pattern in ("unstructured", "channel"):
        config = {k: v.values[-1] for k, v in space.items()}  # 8 bits, 0.5 sparsity
        config.update({k: pattern for k, p in space.items() if pattern in getattr(p, "values", ())})
        assert same_weights(worker.apply(model, config), space.apply(model, config))
    # Dropping whole blocks reshapes no layer: the built entries cover every Config.
    drop = ArchitectureSpace.elastic(model, drop_blocks="model.layers")
    alone = SearchSpace.merge(arch=drop, quant=gptq_space(model, tmp_path))
    alone.children["quant"].build(model)
    assert not pickle.loads(pickle.dumps(alone)).children["quant"].quantizer.hessians


def test_memory_only_bank_travels_with_the_space():
    model = tiny_llama()
    space = gptq_space(model, None)
    space.build(model)
    copy = pickle.loads(pickle.dumps(space))
    config = space.sample(2)
    assert same_weights(copy.apply(model, config), space.apply(model, config))
    assert copy.quantizer.bank.built == 0


def test_release_frees_entries_and_hessians_and_applies_the_same_weights(tmp_path, collections):
    model = tiny_llama()
    space = gptq_space(model, tmp_path)
    space.build(model)
    config = space.sample(5)
    before = space.apply(model, config)
    q = space.quantizer
    held = sum(t.untyped_storage().nbytes() for t in q.hessians.values())
    held += sum(t.untyped_storage().nbytes() for e in q.bank._memory.values() for t in e.values())
    assert held > 0 and space.release() == held
    assert len(q.bank) == 0 and not q.hessians
    loaded = q.bank.loaded
    assert same_weights(space.apply(model, config), before)  # read again from disk
    assert q.bank.loaded > loaded and q.bank.built == 0 and len(collections) == 1
    # An entry removed from the directory since: its Hessians are collected again, and the
    # entry computed again is the same, bit for bit.
    space.release()
    for path in tmp_path.glob("*.safetensors"):
        path.unlink()
    assert same_weights(space.apply(model, config), before)
    assert len(collections) == 2 and q.bank.built > 0


def test_release_keeps_a_memory_only_bank_and_hessians_a_lazy_space_needs(tmp_path):
    model = tiny_llama()
    memory = gptq_space(model, None)
    memory.build(model)
    entries = len(memory.quantizer.bank)
    memory.release()  # its entries have no other copy; its Hessians go
    assert len(memory.quantizer.bank) == entries and not memory.quantizer.hessians
    prune = PruningSpace.for_model(model, sparsity=(0.0, 0.5), include="*.mlp.*")
    lazy = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    quant = lazy.children["quant"]
    quant.build(model)
    quant.release()  # pruned Configs need entries no build lists: the Hessians stay
    assert quant.quantizer.hessians and len(quant.quantizer.bank) == 0


def _apply_and_count(space, model, config):
    space.apply(model, config)
    bank = space.quantizer.bank
    return bank.built, bank.loaded


@pytest.mark.ray
def test_two_ray_workers_sharing_one_bank_build_each_entry_once(tmp_path, ray_session):
    ray = ray_session
    model = tiny_llama()
    space = gptq_space(model, tmp_path)  # not built: the workers build lazily
    config = {k: 3 for k in space}
    task = ray.remote(num_cpus=1)(_apply_and_count)
    counts = ray.get([task.remote(space, model, config) for _ in range(2)])
    n_layers = sum(len(layers) for layers in space.groups.values())
    assert sum(built for built, _ in counts) == n_layers
    assert sum(loaded for _, loaded in counts) == n_layers


@pytest.mark.ray
def test_build_on_a_ray_pool_equals_building_here(tmp_path, ray_session):
    from ray.util.multiprocessing import Pool

    model = tiny_llama()
    here = gptq_space(model, None)
    here.build(model)
    there = gptq_space(model, tmp_path)
    n_entries = len(here.levels()) * sum(len(v) for v in here.groups.values())
    with Pool(processes=2) as pool:
        assert there.build(model, map=pool.map) == n_entries
    config = here.sample(4)
    assert same_weights(there.apply(model, config), here.apply(model, config))


# Other methods and grids ---------------------------------------------------------------------
def test_pruned_weights_stay_zero_under_gptq(tmp_path):
    model = tiny_llama()
    prune = PruningSpace.for_model(model, sparsity=(0.0, 0.5), include="model.layers.*")
    quant = gptq_space(model, tmp_path, bits=(3, 4))
    space = SearchSpace.merge(prune=prune, quant=quant)
    config = {k: (0.5 if k.startswith("prune") else 3) for k in space}
    pruned = prune.apply(model, {k[6:]: v for k, v in config.items() if k.startswith("prune")})
    out = space.apply(model, config)
    name = "model.layers.0.mlp.up_proj"
    zeros = pruned.get_submodule(name).weight == 0
    assert zeros.float().mean() >= 0.45
    assert (out.get_submodule(name).weight[zeros] == 0).all()


def test_asymmetric_rtn_and_its_zero_points_in_storage():
    model = tiny_llama()
    space = QuantizationSpace.for_model(model, bits=(3, 4), symmetric=False, bank=None)
    symmetric = QuantizationSpace.for_model(model, bits=(3, 4), bank=None)
    config = {k: 3 for k in space}
    out = space.apply(model, config)
    name = "model.layers.0.mlp.up_proj"
    w = model.get_submodule(name).weight
    assert torch.equal(out.get_submodule(name).weight, rtn_quantize(w, bits=3, symmetric=False))
    info = out.get_submodule(name).tradeoff_quant
    assert not info.symmetric and info.n_scales == 2 * w.shape[0]
    sym_bytes = weight_storage_bytes(symmetric.apply(model, config))
    assert weight_storage_bytes(out) > sym_bytes  # each scale has a zero-point beside it


def test_hqq_levels_are_the_hqq_package_quantizer(tmp_path):
    hqq = pytest.importorskip("hqq.core.quantize")
    model = tiny_llama()
    space = QuantizationSpace.for_model(
        model, bits=(3, 4), granularity="group", group_size=32, method="hqq", bank=tmp_path
    )
    out = space.apply(model, {k: 4 for k in space})
    name = "model.layers.2.self_attn.o_proj"
    w = model.get_submodule(name).weight.detach()
    q, meta = hqq.Quantizer.quantize(
        w, nbits=4, group_size=32, optimize=True, round_zero=False, axis=1, bitpack=False,
        compute_dtype=torch.float32, device="cpu",
    )  # fmt: skip
    expected = hqq.Quantizer.dequantize(q, meta).reshape(w.shape)
    assert torch.equal(out.get_submodule(name).weight, expected)
    assert out.get_submodule(name).tradeoff_quant.method == "hqq"


def test_float_formats_keep_round_to_nearest_under_gptq(tmp_path):
    model = tiny_llama()
    space = gptq_space(model, tmp_path, formats=("int", "fp8_e4m3"), bits=(4,))
    rtn = QuantizationSpace.for_model(
        model, bits=(4,), formats=("int", "fp8_e4m3"), granularity="group", group_size=32,
        tie=BLOCKS,
    )  # fmt: skip
    config = {k: "fp8_e4m3" for k in space}
    assert same_weights(space.apply(model, config), rtn.apply(model, config))


def test_variant_bank_rejects_an_unwritable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"bank directory .* is not writable"):
        VariantBank(blocker / "bank")
    for limit, error, match in (
        (0, ValueError, "must be positive"),
        ("4GB", TypeError, "must be a number"),
    ):
        with pytest.raises(error, match=match):
            VariantBank(tmp_path, max_memory_mb=limit)
    with pytest.raises(ValueError, match="max_memory_mb needs a bank directory"):
        VariantBank(None, max_memory_mb=100)


def test_a_bank_with_a_memory_limit_keeps_the_recently_used_and_the_same_weights(tmp_path):
    model = tiny_llama()
    free = gptq_space(model, tmp_path)
    free.build(model)
    sizes = [
        sum(t.untyped_storage().nbytes() for t in e.values())
        for e in free.quantizer.bank._memory.values()
    ]
    limit = 0.4 * sum(sizes) / 1e6  # a Config uses a third of the entries
    bank = VariantBank(tmp_path, max_memory_mb=limit)
    space = gptq_space(model, bank)  # a VariantBank as bank=
    assert space.quantizer.bank is bank and space.build(model) == 0
    configs = [space.sample(s) for s in range(4)]
    for config in configs:  # each Config reads its entries, every other one forgotten
        assert same_weights(space.apply(model, config), free.apply(model, config))
        held = sum(t.untyped_storage().nbytes() for e in bank._memory.values() for t in e.values())
        assert held == bank._held <= limit * 1e6 and len(bank) < len(sizes)
    # The last Config's entries are the most recent: applying it again reads nothing.
    loaded = bank.loaded
    space.apply(model, configs[-1])
    assert bank.loaded == loaded
    space.apply(model, configs[0])
    assert bank.loaded > loaded  # forgotten since, read again
    copy = pickle.loads(pickle.dumps(space))  # a Ray worker's copy keeps the limit
    assert copy.quantizer.bank.max_memory_mb == limit and len(copy.quantizer.bank) == 0
    # A workspace over the limited bank keeps no level itself (else it would hold them all):
    # it assembles what apply gives, its tied embedding and head still one tensor.
    merged = SearchSpace.merge(arch=ArchitectureSpace.elastic(model, drop_blocks=True), quant=space)
    workspace = Workspace(merged, model)
    for seed in range(4):
        config = merged.sample(seed)
        assembled = workspace.assemble(config)
        assert same_weights(assembled, merged.apply(model, config))
        assert not workspace._variants and bank._held <= limit * 1e6
    assert assembled.lm_head.weight is assembled.model.embed_tokens.weight


# Bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"method": "awq"}, ValueError, "Unknown method 'awq'"),
        ({"method": "gptq"}, ValueError, "method='gptq' needs calibration="),
        ({"calibration": torch.zeros(2, 2, dtype=torch.long)}, ValueError, "data-free"),
        ({"method": "hqq", "symmetric": True}, ValueError, "asymmetric grid only"),
        ({"method": "hqq", "granularity": "tensor"}, ValueError, "no granularity 'tensor'"),
        ({"method": "hqq", "formats": "fp8_e4m3", "granularity": ("channel", "group")},
         ValueError, "has no 'int'"),
        ({"method": "hqq", "granularity": "group", "group_size": 48}, ValueError,
         "group_size 48 does not divide"),
        ({"method": "gptq", "calibration": "some text"}, TypeError, "calibration must be a tensor"),
        ({"method": "gptq", "calibration": torch.rand(4, 32)}, ValueError,
         "the model failed on a calibration batch"),
        ({"method": "gptq", "calibration": torch.zeros(0, 32, dtype=torch.long)}, ValueError,
         "at least one input"),
        ({"method": "gptq", "calibration": torch.zeros(4, 8, dtype=torch.long), "damp": -1},
         ValueError, "damp must be"),
        ({"symmetric": "no"}, TypeError, "symmetric must be"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_work(kw, error, match, tmp_path):
    model = tiny_llama()
    with pytest.raises(error, match=match):
        QuantizationSpace.for_model(model, bits=(3, 4), bank=tmp_path / "bank", **kw)
    assert not (tmp_path / "bank").exists() or not any((tmp_path / "bank").glob("*.safetensors"))


def test_too_few_calibration_tokens_warn_with_the_number_needed(tmp_path):
    model = tiny_llama()
    with pytest.warns(UserWarning, match=r"saw 64 calibration rows .* needs at least 512"):
        gptq_space(model, tmp_path, calibration=token_ids(2, seed=3))


def test_gptq_refuses_layers_it_cannot_calibrate(tmp_path):
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 6, 2))
    with pytest.raises(ValueError, match=r"layer '0' is a Conv1d: exclude it"):
        QuantizationSpace.for_model(
            model, bits=(3, 4), method="gptq", calibration=torch.rand(16, 4, 8), bank=tmp_path
        )


def test_a_built_space_cannot_calibrate_weights_it_has_not_seen(tmp_path):
    model = tiny_llama()
    space = gptq_space(model, tmp_path)
    space.build(model)
    shipped = pickle.loads(pickle.dumps(space))  # as a worker gets it: no Hessians
    changed = tiny_llama()
    with torch.no_grad():
        changed.model.layers[0].mlp.up_proj.weight.mul_(2.0)
    with pytest.raises(RuntimeError, match="no calibration Hessians to compute it"):
        shipped.apply(changed, space.sample(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibration_gptq_and_assembly_on_cuda(tmp_path):
    model = tiny_llama().cuda()
    space = gptq_space(model, tmp_path, calibration=token_ids(64, seed=1).cuda(), device="cuda")
    assert next(iter(space.quantizer.hessians.values())).is_cuda
    space.build(model)
    workspace = Workspace(space, model, device="cuda")
    config = space.sample(0)
    assembled = workspace.assemble(config)
    assert assembled.lm_head.weight.is_cuda
    assert same_weights(assembled, space.apply(model, config))
    # The same levels as on the CPU, up to float rounding in the GPU's matrix products (which
    # may move a few weights to the next grid value).
    cpu = dict(gptq_space(tiny_llama(), None).apply(tiny_llama(), config).named_parameters())
    for name, p in assembled.named_parameters():
        differ = ~torch.isclose(p.cpu(), cpu[name], rtol=1e-4, atol=1e-6)
        assert differ.float().mean() < 0.01, name


_FREED = """
import sys, tempfile
from pathlib import Path
import torch
def rss_mb():
    (line,) = [x for x in Path("/proc/self/status").read_text().splitlines() if "VmRSS" in x]
    return int(line.split()[1]) / 1024
if sys.argv[1] == "limited":
    from tradeoff.spaces import VariantBank
    VariantBank(tempfile.mkdtemp(), max_memory_mb=100)
big = torch.ones(8 * 2**20 // 4)
del big  # a freed 8 MB mapping: glibc raises its mmap threshold to 8 MB
entries, pins = [], []
for _ in range(200):
    entries.append(torch.ones(2**20 // 2))  # 2 MB each, as a bank's weights
    pins.append(torch.ones(256))  # a small tensor after each, as evaluations leave
before = rss_mb()
del entries
print(before - rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_limited_bank_gives_forgotten_entries_memory_back(tmp_path):
    """400 MB of 2 MB entries forgotten: with a limited bank in the process the memory goes
    back to the system; without one glibc keeps it (after a large mapping was freed)."""
    import os

    def freed_mb(mode: str) -> float:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
        out = subprocess.run(
            [sys.executable, "-c", _FREED, mode], capture_output=True, text=True, env=env,
            check=True,
        )  # fmt: skip
        return float(out.stdout)

    assert freed_mb("limited") > 300
    assert freed_mb("none") < 100  # what the limit alone left behind


def test_a_users_malloc_threshold_is_left_alone(monkeypatch):
    from tradeoff.spaces._bank import return_freed_memory

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_freed_memory() is False
