from dataclasses import dataclass, field

import pytest

from chanlab.core.config import apply_overrides, flat_fields, from_dict, to_dict
from chanlab.core.errors import ConfigError


@dataclass(frozen=True)
class Train:
    lr: float = 1e-3
    epochs: int = 3
    widths: tuple[int, ...] = (16, 32)


@dataclass(frozen=True)
class Cfg:
    name: str = "x"
    train: Train = field(default_factory=Train)
    k: int | None = None
    flag: bool = False


def test_overrides_parse_each_type():
    cfg = apply_overrides(Cfg(), ["train.lr=3e-4", "train.widths=(4, 5)", "k=7", "flag=true",
                                  "name=hello world", "train.epochs=9"])
    assert cfg == Cfg(name="hello world", train=Train(lr=3e-4, epochs=9, widths=(4, 5)), k=7, flag=True)
    assert apply_overrides(cfg, ["k=none"]).k is None
    assert apply_overrides(Cfg(), ["train.lr=1"]).train.lr == 1.0 and isinstance(
        apply_overrides(Cfg(), ["train.lr=1"]).train.lr, float)
    assert apply_overrides(Cfg(), ["train.widths=8"]).train.widths == (8,)


def test_overrides_from_mapping_and_original_untouched():
    base = Cfg()
    cfg = apply_overrides(base, {"train.epochs": 5})
    assert cfg.train.epochs == 5 and base.train.epochs == 3


def test_unknown_key_names_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lrr'.*did you mean 'train\.lr'.*valid keys: "
                                          r"flag, k, name, train\.epochs, train\.lr, train\.widths"):
        apply_overrides(Cfg(), ["train.lrr=1"])


@pytest.mark.parametrize("item, match", [
    ("train.epochs=1.5", "expected an integer"),
    ("flag=maybe", "expected true/false"),
    ("train.widths=(1, 'a')", "expected an integer"),
    ("noequals", "expected KEY=VALUE"),
    ("k=abc", "expected"),
])
def test_wrong_types_are_config_errors(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Cfg(), [item])


def test_round_trip_through_dict():
    cfg = apply_overrides(Cfg(), ["train.widths=(1,2,3)"])
    assert from_dict(Cfg, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        from_dict(Cfg, {"bogus": 1})


def test_flat_fields_lists_leaves():
    assert set(flat_fields(Cfg)) == {"name", "train.lr", "train.epochs", "train.widths", "k", "flag"}


def test_operand_dtype_promotes_and_checks_finiteness():
    import pytest
    import torch
    from chanlab.core.errors import DataError
    from chanlab.core.validation import operand_dtype

    a = torch.ones(2, dtype=torch.complex64)
    b = torch.ones(2, dtype=torch.complex128)
    assert operand_dtype(a, b, ("a", "b")) == torch.complex128
    bad = torch.tensor([float("nan")], dtype=torch.complex64)
    with pytest.raises(DataError, match="b: contains NaN"):
        operand_dtype(a, bad, ("a", "b"))
    assert operand_dtype(a, bad, ("a", "b"), finite=False) == torch.complex64


@dataclass(frozen=True)
class Data:
    models: tuple[str, ...] = field(default=("A", "B"), metadata={"choices": ("A", "B", "C", "D", "E")})
    model: str = field(default="C", metadata={"choices": lambda: ("A", "B", "C", "D", "E")})
    scales: tuple[float, ...] = (0.5,)
    pair: tuple[int, int] = (1, 2)
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Outer:
    data: Data = field(default_factory=Data)


@pytest.mark.parametrize("item, expected", [
    ("data.models=A,D", ("A", "D")),                  # a bare comma list
    ("data.models=C", ("C",)),
    ("data.models='A','E'", ("A", "E")),
    ("data.models=('B', 'C')", ("B", "C")),
    ("data.models=A,", ("A",)),
    ("data.scales=0.1,0.5", (0.1, 0.5)),
    ("data.pair=3,4", (3, 4)),
    ("data.seeds=1,2", (1, 2)),
    ("data.seeds=none", None),
])
def test_comma_lists(item, expected):
    key = item.split("=")[0].split(".")[1]
    assert getattr(apply_overrides(Outer(), [item]).data, key) == expected


@pytest.mark.parametrize("item, match", [
    ("data.models=A,Z", r"^data\.models: 'Z' not allowed; choose from A, B, C, D, E$"),
    ("data.models=X,Y", r"^data\.models: 'X', 'Y' not allowed"),
    ("data.model=Q", r"^data\.model: 'Q' not allowed; choose from A, B, C, D, E$"),   # lazy choices
    ("data.scales=0.1,x", r"^data\.scales\[1\]: expected a number, got 'x'"),
    ("data.pair=1,2,3", r"^data\.pair: expected 2 values, got 3"),
    ("data.models=", r"^data\.models: expected at least one value"),
])
def test_element_types_and_choices_name_the_full_key(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Outer(), [item])


def test_choices_apply_to_mappings_and_presets_too():
    with pytest.raises(ConfigError, match="data.models: 'F' not allowed"):
        apply_overrides(Outer(), {"data.models": ("A", "F")})


def test_choices_from_names_a_module_attribute():
    import dataclasses

    from chanlab.core.config import choices_from, field_choices

    @dataclass(frozen=True)
    class WithChoices:
        unit: str = field(default="smoke", metadata=choices_from("chanlab.core.registry", "PRESETS"))

    (f,) = dataclasses.fields(WithChoices)
    assert field_choices(f) == ("smoke", "quick", "paper")
    assert apply_overrides(WithChoices(), ["unit=quick"]).unit == "quick"
    with pytest.raises(ConfigError, match="unit: 'huge' not allowed; choose from smoke, quick, paper"):
        apply_overrides(WithChoices(), ["unit=huge"])
