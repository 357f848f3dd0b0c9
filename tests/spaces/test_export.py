"""Export: compressed-tensors checkpoints that dequantize to exactly the weights the search
measured (read back through compressed-tensors and through transformers), the torch format for
any Config, and the refusals that come before anything is written."""

from __future__ import annotations

import copy
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


@pytest.mark.parametrize(
    ("method", "symmetric", "granularity"),
    [("rtn", True, "group"), ("rtn", False, "channel"), ("gptq", False, "group")],
)
def test_torchao_bfloat16_puts_int4_layers_on_the_cpu_kernel(
    llama, ids, tmp_path, method, symmetric, granularity
):
    pytest.importorskip("torchao")
    space = QuantizationSpace.for_model(
        llama, bits=(3, 4, 8), granularity=granularity, group_size=(32,), symmetric=symmetric,
        method=method, exclude="lm_head", bank=None,
        **({"calibration": ids} if method == "gptq" else {}),
    )  # fmt: skip
    config = space.sample(1)
    with pytest.warns(UserWarning, match=r"(?s)stay off the int4 kernel.*: 8 bits"):
        written = export(space, llama, config, tmp_path / "ao", format="torchao", dtype="bfloat16")
    kernels = json.loads((written.path / "tradeoff.json").read_text())["kernels"]
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    from tradeoff.spaces._quant import recording_grids

    with recording_grids() as grids:
        applied = space.apply(llama, config)
    on_kernel = 0
    for name, module in applied.named_modules():
        info = getattr(module, "tradeoff_quant", None)
        if info is None:
            continue
        stored = loaded.get_submodule(name).weight
        want = "Int4OpaqueTensor" if info.bits <= 4 else "Int8Tensor" if symmetric else "Intx"
        assert kernels[name].startswith(want) and type(stored).__name__.startswith(want)
        if info.bits > 4:
            continue
        on_kernel += 1
        # The kernel's weight: the bank's codes, bfloat16 scales (and float zeros, asymmetric).
        scale, zero = grids[name]
        inputs = module.weight.shape[1]
        group = torch.arange(inputs) // (32 if granularity == "group" else inputs)
        s, z = scale[:, group].bfloat16().float(), zero[:, group]
        codes = (module.weight / scale[:, group]).round() + z
        if symmetric:
            expected = codes * s
        else:
            expected = (codes - 8) * s + ((8 - z) * s).bfloat16().float()
        eye = torch.eye(module.weight.shape[1], dtype=torch.bfloat16)
        with torch.no_grad():
            seen = torch.nn.functional.linear(eye, stored).float().T
        assert torch.equal(seen, expected.bfloat16().float())
        # bfloat16 rounding of the scale (and of the float zero (8 - z) * scale): 2^-9 each
        bound = (module.weight.abs() + (8 - z).abs() * scale[:, group].abs()) * 2**-8
        assert ((expected - module.weight).abs() <= bound).all()
    assert on_kernel > 0
    assert next(loaded.parameters()).dtype == torch.bfloat16
    want_logits = logits(applied, ids)
    got = logits(loaded, ids).float()
    assert (got - want_logits).abs().max() < 0.05 * want_logits.abs().max()


def test_torchao_bfloat16_falls_back_where_the_kernel_cannot_tile_the_groups(llama, tmp_path):
    pytest.importorskip("torchao")
    space = QuantizationSpace.for_model(
        llama, bits=(4, 8), granularity="group", group_size=(16,), exclude="lm_head", bank=None
    )
    config = {k: 4 for k in space}
    with pytest.warns(UserWarning, match=r"groups of 16 inputs \(the kernel's groups are 256/"):
        written = export(space, llama, config, tmp_path / "g16", format="torchao", dtype="bfloat16")
    kernels = json.loads((written.path / "tradeoff.json").read_text())["kernels"]
    assert set(kernels.values()) == {"IntxUnpackedToInt8Tensor"}


