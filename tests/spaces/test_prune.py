"""PruningSpace: exact sparsity, n:m groups, channel surgery, layer eligibility, errors."""

import pickle
from collections import OrderedDict

import optuna
import pytest
import torch
from torch import nn

from tradeoff.spaces import SearchSpace
from tradeoff.spaces._model import PRUNE_ATTR, PruneInfo
from tradeoff.spaces._params import Choice, Ordinal
from tradeoff.spaces._prune import PruningSpace


def mlp(hidden: int = 32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 32), nn.ReLU(), nn.Linear(32, 4)
    )


def cnn() -> nn.Sequential:
    torch.manual_seed(0)
    layers = OrderedDict(
        conv1=nn.Conv2d(3, 8, 3, padding=1),
        bn1=nn.BatchNorm2d(8),
        relu1=nn.ReLU(),
        conv2=nn.Conv2d(8, 16, 3, padding=1),
        relu2=nn.ReLU(),
        flatten=nn.Flatten(),
        fc=nn.Linear(16 * 8 * 8, 10),
    )
    return nn.Sequential(layers).eval()


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.bn1(self.conv1(x)))) + x)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block(torch.relu(self.stem(x))))
        return self.fc(x.view(x.size(0), -1))


class Functional(nn.Module):
    """Conv -> F.relu -> F.max_pool2d -> view -> Linear -> ReLU -> Linear."""

    def __init__(self, literal_view: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.literal_view = literal_view
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.nn.functional.relu(self.conv(x)), 2)
        x = x.view(-1, 96) if self.literal_view else x.view(x.size(0), -1)
        return self.fc2(self.fc1(x).relu())


IMAGE = torch.zeros(1, 3, 8, 8)


def uniform(space: PruningSpace, sparsity: float, pattern: str | None = None) -> dict:
    config: dict = {}
    for name in space:
        config[name] = sparsity if name.endswith(".sparsity") else pattern
    return config


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Unstructured ------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_unstructured_sparsity_is_exact(sparsity):
    model = mlp()
    space = PruningSpace.for_model(model, (0.0, sparsity))
    assert set(space) == {"0.sparsity", "2.sparsity", "4.sparsity"}
    pruned = space.apply(model, uniform(space, sparsity))
    for name in ("0", "2", "4"):
        weight = pruned.get_submodule(name).weight
        assert int((weight == 0).sum()) == round(weight.numel() * sparsity)
        assert getattr(pruned.get_submodule(name), PRUNE_ATTR) == PruneInfo(
            "unstructured", sparsity
        )
        assert not hasattr(pruned.get_submodule(name), "weight_orig")  # made permanent


def test_unstructured_is_exact_with_ties_and_existing_zeros():
    model = nn.Sequential(nn.Linear(10, 10))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
        model[0].weight[:2].zero_()  # 20 zeros already, every other weight tied
    space = PruningSpace.for_model(model, (0.0, 0.35))
    pruned = space.apply(model, {"0.sparsity": 0.35})
    assert int((pruned[0].weight == 0).sum()) == 35


def test_zero_sparsity_leaves_layer_untouched_and_original_unchanged():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    space = PruningSpace.for_model(model)
    config = {"0.sparsity": 0.0, "2.sparsity": 0.5, "4.sparsity": 0.0}
    pruned = space.apply(model, config)
    assert torch.equal(pruned[0].weight, model[0].weight)
    assert not hasattr(pruned[0], PRUNE_ATTR)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert not any(hasattr(m, PRUNE_ATTR) for m in model.modules())


def test_channels_last_weights_are_pruned():
    model = cnn().to(memory_format=torch.channels_last)
    space = PruningSpace.for_model(model, (0.0, 0.5), include="conv*")
    pruned = space.apply(model, uniform(space, 0.5))
    assert int((pruned.conv2.weight == 0).sum()) == pruned.conv2.weight.numel() // 2


def test_layer_removed_by_earlier_stage_is_skipped():
    model = mlp()
    space = PruningSpace.for_model(model)
    smaller = nn.Sequential(OrderedDict((k, m) for k, m in model.named_children() if k != "2"))
    pruned = space.apply(smaller, uniform(space, 0.5))
    assert int((pruned.get_submodule("0").weight == 0).sum()) == 16 * 32 // 2


