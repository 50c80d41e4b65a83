"""Corpus ingest, validation and quarantine, deterministic splits, and the embedded demo corpus.

Entry points: `ingest` (any corpus -> validated lhotse CutSet + quarantine),
`speechtok.manifests.splits` (`split_of`, `partition`, `shard_of`) and
`speechtok.manifests.demo_corpus.build_demo_corpus`.
"""

from speechtok.manifests.ingest import IngestOptions, IngestReport, ingest

__all__ = ["IngestOptions", "IngestReport", "ingest"]