def test_torchao_dtype_is_checked_before_writing(llama, tmp_path):
    space = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    config = {k: 4 for k in space}
    with pytest.raises(ValueError, match="dtype='bfloat16' applies to format='torchao' only"):
        export(space, llama, config, tmp_path / "x", dtype="bfloat16")
    with pytest.raises(ValueError, match=r"dtype must be None .* or one of \['bfloat16'\]"):
        export(space, llama, config, tmp_path / "x", format="torchao", dtype="float16")
    assert not (tmp_path / "x").exists()


def test_export_device_is_checked_before_writing(llama, tmp_path):
    space = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    config = {k: 4 for k in space}
    if not torch.cuda.is_available():  # what a CPU-only machine answers when asked for CUDA
        with pytest.raises(ValueError, match=r"device='cuda'\): torch .* sees no CUDA device"):
            export(space, llama, config, tmp_path / "x", format="torchao", device="cuda")
    with pytest.raises(ValueError, match="device= applies to format='torchao' and 'torch' only"):
        export(space, llama, config, tmp_path / "x", device="cpu")
    with pytest.raises(ValueError, match="device must be a torch device"):
        export(space, llama, config, tmp_path / "x", format="torch", device="gpu0")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("symmetric", [True, False])
def test_cuda_tile_layout_pads_the_cpu_kernels_codes_with_zero_weights(symmetric):
    """The CUDA layout's unpadded codes, scales and zeros are the ones the CPU kernel runs
    (checked through it here); the padding to 1024 inputs and 8 rows holds zero weights."""
    pytest.importorskip("torchao")
    from torchao.prototype.quantization.int4 import Int4OpaqueTensor

    from tradeoff.spaces._export_torchao import tile_padded, tinygemm_parts

    gen = torch.Generator().manual_seed(6)
    rows, inputs, size = 32, 96, 32  # the CPU packs 16 rows at a time
    scale = torch.rand(rows, inputs // size, generator=gen) / 8 + 0.01
    low, high = (-8, 7) if symmetric else (0, 15)
    codes = torch.randint(low, high + 1, (rows, inputs), generator=gen).float()
    zero = torch.zeros_like(scale) if symmetric else torch.randint(0, 16, scale.shape).float()
    q, scale_and_zero, kernel = tinygemm_parts(codes, scale, zero, symmetric=symmetric)
    assert kernel == 32 and q.dtype == torch.int32 and int(q.min()) >= 0 and int(q.max()) <= 15
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    cpu = Int4OpaqueTensor(packed, scale_and_zero, [1, kernel], torch.Size([rows, inputs]))
    with torch.no_grad():
        ran = nn.functional.linear(torch.eye(inputs, dtype=torch.bfloat16), cpu).float().T
    for used in (rows, 20):  # 20 rows: padded to 24
        q_pad, sz_pad = tile_padded(q[:used], scale_and_zero[:, :used].contiguous(), kernel)
        padded = -(-used // 8) * 8
        assert q_pad.shape == (padded, 1024) and sz_pad.shape == (1024 // kernel, padded, 2)
        group = torch.arange(1024) // kernel
        s, z = (sz_pad[:, :, k].float().T[:, group] for k in (0, 1))
        weights = (q_pad.float() - 8) * s + z  # tinygemm's weight, both kernels
        assert torch.equal(weights[:used, :inputs].bfloat16().float(), ran[:used])
        assert not weights[used:].any() and not weights[:, inputs:].any()


def test_torchao_bfloat16_keeps_layers_the_cpu_layout_cannot_pack_exact(tmp_path):
    pytest.importorskip("torchao")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 24)).eval()
    space = QuantizationSpace.for_model(model, bits=(4, 8), bank=None)
    with pytest.warns(UserWarning, match=r"2: 24 outputs \(the CPU int4 layout packs a multiple"):
        written = export(
            space, model, {k: 4 for k in space}, tmp_path / "ao", format="torchao",
            dtype="bfloat16",
        )  # fmt: skip
    kernels = json.loads((written.path / "tradeoff.json").read_text())["kernels"]
    assert kernels == {"0": "Int4OpaqueTensor", "2": "IntxUnpackedToInt8Tensor"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torchao's tile-packed int4 needs CUDA")
@pytest.mark.parametrize("symmetric", [True, False])
def test_torchao_bfloat16_on_cuda_puts_int4_layers_on_the_tile_packed_kernel(
    llama, ids, tmp_path, symmetric
):
    pytest.importorskip("torchao")
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("tinygemm's int4 CUDA kernel needs compute capability 8.0")
    space = QuantizationSpace.for_model(
        llama, bits=(4, 8), granularity="group", group_size=(32,), symmetric=symmetric,
        exclude="lm_head", bank=None,
    )  # fmt: skip
    config = space.sample(1)
    assert {config[k] for k in space} == {4, 8}
    with pytest.warns(UserWarning, match=r"(?s)stay off the int4 kernel.*: 8 bits"):
        written = export(
            space, llama, config, tmp_path / "cuda", format="torchao", dtype="bfloat16",
            device="cuda",
        )  # fmt: skip
    kernels = json.loads((written.path / "tradeoff.json").read_text())["kernels"]
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    applied = space.apply(llama, config)
    for name, module in applied.named_modules():
        info = getattr(module, "tradeoff_quant", None)
        if info is None:
            continue
        stored = loaded.get_submodule(name).weight
        want = "Int4TilePackedTo4dTensor" if info.bits == 4 else (
            "Int8Tensor" if symmetric else "IntxUnpackedToInt8Tensor"
        )  # fmt: skip
        assert kernels[name] == want == type(stored).__name__
        eye = torch.eye(module.weight.shape[1], dtype=torch.bfloat16, device="cuda")
        with torch.no_grad():
            seen = nn.functional.linear(eye, stored).float().T.cpu()
        # The searched weight, to the bfloat16 roundings of its scale (and float zero).
        assert torch.allclose(seen, module.weight, rtol=2**-6, atol=2**-6 * float(
            module.weight.abs().max()
        ))  # fmt: skip
    got = logits(loaded, ids.cuda()).float().cpu()
    want_logits = logits(applied, ids)
    assert (got - want_logits).abs().max() < 0.05 * want_logits.abs().max()


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


def test_torch_format_writes_the_hf_config_where_it_describes_the_weights(llama, ids, tmp_path):
    """Uniformly narrowed MLPs (the config's intermediate_size follows), or a dropped block:
    transformers loads the torch checkpoint as a narrower or shorter model; unevenly narrowed
    layers get no config.json, and tradeoff.json says why."""
    prune = PruningSpace.for_model(
        llama, sparsity=(0.0, 0.5), pattern=("channel",), sample_input=ids[:2],
        include=["*mlp.up_proj", "*mlp.gate_proj"],
    )  # fmt: skip
    arch = ArchitectureSpace.elastic(llama, drop_blocks=True, blocks="model.layers")
    space = SearchSpace.merge(arch=arch, prune=prune)
    keep = {k: True for k in space if k.startswith("arch.")}
    even = keep | {k: 0.5 if k.endswith("sparsity") else "channel" for k in space if "prune." in k}
    dropped = {**keep, "arch.model.layers.1.keep": False} | {
        k: 0.0 if k.endswith("sparsity") else "channel" for k in space if "prune." in k
    }  # fmt: skip
    for name, config, blocks, width in (("even", even, 3, 48), ("dropped", dropped, 2, 96)):
        written = export(space, llama, config, tmp_path / name, format="torch")
        assert "config.json" in written.files
        hf = transformers.AutoModelForCausalLM.from_pretrained(written.path).eval()
        assert len(hf.model.layers) == blocks and hf.config.intermediate_size == width
        assert torch.equal(logits(hf, ids), logits(space.apply(llama, config), ids))
    uneven = {**even, "prune.model.layers.0.mlp.gate_proj.sparsity": 0.0}
    written = export(space, llama, uneven, tmp_path / "uneven", format="torch")
    assert "config.json" not in written.files
    why = json.loads((written.path / "tradeoff.json").read_text())["hf_config"]
    assert why.startswith("not written: the config does not describe the weights")
    assert "model.layers.1.mlp.gate_proj.weight [48, 64] vs [96, 64]" in why


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
    kept = {f.name: f.read_bytes() for f in (tmp_path / "there").iterdir()}
    with pytest.raises(OSError, match="disk full"):  # a failed overwrite keeps the old one
        export(space, llama, {k: 8 for k in space}, tmp_path / "there", overwrite=True)
    assert {f.name: f.read_bytes() for f in (tmp_path / "there").iterdir()} == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]


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


def train_adapters(model: nn.Module) -> None:
    """Ten seeded SGD steps of next-token loss on the adapters."""
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(5))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.5)
    for _ in range(10):
        opt.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()


