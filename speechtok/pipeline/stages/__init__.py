"""Stage wrappers: thin `Stage` implementations over the feature, tokenizer and codec code.

Each module holds one stage type (registered in `speechtok.pipeline.stage.STAGE_TYPES`):
``cuts`` (cut metadata), ``fbank`` (log-mel filterbanks), ``kmeans_units`` (k-means units),
``ssl`` (SSL layer features), ``whisper`` (Whisper encoder states), ``codec`` (codec codes),
``ctc_align`` (word alignments by CTC forced alignment).
"""

from speechtok.pipeline.stage import register_stage_type

# Model stages (issues 5 and 7): SSL layer features, Whisper encoder states, codec codes.
register_stage_type("ssl", "speechtok.pipeline.stages.ssl:SSLStage")
register_stage_type("whisper", "speechtok.pipeline.stages.whisper:WhisperStage")
register_stage_type("codec", "speechtok.pipeline.stages.codec:CodecStage")
# Word alignments (issue 8): CTC forced alignment with a latent run's encoder.
register_stage_type("ctc_align", "speechtok.pipeline.stages.ctc_align:CTCAlignStage")
