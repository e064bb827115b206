"""What an answer is worth for this kind of image, from the answering model's own measured records.

A 32 px model that is right on 97 of 100 CIFAKE images is near chance on full-size photos against
modern generators, and its "< 0.1 %" on such a photo is wrong almost half the time (measured:
docs/results.md, "What a probability is worth"). So every verdict carries one sentence from the
run folder's records (metrics.json, wild.json, wild_crops.json) for the kind of image it answered,
and where the model measured poorly on that kind its probability is shown no surer than its
measured accuracy there (`cap`).
"""
from dataclasses import dataclass
from typing import Dict, Optional

SMALL_IMAGE_PX = 64             # up to this (shorter side): a CIFAKE-like small image, as trained on
RELIABLE_ACCURACY = 0.90        # below this on a kind of image, its probabilities are capped there


@dataclass(frozen=True)
class Worth:
    caveat: str                 # one sentence: what the model measured on this kind of image
    cap: Optional[float] = None     # show probabilities no surer than this (None: as they are)


def image_kind(width: int, height: int, view: str) -> str:
    """'small' (CIFAKE-like) or 'full-size'; a native-resolution model reads every image as it is."""
    return "full-size" if view == "native" or min(width, height) > SMALL_IMAGE_PX else "small"


def _of(count: float) -> str:
    return f"{round(count * 10)} of 10"


def _wild_crops_numbers(record: Dict):
    """(accuracy, sentence) from wild_crops.json's unprocessed test images, or None."""
    row = record.get("changes", {}).get("none", {})
    families = row.get("by_family", {})
    camera = families.get("camera photo", {})
    fake = sum(f.get("fake", 0) for f in families.values())
    if not camera.get("real") or not fake or "camera_photos_called_ai" not in row:
        return None
    accuracy = ((1 - row["camera_photos_called_ai"]) * camera["real"] + row["ai_images_caught"] * fake) / (camera["real"] + fake)
    named = [name for name, f in families.items() if f.get("fake", 0) >= 10]
    sentence = (f"calls {round(row['camera_photos_called_ai'] * 100)} of 100 camera photos AI-generated and catches "
                f"{_of(row['ai_images_caught'])} {' or '.join(named) or 'modern generator'} images (wild-crops)")
    return accuracy, sentence


def _wild_numbers(record: Dict):
    """(accuracy, sentence) from wild.json (the wild set, mostly Stable Diffusion 1.x), or None."""
    families = record.get("by_family", {})
    sd = families.get("Stable Diffusion 1.x", {})
    if not isinstance(record.get("accuracy"), (int, float)) or not sd.get("fake"):
        return None
    return record["accuracy"], f"catches {_of(sd['accuracy'])} Stable Diffusion 1.x images (wild set)"


def worth(info: Dict, view: str, kind: str) -> Worth:
    """The caveat (and cap) for an image of `kind` answered by a model whose records are `info`
    (predict.read_run_info)."""
    if kind == "small":
        accuracy = info.get("metrics", {}).get("accuracy")
        if not isinstance(accuracy, (int, float)):
            return Worth("This model's accuracy was never measured (no metrics.json beside it): its answer is untested.")
        return Worth(f"On small CIFAKE-style images like this one it was right on {round(accuracy * 100)} of 100 "
                     "test images (CIFAR-10 photos vs. Stable Diffusion 1.4).",
                     None if accuracy >= RELIABLE_ACCURACY else accuracy)
    measured = [m for m in (_wild_crops_numbers(info.get("wild_crops", {})), _wild_numbers(info.get("wild", {}))) if m]
    if not measured:
        return Worth("This model was never measured on full-size images like this one: its answer is untested.")
    accuracy = min(m[0] for m in measured)
    trained = "This is a model of 32 px images. " if view != "native" else ""
    sentence = (f"{trained}On full-size images from sources it never saw it " + " and ".join(m[1] for m in measured)
                + f": right on about {round(accuracy * 100)} of 100")
    if accuracy >= RELIABLE_ACCURACY:
        return Worth(sentence + ".")
    return Worth(sentence + f", a weak hint; its probabilities are shown no surer than {accuracy:.0%}.", accuracy)


ARCHITECTURES = {"resnet101": "ResNet101", "compact": "compact CNN", "residual": "residual CNN"}


def describe_model(name: str, info: Dict, short: bool = False, served: bool = False) -> str:
    """What a model is for and how it measured, from its records (predict.read_run_info): for the
    picker (short) 'compact CNN for 32 px images · 97.3% on CIFAKE test (served)', else
    'compact (compact CNN for 32 px images, 97.3% on CIFAKE test)'."""
    settings = info.get("settings", {})
    architecture = ARCHITECTURES.get(settings.get("backbone"), settings.get("backbone") or name)
    if settings.get("view") == "native":      # not a CIFAKE model: no CIFAKE accuracy
        what, measured = f"{architecture} for full-size images", "held-out wild-crops in its notes"
    else:
        accuracy = info.get("metrics", {}).get("accuracy")
        what = f"{architecture} for {settings.get('image_size', 32)} px images"
        measured = f"{accuracy:.1%} on CIFAKE test" if isinstance(accuracy, (int, float)) else "not measured"
    if short:
        return f"{what} · {measured}" + (" (served)" if served else "") + ("" if name.lower() in what.lower() else f" · {name}")
    return f"{name} ({what}, {measured})"
