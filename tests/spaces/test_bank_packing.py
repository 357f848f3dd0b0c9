"""The variant bank's files: int codes packed beside their grid, read back bit for bit.

Every kind of entry (GPTQ, HQQ, and the round-to-nearest grids the codec also serves;
symmetric and asymmetric, per channel and per group, 2-8 bits, pruned) comes back from its file
with the same bits as a fresh quantization; files are several times smaller than float32;
files of the old float format, or off their grid, are never misread.
"""

import json
import logging
import math

import pytest
import torch

from tradeoff.spaces import PruningSpace, QuantizationSpace, SearchSpace
from tradeoff.spaces._bank import FORMAT_VERSION, entry_key
from tradeoff.spaces._gptq import _Grid, _static_scales, gptq_grids, rtn_quantize
from tradeoff.spaces._model import QuantInfo
from tradeoff.spaces._packing import pack_bits, pack_entry, unpack_bits, unpack_entry
from tradeoff.spaces._quantizers import _fake_quantize, _hqq_grid
from tradeoff.spaces._workspace import Workspace

from .test_bank import BLOCKS, gptq_space, tiny_llama

BITS = range(2, 9)


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """The bit patterns (so ``-0.0 != 0.0``)."""
    return t.contiguous().view({4: torch.int32, 2: torch.int16}[t.element_size()])


