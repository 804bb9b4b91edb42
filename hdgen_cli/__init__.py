"""hdgen: hybrid discriminative-generative energy-based models for images, in one engine."""

__version__ = "0.1.0"
