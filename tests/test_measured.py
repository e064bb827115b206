"""What an answer is worth: the caveat and the probability cap come from the answering model's own
records, per kind of image, and every front end shows the same."""
import io
import tarfile
from pathlib import Path

import pytest

from aidetect import labels, measured
from aidetect.predict import MODELS_DIR, read_run_info

WILD_CROPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "wild-crops"


def test_kinds_of_image():
    assert measured.image_kind(32, 32, "resize") == "small"
    assert measured.image_kind(64, 900, "resize") == "small"
    assert measured.image_kind(256, 256, "resize") == "full-size"
    assert measured.image_kind(40, 40, "native") == "full-size"


def test_a_capped_probability_is_never_shown_surer_than_the_measured_accuracy():
    assert labels.format_probability(0.0001) == "< 0.1%"
    assert labels.format_probability(0.0001, cap=0.58) == "< 42%"
    assert labels.format_probability(0.9999, cap=0.58) == "> 58%"
    assert labels.format_probability(0.55, cap=0.58) == "55.0%"
    assert "< 42% AI-generated" in labels.verdict(0.0001, cap=0.58).reason


def test_records_make_the_sentence_and_the_cap():
    info = {"metrics": {"accuracy": 0.973},
            "wild": {"accuracy": 0.71, "by_family": {"Stable Diffusion 1.x": {"fake": 934, "accuracy": 0.77}}},
            "wild_crops": {"changes": {"none": {"camera_photos_called_ai": 0.2, "ai_images_caught": 0.21, "by_family": {
                "camera photo": {"real": 568, "fake": 0}, "Midjourney": {"real": 0, "fake": 338},
                "Nano Banana": {"real": 0, "fake": 6}}}}}}
    small = measured.worth(info, "resize", "small")
    assert small.cap is None and "right on 97 of 100 test images" in small.caveat
    full = measured.worth(info, "resize", "full-size")
    assert full.cap == pytest.approx((0.8 * 568 + 0.21 * 344) / 912)
    assert ("calls 20 of 100 camera photos AI-generated and catches 2 of 10 Midjourney images (wild-crops) and "
            "catches 8 of 10 Stable Diffusion 1.x images (wild set): right on about 58 of 100") in full.caveat
    assert "no surer than 58%" in full.caveat


def test_unmeasured_kinds_say_so():
    assert "never measured on full-size images" in measured.worth({}, "resize", "full-size").caveat
    assert "never measured" in measured.worth({}, "resize", "small").caveat


def test_the_shipped_compact_models_records():
    path = MODELS_DIR / "compact" / "model.keras"
    if not path.is_file():
        pytest.skip(f"no shipped model at {path}")
    full = measured.worth(read_run_info(path), "resize", "full-size")
    assert full.cap is not None and full.cap < 0.7 and "Midjourney" in full.caveat


@pytest.mark.needs_cifake
@pytest.mark.needs_wild
def test_walk_through_every_card_has_a_reason_and_its_caveat(monkeypatch, sample_dir):
    """As a new user would: camera photos and Midjourney crops (wild-crops), a full-size photo, CIFAKE
    images, a declared-AI file and a HEIC, on the shipped model's page."""
    from tests import evidence_files
    from tests.test_web_app import open_page, verdicts

    model = MODELS_DIR / "compact" / "model.keras"
    if not (WILD_CROPS / "REAL.tar").is_file() or not model.is_file():
        pytest.skip(f"needs {WILD_CROPS} and {model}")
    files = []
    for class_name in ("REAL", "FAKE"):
        with tarfile.open(WILD_CROPS / f"{class_name}.tar") as tar:
            members = [m for m in tar if m.isfile() and m.name.endswith(".jpg")][:3]
            files += [(f"crop-{Path(m.name).name}", tar.extractfile(m).read(), "image/jpeg") for m in members]
    from PIL import Image
    big = io.BytesIO()
    Image.open(io.BytesIO(files[0][1])).resize((1600, 1600)).save(big, "JPEG", quality=92)
    files.append(("big-photo.jpg", big.getvalue(), "image/jpeg"))
    files += [(p.name, p.read_bytes(), "image/jpeg") for p in sorted((sample_dir / "FAKE").glob("*.jpg"))[:2]]
    files.append(("phone.heic", evidence_files.heic_photo((800, 600)), "image/heic"))
    files.append(("declared.jpg", evidence_files.signed(evidence_files.make_signing_ca(),
                                                         data=evidence_files.picture(size=(640, 480))), "image/jpeg"))
    page = open_page(monkeypatch, model, files)
    assert not page.error and len(verdicts(page)) == len(files)
    reasons = [c.value for c in page.caption if c.value.startswith("Why: ")]
    worth = [m.value.replace("\\", "") for m in page.markdown
             if m.value.startswith(":orange[**What this answer is worth:**]")]
    assert len(reasons) == len(worth) == len(files)
    shown = list(page.dataframe[0].value["probability AI-generated"])
    for (name, _, _), caveat, probability in zip(files, worth, shown):
        if name.startswith("fake_"):            # CIFAKE: what the model was measured on, and good at
            assert "right on 97 of 100 test images" in caveat
        else:                                   # full-size: its measured caveat and no false certainty
            assert "On full-size images from sources it never saw" in caveat, name
            assert probability not in ("< 0.1%", "> 99.9%"), (name, probability)
    assert "file declares AI" in list(page.dataframe[0].value["decided by"])


def test_picker_labels_say_what_each_shipped_model_is_for():
    labels_ = {name: measured.describe_model(name, read_run_info(MODELS_DIR / name / "model.keras"), short=True,
                                             served=name == "compact") for name in ("compact", "resnet101")}
    if not (MODELS_DIR / "resnet101" / "metrics.json").is_file():
        pytest.skip("the shipped models' records are not in this copy")
    assert labels_ == {"compact": "compact CNN for 32 px images · 97.3% on CIFAKE test (served)",
                       "resnet101": "ResNet101 for 32 px images · 95.6% on CIFAKE test"}
