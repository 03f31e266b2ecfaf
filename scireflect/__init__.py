"""scireflect: self-reflective annotation of science and math questions into verified training data."""

__version__ = "0.1.0"
