"""The Streamlit page, driven headlessly with AppTest (uploads included; no browser, no server)."""
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

PAGE = Path(__file__).resolve().parent.parent / "web_app.py"
TIMEOUT = 120                   # first run imports TensorFlow and loads the model


@pytest.fixture(scope="module")
def ai_model_path(tmp_path_factory, tiny_settings) -> Path:
    """A tiny model that calls everything AI-generated (p ~ 0.99995), with a metrics.json."""
    from aidetect.model import build_model, save_slim
    model = build_model(tiny_settings)
    model.get_layer("prediction").bias.assign([0.0, 10.0])
    run_dir = tmp_path_factory.mktemp("ai-run")
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.9123}))
    return save_slim(model, tiny_settings, run_dir / "model.keras")


def uploads(folder: Path, count: int):
    return [(path.name, path.read_bytes(), "image/jpeg") for path in sorted(folder.glob("*.jpg"))[:count]]


def open_page(monkeypatch, model_path, files=None) -> AppTest:
    monkeypatch.setenv("AIDETECT_MODEL", str(model_path))
    monkeypatch.setattr(sys, "argv", ["web_app.py"])       # pytest's own arguments are not for the page
    page = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    if files:
        page.file_uploader[0].set_value(files).run()
    assert not page.exception, page.exception
    return page


def set_sliders(page: AppTest, **values) -> None:
    for key, value in values.items():
        page.slider(key=key).set_value(value)
    page.run()


def verdicts(page: AppTest):
    return [m.value for m in page.markdown if m.value.startswith("#### ")]


def probabilities(page: AppTest):
    return [m.value for m in page.markdown if m.value.startswith("Probability AI-generated: ")]


def explain_caption(page: AppTest) -> bool:
    from aidetect.explain import HOW_TO_READ
    return any(caption.value == HOW_TO_READ for caption in page.caption)


def test_each_upload_gets_verdict_probability_and_heatmap(monkeypatch, ai_model_path, sample_dir):
    files = uploads(sample_dir / "REAL", 2) + uploads(sample_dir / "FAKE", 1)
    page = open_page(monkeypatch, ai_model_path, files)
    assert page.file_uploader[0].label == "Choose images..."
    assert len(verdicts(page)) == 3 and all("AI-generated" in v for v in verdicts(page))
    assert len(probabilities(page)) == 3 and all(c == "Probability AI-generated: **> 99.9%**" for c in probabilities(page))
    assert len(page.expander) == 3
    assert explain_caption(page) and len(page.get("image")) == 6      # picture + overlay each
    summary = page.dataframe[0].value
    assert list(summary["file"]) == [name for name, _, _ in files]
    assert list(summary["verdict"]) == ["AI-generated"] * 3
    assert list(summary["probability AI-generated"]) == ["> 99.9%"] * 3      # never 100 %
    assert len(page.get("download_button")) == 1
    assert "right on 91 of 100" in page.info[0].value and "Stable Diffusion 1.4" in page.info[0].value
    assert "never measured on full-size images" in page.warning[0].value and "may fool it" in page.warning[0].value
    worth = [m.value for m in page.markdown if m.value.startswith(":orange[**What this answer is worth:**]")]
    assert len(worth) == 3 and all("right on 91 of 100 test images" in w for w in worth)


def _saved_tiny(run_dir: Path, settings, bias, accuracy: float) -> Path:
    from aidetect.model import build_model, save_slim
    model = build_model(settings)
    model.get_layer("prediction").bias.assign(bias)
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    (run_dir / "settings.json").write_text(json.dumps({"backbone": "tiny"}))
    return save_slim(model, settings, run_dir / "model.keras")


def test_model_picker_lists_shipped_models_with_accuracy_and_switches_answers(
        monkeypatch, tmp_path, tiny_settings, sample_dir):
    import aidetect.predict
    models = tmp_path / "models"
    says_ai = _saved_tiny(models / "compact", tiny_settings, [0.0, 10.0], 0.971)
    says_real = _saved_tiny(models / "resnet101", tiny_settings, [10.0, 0.0], 0.956)
    (says_real.parent / "robustness.json").write_text(json.dumps(
        {"mean_accuracy": 0.81, "worst_accuracy": 0.70, "worst_change": "sharpened"}))
    (says_real.parent / "wild.json").write_text(json.dumps({"images": 2162, "accuracy": 0.71, "by_family": {
        "camera photo": {"real": 1090, "fake": 0, "accuracy": 0.69},
        "Stable Diffusion 1.x": {"real": 0, "fake": 934, "accuracy": 0.77},
        "FLUX.1": {"real": 0, "fake": 31, "accuracy": 0.52}, "Kolors": {"real": 0, "fake": 2, "accuracy": 1.0}}}))
    monkeypatch.setattr(aidetect.predict, "MODELS_DIR", models)
    page = open_page(monkeypatch, says_ai, uploads(sample_dir / "FAKE", 2))
    picker = page.selectbox(key="model")
    assert picker.options == ["tiny for 32 px images · 97.1% on CIFAKE test (served) · compact",
                              "tiny for 32 px images · 95.6% on CIFAKE test · resnet101"]
    assert all("AI-generated" in v for v in verdicts(page))
    assert "never measured on full-size images" in page.warning[0].value
    picker.set_value(str(says_real)).run()
    assert not page.exception and len(verdicts(page)) == 2 and all("Real" in v for v in verdicts(page))
    assert "answering: resnet101 (tiny for 32 px images, 95.6% on CIFAKE test)" in page.info[0].value.replace("\\", "")
    assert "right on 70 of 100 at worst (sharpened)" in page.info[0].value
    # the wild set's numbers from the model's own wild.json, in plain numbers, families of ten or more
    warning = page.warning[0].value
    assert warning.startswith("**What this model is bad at.**")
    assert "catches 8 of 10 Stable Diffusion 1.x images (wild set): right on about 71 of 100" in warning
    assert "it catches, by generator: Stable Diffusion 1.x 8, FLUX.1 5." in warning
    assert "Kolors" not in warning and "camera photo" not in warning and "AUC" not in warning


