"""Export: compressed-tensors checkpoints that dequantize to exactly the weights the search
measured (read back through compressed-tensors and through transformers), the torch format for
any Config, and the refusals that come before anything is written."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers: nothing downloads
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("compressed_tensors")

from torch import nn  # noqa: E402

from tradeoff.objectives import weight_storage_bytes  # noqa: E402
from tradeoff.spaces import (  # noqa: E402
    ArchitectureSpace,
    PruningSpace,
    QuantizationSpace,
    SearchSpace,
    export,
    load_compressed,
)

pytestmark = pytest.mark.filterwarnings("ignore:collect_hessians:UserWarning")


def tiny_llama(tie: bool = False) -> nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=tie,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 128, (24, 32), generator=torch.Generator().manual_seed(1))


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids[:2]).logits


@pytest.mark.parametrize(
    ("method", "symmetric", "granularity"),
    [("rtn", True, "group"), ("rtn", False, "channel"), ("gptq", True, "group"),
     ("gptq", False, "group")],
)  # fmt: skip
def test_packed_checkpoint_holds_exactly_the_searched_weights(
    llama, ids, tmp_path, method, symmetric, granularity
):
    space = QuantizationSpace.for_model(
        llama, bits=(3, 4, 8), granularity=granularity, group_size=(32,), method=method,
        symmetric=symmetric, exclude="lm_head", bank=None,
        **({"calibration": ids} if method == "gptq" else {}),
    )  # fmt: skip
    config = space.sample(3)
    assert len({config[k] for k in space}) > 1  # mixed levels: several config groups
    written = export(space, llama, config, tmp_path / "out")
    applied = space.apply(llama, config)
    back = load_compressed(written.path, llama)  # compressed-tensors' own decompression
    assert same_state(back, applied)
    assert torch.equal(logits(back, ids), logits(applied, ids))
    if symmetric:  # transformers 5.25 misreads packed zero-points (its load report says so)
        hf = transformers.AutoModelForCausalLM.from_pretrained(written.path)
        assert torch.equal(logits(hf, ids), logits(applied, ids))
    # Codes take exactly bits / 8 bytes per weight; scales are float32.
    from safetensors.torch import load_file

    stored = load_file(str(written.path / "model.safetensors"))
    for name, module in applied.named_modules():
        info = getattr(module, "tradeoff_quant", None)
        if info is not None:
            packed = stored[f"{name}.weight_packed"]
            assert packed.numel() * 4 == module.weight.numel() * info.bits / 8
            assert stored[f"{name}.weight_scale"].dtype == torch.float32
            assert (f"{name}.weight_zero_point" in stored) is (not symmetric)
    groups = json.loads((written.path / "config.json").read_text())["quantization_config"]
    assert groups["format"] == "pack-quantized" and len(groups["config_groups"]) > 1
    assert json.loads((written.path / "tradeoff.json").read_text())["config"] == config
    # Known size: codes + float16 scales; the file stores float32 scales and the float layers.
    quant_bytes = sum(
        stored[k].numel() * stored[k].element_size()
        for k in stored
        if k.endswith(("weight_packed", "weight_scale", "weight_zero_point"))
    )
    assert quant_bytes >= weight_storage_bytes(applied) - sum(
        p.numel() * 4 for n, p in applied.named_parameters() if not _quantized(applied, n)
    )


@pytest.mark.parametrize("symmetric", [True, False])
def test_torchao_tensors_hold_exactly_the_searched_weights(llama, ids, tmp_path, symmetric):
    pytest.importorskip("torchao")
    space = QuantizationSpace.for_model(
        llama, bits=(3, 4, 8), granularity="group", group_size=(32,), symmetric=symmetric,
        exclude="lm_head", bank=None,
    )  # fmt: skip
    for k, config in enumerate((space.sample(1), {name: 8 for name in space})):
        written = export(space, llama, config, tmp_path / f"ao{k}", format="torchao")
        assert set(written.files) == {"model.pt", "tradeoff.json"}
        loaded = torch.load(written.path / "model.pt", weights_only=False)
        applied = space.apply(llama, config)
        for name, module in applied.named_modules():
            info = getattr(module, "tradeoff_quant", None)
            if info is not None:
                stored = loaded.get_submodule(name).weight
                kind = "Int8Tensor" if symmetric and info.bits == 8 else "IntxUnpackedToInt8Tensor"
                assert type(stored).__name__ == kind
                assert torch.equal(stored.dequantize(), module.weight)
        assert torch.allclose(logits(loaded, ids), logits(applied, ids), atol=1e-5)


def _quantized(model: nn.Module, param: str) -> bool:
    owner = model.get_submodule(param.rpartition(".")[0]) if "." in param else model
    return getattr(owner, "tradeoff_quant", None) is not None and param.endswith("weight")


def test_dropped_blocks_are_renumbered_as_a_shorter_model(llama, ids, tmp_path):
    arch = ArchitectureSpace.elastic(llama, drop_blocks=True, blocks="model.layers")
    quant = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    space = SearchSpace.merge(arch=arch, quant=quant)
    config = {**{k: 4 for k in space if k.startswith("quant.")}, **{
        k: k != "arch.model.layers.1.keep" for k in space if k.startswith("arch.")
    }}  # fmt: skip
    written = export(space, llama, config, tmp_path / "out")
    applied = space.apply(llama, config)
    saved = json.loads((written.path / "config.json").read_text())
    assert saved["num_hidden_layers"] == 2
    hf = transformers.AutoModelForCausalLM.from_pretrained(written.path)
    assert len(hf.model.layers) == 2
    assert torch.equal(logits(hf, ids), logits(applied, ids))
    assert torch.equal(logits(load_compressed(written.path, llama), ids), logits(applied, ids))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 10),
    ).eval()  # fmt: skip


def test_torch_format_writes_any_config_with_its_new_shapes(tmp_path):
    model, x = cnn(), torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    prune = PruningSpace.for_model(
        model, sparsity=(0.0, 0.5), pattern=("channel",), sample_input=x, exclude="7"
    )
    quant = QuantizationSpace.for_model(model, bits=(4,), formats=("int", "fp8_e4m3"))
    space = SearchSpace.merge(prune=prune, quant=quant)
    config = {k: 0.5 if "sparsity" in k else "channel" for k in space if k.startswith("prune.")}
    config |= {k: "fp8_e4m3" if k == "quant.7.format" else "int" for k in space if "format" in k}
    written = export(space, model, config, tmp_path / "cnn", format="torch")
    applied = space.apply(model, config)
    assert set(written.files) == {"model.safetensors", "model.pt", "tradeoff.json"}
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    assert loaded[0].out_channels == 4  # physically smaller
    with torch.no_grad():
        assert torch.equal(loaded(x), applied(x))
    # compressed-tensors cannot hold it: which layers and why, and nothing is written.
    for fmt in ("compressed-tensors", "torchao"):
        with pytest.raises(ValueError, match=r"(?s)0 \(Conv2d\).*packs nn.Linear.*fp8_e4m3"):
            export(space, model, config, tmp_path / "ct", format=fmt)
    assert not (tmp_path / "ct").exists()


def test_refusals_come_before_anything_is_written(llama, tmp_path, monkeypatch):
    hqq = QuantizationSpace.for_model(
        llama, bits=(4, 8), method="hqq", granularity="group", group_size=(32,), bank=None,
        exclude="lm_head",
    )  # fmt: skip
    with pytest.raises(ValueError, match="HQQ's zero-points are fractional"):
        export(hqq, llama, {k: 4 for k in hqq}, tmp_path / "hqq")
    tied_model = tiny_llama(tie=True)
    assert tied_model.lm_head.weight is tied_model.model.embed_tokens.weight
    tied = QuantizationSpace.for_model(tied_model, bits=(4, 8), include="lm_head", bank=None)
    with pytest.raises(ValueError, match=r"lm_head: its weight is shared with model\.embed_tokens"):
        export(tied, tied_model, {k: 4 for k in tied}, tmp_path / "tied")
    space = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    config = {k: 4 for k in space}
    with pytest.raises(ValueError, match="Unknown export format 'gguf'"):
        export(space, llama, config, tmp_path / "x", format="gguf")
    (tmp_path / "there").mkdir()
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        export(space, llama, config, tmp_path / "there")
    assert export(space, llama, config, tmp_path / "there", overwrite=True).bytes > 0

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        export(space, llama, config, tmp_path / "partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]  # no partial directory


def test_bert_classifier_round_trips_through_compressed_tensors_and_transformers(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, num_labels=3,
    )  # fmt: skip
    bert = transformers.BertForSequenceClassification(config).eval()
    ids = torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(4))
    space = QuantizationSpace.for_model(
        bert, bits=(4, 8), granularity="group", group_size=(32,), exclude="classifier",
        bank=None,
    )  # fmt: skip
    config_ = space.sample(7)
    written = export(space, bert, config_, tmp_path / "bert")
    applied = space.apply(bert, config_)
    with torch.no_grad():
        want = applied(ids).logits
        back = load_compressed(written.path, bert)(ids).logits
        hf = transformers.AutoModelForSequenceClassification.from_pretrained(written.path)
        assert torch.equal(back, want)
        assert torch.equal(hf.eval()(ids).logits, want)
    assert type(hf).__name__ == "BertForSequenceClassification"
