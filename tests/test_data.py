"""Loading data for a model: built-in digits, class folders, .npz files, and every way they go wrong.

Images are generated with Pillow in tmp_path. Each image is a solid colour whose red value
encodes its class and whose green value encodes its number, so tests can check that labels
still belong to their pixels after splitting, subsampling and relabelling.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.datasets_cache import CIFAR10_ARCHIVE_DIR, ensure_cifar10_jpeg
from edgecompress.data import Dataset, DataSpec, load_dataset, write_eval_npz
from edgecompress.errors import DataError

RGB_8 = (8, 8, 3)


def red_of(class_index: int) -> int:
    return 40 * class_index + 20


def write_image(path: Path, *, red: int = 0, green: int = 0, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> Path:
    """A solid image of `size` (height, width); gray images use `red` as their level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = red if mode == "L" else (red, green, 0)
    Image.new(mode, (size[1], size[0]), colour).save(path)
    return path


def make_class_folders(
    root: Path,
    per_class: dict[str, int],
    *,
    size: tuple[int, int] = (8, 8),
    mode: str = "RGB",
    suffix: str = ".png",
    first_number: int = 0,
) -> Path:
    """root/<class>/<n>.png; class i has red = red_of(i) (classes in sorted order)."""
    number = first_number
    for class_index, name in enumerate(sorted(per_class)):
        for _ in range(per_class[name]):
            write_image(
                root / name / f"{number:04d}{suffix}", red=red_of(class_index), green=number, size=size, mode=mode
            )
            number += 1
    return root


def red_levels(x: np.ndarray) -> np.ndarray:
    """Red value (0..255) of each solid 0..1-scaled image."""
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def image_numbers(x: np.ndarray) -> set[int]:
    return set(np.rint(x[:, 0, 0, 1] * 255).astype(int).tolist())