# n:m ---------------------------------------------------------------------------------------
def test_two_four_keeps_at_most_two_per_group():
    model = mlp()
    space = PruningSpace.for_model(model, pattern="n:m")
    assert space["0.sparsity"] == Ordinal([0.0, 0.5])
    pruned = space.apply(model, {"0.sparsity": 0.5, "2.sparsity": 0.5, "4.sparsity": 0.0})
    for name in ("0", "2"):
        groups = pruned.get_submodule(name).weight.reshape(-1, 4)
        assert int((groups != 0).sum(dim=1).max()) <= 2
        assert int((groups == 0).sum()) == groups.numel() // 2
        assert getattr(pruned.get_submodule(name), PRUNE_ATTR) == PruneInfo("n:m", 0.5, n=2, m=4)
    assert torch.equal(pruned[4].weight, model[4].weight)


def test_n_m_on_conv_groups_flattened_inputs():
    model = cnn()
    space = PruningSpace.for_model(model, pattern="n:m", n_m=(1, 4), include="conv2")
    pruned = space.apply(model, {"conv2.sparsity": 0.75})
    groups = pruned.conv2.weight.reshape(16, -1, 4)  # 8 * 3 * 3 = 72 inputs per output
    assert int((groups != 0).sum(dim=-1).max()) == 1


# Channel -----------------------------------------------------------------------------------
def test_channel_pruning_shrinks_cnn_and_keeps_output_shape():
    model = cnn()
    space = PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE)
    assert set(space) == {"conv1.sparsity", "conv2.sparsity"}  # fc is the output layer
    pruned = space.apply(model, {"conv1.sparsity": 0.5, "conv2.sparsity": 0.25})
    assert (pruned.conv1.out_channels, pruned.bn1.num_features) == (4, 4)
    assert pruned.bn1.running_mean.shape == (4,)
    assert (pruned.conv2.in_channels, pruned.conv2.out_channels) == (4, 12)
    assert pruned.fc.in_features == pruned.fc.weight.shape[1] == 12 * 8 * 8
    x = torch.randn(2, 3, 8, 8)
    assert pruned(x).shape == model(x).shape == (2, 10)
    assert n_params(pruned) < 0.8 * n_params(model)
    assert getattr(pruned.conv1, PRUNE_ATTR) == PruneInfo("channel", 0.5, original_out=8)


def test_channel_pruning_of_dead_channels_keeps_outputs():
    model = cnn()
    with torch.no_grad():  # zero-norm channels whose output is exactly zero after the ReLU
        model.conv1.weight[::2] = 0
        model.bn1.weight[::2], model.bn1.bias[::2] = 0, 0
        model.conv2.weight[1::2], model.conv2.bias[1::2] = 0, 0
    space = PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE)
    pruned = space.apply(model, {"conv1.sparsity": 0.5, "conv2.sparsity": 0.5})
    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(pruned(x), model(x))


def test_channel_pruning_mlp_and_keeps_one_channel():
    model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1), nn.Linear(2, 3)).eval()
    space = PruningSpace.for_model(model, pattern="channel")
    assert set(space) == {"0.sparsity"}
    pruned = space.apply(model, {"0.sparsity": 0.75})
    assert (pruned[0].out_features, pruned[2].in_features) == (1, 1)
    assert pruned(torch.randn(5, 4)).shape == (5, 3)


def test_residual_channels_are_pruned_together_and_last_layer_is_not():
    model = ResNet()
    space = PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE)
    # stem and block.conv2 write the residual stream's channels: one parameter, named "stem".
    assert set(space) == {"stem.sparsity", "block.conv1.sparsity"}
    assert space.ties == {"stem": "stem", "block.conv2": "stem"}
    pruned = space.apply(model, {"stem.sparsity": 0.25, "block.conv1.sparsity": 0.5})
    assert pruned.block.conv1.out_channels == pruned.block.conv2.in_channels == 4
    assert pruned.stem.out_channels == pruned.block.conv2.out_channels == 6
    assert pruned.block.conv1.in_channels == pruned.fc.in_features == 6
    assert pruned(IMAGE).shape == (1, 5)
    for name in ("stem", "block.conv2"):
        info = PruneInfo("channel", 0.25, original_out=8)
        assert getattr(pruned.get_submodule(name), PRUNE_ATTR) == info


