import subprocess
import sys

import tradeoff
from tradeoff import objectives, search, spaces, workers


def test_top_level_names_are_pinned():
    assert sorted(tradeoff.__all__) == [
        "SearchResult",
        "compress",
        "objectives",
        "optimize",
        "review",
        "search",
        "spaces",
        "workers",
    ]


def test_subpackage_names_are_pinned():
    assert sorted(tradeoff.review.__all__) == [
        "hypervolume_curve",
        "layer_table",
        "per_layer_knobs",
        "plot_allocation",
        "plot_hypervolume",
        "plot_pareto",
        "refresh_notes",
        "study_figures",
        "study_note",
        "trial_note",
        "write_figures",
        "write_notes",
        "write_plots",
    ]
    assert set(spaces.__all__) == {
        *["ArchitectureSpace", "Choice", "Config", "Float", "Int", "ModelSpace", "Ordinal"],
        *["Parameter", "PEFTSpace", "PruningSpace", "QuantizationSpace"],
        *["PruneInfo", "QuantInfo", "STAGES", "SearchSpace", "select_layers"],
        "to_int8_runtime",
        *["VariantBank", "Workspace", "collect_hessians", "gptq_quantize", "rtn_quantize"],
        "tokens_needed",
        *["Exported", "export", "load_compressed"],
    }
    assert set(objectives.__all__) == {
        *["Constraint", "Objective", "ObjectiveSet", "bitops", "latency_ms", "macs"],
        *["model_cost", "nonzero_parameters", "parameters", "peak_memory_mb"],
        *["trainable_parameters", "weight_storage_bytes"],
        *["Accuracy", "KLToDense", "Perplexity", "Quality", "QualityFn"],
    }
    assert set(search.__all__) == {
        *["OPTIMIZERS", "auto_choice", "auto_optimizer", "check_optimizer", "make_sampler"],
        *["EvolutionSampler", "LayerCrossover", "MOBOSampler", "NeighbourMutation"],
        *["ProxyResult", "additive_proxy", "additive_proxy_front", "uniform_configs"],
        *["Fidelity", "HandoverSampler"],
    }
    assert sorted(workers.__all__) == [
        "Evaluate",
        "InTrialOrder",
        "LocalPool",
        "Outcome",
        "RayPool",
        "WorkerPool",
        "evaluate_all",
    ]
    for module in (tradeoff, spaces, objectives, search, workers):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_import_tradeoff_does_not_import_heavy_libraries():
    code = (
        "import sys, tradeoff, tradeoff.cli\n"
        "heavy = [m for m in ('torch', 'ray', 'botorch', 'peft', 'transformers') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