def test_a_model_that_measured_below_70_percent_is_flagged(monkeypatch, tmp_path, tiny_settings, sample_dir):
    weak = _saved_tiny(tmp_path / "quick", tiny_settings, [10.0, 0.0], 0.50)
    page = open_page(monkeypatch, weak, uploads(sample_dir / "FAKE", 1))
    assert len(page.error) == 1 and "measured only 50.0% accuracy" in page.error[0].value
    assert "not reliable" in page.error[0].value and len(verdicts(page)) == 1
    fine = _saved_tiny(tmp_path / "fine", tiny_settings, [10.0, 0.0], 0.90)
    assert not open_page(monkeypatch, fine, uploads(sample_dir / "FAKE", 1)).error


def test_unreadable_upload_gets_its_own_error_and_others_still_get_verdicts(
        monkeypatch, tiny_model_path, sample_dir):
    unreadable = [("broken.jpg", b"not an image", "image/jpeg"), ("empty.png", b"", "image/png")]
    files = uploads(sample_dir / "REAL", 1) + unreadable + uploads(sample_dir / "FAKE", 1)
    page = open_page(monkeypatch, tiny_model_path, files)
    errors = [e.value for e in page.error]
    assert len(errors) == 2
    assert "broken" in errors[0] and "not an image file" in errors[0]
    assert "empty" in errors[1] and "file is empty" in errors[1]
    assert len(verdicts(page)) == 2 and len(probabilities(page)) == 2
    assert "not recorded" in page.info[0].value          # the tiny run folder has no metrics.json


def encoded(format_name: str, size) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=format_name)
    return buffer.getvalue()


def test_png_webp_bmp_heic_avif_and_large_photos(monkeypatch, ai_model_path):
    files = [("photo.png", encoded("PNG", (1600, 1200)), "image/png"),
             ("small.webp", encoded("WEBP", (48, 40)), "image/webp"),
             ("old.bmp", encoded("BMP", (64, 64)), "image/bmp"),
             ("iphone.heic", encoded("HEIF", (120, 90)), "image/heic"),       # written by pillow-heif
             ("web.avif", encoded("AVIF", (96, 64)), "image/avif")]
    page = open_page(monkeypatch, ai_model_path, files)
    assert not page.error and len(verdicts(page)) == 5
    assert set(page.file_uploader[0].allowed_type) >= {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif",
                                                       ".tiff", ".heic", ".heif", ".avif"}


def test_threshold_and_uncertain_band_change_verdicts(monkeypatch, ai_model_path, sample_dir):
    page = open_page(monkeypatch, ai_model_path, uploads(sample_dir / "REAL", 2))
    assert all("AI-generated" in v for v in verdicts(page))
    captions = [c.value for c in page.caption]
    assert any("AI-generated at 50% or more, Real below; Uncertain from 40% to 60%." in c for c in captions)
    assert sum(c.startswith("Why: the pixels say") and "at or above the 50% threshold" in c for c in captions) == 2
    set_sliders(page, threshold=1.0, uncertain_band=0.0)
    assert len(verdicts(page)) == 2 and all("Real" in v for v in verdicts(page))
    captions = [c.value for c in page.caption]
    assert any("AI-generated at 100% or more, Real below." in c for c in captions)
    assert sum("below the 100% threshold" in c for c in captions) == 2
    set_sliders(page, threshold=0.8, uncertain_band=0.25)
    assert all("Uncertain — review manually" in v for v in verdicts(page))
    assert not page.exception


