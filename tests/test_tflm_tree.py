"""Finding and preparing TFLite Micro's sources offline: the order, the cache, a user's own checkout."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from edgecompress.errors import ToolError
from edgecompress.micro import tflm_tree

ARCHIVES = tflm_tree.third_party_dir()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ARCHIVES / "SHA256SUMS").is_file(), reason="needs ../shared/third-party"),
]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A user's tflite-micro checkout (unpacked from the pinned archive; no downloads folder)."""
    archive = sorted(ARCHIVES.glob("tflite-micro-*.tar.gz"))[-1]
    where = tmp_path_factory.mktemp("checkout")
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / "tflite-micro"


def test_a_users_checkout_is_prepared_offline_into_the_cache_once(checkout: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(tflm_tree.ENV_TFLM_DIR, raising=False)
    tree = tflm_tree.prepare_tree(checkout, ARCHIVES)
    assert tree.root.is_relative_to(tmp_path / "edgecompress" / "tflm") and tree.revision.startswith("tree-")
    downloads = tree.downloads
    assert (downloads / "flatbuffers/include/flatbuffers/flatbuffers.h").is_file()
    assert not list((downloads / "flatbuffers").rglob("BUILD"))  # removed before the patch, as TFLM's script does
    assert (downloads / "cmsis/Cortex_DFP/Device/ARMCM4/Include/ARMCM4.h").is_file()
    assert (downloads / "cmsis_nn/Include/arm_nnfunctions.h").is_file()
    assert (downloads / "pigweed").is_dir() and not any((downloads / "pigweed").iterdir())
    assert (downloads / "gcc_embedded/bin/arm-none-eabi-gcc").resolve().is_file()
    assert tree.pins["CMSIS-NN"].startswith("4ab83cc")
    assert not (checkout / tflm_tree.DOWNLOADS).exists()  # the user's checkout is left as it was
    again = tflm_tree.prepare_tree(checkout, ARCHIVES)
    assert again.root == tree.root
    found = tflm_tree.find_tree()
    assert (found.root, found.revision, found.origin) == (tree.root, tree.revision, "prepared cache")


def test_the_order_is_flag_then_environment_then_cache(checkout: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    prepared = tflm_tree.prepare_tree(checkout, ARCHIVES)
    monkeypatch.setenv(tflm_tree.ENV_TFLM_DIR, str(prepared.root))
    assert tflm_tree.find_tree().origin == tflm_tree.ENV_TFLM_DIR
    assert tflm_tree.find_tree(prepared.root).origin == "--tflm-dir"
    with pytest.raises(ToolError, match="lacks its third-party libraries") as raised:
        tflm_tree.find_tree(checkout)  # a raw checkout: TFLM's make would try to download
    assert "edgecompress micro setup --tflm-source" in raised.value.fix


def test_a_missing_archive_names_the_file_and_revision(checkout: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    partial = tmp_path / "archives"
    partial.mkdir()
    for archive in ARCHIVES.glob("*.tar.gz"):
        if not archive.name.startswith("CMSIS-NN"):
            (partial / archive.name).symlink_to(archive)
    with pytest.raises(ToolError) as raised:
        tflm_tree.prepare_tree(checkout, partial)
    assert (
        "CMSIS-NN-4ab83cc.tar.gz" in raised.value.problem
        and "git" in raised.value.fix
        and "archive" in raised.value.fix
    )
    assert not list((tmp_path / "cache").rglob(tflm_tree.MARKER))  # nothing half-prepared is left to be found
