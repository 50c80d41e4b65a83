"""Stage wrappers: thin `Stage` implementations over the feature, tokenizer and codec code.

Each module holds one stage type (listed in `speechtok.pipeline.stage_types.STAGE_TYPES`):
``cuts`` (cut metadata), ``fbank`` (log-mel filterbanks), ``kmeans_units`` (k-means units),
``ssl`` (SSL layer features), ``whisper`` (Whisper encoder states), ``codec`` (codec codes),
``ctc_align`` (word alignments by CTC forced alignment), ``unit_bpe`` (BPE over units).
"""