@pytest.mark.parametrize("with_quant", [False, True])
def test_peft_adapters_reload_through_peft_itself(llama, ids, tmp_path, with_quant):
    peft = pytest.importorskip("peft")
    from tradeoff.spaces import PEFTSpace

    adapters = PEFTSpace.for_model(llama, methods=("lora",), ranks=(4,), dropouts=(0.0,))
    quant = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    space = SearchSpace.merge(quant=quant, peft=adapters) if with_quant else adapters
    config = space.sample(2)
    trained: list[torch.Tensor] = []  # each trained model's logits, before any merge

    def train(model: nn.Module) -> None:
        train_adapters(model)
        trained.append(logits(model.eval(), ids))

    written = export(space, llama, config, tmp_path / "lora", format="peft", train=train)
    assert {"adapter_config.json", "adapter_model.safetensors", "tradeoff.json"} <= set(
        written.files
    )
    # The base is the Config without its PEFT stage (the quantized model, QLoRA-style).
    base = (
        quant.apply(llama, {k[6:]: v for k, v in config.items() if k.startswith("quant.")})
        if with_quant
        else llama
    )
    back = peft.PeftModel.from_pretrained(copy.deepcopy(base), written.path).eval()
    want = trained[0]
    assert not torch.equal(want, logits(base, ids))  # the adapters were trained
    assert torch.equal(logits(back, ids), want)
    merged = export(
        space, llama, config, tmp_path / "merged", format="peft", train=train, merge=True
    )
    assert merged.format == "torch"
    loaded = torch.load(merged.path / "model.pt", weights_only=False)
    assert not any("lora" in n for n, _ in loaded.named_parameters())
    assert torch.allclose(logits(loaded, ids), trained[1], atol=1e-5)


