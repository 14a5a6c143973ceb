"""synthaug: synthetic-data augmentation with class-conditional generative models.

Heavy modules (TensorFlow, Keras) are imported on first use of a public name, so that
``import synthaug`` and ``synthaug --help`` stay fast.
"""
from importlib import import_module

__version__ = "0.1.0"
__all__ = ["VAE", "GAN", "Flow", "PixelCNN", "PoseModel", "GenerativeEstimator", "load", "evaluate", "EvaluationReport", "pretrained"]

_LAZY = {
    "VAE": "synthaug.models.vae",
    "Flow": "synthaug.models.flow",
    "GAN": "synthaug.models.gan",
    "PixelCNN": "synthaug.models.pixelcnn",
    "PoseModel": "synthaug.models.pose",
    "GenerativeEstimator": "synthaug.base",
    "load": "synthaug.base",
    "evaluate": "synthaug.evaluation",
    "EvaluationReport": "synthaug.evaluation",
}


def __getattr__(name):
    if name == "pretrained":  # the subpackage, importable without TensorFlow
        return import_module("synthaug.pretrained")
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthaug' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