def data_error(call, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    assert caught.value.fix, "every DataError must say how to fix it"
    return caught.value


# --- the built-in default ------------------------------------------------------------------


def test_sklearn_digits_are_8x8_gray_images_scaled_to_0_1_with_a_seeded_split():
    data = load_dataset("sklearn:digits", input_shape=(8, 8, 1))

    assert data.x_train.shape[1:] == (8, 8, 1) and data.x_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0  # 0..16 -> 0..255 -> 0..1
    assert data.class_names == [str(d) for d in range(10)]
    assert len(data.x_train) + len(data.x_test) == 1797
    assert len(data.x_test) == 360
    assert data.split == "random 20% (seed 0)"
    described = data.describe()
    assert described["source"] == "sklearn:digits"
    assert described["scaling"] == "0-1"
    assert described["shapes"] == {"x_train": [1437, 8, 8, 1], "x_test": [360, 8, 8, 1]}
    assert sum(described["counts"]["test"].values()) == 360
    assert min(described["counts"]["test"].values()) >= 35  # stratified: every digit ~36 times


def test_digits_flatten_for_a_dense_model_and_follow_the_scaling():
    flat = load_dataset("sklearn:digits", input_shape=(64,), scaling="-1-1")
    raw = load_dataset("sklearn:digits", input_shape=(8, 8, 1), scaling="0-255")

    assert flat.x_train.shape[1:] == (64,)
    assert (flat.x_train.min(), flat.x_train.max()) == (-1.0, 1.0)
    assert raw.x_train.max() == 255.0
    np.testing.assert_allclose(flat.x_train, raw.x_train.reshape(-1, 64) / 127.5 - 1, atol=1e-6)


# --- class folders -------------------------------------------------------------------------


def test_train_and_test_folders_are_used_as_given_and_other_files_are_skipped(tmp_path):
    make_class_folders(tmp_path / "train", {"cat": 4, "dog": 3})
    make_class_folders(tmp_path / "test", {"cat": 2, "dog": 2}, first_number=100)
    (tmp_path / "train" / "README.md").write_text("notes about the data")
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")

    data = load_dataset(tmp_path, input_shape=RGB_8)

    assert data.class_names == ["cat", "dog"]
    assert data.split == "given"
    assert data.describe()["counts"] == {"train": {"cat": 4, "dog": 3}, "test": {"cat": 2, "dog": 2}}
    np.testing.assert_array_equal(red_levels(data.x_train), [red_of(y) for y in data.y_train])
    assert image_numbers(data.x_test) == {100, 101, 102, 103}
    assert any("skipped 2 non-image file(s)" in note for note in data.notes)


def test_a_single_folder_is_split_stratified_and_reproducibly_by_seed(tmp_path):
    make_class_folders(tmp_path, {"a": 10, "b": 10, "c": 10})

    first = load_dataset(tmp_path, input_shape=RGB_8, seed=1)
    again = load_dataset(tmp_path, input_shape=RGB_8, seed=1)
    other = load_dataset(tmp_path, input_shape=RGB_8, seed=2)

    assert first.split == "random 20% (seed 1)"
    assert first.describe()["counts"]["test"] == {"a": 2, "b": 2, "c": 2}
    assert image_numbers(first.x_train) | image_numbers(first.x_test) == set(range(30))
    assert not image_numbers(first.x_train) & image_numbers(first.x_test)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    assert image_numbers(first.x_test) != image_numbers(other.x_test)
    np.testing.assert_array_equal(red_levels(first.x_test), [red_of(y) for y in first.y_test])


def test_classes_pick_a_subset_and_relabel_it_in_the_order_given(tmp_path):
    make_class_folders(tmp_path, {"bird": 5, "cat": 5, "dog": 5})

    data = load_dataset(tmp_path, input_shape=RGB_8, classes=["dog", "cat"])

    assert data.class_names == ["dog", "cat"]
    assert set(data.y_train) == {0, 1}
    cat, dog = red_of(1), red_of(2)  # folder order: bird, cat, dog
    expected = np.where(data.y_train == 0, dog, cat)
    np.testing.assert_array_equal(red_levels(data.x_train), expected)


def test_grayscale_images_load_for_a_grayscale_model(tmp_path):
    make_class_folders(tmp_path, {"a": 3, "b": 3}, mode="L", suffix=".jpg")

    data = load_dataset(tmp_path, input_shape=(8, 8, 1))

    assert data.x_train.shape[1:] == (8, 8, 1)
    assert set(np.rint(data.x_train[:, 0, 0, 0] * 255).astype(int)) <= set(range(15, 26)) | set(range(55, 66))


def test_max_train_and_max_test_subsample_per_class_with_the_seed(tmp_path):
    make_class_folders(tmp_path / "train", {"a": 20, "b": 20})
    make_class_folders(tmp_path / "test", {"a": 10, "b": 10}, first_number=100)

    small = load_dataset(tmp_path, input_shape=RGB_8, max_train=10, max_test=4)
    same = load_dataset(tmp_path, input_shape=RGB_8, max_train=10, max_test=4)

    assert small.describe()["counts"] == {"train": {"a": 5, "b": 5}, "test": {"a": 2, "b": 2}}
    assert image_numbers(small.x_train) == image_numbers(same.x_train)
    assert any("max_train: stratified sample of 10 out of 40" in note for note in small.notes)


def test_resize_brings_other_sizes_to_the_model_input(tmp_path):
    make_class_folders(tmp_path, {"cat": 3, "dog": 3}, size=(28, 28))

    data = load_dataset(tmp_path, input_shape=(32, 32, 3), resize=True)

    assert data.x_train.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(red_levels(data.x_train), [red_of(y) for y in data.y_train])


def test_images_flatten_for_a_flat_input_model(tmp_path):
    make_class_folders(tmp_path, {"a": 3, "b": 3}, size=(4, 4))

    data = load_dataset(tmp_path, input_shape=(48,))

    assert data.x_train.shape[1:] == (48,)


# --- .npz ----------------------------------------------------------------------------------


def test_npz_with_x_and_y_is_split_and_raw_pixels_are_recognised(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1], 20)
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["no", "yes"]))

    data = load_dataset(tmp_path / "d.npz", input_shape=(8, 8, 1))

    assert data.class_names == ["no", "yes"]
    assert data.split == "random 20% (seed 0)"
    assert data.describe()["counts"]["test"] == {"no": 4, "yes": 4}
    assert data.x_train.shape[1:] == (8, 8, 1)
    assert any("taken as raw 0..255" in note for note in data.notes)
    all_pixels = np.concatenate([data.x_train, data.x_test]).reshape(40, -1) * 255
    assert {tuple(row) for row in np.rint(all_pixels)} == {tuple(row) for row in x.reshape(40, -1).astype(float)}


