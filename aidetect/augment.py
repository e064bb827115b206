"""The augmentations, defined once: used offline by augment_data.py and online by training."""
from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentSettings:
    rotation_degrees: float = 20.0
    shift: float = 0.2          # fraction of width/height
    shear: float = 0.2
    zoom: float = 0.2
    horizontal_flip: bool = True


def augmentation_layers(settings: AugmentSettings = AugmentSettings(), seed: int = 42):
    """A Keras Sequential of preprocessing layers; acts on batches of float pixels when training=True."""
    import keras

    layers = [
        keras.layers.RandomRotation(settings.rotation_degrees / 360.0, fill_mode="reflect", seed=seed),
        keras.layers.RandomTranslation(settings.shift, settings.shift, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomShear(settings.shear, settings.shear, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomZoom(settings.zoom, settings.zoom, fill_mode="reflect", seed=seed + 3),
    ]
    if settings.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")
