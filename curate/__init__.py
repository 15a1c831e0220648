"""curate: build clean face-recognition training sets and train embedding models on them."""

__version__ = "0.1.0"