def test_channel_pruning_through_functional_ops_and_view():
    model = Functional()
    space = PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE)
    assert set(space) == {"conv.sparsity", "fc1.sparsity"}
    pruned = space.apply(model, {"conv.sparsity": 0.5, "fc1.sparsity": 0.25})
    assert (pruned.conv.out_channels, pruned.fc1.in_features) == (3, 3 * 4 * 4)
    assert (pruned.fc1.out_features, pruned.fc2.in_features) == (9, 9)
    assert pruned(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_view_to_a_literal_size_is_not_channel_pruned():
    with pytest.raises(ValueError, match=r"'conv'.*one of its channels breaks.*\[-1, 96\]"):
        PruningSpace.for_model(
            Functional(literal_view=True), pattern="channel", include="conv", sample_input=IMAGE
        )


def test_channel_pruning_after_an_earlier_stage_resized_layers():
    model = cnn()
    space = PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE)
    model.fc = nn.Linear(16 * 8 * 8 + 1, 10)
    with pytest.raises(ValueError, match=r"Cannot channel-prune 'conv2'.*earlier stage"):
        space.apply(model, {"conv1.sparsity": 0.0, "conv2.sparsity": 0.5})


@pytest.mark.parametrize(
    ("include", "why"),
    [
        ("fc", "model's output"),
        ("block.conv2", "shared with 'stem' .*residual"),
        ("stem", "shared with 'block.conv2'"),
    ],
)
def test_explicitly_included_unprunable_layer_is_an_error(include, why):
    with pytest.raises(ValueError, match=f"{include!r}.*{why}"):
        PruningSpace.for_model(ResNet(), pattern="channel", include=include, sample_input=IMAGE)


def test_channel_pruning_rounds_for_n_m_consumer():
    model = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 2))
    space = PruningSpace.for_model(model, pattern=("channel", "n:m"))
    assert space["4.pattern"] == Choice(["n:m"])  # the output layer can only take n:m
    config = {"0.pattern": "channel", "0.sparsity": 0.5, "2.pattern": "n:m", "2.sparsity": 0.5}
    pruned = space.apply(model, {**config, "4.pattern": "n:m", "4.sparsity": 0.0})
    assert pruned[0].out_features == 8  # 6 kept, rounded up to a multiple of m=4
    assert int((pruned[2].weight.reshape(-1, 4) != 0).sum(dim=1).max()) <= 2