def test_npz_with_train_and_test_arrays_in_0_1_keeps_its_split(tmp_path):
    x_train = np.full((6, 4, 4, 3), 0.5, dtype=np.float32)
    x_test = np.full((2, 4, 4, 3), 1.0, dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=[0, 1, 2, 0, 1, 2], x_test=x_test, y_test=[2, 0])

    data = load_dataset(tmp_path / "d.npz", input_shape=(4, 4, 3), scaling="0-255")

    assert data.split == "given"
    assert data.class_names == ["0", "1", "2"]
    assert set(data.x_test.ravel()) == {255.0}
    np.testing.assert_allclose(data.x_train, 127.5)
    assert any("taken as already in 0..1" in note for note in data.notes)


def test_npz_feature_vectors_fit_a_dense_model_or_reshape_to_its_image_input(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(10 * 64).reshape(10, 64) % 256, y=[0, 1] * 5)

    dense = load_dataset(tmp_path / "d.npz", input_shape=(64,), test_fraction=0.4)
    image = load_dataset(tmp_path / "d.npz", input_shape=(8, 8, 1), test_fraction=0.4)

    assert dense.x_train.shape[1:] == (64,) and image.x_train.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(dense.x_train, image.x_train.reshape(-1, 64))


@pytest.mark.parametrize("labels", [np.array(["b", "a", "b", "a"] * 3), np.eye(2)[[1, 0, 1, 0] * 3]])
def test_npz_labels_may_be_names_or_one_hot(tmp_path, labels):
    np.savez(tmp_path / "d.npz", x=np.zeros((12, 2, 2)), y=labels)

    data = load_dataset(tmp_path / "d.npz", input_shape=(2, 2, 1), test_fraction=0.5)

    assert len(data.class_names) == 2 and data.describe()["counts"]["test"] == dict.fromkeys(data.class_names, 3)


# --- the runner's evaluation file ----------------------------------------------------------


def test_eval_npz_has_what_the_board_runner_reads(tmp_path):
    data = load_dataset("sklearn:digits", input_shape=(8, 8, 1))

    path = write_eval_npz(data, tmp_path / "out" / "eval.npz", output_kind="softmax", max_samples=100)

    with np.load(path, allow_pickle=False) as saved:
        assert saved["x"].dtype == np.float32 and saved["x"].shape == (100, 8, 8, 1)
        assert saved["y"].dtype == np.int64
        assert np.bincount(saved["y"]).min() >= 9  # stratified: 10 per digit
        assert saved["class_names"].tolist() == data.class_names
        assert str(saved["output_kind"]) == "softmax"
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind
    assert "Unknown output kind" in data_error(write_eval_npz, data, tmp_path / "e.npz", output_kind="prob").problem


# --- mistakes users make -------------------------------------------------------------------


def test_one_class_is_not_enough(tmp_path):
    make_class_folders(tmp_path, {"cat": 5})

    assert "only one class ('cat')" in data_error(load_dataset, tmp_path, input_shape=RGB_8).problem


def test_choosing_one_class_is_not_enough(tmp_path):
    make_class_folders(tmp_path, {"cat": 5, "dog": 5})

    error = data_error(load_dataset, tmp_path, input_shape=RGB_8, classes=["cat"])
    assert "fewer than two" in error.problem and "at least two" in error.fix


def test_wrong_image_size_names_both_sizes_and_suggests_resize(tmp_path):
    make_class_folders(tmp_path, {"cat": 3, "dog": 3}, size=(28, 28))

    error = data_error(load_dataset, tmp_path, input_shape=(32, 32, 3))
    assert "images are 28x28 but the model expects 32x32" in error.problem
    assert "--resize" in error.fix


def test_unknown_class_lists_the_classes_and_suggests_the_close_one(tmp_path):
    make_class_folders(tmp_path, {"cat": 3, "dog": 3})

    error = data_error(load_dataset, tmp_path, input_shape=RGB_8, classes=["cat", "dgo"])
    assert "Unknown class 'dgo'" in error.problem
    assert "did you mean 'dgo' -> 'dog'" in error.problem
    assert "Available classes: cat, dog" in error.problem


