"""Datasets, splits, batched transforms and resumable batch streams (docs/methods/shared.md, data)."""

from hdgen_cli.data.imageset import (ImageSet, data_bounds, from_model_range, resize_u8, to_model_range, to_uint8,
                                     unit_to_model_range)
from hdgen_cli.data.info import DataInfo
from hdgen_cli.data.registry import Splits, list_datasets, load_dataset, make_splits, register_dataset
from hdgen_cli.data.stream import BatchStream
from hdgen_cli.data.transforms import BatchTransform

__all__ = [
    "BatchStream",
    "BatchTransform",
    "DataInfo",
    "ImageSet",
    "Splits",
    "data_bounds",
    "from_model_range",
    "list_datasets",
    "load_dataset",
    "make_splits",
    "register_dataset",
    "resize_u8",
    "to_model_range",
    "to_uint8",
    "unit_to_model_range",
]
