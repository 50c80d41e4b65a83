"""wav2vec 2.0 and w2v-BERT layer features through fairseq2's own model loaders (the ``ssl``
stage's ``backend: fairseq2``), from a local checkpoint.

fairseq2 0.8.1's ``w2vbert`` family is the w2v-BERT architecture (conformer layers, relative
positions, fbank input); it cannot express the released w2v-BERT 2.0 (SeamlessM4T v2's
conformer with Shaw relative positions), so that checkpoint does not load here.

A model is a local fairseq2 asset card: a YAML file, or a directory holding exactly one::

    # model.yaml
    name: my_w2v2
    model_family: wav2vec2          # or w2vbert
    model_arch: large_lv60k         # an architecture registered in fairseq2 0.8
    model_config:                   # optional overrides of the architecture's config
      encoder_config: {num_encoder_layers: 12}
    checkpoint: model.pt            # relative to the card's folder, or file:///abs/path.pt

fairseq2's YAML asset metadata loader reads the card into an asset store of its own (the user's
and fairseq2's global cards are not consulted), and the family's model hub builds and loads the
model (`get_wav2vec2_model_hub().load_model(card)`): fairseq2's config merge, model factory,
checkpoint loader (``.pt`` / ``.pth`` / ``.bin`` / ``.safetensors``; a fairseq2 checkpoint holds
``{"model": state_dict}``) and state-dict converter (fairseq1 checkpoints are converted on load).
Only ``file`` checkpoints are accepted: nothing is downloaded.

Layer numbering is the transformers backend's (`speechtok.features.ssl`): layer 0 is the output
of the encoder frontend (the input of the first encoder layer), layer ``k`` the output of
encoder layer ``k``, and the last layer the encoder's output (after its final layer norm for
pre-norm models). A fairseq2 layer hook records the layers asked for and stops the pass after
the deepest one.

Inputs: wav2vec 2.0 reads the 16 kHz waveform (normalised per signal when
``feature_extractor_layer_norm_convs`` is set, as the transformers backend decides for
layer-norm models). w2v-BERT reads 80-channel log-mel filterbanks computed per signal by
fairseq2's ``WaveformToFbankConverter`` (waveform scaled to the int16 range, standardised per
signal, as fairseq2's w2v-BERT / SeamlessM4T pipelines compute them), stacked by two (100 Hz ->
50 Hz): frames ``(S - 400) // 160 + 1`` then halved.

Exactness: layer-norm wav2vec 2.0 models and w2v-BERT mask padding with fairseq2's
``BatchLayout`` and are batched over padded signals (`maskable`); group-norm wav2vec 2.0 models
(``wav2vec2_base``) normalise over time and are batched over equal lengths only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from speechtok.errors import InputError
from speechtok.features.checksum import files_checksum, model_files
from speechtok.features.fairseq2_lib import import_fairseq2

#: fairseq2 model families this backend reads.
FAIRSEQ2_FAMILIES = ("wav2vec2", "w2vbert")
#: w2v-BERT 2.0 filterbank framing (samples at 16 kHz): 25 ms windows, 10 ms shift.
_FBANK_WINDOW, _FBANK_SHIFT = 400, 160


class _Stop(Exception):
    """Raised by the layer hook once every requested layer is recorded."""


def find_card(model: str | Path) -> Path:
    """The asset card file of `model`: the YAML file itself, or the one ``*.yaml`` / ``*.yml``
    file of a directory.

    Raises:
        InputError: no such file, or a directory without exactly one card.
    """
    path = Path(model)
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputError(str(model), "is neither a fairseq2 asset card (YAML) nor a directory holding one")
    cards = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(cards) != 1:
        raise InputError(str(model), f"must hold exactly one fairseq2 asset card (*.yaml), but holds "
                         f"{[p.name for p in cards]}")
    return cards[0]


def _resolver() -> Any:
    fairseq2 = import_fairseq2()
    # lazy: fairseq2 is optional (this backend only)
    from fairseq2.error import InvalidOperationError

    try:
        return fairseq2.init_fairseq2(no_progress=True)
    except InvalidOperationError:  # already initialised in this process
        # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
        from fairseq2.runtime.dependency import get_dependency_resolver

        return get_dependency_resolver()


def load_card(model: str | Path) -> Any:
    """The fairseq2 ``AssetCard`` of `model` (see `find_card`), read by fairseq2's file asset
    loader into a store of its own: the file describes one model (no ``base`` card is looked up)."""
    card_file = find_card(model)
    resolver = _resolver()
    # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
    from fairseq2.assets import AssetCardError, AssetMetadataError, FileAssetMetadataLoader, StandardAssetStore

    try:
        provider = resolver.resolve(FileAssetMetadataLoader).load(card_file)
    except AssetMetadataError as exc:
        raise InputError(str(card_file), f"is not a fairseq2 asset card ({exc})") from exc
    names = sorted(provider.asset_names)  # canonical names: "NAME@ENV" ("NAME@" without one)
    if len(names) != 1:
        raise InputError(str(card_file), f"must describe exactly one model, but names {names}")
    try:
        return StandardAssetStore([provider]).retrieve_card(names[0])
    except AssetCardError as exc:
        raise InputError(str(card_file), f"is not a usable fairseq2 asset card ({exc})") from exc


def checkpoint_path(card: Any, where: str) -> Path:
    """The local checkpoint file (or folder) a card's ``checkpoint`` field names."""
    # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
    from fairseq2.assets import AssetCardError

    try:
        uri = card.field("checkpoint").as_uri()
    except AssetCardError as exc:
        raise InputError(where, f"names no local checkpoint ({exc})") from exc
    if uri.scheme != "file":
        raise InputError(where, f"checkpoint {uri} is not a local file; this backend never downloads "
                         "(download it and name the file)")
    path = Path(uri.to_path())
    if not path.exists():
        raise InputError(where, f"checkpoint {path} does not exist")
    return path