def test_peft_format_refusals(llama, tmp_path):
    quant = QuantizationSpace.for_model(llama, bits=(4, 8), exclude="lm_head", bank=None)
    config = {k: 4 for k in quant}
    with pytest.raises(ValueError, match=r"format='peft'\) needs train=fn\(model\)"):
        export(quant, llama, config, tmp_path / "x", format="peft")
    with pytest.raises(ValueError, match="train= and merge= apply to format='peft' only"):
        export(quant, llama, config, tmp_path / "x", train=train_adapters)
    with pytest.raises(ValueError, match="the Config has no adapters"):
        export(quant, llama, config, tmp_path / "x", format="peft", train=train_adapters)
    assert not (tmp_path / "x").exists()


def test_compress_result_exports_a_trials_adapters(tmp_path):
    peft = pytest.importorskip("peft")
    import tradeoff
    from tradeoff.objectives import QualityFn

    torch.manual_seed(0)
    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=32, num_labels=2,
        )
    ).eval()  # fmt: skip
    x = torch.randint(0, 64, (8, 8), generator=torch.Generator().manual_seed(3))
    y = torch.arange(8) % 2

    def train(model, steps, start):
        torch.manual_seed(1)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(trainable, lr=0.5)
        for _ in range(int(steps)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(input_ids=x).logits, y).backward()
            opt.step()
        return int(steps)

    def accuracy(model, steps):
        with torch.no_grad():
            return float((model(input_ids=x).logits.argmax(-1) == y).float().mean())

    result = tradeoff.compress(
        bert, quality=QualityFn(accuracy, "accuracy", "maximize", max_budget=3),
        peft={"train": train, "methods": ("lora",), "ranks": (2, 4), "dropouts": (0.0,),
              "task_type": "SEQ_CLS"},
        quantize={"bits": (4, 8)}, n_trials=3, seed=0, show_progress=False,
    )  # fmt: skip
    trial = result.best()
    written = result.export(trial, tmp_path / "adapters", format="peft")
    assert "adapter_model.safetensors" in written.files
    meta = json.loads((written.path / "tradeoff.json").read_text())
    assert meta["trial"] == trial and meta["adapters"] == "peft save_pretrained"
    back = peft.PeftModel.from_pretrained(copy.deepcopy(bert), written.path).eval()
    _, config = result._config(trial)
    tuned, _, _ = result._trained(config, merge=False)  # trained again, seeded: the same
    with torch.no_grad():
        assert torch.equal(back(input_ids=x).logits, tuned.eval()(input_ids=x).logits)
    plain = tradeoff.compress(
        bert, quality=QualityFn(accuracy, "accuracy", "maximize"), quantize={"bits": (4, 8)},
        n_trials=2, seed=0, show_progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"format='peft' writes the adapters of a compress\("):
        plain.export(None, tmp_path / "none", format="peft")
    if not torch.cuda.is_available():  # device= reaches spaces.export: refused, nothing written
        with pytest.raises(ValueError, match=r"device='cuda'\): torch .* sees no CUDA device"):
            plain.export(None, tmp_path / "gpu", format="torchao", device="cuda")
        assert not (tmp_path / "gpu").exists()


