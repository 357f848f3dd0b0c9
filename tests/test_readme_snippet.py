"""The README's opening snippet runs as written, on a tiny model, with a small budget."""

import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_compress_snippet_runs(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert "tradeoff.compress(" in code
    # The same call, smaller: 4 local trials instead of 200 on Ray, a tiny model, a size
    # budget it can meet, the study in a temporary directory.
    small = code.replace('n_trials=200, backend="ray", n_workers=4,', "n_trials=4,")
    small = small.replace('budget={"size_mb": 60}', 'budget={"size_mb": 0.05}')
    assert small.count("n_trials=4,") == 1 and "0.05" in small
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADEOFF_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    scope = {
        "model": transformers.LlamaForCausalLM(config).eval(),
        "ids": torch.randint(0, 128, (48, 16), generator=torch.Generator().manual_seed(1)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPTQ warns about this tiny calibration set
        exec(compile(small, "README.md", "exec"), scope)
    result = scope["result"]
    assert isinstance(scope["small"], nn.Module)
    assert len(result.pareto) >= 1 and "uniform" in set(result.baselines["kind"])
    assert (result.pareto["size_mb"] <= 0.05).all()
    assert (tmp_path / "compress.db").exists()
    assert (tmp_path / "out" / "model.safetensors").exists()  # the export line ran