def test_a_corrupt_jpeg_is_named(tmp_path):
    make_class_folders(tmp_path, {"cat": 3, "dog": 3}, size=(32, 32))
    buffer = io.BytesIO()
    Image.effect_noise((32, 32), 60).convert("RGB").save(buffer, "JPEG")
    broken = tmp_path / "dog" / "broken.jpg"
    broken.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

    error = data_error(load_dataset, tmp_path, input_shape=(32, 32, 3))
    assert str(broken) in error.problem and "corrupt or truncated" in error.problem


def test_a_text_file_named_like_a_jpeg_is_named(tmp_path):
    make_class_folders(tmp_path, {"cat": 3, "dog": 3})
    fake = tmp_path / "cat" / "photo.jpg"
    fake.write_text("this is not a picture")

    error = data_error(load_dataset, tmp_path, input_shape=RGB_8)
    assert str(fake) in error.problem and "not an image file" in error.problem


def test_grayscale_images_for_a_colour_model_are_refused(tmp_path):
    make_class_folders(tmp_path, {"a": 3, "b": 3}, mode="L")

    error = data_error(load_dataset, tmp_path, input_shape=RGB_8)
    assert "grayscale (1 channel) but the model expects colour (RGB, 3 channels)" in error.problem


def test_a_few_grayscale_images_among_colour_ones_are_converted_and_noted(tmp_path):
    make_class_folders(tmp_path, {"a": 4, "b": 4})
    write_image(tmp_path / "a" / "gray.png", red=200, mode="L")

    data = load_dataset(tmp_path, input_shape=RGB_8, test_fraction=0.5)

    assert any("converted 1 grayscale (1 channel) image(s) to colour" in note for note in data.notes)
    gray = np.concatenate([data.x_train, data.x_test]).reshape(-1, 3 * 64)
    assert any(np.allclose(row, 200 / 255) for row in gray)


def test_colour_arrays_for_a_grayscale_model_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 8, 8, 3)), y=[0, 1] * 5)

    error = data_error(load_dataset, tmp_path / "d.npz", input_shape=(8, 8, 1))
    assert "colour (RGB, 3 channels) but the model expects grayscale (1 channel)" in error.problem


def empty_folder(root: Path) -> Path:
    root.mkdir()
    return root


def images_without_class_folders(root: Path) -> Path:
    write_image(root / "a.png")
    return root


def class_folders_without_images(root: Path) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
    (root / "cat" / "labels.csv").write_text("file,label\n")
    return root


def train_without_test(root: Path) -> Path:
    make_class_folders(root / "train", {"a": 2, "b": 2})
    return root


def archive(root: Path) -> Path:
    root.mkdir()
    (root / "data.tar.gz").write_bytes(b"")
    return root / "data.tar.gz"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (empty_folder, "has no class folders (it is empty)"),
        (images_without_class_folders, "holds 1 sample(s); at least 2 are needed"),
        (class_folders_without_images, "No image or .npy files were found"),
        (train_without_test, "has a train/ folder but no test/ folder"),
        (lambda root: root / "missing", "does not exist"),
        (archive, "is an archive"),
    ],
    ids=["empty", "no-class-folders", "no-images", "train-without-test", "missing", "archive"],
)
def test_unusable_folders_say_what_is_wrong(tmp_path, make, message):
    spec = make(tmp_path / "data")

    assert message in data_error(load_dataset, spec, input_shape=RGB_8).problem


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((4, 8, 8)), "labels": [0, 1, 0, 1]}, "needs x (with y for labels)"),
        ({"x": np.zeros((10, 8, 8)), "y": [0, 1] * 4 + [0]}, "x has 10 examples but y has 9 labels"),
        ({"x": np.full((4, 8, 8), -0.5), "y": [0, 1, 0, 1]}, "holds samples of shape [8, 8] but the model expects"),
        ({"x": np.zeros((4, 8, 8, 3)), "y": [0, 1, 0, 1], "class_names": ["a"]}, "class_names has only 1 names"),
        ({"x": np.zeros((4, 3, 8, 8)), "y": [0, 1, 0, 1]}, "looks channels-first"),
        ({"x": np.zeros((4, 8, 8, 3)), "y": [0, 1, 2, 401158996313]}, "class index 401,158,996,313"),
        ({"x": np.zeros((0, 8, 8, 3)), "y": np.zeros(0)}, "holds no samples"),
        ({"x": np.zeros((4, 8, 8, 3), dtype=np.complex64), "y": [0, 1, 0, 1]}, "holds complex numbers"),
        ({"x": np.array([np.zeros((8, 8, 3))] * 4, dtype=object), "y": [0, 1, 0, 1]}, "never unpickles"),
        ({"x": np.full((4, 8, 8, 3), np.nan), "y": [0, 1, 0, 1]}, "NaN or infinite"),
        ({"x": np.zeros((4, 8, 8, 3)), "y": [0.0, 1.0, np.inf, 1.0]}, "NaN or infinite"),
        ({"x": np.zeros((1, 8, 8, 3)), "y": [0], "class_names": ["a", "b"]}, "at least 2 are needed"),
    ],
    ids=[
        "missing-keys",
        "length-mismatch",
        "not-pixels-wrong-shape",
        "too-few-names",
        "channels-first",
        "huge-label",
        "zero-samples",
        "complex",
        "objects",
        "nan-x",
        "inf-y",
        "one-sample",
    ],  # fmt: skip
)
def test_unusable_npz_files_say_what_is_wrong(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)  # object arrays are pickled on writing: never on reading

    assert message in data_error(load_dataset, tmp_path / "d.npz", input_shape=RGB_8).problem


