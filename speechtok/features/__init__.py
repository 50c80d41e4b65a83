"""Frame-level features for latent-representation models and semantic tokenizers.

Modules (imported on demand; each pulls only what it needs):
- `fbank`: Kaldi-compatible log-mel filterbanks, a fast batched torch path matching lhotse.
- `ssl`: HuBERT / WavLM / wav2vec2 / data2vec-audio layer features through transformers.
- `whisper_states`: Whisper encoder states from transformers or CTranslate2 directories.
- `ctc_posteriors`: per-frame CTC log-posteriors (blank included) of any torch CTC model.
- `batching`: exact-length buckets, length-sorted padded batches, chunking with overlap.
- `checksum`: model checksums (sha256 of weight files) for shard provenance.
"""
