"""A zoo entry that an overwrite killed between its two renames left only set aside comes back by itself."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.backbones.zoo import list_zoo, save_to_zoo, zoo_entry_folder
from transferkit.errors import TransferkitError, UnknownNameError

ASIDE = ".tiny.old-0a1b2c3d"  # as save_to_zoo names it: ".NAME.old-" and 8 hex digits


def _weights(folder):
    return (folder / "weights.safetensors").read_bytes()


def _killed_between_the_renames(zoo_home, tiny_backbone):
    """The zoo as a save overwriting ``tiny`` leaves it when killed after setting the old entry aside."""
    folder = save_to_zoo(tiny_backbone(seed=0), "tiny")
    old = _weights(folder)
    os.rename(folder, zoo_home / ASIDE)
    return folder, old


def test_listing_restores_an_entry_left_set_aside_and_says_so(zoo_home, tiny_backbone):
    folder, old = _killed_between_the_renames(zoo_home, tiny_backbone)
    shutil.copytree(zoo_home / ASIDE, zoo_home / ".tiny.k1ll3d_x")  # the killed save's staging folder
    with pytest.warns(UserWarning, match=r"zoo entry 'tiny' was missing.*interrupted.*Restored it from .*0a1b2c3d"):
        assert [e["name"] for e in list_zoo()] == ["zoo:tiny"]
    assert _weights(folder) == old and not (zoo_home / ASIDE).exists()
    assert (zoo_home / ".tiny.k1ll3d_x").is_dir(), "a staging folder is not an entry: left alone"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # restored once: no warning the next time
        assert create_backbone("zoo:tiny").cfg.name == "zoo:tiny"


def test_loading_restores_an_entry_left_set_aside(zoo_home, tiny_backbone):
    folder, old = _killed_between_the_renames(zoo_home, tiny_backbone)
    with pytest.warns(UserWarning, match="Restored it from"):
        loaded = create_backbone("zoo:tiny")
    expected = tiny_backbone(seed=0)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded.forward_features(x), expected.forward_features(x))
    assert _weights(folder) == old


def test_loading_by_path_restores_it_too(zoo_home, tiny_backbone):
    folder, _ = _killed_between_the_renames(zoo_home, tiny_backbone)
    with pytest.warns(UserWarning, match="Restored it from"):
        assert create_backbone(f"zoo:{folder}").cfg.sha256
    assert folder.is_dir()


def test_the_newest_of_several_set_aside_copies_is_restored_and_the_others_kept(zoo_home, tiny_backbone):
    os.rename(save_to_zoo(tiny_backbone(seed=0), "a"), zoo_home / ".tiny.old-00000001")
    newer = _weights(save_to_zoo(tiny_backbone(seed=1), "b"))
    os.rename(zoo_home / "b", zoo_home / ".tiny.old-00000000")  # sorts first by name, but is newer
    os.utime(zoo_home / ".tiny.old-00000001", ns=(10**18, 10**18))
    os.utime(zoo_home / ".tiny.old-00000000", ns=(2 * 10**18, 2 * 10**18))
    with pytest.warns(UserWarning, match="00000000.*1 older set-aside copies are left"):
        folder = zoo_entry_folder("tiny")
    assert _weights(folder) == newer and (zoo_home / ".tiny.old-00000001").is_dir()


def test_killed_after_the_second_rename_the_new_entry_is_used_and_the_old_copy_goes_on_the_next_save(
    zoo_home, tiny_backbone
):
    folder = save_to_zoo(tiny_backbone(seed=0), "tiny")
    save_to_zoo(tiny_backbone(seed=1), "new")
    shutil.copytree(folder, zoo_home / ".tiny.old-ffffffff")  # an older overwrite killed at the same point
    os.rename(folder, zoo_home / ASIDE)
    os.rename(zoo_home / "new", folder)  # the new entry in place, the old one not yet deleted
    new = _weights(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to restore, so nothing to say
        assert [e["name"] for e in list_zoo()] == ["zoo:tiny"]
        assert create_backbone("zoo:tiny").cfg.name == "zoo:tiny"
    assert _weights(folder) == new and (zoo_home / ASIDE).is_dir(), "a lookup deletes nothing"
    save_to_zoo(tiny_backbone(seed=2), "tiny", overwrite=True)
    assert sorted(p.name for p in zoo_home.iterdir()) == ["tiny"], "the superseded copies were left"


def test_saving_without_overwrite_restores_the_entry_and_refuses(zoo_home, tiny_backbone):
    folder, old = _killed_between_the_renames(zoo_home, tiny_backbone)
    with pytest.warns(UserWarning, match="Restored it from"), pytest.raises(TransferkitError, match="already exists"):
        save_to_zoo(tiny_backbone(seed=1), "tiny")
    assert _weights(folder) == old
    assert sorted(p.name for p in zoo_home.iterdir()) == ["tiny"]


def test_an_old_entry_restored_by_another_process_mid_save_is_set_aside_again(zoo_home, tiny_backbone, monkeypatch):
    """A lookup elsewhere may move the old entry back in the instant between a save's two renames."""
    from transferkit.backbones import zoo

    folder = save_to_zoo(tiny_backbone(seed=0), "tiny")
    old = _weights(folder)
    real_replace, calls = zoo.os.replace, []

    def restored_meanwhile(source, destination):
        if destination == folder and not calls:
            calls.append(source)
            with pytest.warns(UserWarning, match="Restored it from"):
                zoo_entry_folder("tiny")
        return real_replace(source, destination)

    monkeypatch.setattr(zoo.os, "replace", restored_meanwhile)
    save_to_zoo(tiny_backbone(seed=1), "tiny", overwrite=True)
    assert calls and _weights(folder) != old
    assert sorted(p.name for p in zoo_home.iterdir()) == ["tiny"]


