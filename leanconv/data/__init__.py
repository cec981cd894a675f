"""Training data: Fashion-MNIST, an image folder of the user's own, or a synthetic set, as a
:class:`Dataset` of uint8 images served in batches (:func:`load_dataset`), normalised and
augmented per batch on the device (:func:`prepare`)."""

from leanconv.data.dataset import Dataset, ImageSet, TensorImages
from leanconv.data.load import load_dataset, parse_data_spec
from leanconv.data.sampling import batches, shard_order
from leanconv.data.transforms import prepare

__all__ = ["Dataset", "ImageSet", "TensorImages", "batches", "load_dataset", "parse_data_spec",
           "prepare", "shard_order"]