def two_four(device: str = "cpu", dtype: torch.dtype = torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64)).eval()
    model = model.to(device, dtype)
    space = PruningSpace.for_model(model, pattern="n:m", device=device)
    return model, space, {k: 0.5 for k in space}


def test_two_four_layers_stay_dense_on_the_cpu_and_say_so(tmp_path):
    model, space, config = two_four()
    x = torch.randn(3, 128, generator=torch.Generator().manual_seed(2))
    with pytest.warns(UserWarning, match=r"(?s)2 of 2 n:m-pruned layers stay dense.*need CUDA"):
        written = export(space, model, config, tmp_path / "auto", format="torch")
    meta = json.loads((written.path / "tradeoff.json").read_text())
    assert meta["sparse"]["0"].startswith("dense: on cpu")
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    assert loaded[0].weight.layout == torch.strided
    with torch.no_grad():
        assert torch.equal(loaded(x), space.apply(model, config)(x))
    with pytest.raises(ValueError, match=r"(?s)sparse=True.*0: on cpu .*need CUDA"):
        export(space, model, config, tmp_path / "strict", format="torch", sparse=True)
    with pytest.raises(ValueError, match="sparse= applies to format='torch' only"):
        export(space, model, config, tmp_path / "strict", format="torchao", sparse=True)
    assert not (tmp_path / "strict").exists()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export(space, model, config, tmp_path / "dense", format="torch", sparse=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="semi-structured sparsity needs CUDA")
def test_two_four_layers_are_semi_structured_sparse_on_cuda(tmp_path):
    model, space, config = two_four("cuda", torch.float16)
    x = torch.randn(64, 128, device="cuda", dtype=torch.float16)
    written = export(space, model, config, tmp_path / "sparse", format="torch", sparse=True)
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    from torch.sparse import SparseSemiStructuredTensor

    assert isinstance(loaded[0].weight, SparseSemiStructuredTensor)
    with torch.no_grad():
        want = space.apply(model, config)(x)
        assert torch.allclose(loaded(x), want, rtol=1e-2, atol=1e-2)


def tiny_bert() -> nn.Module:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, num_labels=3,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config).eval()


def round_trip_case(kind: str) -> tuple[nn.Module, QuantizationSpace, torch.Tensor]:
    """A model, a mixed 4/8-bit space of its Linear layers and an input."""
    gen = torch.Generator().manual_seed(4)
    if kind == "cnn":  # channel scales: the last Linear has 16 inputs
        model, x = cnn(), torch.randn(3, 1, 8, 8, generator=gen)
        return model, QuantizationSpace.for_model(model, bits=(4, 8), include=("5", "7")), x
    model = tiny_llama() if kind == "llama" else tiny_bert()
    space = QuantizationSpace.for_model(
        model, bits=(4, 8), granularity="group", group_size=(32,), bank=None,
        exclude="lm_head" if kind == "llama" else "classifier",
    )  # fmt: skip
    return model, space, torch.randint(0, 100, (2, 9), generator=gen)


