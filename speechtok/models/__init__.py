"""What several layers use: pretrained models read from their published files."""
