"""What one example must look like for the model, and the checks that say why data does not fit.

Both image files and in-memory arrays go through `InputLayout`, so a 28x28 folder and a
28x28 .npz produce the same message and obey the same `resize` switch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgecompress.errors import DataError

CHANNEL_WORDS = {1: "grayscale (1 channel)", 3: "colour (RGB, 3 channels)", 4: "RGBA (4 channels)"}
RESAMPLING = Image.Resampling.BILINEAR


def channel_words(channels: int) -> str:
    return CHANNEL_WORDS.get(channels, f"{channels}-channel")


@dataclass(frozen=True)
class InputLayout:
    """The model's input without the batch axis: (features,), (H, W), (H, W, C) or any other fixed shape.

    `None` height/width (a model with a dynamic spatial size) is taken from the data.
    `channels` is None only for flat inputs, where the data decides between gray and RGB.
    Other shapes (a 4-D input, say) take arrays of exactly that shape, never image files.
    """

    input_shape: tuple[int | None, ...]
    height: int | None
    width: int | None
    channels: int | None
    resize: bool
    image: bool = True  # (features,), (H, W) or (H, W, C): image files can be fitted to it

    @classmethod
    def from_input_shape(cls, input_shape: tuple[int | None, ...], *, resize: bool) -> InputLayout:
        shape = tuple(input_shape)
        if shape and shape[0] is None and len(shape) in (2, 4):
            shape = shape[1:]  # tolerate a batch axis left in by the caller
        if len(shape) == 1 and shape[0]:
            return cls(shape, None, None, None, resize)
        if len(shape) == 2:
            return cls(shape, shape[0], shape[1], 1, resize)
        if len(shape) == 3 and shape[2]:
            return cls(shape, shape[0], shape[1], shape[2], resize)
        if shape and all(isinstance(d, int) and d > 0 for d in shape):
            return cls(shape, None, None, None, resize, image=False)  # e.g. (frames, bands, mics, 1): arrays only
        raise DataError(
            f"The model's input shape {input_shape} has no fixed size.",
            "Give the model's Input layer a fixed shape, e.g. Input((128, 3)), and re-save it.",
        )

    @property
    def size(self) -> int:
        return int(math.prod(self.input_shape))  # type: ignore[arg-type]

    @property
    def flat(self) -> bool:
        return len(self.input_shape) == 1

    @property
    def features(self) -> int:
        return int(self.input_shape[0])  # type: ignore[arg-type]

    def sample_shape(self, height: int, width: int, channels: int) -> tuple[int, ...]:
        """Shape of one stored example once an HxWxC image has been fitted to the model."""
        if self.flat:
            return (height * width * channels,)
        if len(self.input_shape) == 2:
            return (height, width)
        return (height, width, channels)

    def target_size(self, height: int, width: int, where: str) -> tuple[int, int]:
        """The (H, W) an image of `height` x `width` must become; raise when that needs a resize nobody asked for.

        Only the model's fixed dimensions are resized to; a dynamic (None) one keeps the image's size.
        """
        if self.flat:
            return height, width
        want = (self.height or height, self.width or width)
        if want != (height, width) and not self.resize:
            raise DataError(
                f"The images are {height}x{width} but the model expects {want[0]}x{want[1]} "
                f"(height x width; e.g. {where}).",
                f"Pass --resize (resize=True) to resize them while loading (bilinear), "
                f"or resize the data set to {want[0]}x{want[1]} beforehand.",
            )
        return want

    def flat_channels(self, height: int, width: int, channels: int, where: str) -> int:
        """For a flat model, the channel count whose flattened image has exactly `features` values."""
        for candidate in dict.fromkeys((channels, 1, 3)):
            if height * width * candidate == self.features:
                return candidate
        raise DataError(
            f"The model takes {self.features} flat features, but the images are {height}x{width} "
            f"({height * width} values in grayscale, {height * width * 3} in RGB; e.g. {where}).",
            "Use data whose images flatten to the model's input size; resizing is not possible for a "
            "flat input because its height and width are unknown.",
        )

    def check_channels(self, data_channels: int, where: str) -> None:
        if self.channels is not None and data_channels != self.channels:
            raise DataError(
                f"The data in {where} is {channel_words(data_channels)} but the model expects "
                f"{channel_words(self.channels)} input.",
                _channel_fix(data_channels, self.channels),
            )


def _channel_fix(have: int, want: int) -> str:
    if (have, want) == (1, 3):
        return (
            "Use colour images for this model (it was trained on colour), or convert the data "
            "to RGB yourself if copying the gray channel three times is really what you want."
        )
    if (have, want) == (3, 1):
        return (
            "Use grayscale images for this model, or convert the data to grayscale first "
            "(e.g. Pillow's Image.convert('L'))."
        )
    return "Give data with as many channels as the model's input."


def fit_arrays(x: np.ndarray, layout: InputLayout, where: str, *, pixels: bool = True) -> np.ndarray:
    """Bring arrays to the model's per-example shape: as they are when they already have it,
    else (pixels only) as images (N,H,W[,C]) fitted like image files, or flat vectors reshaped."""
    if tuple(x.shape[1:]) == tuple(layout.input_shape):
        return x
    if x.ndim == 2 or not pixels or not layout.image:
        return _reshaped(x, layout, where)
    return _fitted_images(x, layout, where)


def _reshaped(x: np.ndarray, layout: InputLayout, where: str) -> np.ndarray:
    """Flat vectors (or samples of the model's size in another shape) reshaped: only an exact size is honest."""
    n = x.shape[0]
    wanted = _known_size(layout)
    # flat rows, a flat model, or the same shape up to axes of size 1: nothing is transposed by a reshape
    same = x.ndim == 2 or layout.flat or _squeezed(x.shape[1:]) == _squeezed(layout.input_shape)
    if wanted is None or math.prod(x.shape[1:]) != wanted or not same:
        _refuse_transposed(x, layout, where)
        raise DataError(
            f"The data in {where} holds samples of shape {list(x.shape[1:])} but the model expects input of shape "
            f"{list(layout.input_shape)}.",
            f"Save x with shape (N, {', '.join(str(d) for d in layout.input_shape)}), one sample per row.",
        )
    return x.reshape((n, *layout.input_shape))


def _refuse_transposed(x: np.ndarray, layout: InputLayout, where: str) -> None:
    """Samples whose axes are the model's in another order: name the transposition rather than reshape."""
    have, want = tuple(x.shape[1:]), tuple(layout.input_shape)
    if have == want or sorted(have) != sorted(d or 0 for d in want) or len(have) != len(want):
        return
    if len(want) == 3 and have == (want[2], want[0], want[1]):
        raise DataError(
            f"The data in {where} has shape {x.shape}, which looks channels-first (N, C, H, W).",
            "Save x channels-last (N, H, W, C), e.g. with np.transpose(x, (0, 2, 3, 1)).",
        )
    order = [have.index(d) + 1 for d in want] if len(set(have)) == len(have) else None
    raise DataError(
        f"The data in {where} holds samples of shape {list(have)}: the model's input {list(want)} with its axes in "
        "another order.",
        f"Transpose x to (N, {', '.join(str(d) for d in want)})"
        + (f", e.g. np.transpose(x, (0, {', '.join(map(str, order))}))." if order else "."),
    )


def _fitted_images(x: np.ndarray, layout: InputLayout, where: str) -> np.ndarray:
    n = x.shape[0]
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise DataError(
            f"The data in {where} has shape {x.shape}; expected (N, height, width[, channels]) or (N, features).",
            "Save x with one example per row along the first axis.",
        )
    height, width, channels = x.shape[1:]
    if channels not in CHANNEL_WORDS and x.shape[1] in (1, 3):
        raise DataError(
            f"The data in {where} has shape {x.shape}, which looks channels-first (N, C, H, W).",
            "Save x channels-last (N, H, W, C), e.g. with np.transpose(x, (0, 2, 3, 1)).",
        )
    if layout.flat:
        if height * width * channels != layout.features:
            raise DataError(
                f"The model takes {layout.features} flat features, but the images in {where} are "
                f"{height}x{width}x{channels} ({height * width * channels} values).",
                "Give data whose examples flatten to the model's input size.",
            )
        return x.reshape(n, -1)
    layout.check_channels(channels, where)
    target = layout.target_size(height, width, where)
    if target != (height, width):
        x = np.stack([resize_array(image, target) for image in x])
    return x.reshape((n, *layout.sample_shape(*target, channels)))


def resize_array(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize one HxWxC float image with the same Pillow filter used for image files."""
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize(
                (size_hw[1], size_hw[0]), RESAMPLING
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.stack(planes, axis=-1)


def _squeezed(shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    return tuple(d for d in shape if d != 1)


def _known_size(layout: InputLayout) -> int | None:
    dims = layout.input_shape
    return None if any(d is None for d in dims) else math.prod(dims)  # type: ignore[arg-type]
