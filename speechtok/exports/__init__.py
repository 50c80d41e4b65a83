"""Exports of a speechtok output directory to the formats other toolkits read.

`speechtok.exports.formats` holds the entry point (`export_output`, `FORMATS`) and the
Parquet, HF `datasets`, lhotse, fairseq and memmap writers; `slam` and `nemo` the SLAM-LLM
and NeMo ones.
"""