# Search ------------------------------------------------------------------------------------
def test_optuna_configs_decode_and_apply():
    model = cnn()
    patterns = ("unstructured", "channel")
    space = PruningSpace.for_model(model, pattern=patterns, sample_input=IMAGE)
    assert space["conv1.pattern"] == Choice(list(patterns))
    assert space["fc.pattern"] == Choice(["unstructured"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        assert space.contains(config)
        assert space.apply(model, config)(IMAGE).shape == (1, 10)
        study.tell(trial, 0.0)


def test_merged_space_applies_and_space_pickles():
    model = mlp()
    space = pickle.loads(pickle.dumps(PruningSpace.for_model(model, (0.0, 0.5))))
    merged = SearchSpace.merge(prune=space)
    pruned = merged.apply(model, {f"prune.{k}": v for k, v in uniform(space, 0.5).items()})
    assert int((pruned[0].weight == 0).sum()) == 16 * 32 // 2


# Bad input ---------------------------------------------------------------------------------
def test_model_without_matching_layers_lists_candidates():
    with pytest.raises(ValueError, match="No prunable layers to search"):
        PruningSpace.for_model(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match=r"Candidates: \[0, 2, 4\]"):
        PruningSpace.for_model(mlp(), include="encoder.*")


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_sparsity_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=rf"sparsity {bad} is outside \[0, 1\)"):
        PruningSpace.for_model(mlp(), (0.0, bad))


def test_sparsity_needs_distinct_levels():
    with pytest.raises(ValueError, match="two distinct levels"):
        PruningSpace.for_model(mlp(), (0.5, 0.5))
    with pytest.raises(TypeError, match="list of levels"):
        PruningSpace.for_model(mlp(), 0.5)  # type: ignore[arg-type]


def test_layer_without_weight_matrix():
    with pytest.raises(TypeError, match=r"'0' \(BatchNorm1d\) has no 2-D or larger weight"):
        PruningSpace.for_model(nn.Sequential(nn.BatchNorm1d(3)), types=(nn.BatchNorm1d,))


def test_unknown_pattern():
    with pytest.raises(ValueError, match="Unknown pruning pattern 'random'"):
        PruningSpace.for_model(mlp(), pattern="random")
    with pytest.raises(ValueError, match="twice"):
        PruningSpace.for_model(mlp(), pattern=("channel", "channel"))


def test_n_m_on_non_divisible_layer_names_it():
    with pytest.raises(ValueError, match=r"'conv1'.*27 input weights.*not divisible by m=4"):
        PruningSpace.for_model(cnn(), pattern="n:m")


@pytest.mark.parametrize("n_m", [(4, 4), (0, 4), (-1, 2), (3, 2)])
def test_bad_n_m(n_m):
    with pytest.raises(ValueError, match="needs 0 < n < m"):
        PruningSpace.for_model(mlp(), pattern="n:m", n_m=n_m)


def test_channel_through_flatten_needs_sample_input():
    with pytest.raises(ValueError, match="Channel pruning needs sample_input"):
        PruningSpace.for_model(cnn(), pattern="channel")


def test_sample_input_that_does_not_fit():
    with pytest.raises(ValueError, match=r"sample_input does not run through the model.*'conv1'"):
        PruningSpace.for_model(cnn(), pattern="channel", sample_input=torch.zeros(1, 5, 8, 8))


def test_no_channel_prunable_layer():
    with pytest.raises(ValueError, match=r"'0' \(channel: its channels reach the model's output"):
        PruningSpace.for_model(nn.Sequential(nn.Linear(3, 3)), pattern="channel")


class WithUnusedHead(nn.Module):
    """An MLP with a layer its forward never calls (e.g. an auxiliary head)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.extra = nn.Linear(8, 16), nn.Linear(16, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_channel_pruning_skips_a_layer_forward_never_calls():
    model, x = WithUnusedHead(), torch.randn(2, 8)
    assert set(PruningSpace.for_model(model, pattern="channel", sample_input=x)) == {"fc1.sparsity"}
    with pytest.raises(ValueError, match=r"'extra' .*not called in forward"):
        PruningSpace.for_model(model, pattern="channel", include="extra", sample_input=x)


def test_tied_layers_share_one_sparsity_and_pattern():
    model = mlp()
    space = PruningSpace.for_model(
        model, pattern=("unstructured", "n:m"), tie={"hidden": ["0", "2"]}
    )
    assert space.ties == {"0": "hidden", "2": "hidden"}
    assert sorted(space) == ["4.pattern", "4.sparsity", "hidden.pattern", "hidden.sparsity"]
    pruned = space.apply(
        model, {"hidden.sparsity": 0.5, "hidden.pattern": "unstructured", "4.sparsity": 0.0,
                "4.pattern": "unstructured"},
    )  # fmt: skip
    assert [float((pruned[i].weight == 0).float().mean()) for i in (0, 2, 4)] == [0.5, 0.5, 0.0]


def test_bad_ties_are_clear_errors():
    with pytest.raises(ValueError, match=r"tie group names \['4'\] are used twice"):
        PruningSpace.for_model(mlp(), tie={"4": ["0", "2"]})
    with pytest.raises(ValueError, match="take different pruning patterns"):
        PruningSpace.for_model(mlp(), pattern=("unstructured", "channel"), tie=[("2", "4")])
    with pytest.raises(ValueError, match="tie pattern 'nope' matches none of the layers to prune"):
        PruningSpace.for_model(mlp(), tie=["nope"])