@pytest.mark.parametrize("problem", ["missing", "broken"])
def test_unusable_model_explains_how_to_get_one(monkeypatch, tmp_path, problem):
    model_path = tmp_path / "model.keras"
    if problem == "broken":
        model_path.write_bytes(b"not a keras file")
    page = open_page(monkeypatch, model_path)
    reason = "no model at" if problem == "missing" else "cannot load model"
    assert len(page.error) == 1 and reason in page.error[0].value
    assert any("python model_training.py train" in m.value and "--model models/mine" in m.value
               and "shipped" in m.value for m in page.markdown)
    assert not page.file_uploader


def test_model_flag_wins_over_environment(monkeypatch, tmp_path, ai_model_path):
    monkeypatch.setenv("AIDETECT_MODEL", str(tmp_path / "missing.keras"))
    monkeypatch.setattr(sys, "argv", ["web_app.py", "--model", str(ai_model_path.parent)])
    page = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not page.error and page.file_uploader


@pytest.mark.needs_cifake
def test_shipped_model_verdicts_match_the_package(monkeypatch, shipped_model_path, sample_dir):
    from aidetect.predict import Predictor
    files = uploads(sample_dir / "REAL", 5) + uploads(sample_dir / "FAKE", 5)
    page = open_page(monkeypatch, shipped_model_path)
    page.slider(key="uncertain_band").set_value(0.0)
    page.file_uploader[0].set_value(files).run()
    assert not page.exception and not page.error
    expected = Predictor.load(shipped_model_path).classify([data for _, data, _ in files])
    assert list(page.dataframe[0].value["verdict"]) == [result.label for result in expected]
    metrics = shipped_model_path.parent / "metrics.json"
    note = (f"right on {round(json.loads(metrics.read_text())['accuracy'] * 100)} of 100" if metrics.is_file()
            else "not recorded")
    assert note in page.info[0].value
    assert page.warning[0].value.startswith("**What this model is bad at.** This is a model of 32 px images.")


@pytest.mark.needs_cifake
def test_a_native_model_says_what_it_reads_and_which_model_answered_each_image(monkeypatch, tmp_path):
    """A full-size image is answered by the native-resolution model, a 40 px one by the shipped
    32 px model, and the page says so on each card, beside a note that is not about CIFAKE."""
    from aidetect.model import build_model, save_slim
    from aidetect.predict import SMALL_IMAGE_MODEL_PATH
    from aidetect.settings import Settings
    if not SMALL_IMAGE_MODEL_PATH.is_file():
        pytest.skip(f"the shipped 32 px model is not at {SMALL_IMAGE_MODEL_PATH}")
    settings = Settings(backbone="tiny", dense_units=8, image_size=48, view="native", crops=5, float16_weights=False)
    run_dir = tmp_path / "native-run"
    run_dir.mkdir()
    (run_dir / "settings.json").write_text(settings.to_json())
    (run_dir / "wild_crops.json").write_text(json.dumps({"changes": {"none": {
        "auc_photo_style": 0.69, "camera_photos_called_ai": 0.03, "ai_images_caught": 0.12,
        "by_family": {"camera photo": {"real": 568, "fake": 0}, "Midjourney": {"real": 0, "fake": 338}}}}}))
    model_path = save_slim(build_model(settings), settings, run_dir / "model.keras")
    page = open_page(monkeypatch, model_path, [("photo.png", encoded("PNG", (640, 480)), "image/png"),
                                                ("tiny.png", encoded("PNG", (40, 40)), "image/png")])
    assert not page.error and len(verdicts(page)) == 2
    note = page.info[0].value
    assert "5 crops of 48 px at each image's own resolution" in note and "CIFAKE" not in note
    assert "calls 3 of 100 camera photos AI-generated and catches 1 of 10 Midjourney images" in page.warning[0].value
    answered = [c.value for c in page.caption if c.value.startswith("Answered by ")]
    assert "native\\-run" in answered[0] and "640x480 px" in answered[0]
    assert answered[1].startswith("Answered by compact") and "40x40 px is smaller than" in answered[1]


def test_evidence_section_for_a_declared_ai_upload(monkeypatch, ai_model_path):
    pytest.importorskip("c2pa", reason="c2pa-python is not installed")
    from tests import evidence_files
    signed = evidence_files.signed(evidence_files.make_signing_ca())
    page = open_page(monkeypatch, ai_model_path, [("declared.jpg", signed, "image/jpeg"),
                                                   ("plain.jpg", evidence_files.picture("JPEG"), "image/jpeg")])
    assert len(verdicts(page)) == 2 and "AI-generated" in verdicts(page)[0]
    texts = [m.value for m in page.markdown]
    assert any(t.startswith("- What the file says: **The file declares it is AI-generated (Content Credentials)**")
               and "aidetect Test Signer" in t for t in texts)
    assert any(t.startswith("- What the file says: **Nothing in the file says where it came from**") for t in texts)
    assert sum(t.startswith("- What the pixels say: ") for t in texts) == 2
    assert "- Decided by: **file declares AI**" in texts
    summary = page.dataframe[0].value
    assert list(summary["file evidence"]) == ["c2pa-ai", "none"]
