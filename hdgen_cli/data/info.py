"""What a model must know about its data to be rebuilt without the data: shape, classes, pixel range."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hdgen_cli.data.imageset import data_bounds


@dataclass(frozen=True)
class DataInfo:
    """Saved in every checkpoint, so a model (and its sampler's bounds) is rebuilt from the file alone."""

    channels: int
    image_size: int
    num_classes: int
    pixel_range: str

    @classmethod
    def of(cls, images, pixel_range: str) -> "DataInfo":
        """The info of an ImageSet as a model sees it in `pixel_range`."""
        return cls(images.channels, images.image_size, images.num_classes, pixel_range)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def bounds(self) -> tuple[float, float]:
        return data_bounds(self.pixel_range)

    def to_dict(self) -> dict:
        return asdict(self)
