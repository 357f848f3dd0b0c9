"""The ``peft`` export format: a Config's adapters, trained by the caller, written by PEFT's own
``save_pretrained`` (or merged into their base and written as ``torch``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn


def check_peft_args(format: str, train: Any, merge: bool) -> None:
    """Reject ``train``/``merge`` where they mean nothing, and ``format="peft"`` without a
    ``train`` (before anything is applied or written)."""
    if format != "peft":
        if train is not None or merge:
            raise ValueError(
                f"export: train= and merge= apply to format='peft' only (got format={format!r})."
            )
        return
    if not callable(train):
        raise ValueError(
            "export(format='peft') needs train=fn(model), which trains the applied model's "
            "adapters in place: a Config alone has untrained ones (LoRA's B is zero)."
        )


def trained_adapters(
    applied: nn.Module,
    train: Callable[[nn.Module], Any] | None,
    merge: bool,
    meta: Mapping[str, Any],
) -> tuple[nn.Module, str, dict[str, Any]]:
    """``applied`` (a ``PeftModel``) trained by ``train``; merged into its base if ``merge``.
    Returns the model to write, the format that writes it and the record.

    Raises:
        ValueError: the Config has no PEFT stage.
    """
    import peft

    if not isinstance(applied, peft.PeftModel):
        raise ValueError(
            "export(format='peft'): the Config has no adapters (the space has no PEFTSpace "
            "stage); nothing was written. Merge a PEFTSpace into the space, or choose another "
            "format."
        )
    applied.train()
    train(applied)  # type: ignore[misc]
    applied.eval()
    if merge:
        merged: nn.Module = applied.merge_and_unload()  # type: ignore[operator]
        return merged, "torch", {**meta, "adapters": "merged"}
    return applied, "peft", {**meta, "adapters": "peft save_pretrained"}
