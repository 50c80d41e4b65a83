"""Corpus ingest, validation and quarantine, deterministic splits, and the embedded demo corpus.

Entry points: `speechtok.manifests.ingest.ingest` (any corpus -> validated lhotse CutSet +
quarantine), `speechtok.manifests.splits` (`split_of`, `partition`, `shard_of`) and
`speechtok.manifests.demo_corpus.build_demo_corpus`. The package itself imports nothing, so that a
light module of it (`sources.KINDS`, `audio_check`) does not bring lhotse and torch with it.
"""
