"""speechtok: speech corpora to speech-LLM training data."""

__version__ = "0.1.0"