def output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return getattr(out, "logits", out)


@pytest.mark.parametrize("fmt", ["compressed-tensors", "torchao", "torch"])
@pytest.mark.parametrize("kind", ["llama", "bert", "cnn"])
def test_round_trip_on_a_tiny_llama_bert_and_cnn(kind, fmt, tmp_path):
    """Each format read back: the searched weights (exactly; torchao's tensors dequantize to
    them), the same outputs, and the sizes reported are the files'."""
    if fmt == "torchao":
        pytest.importorskip("torchao")
    model, space, x = round_trip_case(kind)
    config = {k: (4, 8)[i % 2] for i, k in enumerate(space)}  # mixed: two config groups
    written = export(space, model, config, tmp_path / kind, format=fmt)
    applied = space.apply(model, config)
    assert written.files == {f.name: f.stat().st_size for f in written.path.iterdir()}
    assert set(written.layers) == {n for n, m in applied.named_modules() if _is_quant(m)}
    if fmt == "compressed-tensors":
        back = load_compressed(written.path, model)
        assert same_state(back, applied)
        assert torch.equal(output(back, x), output(applied, x))
        from safetensors.torch import load_file

        stored = load_file(str(written.path / "model.safetensors"))
        for name in written.packed:  # bits / 8 bytes per weight, packed in int32
            bits = applied.get_submodule(name).tradeoff_quant.bits
            assert stored[f"{name}.weight_packed"].numel() * 32 == (
                applied.get_submodule(name).weight.numel() * bits
            )
        return
    loaded = torch.load(written.path / "model.pt", weights_only=False)
    if fmt == "torchao":
        for name in written.packed:
            stored = loaded.get_submodule(name).weight
            assert torch.equal(stored.dequantize(), applied.get_submodule(name).weight)
        assert torch.allclose(output(loaded, x), output(applied, x), atol=1e-5)
    else:
        from safetensors.torch import load_file

        assert same_state(loaded, applied)
        assert torch.equal(output(loaded, x), output(applied, x))
        state = load_file(str(written.path / "model.safetensors"))
        assert all(torch.equal(v, applied.state_dict()[k]) for k, v in state.items())


def _is_quant(module: nn.Module) -> bool:
    return getattr(module, "tradeoff_quant", None) is not None


def test_compressed_tensors_names_the_layers_vllm_does_not_serve(llama, tmp_path):
    space = QuantizationSpace.for_model(llama, bits=(3, 4, 8), exclude="lm_head", bank=None)
    config = {k: 3 if ".0." in k else 4 for k in space}
    with pytest.warns(UserWarning, match=r"(?s)vLLM will not load it.*layers\.0\.mlp\.up_proj: "
                      r"3 bits \(vLLM's WNA16 kernels serve 4 and 8\)") as seen:  # fmt: skip
        export(space, llama, config, tmp_path / "three")
    assert "layers.1." not in str(seen[0].message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export(space, llama, {k: 4 for k in space}, tmp_path / "four")


@pytest.mark.parametrize("kind", ["bert", "cnn"])  # the tiny Llama: test_peft_adapters_reload...
def test_peft_round_trip_on_a_tiny_bert_and_cnn(kind, tmp_path):
    peft = pytest.importorskip("peft")
    from tradeoff.spaces import PEFTSpace

    model, _, x = round_trip_case(kind)
    space = PEFTSpace.for_model(model, methods=("lora",), ranks=(2,), dropouts=(0.0,))
    config = space.sample(0)
    trained: list[torch.Tensor] = []

    def train(m: nn.Module) -> None:  # a few seeded steps pulling the outputs to 0
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            out = m(x)
            getattr(out, "logits", out).pow(2).mean().backward()
            opt.step()
        trained.append(output(m.eval(), x))

    written = export(space, model, config, tmp_path / kind, format="peft", train=train)
    assert "adapter_model.safetensors" in written.files
    back = peft.PeftModel.from_pretrained(copy.deepcopy(model), written.path).eval()
    assert not torch.equal(trained[0], output(model, x))  # the adapters were trained
    assert torch.equal(output(back, x), trained[0])
