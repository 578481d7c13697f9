"""The plugin registry: built-ins through entry points, clashes, failures, unknown names, options."""

from __future__ import annotations

import pytest

import cvbench
from cvbench.contract.hookspecs import hookimpl
from cvbench.errors import PluginConflictError, SpecError, UnknownPluginError

BUILTINS = {
    "pretrainer": {"mocov2", "byol", "simsiam"},
    "head": {"safa", "siamese_vgg"},
    "loss": {"soft_triplet", "uniformity", "infonce", "xmoco"},
    "dataset": {"synthetic"},
    "augmentation": {"mocov2", "mocov2-nocrop", "geo-sync"},
    "preset": {"smoke", "default", "paper"},
}


def test_builtins_register_through_the_entry_point_group(registry):
    names = cvbench.plugins()
    for kind, expected in BUILTINS.items():
        assert expected <= set(names[kind]), kind
    assert registry.failures == []
    assert registry.get("head", "safa").source == "cvbench"


def test_unknown_name_lists_the_registered_names_and_the_closest(registry):
    with pytest.raises(UnknownPluginError) as info:
        cvbench.create("head", "saffa", 512, (2, 8), 4096)
    message = str(info.value)
    assert "did you mean 'safa'" in message
    assert "siamese_vgg" in message


@pytest.mark.parametrize("kind, plural", [("loss", "losses"), ("head", "heads"), ("dataset", "datasets")])
def test_unknown_name_spells_the_kind_in_the_plural(registry, kind, plural):
    with pytest.raises(UnknownPluginError, match=rf"\. Registered {plural}: ") as info:
        cvbench.create(kind, "no_such_plugin")
    assert "losss" not in str(info.value)


def test_unknown_kind_names_the_kinds(registry):
    with pytest.raises(UnknownPluginError, match="kinds are"):
        cvbench.create("optimizer", "adam")


class _Clash:
    @hookimpl
    def register_heads(self, register):
        register("safa", lambda in_channels, feature_hw, dim: None)


def test_a_name_registered_twice_names_both_packages(registry):
    with pytest.raises(PluginConflictError) as info:
        registry.add(_Clash(), source="acme-geo")
    assert "'cvbench'" in str(info.value) and "'acme-geo'" in str(info.value)
    assert registry.get("head", "safa").source == "cvbench"  # the built-in is untouched


class _Broken:
    @hookimpl
    def register_losses(self, register):
        raise RuntimeError("boom")


def test_a_hook_that_raises_is_recorded_and_the_rest_still_work(registry):
    registry.add(_Broken(), source="broken-pkg")
    assert any(f.source == "broken-pkg" and "boom" in f.error for f in registry.failures)
    assert "soft_triplet" in cvbench.plugins()["loss"]


def test_unknown_option_fails_before_the_factory_runs(registry):
    with pytest.raises(SpecError) as info:
        cvbench.create("loss", "soft_triplet", gamma=10, margin=0.3)
    assert "'margin'" in str(info.value) and "gamma" in str(info.value)


def test_added_plugin_is_removed_again(registry):
    class Extra:
        @hookimpl
        def register_losses(self, register):
            register("zero", lambda: None, summary="nothing")

    registry.add(Extra(), source="extra")
    assert "zero" in cvbench.plugins()["loss"]
    registry.remove("extra")
    assert "zero" not in cvbench.plugins()["loss"]


def test_presets_are_data(registry):
    smoke = cvbench.create("preset", "smoke")
    assert smoke["epochs"] == 1
    smoke["epochs"] = 99
    assert cvbench.create("preset", "smoke")["epochs"] == 1  # a copy each time


class _HalfSampler(cvbench.Sampler):
    """Forgets plan(), the one method every sampler must have."""


class _HalfPlugin:
    @hookimpl
    def register_samplers(self, register):
        register("half", _HalfSampler, summary="a sampler without plan()")


def test_a_plugin_class_missing_a_required_method_is_named_when_built(registry):
    from cvbench.errors import PluginError

    registry.add(_HalfPlugin(), source="half-pkg")
    with pytest.raises(PluginError, match=r"sampler 'half' \(.*\) does not implement plan\(\), which every sampler"):
        cvbench.create("sampler", "half")


class _WrongArgument:
    @hookimpl
    def register_heads(self, reg):
        reg("odd", lambda in_channels, feature_hw, dim: None)


def test_a_hook_with_the_wrong_argument_is_refused_by_name(registry):
    from cvbench.errors import PluginError

    with pytest.raises(PluginError, match=r"'_WrongArgument' \(package 'odd-pkg'\).*'register_heads'.*\{'reg'\}"):
        registry.add(_WrongArgument(), source="odd-pkg")
    assert "odd" not in cvbench.plugins()["head"]
    registry.manager.check_pending()  # nothing of it stays registered
