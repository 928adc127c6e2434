"""The recorded transform applied to new bytes: training loaders, serving, Object Lambda.

Pure (no pyspark, no pyarrow needed): it runs in a notebook, a data loader or a Lambda.
"""

from sparkprep.online.recipe import BadImage, PilTransform, RecipeError, Transform, load_transform

__all__ = ["BadImage", "PilTransform", "RecipeError", "Transform", "load_transform"]
