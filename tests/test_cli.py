import json
import os
from pathlib import Path

import pytest

from tradeoff.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZDT = ROOT / "examples" / "zdt.py"


def test_run_then_pareto_and_studies(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code = main(
        [
            "run",
            str(ZDT),
            "--n-trials",
            "12",
            "--optimizer",
            "random",
            "--seed",
            "0",
            "--storage",
            url,
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "12 trials: 12 complete" in out
    assert f"tradeoff dashboard --storage {url}" in out

    assert main(["pareto", "--storage", url, "--study", "zdt", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["pareto"] for r in rows)
    assert all(r["f2"] <= 6.0 for r in rows)  # the file's constraint

    assert main(["pareto", "--storage", url, "--study", "zdt", "--format", "csv", "--all"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 13

    assert main(["studies", "--storage", url]) == 0
    assert "zdt\t12 trials\tminimize,minimize" in capsys.readouterr().out

    # Re-running the same command resumes: nothing left to do.
    assert main(["run", str(ZDT), "--n-trials", "12", "--storage", url, "--no-progress"]) == 0
    assert "12 trials: 12 complete" in capsys.readouterr().out

    out_dir = tmp_path / "plots"
    args = ["plot", "--storage", url, "--study", "zdt", "--out", str(out_dir)]
    assert main([*args, "--format", "png", "--format", "html"]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert written and all(p.parent == out_dir and p.stat().st_size > 0 for p in written)
    assert {p.suffix for p in written} == {".png", ".html"}


def test_run_file_missing_definitions(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("space = None\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "must define space, objectives, evaluate; missing: objectives, evaluate" in err


def test_run_missing_file(capsys):
    assert main(["run", "nope.py"]) == 2
    assert "no such search file: nope.py" in capsys.readouterr().err


def test_run_bad_flags_are_reported(capsys, tmp_path):
    code = main(["run", str(ZDT), "--n-trials", "0", "--storage", f"sqlite:///{tmp_path}/x.db"])
    assert code == 2
    assert "n_trials must be an integer >= 1" in capsys.readouterr().err


def test_pareto_of_unknown_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["pareto", "--storage", url, "--study", "ghost"]) == 2
    assert "No study named 'ghost'" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "compress", "export", "pareto", "studies", "plot", "dashboard"):
        assert command in out


def test_storage_url_from_the_environment(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("TRADEOFF_STORAGE", url)
    assert main(["run", str(ZDT), "--n-trials", "3", "--optimizer", "random", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["studies"]) == 0
    assert "zdt\t3 trials" in capsys.readouterr().out


def test_run_resources_flag_must_be_a_json_object(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(SystemExit):
        main(["run", str(ZDT), "--storage", url, "--resources", "worker_node=1"])
    assert "not JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(ZDT), "--storage", url, "--resources", '{"gpu": "a"}'])
    assert "expected" in capsys.readouterr().err


# tradeoff compress ------------------------------------------------------------------------------
QUIET = ["--no-progress", "--seed", "0"]
MODEL_FILE = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(),
    nn.Linear(16, 10),
).eval()
x = torch.randn(60, 1, 8, 8, generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    data = (x, model(x).argmax(1))  # the dense model's own labels: accuracy 1.0


def evaluate(m, budget):
    with torch.no_grad():
        return float((m(x).argmax(1) != data[1]).float().mean())
"""


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A tiny seeded Llama saved with save_pretrained, a word-level tokenizer beside it, token
    ids saved with torch.save and a text file of the tokenizer's words."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers: nothing downloads
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    root = tmp_path_factory.mktemp("compress")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(root / "llama")
    vocab = {f"w{i}": i for i in range(127)} | {"[UNK]": 127}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.save_pretrained(root / "llama")
    gen = torch.Generator().manual_seed(1)
    torch.save(torch.randint(0, 128, (9, 16), generator=gen), root / "ids.pt")
    words = torch.randint(0, 127, (170,), generator=gen)
    (root / "text.txt").write_text(" ".join(f"w{int(i)}" for i in words))  # 10 x 16 tokens
    return root


def compress(tmp_path, *argv: str) -> list[str]:
    return ["compress", "--storage", f"sqlite:///{tmp_path / 'c.db'}", *QUIET, *argv]


@pytest.mark.filterwarnings("ignore:collect_hessians:UserWarning")  # GPTQ wants more tokens
def test_compress_llama_gptq_kl_blocks_budget_and_json(llama_dir, tmp_path, capsys):
    out = tmp_path / "front.json"
    argv = compress(
        tmp_path, "--model", str(llama_dir / "llama"), "--quality", "kl",
        "--calibration", str(llama_dir / "ids.pt"), "--bits", "4,8", "--method", "gptq",
        "--drop-blocks", "--budget", "size_mb=0.09", "--n-trials", "6",
        "--bank", str(tmp_path / "bank"), "--out", str(out),
    )  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Pareto set:" in text and "Baselines:" in text
    assert "additive proxy, size_mb <= 0.09" in text
    assert f"tradeoff dashboard --storage sqlite:///{tmp_path / 'c.db'}" in text
    assert list((tmp_path / "bank").glob("*.safetensors"))  # GPTQ's levels, banked
    saved = json.loads(out.read_text())
    assert saved["study"] == "llama"  # the model directory's name
    assert saved["objectives"] == {"kl": "minimize", "size_mb": "minimize"}
    assert saved["pareto"] and all(r["size_mb"] <= 0.09 for r in saved["pareto"])
    assert {"arch.model.layers.0.keep", "quant.model.layers.1.bits"} <= set(
        saved["pareto"][0]["config"]
    )
    base = {r["baseline"]: r for r in saved["baselines"]}
    assert list(base) == [
        "dense", "uniform bits=4", "uniform bits=8", "additive proxy, size_mb <= 0.09"
    ]  # fmt: skip
    assert base["dense"]["kl"] == 0.0 and base["dense"]["trial"] is None
    assert base["uniform bits=4"]["trial"] == 0  # the first trial, an int


@pytest.mark.filterwarnings("ignore:collect_hessians:UserWarning")  # GPTQ wants more tokens
def test_export_writes_the_best_trial_within_the_budget_and_runs_no_trial(
    llama_dir, tmp_path, capsys
):
    pytest.importorskip("compressed_tensors")
    import optuna
    import torch
    import transformers

    from tradeoff.spaces import load_compressed

    url = f"sqlite:///{tmp_path / 'c.db'}"
    flags = [
        "--model", str(llama_dir / "llama"), "--quality", "kl",
        "--calibration", str(llama_dir / "ids.pt"), "--bits", "4,8", "--method", "gptq",
        "--granularity", "group", "--group-size", "32", "--drop-blocks",
        "--budget", "size_mb=0.09", "--n-trials", "6", "--bank", str(tmp_path / "bank"),
        "--bank-memory-mb", "0.05",  # a few entries: the others are forgotten and read again
    ]  # fmt: skip
    assert main(compress(tmp_path, *flags)) == 0
    capsys.readouterr()
    before = len(optuna.load_study(study_name="llama", storage=url).trials)
    out = tmp_path / "ckpt"
    argv = ["export", "--storage", url, *QUIET, *flags, "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "written as compressed-tensors" in text and "model.safetensors" in text
    study = optuna.load_study(study_name="llama", storage=url)
    assert len(study.trials) == before  # nothing ran again
    record = json.loads((out / "tradeoff.json").read_text())
    feasible = [
        t for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.values[1] <= 0.09
    ]  # fmt: skip
    assert record["values"]["kl"] == min(t.values[0] for t in feasible)
    # Two readers of the checkpoint agree: transformers (a shorter model when blocks were
    # dropped) and compressed-tensors' own decompression into the dense model.
    dense = transformers.AutoModelForCausalLM.from_pretrained(llama_dir / "llama").eval()
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.load(llama_dir / "ids.pt")
    with torch.no_grad():
        assert torch.equal(hf(ids).logits, load_compressed(out, dense)(ids).logits)
    # The same trial for torchao's int4 CPU kernel: 4-bit layers as Int4OpaqueTensor.
    pytest.importorskip("torchao")
    ao = tmp_path / "ao"
    assert main([*argv[:-1], str(ao), "--format", "torchao", "--dtype", "bfloat16"]) == 0
    assert "written as torchao" in capsys.readouterr().out
    assert json.loads((ao / "tradeoff.json").read_text())["trial"] == record["trial"]
    # An existing --out is kept; an unknown study is named.
    assert main(argv) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--study", "ghost", "--overwrite"]) == 2
    assert "no study 'ghost'" in capsys.readouterr().err


def test_compress_llama_rtn_perplexity_on_text_resumes_to_the_budget(llama_dir, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    argv = compress(
        tmp_path, "--model", str(llama_dir / "llama"), "--quality", "perplexity",
        "--calibration", str(llama_dir / "text.txt"), "--seq-len", "16", "--method", "rtn",
        "--no-fidelity", "--study", "ppl", "--bits",
    )  # fmt: skip
    assert main([*argv, "4,8", "--n-trials", "4"]) == 0
    assert "4 trials: 4 complete" in capsys.readouterr().out
    # The same command with a larger --n-trials continues the study to exactly that many,
    assert main([*argv, "4,8", "--n-trials", "6"]) == 0
    assert "6 trials: 6 complete" in capsys.readouterr().out
    # and once more runs nothing, as `tradeoff run` does.
    assert main([*argv, "4,8", "--n-trials", "6"]) == 0
    assert "6 trials: 6 complete" in capsys.readouterr().out
    assert main(["studies", "--storage", url]) == 0
    assert "ppl\t6 trials\tminimize,minimize" in capsys.readouterr().out
    # Another space under the same study name is refused, before any trial.
    assert main([*argv, "3,8", "--n-trials", "8"]) == 2
    assert "already searches another space" in capsys.readouterr().err


def test_compress_python_file_cnn_accuracy_and_evaluate(tmp_path, capsys):
    pytest.importorskip("torch")
    model_file = tmp_path / "cnn.py"
    model_file.write_text(MODEL_FILE)
    base = compress(tmp_path, "--model", str(model_file), "--bits", "2,4,8", "--n-trials", "6")
    assert main([*base, "--quality", "accuracy"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "uniform bits=8" in text
    assert main(["studies", "--storage", f"sqlite:///{tmp_path / 'c.db'}"]) == 0
    assert "cnn\t" in capsys.readouterr().out  # the file's stem, maximize accuracy
    # --quality file: the file's evaluate (model, budget) -> float, minimized as "quality".
    assert main([*base, "--quality", "file", "--study", "cnn-error", "--no-fidelity"]) == 0
    text = capsys.readouterr().out
    assert "6 trials: 6 complete" in text and "quality" in text
    # Pruning too, with a searched pattern, and costs in KB and Mbit-ops.
    out = tmp_path / "pruned.json"
    pruned = ["--sparsity", "0,0.5", "--pattern", "unstructured,channel", "--cost",
              "size_kb,mbitops", "--study", "cnn-pruned", "--out", str(out)]  # fmt: skip
    assert main([*base, "--quality", "accuracy", *pruned]) == 0
    assert "uniform sparsity=0.5, bits=8" in capsys.readouterr().out
    report = json.loads(out.read_text())
    config = report["pareto"][0]["config"]
    assert {"size_kb", "mbitops"} <= set(report["pareto"][0])
    assert any(k.startswith("prune.") and k.endswith(".pattern") for k in config)


def test_compress_sequence_classifier_directory_with_data(tmp_path, capsys):
    """A directory whose config names a *ForSequenceClassification loads as one; --data."""
    torch = pytest.importorskip("torch")
    from tests.conftest import tiny_bert

    model = tiny_bert()
    model.save_pretrained(tmp_path / "bert")
    x = torch.randint(0, 100, (24, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.save((x, model(x).logits.argmax(1)), tmp_path / "data.pt")
    argv = compress(
        tmp_path, "--model", str(tmp_path / "bert"), "--quality", "accuracy",
        "--data", str(tmp_path / "data.pt"), "--bits", "4,8", "--n-trials", "4", "--no-fidelity",
    )  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "4 trials: 4 complete" in text
    dense = text.split("Baselines:")[1].splitlines()[2].split()
    assert dense[:2] == ["dense", "1"]  # its own labels: accuracy 1


def test_compress_error_in_the_model_files_code_keeps_its_traceback(tmp_path):
    pytest.importorskip("torch")
    model_file = tmp_path / "broken.py"
    model_file.write_text(
        MODEL_FILE + "\n\ndef evaluate(m, budget):\n    raise TypeError('a bug in evaluate')\n"
    )
    with pytest.raises(TypeError, match="a bug in evaluate"):
        main(compress(tmp_path, "--model", str(model_file), "--quality", "file"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--quality", "bleu"], "--quality must be one of kl, perplexity, accuracy, file"),
        (["--quality", "kl"], "--quality kl needs --calibration FILE."),
        (["--quality", "perplexity"], "--quality perplexity needs --calibration FILE."),
        (["--quality", "accuracy"], "--quality accuracy needs --data FILE."),
        (["--quality", "file"], "--quality file needs a Python --model file"),
        (["--quality", "kl", "--calibration", "ids.pt", "--budget", "size_mb"],
         "--budget must be NAME=NUMBER, e.g. size_mb=88.4; got 'size_mb'."),
        (["--quality", "kl", "--calibration", "ids.pt", "--budget", "size_mb=big"],
         "--budget must be NAME=NUMBER"),
        (["--quality", "kl", "--calibration", "ids.pt", "--bits", "4,eight"],
         "--bits must be comma-separated ints, got '4,eight'."),
        (["--quality", "kl", "--calibration", "nope.pt"], "no such file: "),
        (["--quality", "kl", "--calibration", "text.txt", "--seq-len", "1"], "--seq-len must"),
        (["--quality", "kl", "--calibration", "ids.pt", "--budget", "size_mb=1e-6"],
         "No Config meets the budget size_mb <= 1e-06"),
        (["--quality", "kl", "--calibration", "ids.pt", "--budget", "latency=3"],
         "budget has 'latency'"),
        (["--quality", "kl", "--calibration", "garbage.pt"], "not a torch.save file of tensors"),
        (["--quality", "kl", "--calibration", "ids.pt", "--bank", "none", "--bank-memory-mb",
          "100"], "--bank-memory-mb needs a bank directory"),
        (["--quality", "kl", "--calibration", "ids.pt", "--bank-memory-mb", "0"],
         "max_memory_mb must be positive, got 0.0."),
    ],
)  # fmt: skip
def test_compress_bad_input_on_a_model_directory(llama_dir, tmp_path, capsys, flags, message):
    (tmp_path / "garbage.pt").write_text("not a tensor")
    here = {"garbage.pt": tmp_path / "garbage.pt"}
    flags = [str(here.get(f, llama_dir / f)) if f.endswith((".pt", ".txt")) else f for f in flags]
    argv = compress(tmp_path, "--model", str(llama_dir / "llama"), "--n-trials", "3", *flags)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeoff: error: ") and message in err
    assert err.count("\n") == 1  # one line
    assert not (tmp_path / "c.db").exists()  # before any work


@pytest.mark.parametrize(
    ("model", "flags", "message"),
    [
        ("missing", ["--quality", "kl"], "missing is no such file or directory"),
        ("weights.bin", ["--quality", "kl"], "weights.bin is a file that is not .py"),
        ("empty_dir", ["--quality", "kl"], "needs the config.json that save_pretrained writes"),
        ("config_only", ["--quality", "kl", "--calibration", "text.txt"],
         "tokenizer, which did not load from the directory"),
        ("no_model.py", ["--quality", "accuracy"], "no_model.py must define model"),
        ("cnn.py", ["--quality", "kl"], "--quality kl needs --calibration FILE, or calibration"),
        ("cnn.py", ["--quality", "kl", "--calibration", "text.txt"], "a .txt --calibration"),
        ("cnn.py", ["--quality", "accuracy", "--method", "gptq"], "needs calibration="),
        ("cnn.py", ["--quality", "accuracy", "--drop-blocks"], "drop_blocks: No transformer"),
        ("cnn.py", ["--quality", "accuracy", "--pattern", "channel"], "--pattern needs --sparsity"),
        ("cnn.py", ["--quality", "accuracy", "--sparsity", "half"], "--sparsity must be"),
    ],
)  # fmt: skip
def test_compress_bad_input_on_a_model_file(tmp_path, capsys, model, flags, message):
    pytest.importorskip("torch")
    (tmp_path / "weights.bin").write_bytes(b"")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only" / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "no_model.py").write_text("net = None\n")
    (tmp_path / "cnn.py").write_text(MODEL_FILE)
    (tmp_path / "text.txt").write_text("w1 w2\n")
    flags = [str(tmp_path / f) if f == "text.txt" else f for f in flags]
    assert main(compress(tmp_path, "--model", str(tmp_path / model), *flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeoff: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "c.db").exists()


PEFT_FILE = """
import torch
import transformers
from torch import nn

from tradeoff.objectives import QualityFn

torch.manual_seed(0)
model = transformers.BertForSequenceClassification(
    transformers.BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, num_labels=2,
    )
).eval()
x = torch.randint(0, 64, (8, 8), generator=torch.Generator().manual_seed(3))
y = torch.arange(8) % 2


def train(m, steps, start):
    torch.manual_seed(1)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    for _ in range(int(steps)):
        opt.zero_grad()
        nn.functional.cross_entropy(m(input_ids=x).logits, y).backward()
        opt.step()
    return int(steps)


def loss(m, steps):
    with torch.no_grad():
        return float(nn.functional.cross_entropy(m(input_ids=x).logits, y))


quality = QualityFn(loss, "loss", max_budget=3)
adapters = {"train": train, "methods": ("lora",), "ranks": (2, 4), "dropouts": (0.0,),
            "task_type": "SEQ_CLS"}
"""


def test_export_peft_writes_a_trials_trained_adapters_and_merged_model(tmp_path, capsys):
    """A compress --peft study (the model file names its adapters' spec) exports the best
    trial's adapters, which PEFT reloads onto the dense model, and with --merge the model the
    search measured: its loss, recomputed from the file, is the trial's."""
    peft = pytest.importorskip("peft")
    import runpy

    import optuna
    import torch

    model_file = tmp_path / "bert.py"
    model_file.write_text(PEFT_FILE)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    flags = ["--model", str(model_file), "--quality", "file", "--peft", f"{model_file}:adapters",
             "--bits", "4,8", "--n-trials", "3", "--no-fidelity"]  # fmt: skip
    assert main(compress(tmp_path, *flags)) == 0
    capsys.readouterr()
    before = len(optuna.load_study(study_name="bert", storage=url).trials)
    argv = ["export", "--storage", url, *QUIET, *flags, "--format", "peft"]
    assert main([*argv, "--out", str(tmp_path / "lora")]) == 0
    assert "written as peft" in capsys.readouterr().out
    assert main([*argv, "--peft", f"{model_file}:spec", "--out", str(tmp_path / "x")]) == 2
    assert "bert.py defines no spec (compress's peft= dict" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    record = json.loads((tmp_path / "lora" / "tradeoff.json").read_text())
    assert record["adapters"] == "peft save_pretrained"
    study = optuna.load_study(study_name="bert", storage=url)
    assert len(study.trials) == before  # nothing ran again
    best = min(t.values[0] for t in study.trials if t.values is not None)
    assert record["values"]["loss"] == best  # no budget: the best quality
    ns = runpy.run_path(str(model_file))
    with torch.no_grad():
        plain = ns["model"](input_ids=ns["x"]).logits
        back = peft.PeftModel.from_pretrained(ns["model"], tmp_path / "lora").eval()
        assert not torch.allclose(back(input_ids=ns["x"]).logits, plain)  # trained adapters
    # --merge: the trial's model as measured, adapters merged, then compressed.
    assert main([*argv, "--merge", "--out", str(tmp_path / "merged")]) == 0
    assert "written as torch (adapters merged)" in capsys.readouterr().out
    merged = torch.load(tmp_path / "merged" / "model.pt", weights_only=False).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert ns["loss"](merged, 3) == pytest.approx(best, rel=1e-6)
    assert (
        json.loads((tmp_path / "merged" / "tradeoff.json").read_text())["trial"] == record["trial"]
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "peft"], "--format peft writes the trained adapters of a search made "
         "with --peft: give the --peft FILE.py[:NAME]"),
        (["--merge"], "--merge applies to --format peft only (got --format compressed-tensors)"),
        (["--format", "torch", "--dtype", "bfloat16"], "--dtype applies to --format torchao"),
        (["--format", "peft", "--peft", "nope.py"], "--peft must be FILE.py[:NAME]"),
        (["--device", "cuda"], "sees no CUDA device"),
        (["--device", "gpu0"], "--device must be a torch device"),
    ],
)  # fmt: skip
def test_export_flags_are_checked_before_anything_is_written(tmp_path, capsys, flags, message):
    torch = pytest.importorskip("torch")
    if flags == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    (tmp_path / "cnn.py").write_text(MODEL_FILE)
    flags = [str(tmp_path / f) if f.startswith("cnn.py") else f for f in flags]
    url = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["export", "--storage", url, "--model", str(tmp_path / "cnn.py"), "--quality",
            "accuracy", *flags, "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeoff: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.db").exists()


def test_export_torchao_on_cuda_uses_the_tile_packed_int4_layout(llama_dir, tmp_path, capsys):
    """--device cuda: the study searched on the CPU, its trial written for CUDA's int4 kernel
    (runs only where torch sees a CUDA device of compute capability 8.0 or later)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchao")
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("tinygemm's int4 CUDA kernel needs a CUDA device of capability 8.0")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    flags = [
        "--model", str(llama_dir / "llama"), "--quality", "kl",
        "--calibration", str(llama_dir / "ids.pt"), "--bits", "4,8", "--granularity", "group",
        "--group-size", "32", "--n-trials", "4", "--bank", "none",
    ]  # fmt: skip
    assert main(compress(tmp_path, *flags)) == 0
    out = tmp_path / "cuda"
    argv = ["export", "--storage", url, *QUIET, *flags, "--trial", "0", "--format", "torchao",
            "--dtype", "bfloat16", "--device", "cuda", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0  # trial 0: uniform 4 bits
    kernels = json.loads((out / "tradeoff.json").read_text())["kernels"]
    assert set(kernels.values()) == {"Int4TilePackedTo4dTensor"}


def test_run_propose_ahead_flag_reaches_the_driver(tmp_path, capsys, monkeypatch):
    from tradeoff.workers._driver import Driver

    seen = []
    original = Driver.__init__

    def spy(self, **kwargs):
        seen.append(kwargs["propose_ahead"])
        original(self, **kwargs)

    monkeypatch.setattr(Driver, "__init__", spy)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    common = ["run", str(ZDT), "--n-trials", "6", "--n-workers", "2", "--optimizer", "random"]
    assert main([*common, "--storage", url, "--no-progress", "--propose-ahead"]) == 0
    assert "6 trials: 6 complete" in capsys.readouterr().out
    assert main([*common, "--n-trials", "8", "--storage", url, "--no-progress"]) == 0
    assert "8 trials: 8 complete" in capsys.readouterr().out
    assert seen == [True, False]