def assert_same_bits(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(bits_of(a[name]), bits_of(b[name])), name


def round_trip(entry: dict, group_size: int | None) -> tuple[dict, dict, int]:
    stored, codec = pack_entry(entry, group_size)
    return unpack_entry(stored, codec), codec, sum(t.nbytes for t in stored.values())


@pytest.fixture(scope="module")
def layer():
    torch.manual_seed(0)
    x = torch.randn(4096, 96) * torch.linspace(0.1, 3.0, 96)  # uneven input scales
    return torch.randn(48, 96), x.T @ x / len(x)


def test_bits_pack_to_their_width_and_back():
    values = torch.randint(0, 2**16, (1001,))
    for width in range(1, 17):
        v = values % 2**width
        packed = pack_bits(v, width)
        assert packed.dtype == torch.uint8 and len(packed) <= math.ceil(1001 * width / 8) + 3
        assert torch.equal(unpack_bits(packed, width, 1001).long(), v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("group_size", [None, 32, 40])  # 40: a last partial group of 16
def test_gptq_entries_come_back_bit_for_bit(layer, dtype, symmetric, group_size):
    weight, hessian = layer
    mask = torch.rand(weight.shape, generator=torch.Generator().manual_seed(1)) > 0.5
    for bits in BITS:
        for m in (None, mask):  # pruned: masked weights are +0 or -0, off the grid
            ((q, scale, zero),) = gptq_grids(
                weight.to(dtype), hessian, [(bits, group_size, symmetric)], mask=m
            )
            entry = {"weight": q, "scale": scale, "zero": zero}
            back, codec, nbytes = round_trip(entry, group_size)
            assert codec["codec"] == "int" and codec["width"] <= bits
            assert_same_bits(back, entry)
            if m is None:  # codes at their width, plus the grid (float32 scales)
                assert nbytes <= weight.numel() * bits / 8 + 8 * scale.numel() + 8


@pytest.mark.parametrize("granularity", ["channel", "group"])
def test_hqq_entries_come_back_bit_for_bit(layer, granularity):
    pytest.importorskip("hqq.core.quantize")
    weight, _ = layer
    size = 32 if granularity == "group" else None
    for bits in (2, 3, 4, 8):
        info = QuantInfo(bits=bits, granularity=granularity, group_size=size, method="hqq")
        q, scale, zero = _hqq_grid(weight, info)
        entry = {"weight": q, "scale": scale, "zero": zero}
        back, codec, nbytes = round_trip(entry, size)
        assert codec["codec"] == "int" and codec["width"] <= bits
        assert_same_bits(back, entry)
        assert nbytes < weight.nbytes * (bits + 4) / 32  # HQQ's zero-points are float32


@pytest.mark.parametrize("granularity", ["channel", "group"])
def test_round_to_nearest_grids_come_back_bit_for_bit(layer, granularity):
    weight, _ = layer
    size = 32 if granularity == "group" else None
    for bits in BITS:
        for symmetric in (True, False):
            # The grid Quantizer.grid gives round-to-nearest levels (what export packs).
            scale, zero = _static_scales(weight, _Grid(bits, symmetric), size)
            if symmetric:
                info = QuantInfo(bits=bits, granularity=granularity, group_size=size)
                q = _fake_quantize(weight, info)
            else:
                q = rtn_quantize(weight, bits=bits, group_size=size, symmetric=False)
            entry = {"weight": q, "scale": scale, "zero": zero}
            back, codec, _ = round_trip(entry, size)
            assert codec["codec"] == "int"
            assert_same_bits(back, entry)


def test_an_entry_off_its_grid_is_stored_as_it_is(layer):
    weight, _ = layer
    scale, zero = _static_scales(weight, _Grid(4, True), 32)
    entry = {"weight": weight.clone(), "scale": scale, "zero": zero}  # not quantized
    back, codec, _ = round_trip(entry, 32)
    assert codec == {"codec": "raw"}
    assert_same_bits(back, entry)
    alone, codec, _ = round_trip({"weight": weight}, None)  # no grid at all
    assert codec == {"codec": "raw"} and torch.equal(alone["weight"], weight)


# The bank on disk ----------------------------------------------------------------------------
LEVELS = (2, 3, 4, 5, 8)
SPACES = {
    "gptq symmetric, groups": lambda model, bank: gptq_space(model, bank, bits=LEVELS),
    "gptq asymmetric, channels": lambda model, bank: gptq_space(
        model, bank, bits=LEVELS, symmetric=False, granularity="channel"
    ),
    "hqq, groups": lambda model, bank: QuantizationSpace.for_model(
        model, method="hqq", bits=LEVELS, granularity="group", group_size=32, tie=BLOCKS,
        bank=bank,
    ),
}  # fmt: skip


def metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def what(path) -> str:
    """The entry a bank file says it holds (``layer@int4/group32/gptq``)."""
    return metadata(path)["what"]


@pytest.mark.parametrize("kind", SPACES)
def test_entries_read_from_disk_are_the_computed_ones_bit_for_bit(tmp_path, kind):
    if kind.startswith("hqq"):
        pytest.importorskip("hqq.core.quantize")
    model, make = tiny_llama(), SPACES[kind]
    built = make(model, tmp_path)
    built.build(model)
    reader, computed = make(model, tmp_path), make(model, None)  # from disk; computed here
    for seed in range(4):
        config = built.sample(seed)
        loaded = dict(reader.apply(model, config).named_parameters())
        assert_same_bits(loaded, dict(computed.apply(model, config).named_parameters()))
    assert reader.quantizer.bank.loaded > 0 and reader.quantizer.bank.built == 0
    # The files hold codes of 2-8 bits (4.4 on average) and their grid, not float32 weights.
    files = list(tmp_path.glob("*.safetensors"))
    assert {json.loads(metadata(f)["codec"])["codec"] for f in files} == {"int"}
    floats = sum(e["weight"].nbytes for e in built.quantizer.bank._memory.values())
    assert sum(f.stat().st_size for f in files) < floats / 3


def test_workspace_assembles_the_bank_files_bit_for_bit(tmp_path):
    model = tiny_llama()
    space = gptq_space(model, tmp_path, bits=(2, 3, 4, 8))
    space.build(model)
    reader = gptq_space(model, tmp_path, bits=(2, 3, 4, 8))  # a fresh process's copy
    workspace = Workspace(reader, model)
    for seed in range(4):
        config = space.sample(seed)
        expected = dict(space.apply(model, config).named_parameters())
        assert_same_bits(dict(workspace.assemble(config).named_parameters()), expected)
    assert reader.quantizer.bank.built == 0


def test_pruned_entries_come_back_from_disk_bit_for_bit(tmp_path):
    model = tiny_llama()
    prune = PruningSpace.for_model(model, sparsity=(0.0, 0.5), include="model.layers.*")
    computed = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    config = {k: (0.5 if k.startswith("prune") else 3) for k in computed}
    expected = dict(computed.apply(model, config).named_parameters())  # written to disk
    reader = SearchSpace.merge(prune=prune, quant=gptq_space(model, tmp_path))
    assert_same_bits(dict(reader.apply(model, config).named_parameters()), expected)
    assert reader.children["quant"].quantizer.bank.built == 0


def test_the_key_names_the_format_version(monkeypatch):
    key = entry_key(weight="abc", level=[4])
    monkeypatch.setattr("tradeoff.spaces._bank.FORMAT_VERSION", "2")
    assert entry_key(weight="abc", level=[4]) != key


def test_a_file_of_the_old_float_format_is_rebuilt_never_read(tmp_path, caplog):
    from safetensors.torch import save_file

    model = tiny_llama()
    space = gptq_space(model, tmp_path, bits=(3, 4))
    space.build(model)
    config = {k: 4 for k in space}
    expected = dict(space.apply(model, config).named_parameters())
    # A version 2 file (float weight, its own checksum, no format) where a new one should be.
    poisoned = 0
    for path in tmp_path.glob("*.safetensors"):
        if "@int4" in what(path):
            save_file(
                {"weight": torch.zeros(4, 4), "scale": torch.ones(4, 1), "zero": torch.zeros(4, 1)},
                str(path),
                metadata={"key": path.stem, "sha256": "old", "kind": "dict", "what": "old"},
            )
            poisoned += 1
    fresh = gptq_space(model, tmp_path, bits=(3, 4))
    with caplog.at_level(logging.WARNING, logger="tradeoff.spaces"):
        assert fresh.build(model) == poisoned
    messages = [r.getMessage() for r in caplog.records]
    assert sum(f"not {FORMAT_VERSION}" in m for m in messages) == poisoned
    assert_same_bits(dict(fresh.apply(model, config).named_parameters()), expected)


def test_prune_removes_older_formats_and_broken_writes_and_keeps_every_entry_in_use(tmp_path):
    import os
    import time

    from safetensors.torch import save_file

    from tradeoff.cli import main
    from tradeoff.spaces import VariantBank

    model = tiny_llama()
    space = gptq_space(model, tmp_path, bits=(3, 4))
    space.build(model)
    config = {k: 4 for k in space}
    expected = dict(space.apply(model, config).named_parameters())
    current = {p.name: p.read_bytes() for p in tmp_path.glob("*.safetensors")}
    # An upgrade leaves entries of the old format under keys no longer asked for, an
    # interrupted write leaves its temporary file; a write under way has a fresh one.
    old = [tmp_path / f"{i:040x}.safetensors" for i in range(3)]
    for path in old:
        save_file({"weight": torch.zeros(64, 64)}, str(path), metadata={"key": path.stem})
        path.with_suffix(".lock").touch()
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    stale_tmp, fresh_tmp = tmp_path / "tmpold.tmp", tmp_path / "tmpnew.tmp"
    stale_tmp.write_bytes(b"x" * 100)
    fresh_tmp.write_bytes(b"y" * 100)
    an_hour_ago = time.time() - 3700
    os.utime(stale_tmp, (an_hour_ago, an_hour_ago))
    freed = sum(p.stat().st_size for p in [*old, tmp_path / "garbage.safetensors", stale_tmp])

    assert VariantBank(tmp_path).prune() == (5, freed)
    left = {p.name: p.read_bytes() for p in tmp_path.glob("*.safetensors")}
    assert left == current  # every entry of this format, byte for byte
    assert not any(p.with_suffix(".lock").exists() for p in old)
    assert fresh_tmp.exists() and not stale_tmp.exists()
    fresh = gptq_space(model, tmp_path, bits=(3, 4))
    assert fresh.build(model) == 0  # nothing this version uses was removed
    assert_same_bits(dict(fresh.apply(model, config).named_parameters()), expected)
    assert VariantBank(tmp_path).prune() == (0, 0)
    assert VariantBank(None).prune() == (0, 0)
    assert main(["prune-bank", str(tmp_path)]) == 0
    assert main(["prune-bank", str(tmp_path / "missing")]) == 2
