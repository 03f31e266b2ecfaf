"""The one error type of the quality classifier (training, scoring, loading a model directory)."""


class ClassifierError(ValueError):
    """Training or loading the classifier is not possible (too little data, a bad model directory)."""