class Fairseq2SSLEncoder:
    """A wav2vec 2.0 / w2v-BERT encoder loaded through fairseq2 (see the module docstring).

    Attributes:
        model_type: ``"wav2vec2"`` or ``"w2vbert"`` (the card's ``model_family``).
        num_layers: encoder layers; dim: model dimension.
        conv: ``(kernel, stride)`` in samples of each framing step (frames of a signal of ``S``
            samples: ``S -> (S - k) // s + 1`` per step); hop: their total stride.
        maskable: padded batches equal one-by-one runs (see the module docstring).
        normalize_default: whether the waveform is normalised per signal by default.
    """

    sampling_rate = 16000

    def __init__(self, model: str | Path, device: str = "cpu") -> None:
        self.card_file = find_card(model)
        card = load_card(self.card_file)
        where = str(self.card_file)
        # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
        from fairseq2.assets import AssetCardError, AssetCardNotValidError
        from fairseq2.model_checkpoint import CorruptModelCheckpointError
        from fairseq2.models import ModelArchitectureNotKnownError

        fairseq2_errors = (AssetCardError, AssetCardNotValidError, CorruptModelCheckpointError,
                           ModelArchitectureNotKnownError)
        try:
            family = card.field("model_family").as_(str)
        except AssetCardError as exc:
            raise InputError(where, f"is not a model card ({exc})") from exc
        if family not in FAIRSEQ2_FAMILIES:
            raise InputError(where, f"model_family {family!r} is not an SSL speech encoder; "
                             f"supported: {list(FAIRSEQ2_FAMILIES)}")
        self.model_type = family
        self.checkpoint = checkpoint_path(card, where)
        hub: Any  # fairseq2's ModelHub of the family
        if family == "wav2vec2":
            # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
            from fairseq2.models.wav2vec2 import get_wav2vec2_model_hub

            hub = get_wav2vec2_model_hub()
        else:
            # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
            from fairseq2.models.w2vbert import get_w2vbert_model_hub

            hub = get_w2vbert_model_hub()
        try:
            config = hub.get_model_config(card)
            self.net: Any = hub.load_model(card, device=torch.device(device), dtype=torch.float32).eval()
        except fairseq2_errors as exc:
            raise InputError(where, f"cannot be loaded by fairseq2 ({type(exc).__name__}: {exc})") from exc
        self.w2v2: Any = self.net if family == "wav2vec2" else self.net.w2v2_model  # Wav2Vec2Model
        enc = (config if family == "wav2vec2" else config.w2v2_config).encoder_config
        self.num_layers = int(enc.num_encoder_layers)
        self.dim = int(enc.model_dim)
        self.use_fbank = bool(enc.use_fbank)
        if self.use_fbank:
            if int(enc.num_fbank_channels) != 80 or int(enc.sample_fbank_every_k) != 1:
                raise InputError(where, "fbank input must be 80 channels sampled every frame "
                                 f"(num_fbank_channels={enc.num_fbank_channels}, "
                                 f"sample_fbank_every_k={enc.sample_fbank_every_k})")
            stride = int(enc.fbank_stride)
            self.conv = [(_FBANK_WINDOW, _FBANK_SHIFT), (stride, stride)]
            self.maskable = True
        else:
            self.conv = [(int(k), int(s)) for _dim, k, s in enc.feature_extractor_layer_descs]
            self.maskable = bool(enc.feature_extractor_layer_norm_convs)
        self.normalize_default = not self.use_fbank and bool(enc.feature_extractor_layer_norm_convs)
        self.hop = 1
        for _k, s in self.conv:
            self.hop *= s
        self._fbank: Any = None
        self._checksum: str | None = None

    def checksum(self) -> str:
        """sha256 over the card file and the checkpoint file(s) (`speechtok.features.checksum`)."""
        if self._checksum is None:
            files = [self.card_file]
            if self.checkpoint.is_dir():
                files += model_files(self.checkpoint)
            else:
                files.append(self.checkpoint)
            files = [f.resolve() for f in files]
            self._checksum = files_checksum(_common_root(files), files)
        return self._checksum

    def _fbanks(self, x: torch.Tensor, lengths: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        """(B, S) waveforms -> (B, T, 80) standardised log-mel filterbanks, T per signal."""
        if self._fbank is None:
            audio = import_fairseq2("fairseq2.data.audio")
            self._fbank = audio.WaveformToFbankConverter(num_mel_bins=80, waveform_scale=2**15, channel_last=True,
                                                         standardize=True, dtype=torch.float32)
        feats = []
        for row, n in enumerate(lengths):
            wave = x[row, :n].detach().to("cpu", torch.float32).unsqueeze(1)  # (S, 1)
            feats.append(self._fbank({"waveform": wave, "sample_rate": float(self.sampling_rate)})["fbank"])
        lens = [int(f.shape[0]) for f in feats]
        out = torch.zeros((len(feats), max(lens), 80), dtype=torch.float32)  # (B, T, 80) zero-padded
        for row, f in enumerate(feats):
            out[row, : lens[row]] = f
        return out.to(x.device), lens

    def forward(self, x: torch.Tensor, lengths: Sequence[int], layers: Sequence[int]) -> dict[int, torch.Tensor]:
        """(B, S) float32 zero-padded waveforms with `lengths` valid samples each ->
        ``{layer: (B, T, D) float32}`` for each of `layers` (0 .. num_layers), stopping early."""
        # lazy: fairseq2 takes seconds to import; only its SSL backend needs it
        from fairseq2.nn import BatchLayout

        wanted = sorted(int(k) for k in layers)
        deepest = wanted[-1]
        if self.use_fbank:
            seqs, lens = self._fbanks(x, lengths)  # (B, T, 80)
        else:
            seqs, lens = x, [int(n) for n in lengths]
        seqs, layout = self.w2v2.encoder_frontend(seqs, BatchLayout.of(seqs, lens))  # (B, T, D)
        got: dict[int, torch.Tensor] = {0: seqs}

        def hook(idx: int, out: torch.Tensor, _layout: Any, num_layers: int) -> bool:
            k = idx + 1
            if k < num_layers:  # the last layer is the encoder's output (after its final norm)
                got[k] = out
                if k == deepest:
                    raise _Stop
            return True

        if deepest > 0:
            handle = self.w2v2.encoder.register_layer_hook(hook)
            try:
                got[self.num_layers] = self.w2v2.encoder(seqs, layout)
            except _Stop:
                pass
            finally:
                handle.remove()
        return {k: got[k] for k in wanted}


def _common_root(files: Sequence[Path]) -> Path:
    """The deepest folder holding every one of `files`."""
    parts = [Path(f).resolve().parent.parts for f in files]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return Path(*common)