def test_folders_not_named_as_a_set_aside_entry_are_never_restored(zoo_home, tiny_backbone):
    folder, _ = _killed_between_the_renames(zoo_home, tiny_backbone)
    for fake in (".tiny.old-0A1B2C3D", ".tiny.old-0a1b2c3", ".tiny.k1ll3d_x", ".tin.old-0a1b2c3d"):
        shutil.copytree(zoo_home / ASIDE, zoo_home / fake)
    shutil.rmtree(zoo_home / ASIDE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [e["name"] for e in list_zoo()] == ["zoo:tin"]  # the set-aside copy of an entry named 'tin'
    assert [str(w.message).split(" was missing")[0] for w in caught] == ["The zoo entry 'tin'"]
    with pytest.raises(UnknownNameError, match="unknown zoo model 'tiny'"):
        create_backbone("zoo:tiny")
    assert not folder.exists()


def test_a_copy_that_cannot_be_moved_back_is_named_and_kept(zoo_home, tiny_backbone, monkeypatch):
    from transferkit.backbones import zoo

    _killed_between_the_renames(zoo_home, tiny_backbone)

    def refused(source, destination):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(zoo.os, "rename", refused)
    with pytest.raises(TransferkitError, match=r"zoo entry 'tiny' is missing and its copy .*0a1b2c3d.*by hand"):
        zoo_entry_folder("tiny")
    with pytest.warns(UserWarning, match="cannot be moved back"):
        assert list_zoo() == []
    assert (zoo_home / ASIDE).is_dir()


def test_pretrain_checks_a_set_aside_entry_before_training(zoo_home):
    from transferkit.pretraining.source import _check_name

    (zoo_home / ".kept.old-0123abcd").mkdir(parents=True)
    (zoo_home / ".kept.old-0123abcd" / "backbone.json").write_text("{}")
    with pytest.warns(UserWarning, match="Restored it"), pytest.raises(TransferkitError, match="already exists"):
        _check_name("kept", overwrite=False)
    assert (zoo_home / "kept").is_dir()