def test_bad_arguments_are_data_errors():
    assert "sklearn:digits" in data_error(DataSpec.parse, "sklearn:digist").problem
    assert (
        "Unknown scaling" in data_error(load_dataset, "sklearn:digits", input_shape=(8, 8, 1), scaling="0-100").problem
    )
    assert (
        "fewer than the 10 classes"
        in data_error(load_dataset, "sklearn:digits", input_shape=(8, 8, 1), max_train=5).problem
    )


def test_loading_data_does_not_import_tensorflow():
    code = "import sys, edgecompress.data; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the CIFAR-10 cache --------------------------------------------------------------------


def _archive_set(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir()
    with tarfile.open(folder / "part.tar.gz", "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    digest = hashlib.sha256((folder / "part.tar.gz").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  part.tar.gz\n")
    return folder


def test_cifar_cache_extracts_verified_archives_once(tmp_path):
    archives = _archive_set(tmp_path / "archives", {"train/cat/1.jpg": b"x", "test/cat/2.jpg": b"y"})

    root = ensure_cifar10_jpeg(tmp_path / "cache", archives=archives)
    (root / "train" / "cat" / "1.jpg").write_bytes(b"changed")
    again = ensure_cifar10_jpeg(tmp_path / "cache", archives=archives)

    assert again == root and (root / "test" / "cat" / "2.jpg").read_bytes() == b"y"
    assert (root / "train" / "cat" / "1.jpg").read_bytes() == b"changed"  # not extracted twice


def test_cifar_cache_refuses_an_archive_that_does_not_match_its_checksum(tmp_path):
    archives = _archive_set(tmp_path / "archives", {"train/cat/1.jpg": b"x"})
    (archives / "part.tar.gz").write_bytes(b"damaged")

    error = data_error(ensure_cifar10_jpeg, tmp_path / "cache", archives=archives)
    assert "does not match its SHA256SUMS entry" in error.problem
    assert not (tmp_path / "cache").exists()


@pytest.mark.e2e
def test_cifar10_cat_and_dog_load_from_jpeg_folders():
    if not (CIFAR10_ARCHIVE_DIR / "SHA256SUMS").is_file():
        pytest.skip(f"CIFAR-10 JPEG archives not found in {CIFAR10_ARCHIVE_DIR}")
    root = ensure_cifar10_jpeg()

    started = time.perf_counter()
    data = load_dataset(root, input_shape=(32, 32, 3), classes=["cat", "dog"])
    seconds = time.perf_counter() - started

    print(f"CIFAR-10 cat/dog: 12,000 JPEGs loaded in {seconds:.2f} s")
    assert isinstance(data, Dataset) and data.split == "given"
    assert data.describe()["counts"] == {"train": {"cat": 5000, "dog": 5000}, "test": {"cat": 1000, "dog": 1000}}
    assert data.x_train.shape == (10000, 32, 32, 3) and 0.0 <= data.x_train.min() < data.x_train.max() <= 1.0
