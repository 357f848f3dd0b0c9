"""Per-layer bits x sparsity of a small MNIST CNN with ``tradeoff.compress``: the main job.

Per layer of a 106k-parameter CNN (trained once on offline MNIST digits, see ``_mnist_data.py``)
the search picks weight bits (2, 3, 4, 8; activations at 8 bits), sparsity (0-75%) and its
pattern (single weights, or whole channels with the next layer's inputs), for test accuracy
(measured), weight storage and bit-ops (known costs); uniform levels and the additive-proxy
knapsack are measured alike. ``make run``; the report goes to ``./tradeoff-runs/mnist.json``.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _mnist_data as data  # the example's data, beside it

import tradeoff
from tradeoff.objectives import Accuracy
from tradeoff.workers import InTrialOrder, LocalPool, RayPool

REFERENCE = {"accuracy": 0.0, "size_kb": 450.0, "mbitops": 1200.0}


def main(argv: list[str] | None = None) -> None:
    device = data.device()  # first: a GPU torch cannot see stops here, even for --help
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=80)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--backend", default="ray", choices=["local", "ray"])
    parser.add_argument("--storage", default="sqlite:///tradeoff.db")
    parser.add_argument("--study", default="mnist-compression")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=Path("tradeoff-runs") / "mnist.json")
    args = parser.parse_args(argv)
    model, key = data.trained_cnn(device)
    x_test, y_test = data.test_set()
    pool = RayPool(args.n_workers) if args.backend == "ray" else LocalPool(args.n_workers)
    result = tradeoff.compress(
        model, quality=Accuracy((x_test, y_test)), fidelity=False, cost=("size_kb", "mbitops"),
        reference=REFERENCE,  # hypervolume's corner: the worst accuracy, size and bit-ops
        quantize={"bits": (2, 3, 4, 8), "act_bits": 8},
        prune={"sparsity": (0.0, 0.25, 0.5, 0.75), "pattern": ("unstructured", "channel")},
        n_trials=args.n_trials, backend=InTrialOrder(pool),  # trial order: reproducible
        storage=args.storage, study_name=args.study, seed=args.seed, device=device,
    )  # fmt: skip
    picked = result.study.user_attrs["tradeoff.optimizer"]
    print(
        f"\noptimizer auto -> {picked}, seed {args.seed}, {args.n_workers} worker(s); model {key}"
    )
    print(result.report())
    settings = {**{k: v for k, v in vars(args).items() if k != "report"}, "model": key}
    report = {"settings": {**settings, "optimizer": picked}, **result.to_dict()}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.report}\ndashboard: tradeoff dashboard --storage {args.storage}")


if __name__ == "__main__":
    main()
