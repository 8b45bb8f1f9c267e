"""Variant strings become typed calls of a config module's build()."""

from __future__ import annotations

import ml_collections
import pytest

from configs import dst, xmc
from xcs.config import config_from_arg, given_keys


def build(*, data: str = "synthetic", width: int = 8, rate: float = 0.5, smoke: bool = False,
          extra: int | None = None) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(data=data, width=width, rate=rate, smoke=smoke, extra=extra))


def test_given_keys_and_typed_values():
    assert given_keys("smoke, data=x,width=3") == {"smoke", "data", "width"} and given_keys(None) == frozenset()
    config = config_from_arg(build, "width=3,rate=2,smoke,extra=7")
    assert (config.data, config.width, config.rate, config.smoke, config.extra) == ("synthetic", 3, 2.0, True, 7)
    assert config_from_arg(build, None).extra is None  # left unset: build sees its own default


def test_unknown_and_ill_typed_variants_name_the_key():
    with pytest.raises(KeyError, match="widht"):
        config_from_arg(build, "widht=3")
    with pytest.raises(ValueError):
        config_from_arg(build, "width=three")


def test_config_modules_compose_by_calls():
    assert dst.get_config("smoke").to_dict() == dst.build(smoke=True).to_dict()
    assert dst.build(smoke=True).model.head.intermediate == 64  # unset: the smoke default
    assert dst.build(smoke=True, intermediate=0).model.head.intermediate == 0  # given, even when 0
    assert xmc.get_config("data=x").data.name == "x"
