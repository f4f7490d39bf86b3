"""MNIST-M, re-created: the built-in MNIST digits blended over patches of colour photos.

This is a **re-creation** of the MNIST-M target domain of Ganin et al., "Domain-Adversarial
Training of Neural Networks" (JMLR 17, 2016, section 5.2.2), **not the original data**. The
paper blends each MNIST digit over a random patch of a colour photo from BSDS500 with
``out = |patch - digit|`` per channel. Here the digits are the 5,000 of
:func:`~transferkit.data.builtin.load_mnist` and the photos are the two shipped inside
scikit-learn (:func:`sklearn.datasets.load_sample_images`: ``china.jpg`` and ``flower.jpg``,
427x640 RGB), so nothing is downloaded. The blending rule is the paper's; the backgrounds are
far less varied (two photos rather than BSDS500's 500), so accuracies are not comparable with
published MNIST-M numbers, though the shift from grey MNIST is of the same kind. The digit's
grey levels are used as they are (some public MNIST-M scripts binarise the digit first).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ..errors import DataError
from ._dataset import Dataset, DataSplit

__all__ = ["blend_with_photos", "load_mnist_m", "MNIST_M_SEED"]

MNIST_M_SEED = 20160101  # fixed: the blend never depends on the run seed
_PATCH = 28


@functools.lru_cache(maxsize=1)
def _photos() -> np.ndarray:
    """scikit-learn's sample photos, stacked: uint8 ``(2, 427, 640, 3)`` (china, flower), read-only."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images  # list of (427, 640, 3) uint8, in file-name order
    if len({image.shape for image in images}) != 1:
        raise DataError(f"scikit-learn's sample photos have shapes {[i.shape for i in images]}; expected one shape")
    photos = np.stack([np.asarray(image, dtype=np.uint8) for image in images])  # (P, H, W, 3)
    photos.flags.writeable = False  # shared between calls
    return photos


def blend_with_photos(images: np.ndarray, seed: int) -> np.ndarray:
    """Blend grey digits over random patches of scikit-learn's sample photos, as MNIST-M does.

    For every digit a photo and the top-left corner of a 28x28 patch in it are drawn (uniformly,
    from ``np.random.default_rng(seed)``), and the result is ``|patch - digit|`` in each colour
    channel (Ganin et al., 2016, section 5.2.2): the digit's strokes invert the photo's colours,
    the black background keeps them.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, 28, 28)
        Grey digits, 0 (background) to 255 (stroke).
    seed : int
        Seed of the photo and patch draws; the same seed and images give the same output.

    Returns
    -------
    ndarray of uint8, shape (N, 28, 28, 3)
        The blended RGB images.

    Raises
    ------
    DataError
        If ``images`` is not a uint8 array of 28x28 images.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (_PATCH, _PATCH) or images.dtype != np.uint8:
        raise DataError(f"blend_with_photos needs uint8 images (N, 28, 28); got {images.dtype} {images.shape}")
    photos = _photos()  # (P, H, W, 3)
    n_photos, height, width, _ = photos.shape
    rng = np.random.default_rng(seed)
    which = rng.integers(0, n_photos, size=len(images))  # (N,)
    top = rng.integers(0, height - _PATCH + 1, size=len(images))  # (N,)
    left = rng.integers(0, width - _PATCH + 1, size=len(images))  # (N,)
    offsets = np.arange(_PATCH)
    corner = which * (height * width) + top * width + left  # (N,) flat pixel index of each patch's corner
    pixels = corner[:, None, None] + (offsets[:, None] * width + offsets[None, :])[None]  # (N, 28, 28)
    patches = photos.reshape(-1, 3).take(pixels, axis=0)  # (N, 28, 28, 3)
    digits = np.repeat(images[..., None], 3, axis=-1)  # (N, 28, 28, 3)
    blended = np.maximum(patches, digits)  # |patch - digit| without leaving uint8: max - min
    blended -= np.minimum(patches, digits)
    return blended


def load_mnist_m(data_dir: str | os.PathLike | None = None, test_size: int | None = None) -> DataSplit:
    """MNIST-M re-created: :func:`load_mnist`'s digits and split, blended over sample-photo patches.

    A re-creation of Ganin et al.'s MNIST-M (2016), not the original data: see the module
    docstring. The digits, labels, classes and train/test split are exactly those of
    ``load_mnist(data_dir, test_size)``, so example ``i`` of either part is the same digit in
    both data sets. The train part is blended by :func:`blend_with_photos` with seed
    ``MNIST_M_SEED`` and the test part with ``MNIST_M_SEED + 1``, fixed and independent of the
    run seed, so every call gives the same images; a different ``test_size`` moves digits
    between the parts and so changes which patch those digits get.

    Parameters
    ----------
    data_dir : path-like, optional
        Passed to :func:`load_mnist`.
    test_size : int, optional
        Test images; by default a stratified 20 %, as for ``mnist``.

    Returns
    -------
    DataSplit
        Images are uint8 arrays ``(N, 28, 28, 3)``; the data set name is ``"mnist-m"``.
    """
    from .builtin import load_mnist  # here, not at the top: builtin registers this loader

    mnist = load_mnist(data_dir=data_dir, test_size=test_size)
    parts = []
    for dataset, seed in ((mnist.train, MNIST_M_SEED), (mnist.test, MNIST_M_SEED + 1)):
        blended = blend_with_photos(dataset.inputs, seed)  # (N, 28, 28, 3)
        parts.append(Dataset("mnist-m", "image", blended, dataset.labels.copy(), list(dataset.classes)))
    return DataSplit(*parts)
