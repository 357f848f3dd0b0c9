""":class:`CompressResult`: what :func:`~tradeoff.compress` returns."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import optuna
import pandas as pd
import torch
from optuna.trial import FrozenTrial
from torch import nn

from tradeoff._result import SearchResult, plain_json
from tradeoff.objectives import ObjectiveSet
from tradeoff.search._baselines import dominated_by
from tradeoff.spaces import QuantizationSpace, SearchSpace

if TYPE_CHECKING:
    from tradeoff.spaces._export import Exported

Trial: TypeAlias = "int | FrozenTrial | Mapping[str, Any] | pd.Series"


class CompressResult(SearchResult):
    """A :class:`~tradeoff.SearchResult` with baselines and the compressed models.

    Attributes:
        space: The search space :func:`compress` built.
        artifact_store: Where :meth:`export` uploads checkpoints as artifacts of their trial
            (``compress(..., artifact_store=...)``), or ``None``.
    """

    def __init__(
        self,
        study: optuna.Study,
        objectives: ObjectiveSet,
        *,
        space: SearchSpace,
        model: nn.Module,
        rows: Sequence[Mapping[str, Any]],
        artifact_store: Any = None,
        trained: Callable[..., tuple[nn.Module, SearchSpace, Any]] | None = None,
    ) -> None:
        super().__init__(study, objectives)
        self.space, self._model = space, model
        self._trained = trained  # with PEFT: config -> (fine-tuned merged model, space, Config)
        self.artifact_store = artifact_store
        self._baselines = self._domination(pd.DataFrame(list(rows)))

    @classmethod
    def load(cls, storage: str, study_name: str) -> SearchResult:
        """The study's :class:`~tradeoff.SearchResult` (a ``CompressResult`` needs the model:
        call ``compress`` again with the same storage and study_name; a complete study runs
        no trial)."""
        return SearchResult.load(storage, study_name)

    @property
    def baselines(self) -> pd.DataFrame:
        """One row per baseline: ``baseline`` (its name), ``kind`` (``dense``, ``uniform``,
        ``proxy``), ``trial`` (the trial that measured it, if any), the objectives,
        ``feasible`` (within the budget), ``dominated_by`` (the Pareto trials that dominate
        it), ``config`` and ``failure``."""
        return self._baselines.copy()

    def model(self, trial: Trial) -> nn.Module:
        """The compressed model of ``trial`` (its number, a ``FrozenTrial`` or a row of
        :attr:`pareto` / :attr:`trials`): ``space.apply(model, config)``, with the exact
        weights of the variant bank. With ``peft=``, its adapters are trained again at the
        full budget (seeded: the same adapters), merged, then compressed."""
        _, config = self._config(trial)
        try:
            if self._trained is not None:
                model, space, rest = self._trained(config)
                return space.apply(model, rest, inplace=True)  # type: ignore[no-any-return]
            return self.space.apply(self._model, config)  # type: ignore[no-any-return]
        finally:
            release_banks(self.space)  # the model holds its weights; the bank need not

    def best(self) -> int:
        """The feasible Pareto trial of the best quality (the first objective): the best
        trial within the budget.

        Raises:
            ValueError: no trial is feasible.
        """
        front = self.pareto
        if not len(front):
            raise ValueError("No feasible trial: nothing within the budget was found.")
        first = self.objectives.names[0]
        ascending = self.objectives.directions[0] == "minimize"
        return int(
            front.sort_values([first, "trial"], ascending=[ascending, True]).iloc[0]["trial"]
        )

    def export(
        self,
        trial: Trial | None,
        path: str | os.PathLike[str],
        *,
        format: str = "compressed-tensors",
        overwrite: bool = False,
        dtype: str | None = None,
        sparse: bool | None = None,
        device: str | torch.device | None = None,
    ) -> Exported:
        """Write ``trial``'s compressed model (default: :meth:`best`) to the directory ``path``
        in a format a runtime loads (see :func:`tradeoff.spaces.export`):
        ``"compressed-tensors"`` (packed int codes with their scales, as vLLM and transformers
        read them; exactly the weights the search measured), ``"torchao"`` (torchao quantized
        tensors of the same codes, saved whole; ``dtype="bfloat16"`` puts its int4 layers on
        torchao's CPU kernel), ``"torch"``, or ``"peft"`` (a ``compress(peft=...)`` search:
        the trial's adapters, trained again as ``model`` trains them, written by PEFT's
        ``save_pretrained`` on the dense model; the merged, compressed model is what the other
        formats write). With an
        :attr:`artifact_store`, the checkpoint is also uploaded (``<dir name>.tar``) as an
        artifact of its trial, for optuna-dashboard. ``sparse`` and ``device`` are
        :func:`tradeoff.spaces.export`'s (2:4 semi-structured tensors; where the written model
        runs, e.g. ``"cuda"`` for torchao's tile-packed int4 layout).

        Raises:
            ValueError: an unknown trial or format, an existing ``path`` without
                ``overwrite``, or a Config the format cannot express (which layers, and why),
                before anything is written.
        """
        from tradeoff.spaces import export
        from tradeoff.spaces._export import write_trained_adapters

        if format == "peft" and self._trained is None:
            raise ValueError(
                "format='peft' writes the adapters of a compress(peft=...) search; this one "
                "has none. Choose 'compressed-tensors', 'torchao' or 'torch'."
            )
        number, config = self._config(self.best() if trial is None else trial)
        row = self.trials.set_index("trial").loc[number]
        values = {n: plain_json(row[n]) for n in self.objectives.names}
        meta = {"study": self.study.study_name, "trial": number, "values": values}
        space, model = self.space, self._model
        written: Exported
        if format == "peft":
            assert self._trained is not None
            tuned, _, _ = self._trained(config, merge=False)
            written = write_trained_adapters(tuned, path, overwrite=overwrite, meta=meta)
        else:
            if self._trained is not None:  # the fine-tuned, merged model is what is compressed
                model, space, config = self._trained(config)
            written = export(
                space, model, config, path, format=format, overwrite=overwrite, meta=meta,
                dtype=dtype, sparse=sparse, device=device,
            )  # fmt: skip
        release_banks(self.space)
        if self.artifact_store is not None:
            from tradeoff.review._artifacts import upload_export

            upload_export(self, number, written.path, self.artifact_store)
        return written

    def _config(self, trial: Trial) -> tuple[int, dict[str, Any]]:
        if isinstance(trial, FrozenTrial):
            number = trial.number
        elif isinstance(trial, (Mapping, pd.Series)):
            number = int(trial["trial"])
        else:
            number = trial
        configs = dict(zip(self.trials["trial"], self.configs(pareto=False)))
        if isinstance(number, bool) or number not in configs or configs[number] is None:
            raise ValueError(
                f"No trial {trial!r} with a Config in the study; trials are 0..{len(configs) - 1}."
            )
        return int(number), dict(configs[number])

    def report(self) -> str:
        """A short text table: the Pareto set, then the baselines and what dominates them."""
        names = self.objectives.names
        front = self.pareto[["trial", *names]]
        base = self._baselines[["baseline", *names, "feasible"]].copy()
        who = self._baselines["dominated_by"]
        base["dominated by"] = [_trials(d) for d in who]
        return "\n\n".join(
            [
                self.summary(),
                "Pareto set:\n" + front.to_string(index=False, float_format="{:.5g}".format),
                "Baselines:\n" + base.to_string(index=False, float_format="{:.5g}".format),
            ]
        )

    def to_dict(
        self, reference: Sequence[float] | Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """The report as plain JSON-able data: ``objectives`` (name -> direction),
        ``trials`` (how many), ``hypervolume`` (against ``reference``, see
        :meth:`hypervolume`), ``pareto`` (rows with each point's ``config``) and
        ``baselines`` (rows as in :attr:`baselines`)."""
        pareto = self.pareto
        front = pareto[["trial", *self.objectives.names]].to_dict("records")
        for row, config in zip(front, self.configs()):
            row["config"] = config
        base = self._baselines.astype(object).where(self._baselines.notna(), None)
        report: dict[str, Any] = plain_json(
            {
                "objectives": dict(zip(self.objectives.names, self.objectives.directions)),
                "trials": len(self.trials),
                "hypervolume": self.hypervolume(reference),
                "pareto": front,
                "baselines": [
                    {**row, "trial": None if row["trial"] is None else int(row["trial"])}
                    for row in base.to_dict("records")
                ],
            }
        )
        return report

    def _domination(self, frame: pd.DataFrame) -> pd.DataFrame:
        names = self.objectives.names
        front = self.pareto
        hits = dominated_by(
            front[names].to_numpy(float), frame[names].to_numpy(float), self.objectives.directions
        )
        frame["dominated_by"] = [[int(front["trial"].iloc[i]) for i in row] for row in hits]
        columns = ["baseline", "kind", "trial", *names, "feasible", "dominated_by"]
        return frame[[*columns, *(c for c in frame.columns if c not in columns)]]


def release_banks(space: SearchSpace) -> int:
    """Free the variant-bank entries and Hessians ``space``'s quantization parts hold in memory
    (:meth:`~tradeoff.spaces.QuantizationSpace.release`); returns the bytes freed."""
    parts = [space, *space.children.values()]
    return sum(p.release() for p in parts if isinstance(p, QuantizationSpace))


def _trials(numbers: Sequence[int], most: int = 4) -> str:
    """``#3, #7, #9, #12 (+5)``: the first ``most`` trial numbers and how many more."""
    shown = ", ".join(f"#{t}" for t in numbers[:most]) or "-"
    return shown + (f" (+{len(numbers) - most})" if len(numbers) > most else "")
