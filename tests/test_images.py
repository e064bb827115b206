import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aidetect import images
from tests.bad_inputs import CASES, animated_gif, decompression_bomb_png, exif_rotated_jpeg, png_16_bit

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name, build, expected", CASES, ids=[c[0] for c in CASES])
def test_every_awkward_file_decodes_or_gets_a_one_line_error(name, build, expected, tmp_path):
    data = build()
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    for source in (data, path):                      # bytes (web app) and paths (CLI, training)
        rgb, error = images.try_load_rgb(source)
        if isinstance(expected, tuple):
            assert error is None, error
            assert rgb.dtype == np.uint8 and rgb.shape == expected + (3,)
        else:
            assert rgb is None and expected in error and "\n" not in error


def test_orientation_and_first_frame_and_16_bit_are_handled_right():
    assert images.load_rgb(exif_rotated_jpeg()).shape == (48, 32, 3)     # portrait after rotation
    assert tuple(images.load_rgb(animated_gif())[0, 0]) == (255, 0, 0)     # first frame is red
    ramp = images.load_rgb(png_16_bit())[0, :, 0]
    assert ramp[0] == 0 and ramp[-1] == 255 and np.all(np.diff(ramp.astype(int)) >= 0)


def test_decompression_bomb_is_refused_fast_and_small():
    """Checked in a fresh process without TensorFlow, so its peak memory is the loader's. Peak =
    VmHWM of the process's own memory: ru_maxrss would carry over pytest's peak across exec."""
    script = (
        "import re, time; from pathlib import Path; from tests.bad_inputs import decompression_bomb_png; "
        "from aidetect.images import try_load_rgb; data = decompression_bomb_png(); "
        "t = time.perf_counter(); _, error = try_load_rgb(data); seconds = time.perf_counter() - t; "
        "peak_kib = re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text())[1]; "
        "print(seconds, int(peak_kib) // 1024, error)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    seconds, peak_mib, *error = out.stdout.split(maxsplit=2)
    assert float(seconds) < 1.0 and int(peak_mib) < 300, out.stdout
    assert "too large" in error[0]
    assert len(decompression_bomb_png()) < 200_000


def test_missing_file_is_an_error_not_a_crash(tmp_path):
    rgb, error = images.try_load_rgb(tmp_path / "gone.jpg")
    assert rgb is None and error.startswith("cannot open file")


def test_a_folder_given_as_an_image_says_it_cannot_be_opened(tmp_path):
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    assert images.try_load_rgb(folder) == (None, "cannot open file: Is a directory")


def test_training_and_every_serving_path_see_identical_pixels(sample_dir, tiny_model_path):
    """Training/evaluation batches (data.make_dataset), classify.py/Beam/evaluate (batch.inputs_op)
    and the page (Predictor.views) decode through preprocess.decode_op or images.load_rgb and fit
    through preprocess: byte-identical inputs, so training and serving cannot drift apart."""
    from aidetect import batch
    from aidetect.data import make_dataset
    from aidetect.predict import Predictor
    from aidetect.preprocess import resize_to_model
    paths = sorted(str(p) for p in (sample_dir / "FAKE").iterdir())[:4]
    for size in (32, 64):
        training, _ = next(iter(make_dataset(paths, [1] * 4, image_size=size, batch_size=4)))
        expected = np.stack([resize_to_model(images.load_rgb(p), size).numpy() for p in paths]).astype(np.float32)
        np.testing.assert_array_equal(training.numpy(), expected)
    predictor = Predictor.load(tiny_model_path)
    streamed, errors = next(iter(batch.make_dataset(paths, predictor, 4)))
    assert not any(errors.numpy())
    training, _ = next(iter(make_dataset(paths, [1] * 4, image_size=predictor.image_size, batch_size=4)))
    page = np.stack([predictor.views(images.load_rgb(Path(p).read_bytes())) for p in paths])
    np.testing.assert_array_equal(streamed.numpy(), page)
    np.testing.assert_array_equal(streamed.numpy()[:, 0], training.numpy())


def test_a_decoder_bug_is_an_error_message_not_a_crash(monkeypatch):
    def broken_decoder(*_args, **_kwargs):
        raise RuntimeError("bug inside the decoder")
    monkeypatch.setattr(images.Image, "open", broken_decoder)
    assert images.try_load_rgb(b"any bytes") == (None, "cannot decode image: RuntimeError")


def test_operations_doc_table_is_the_one_the_cases_print():
    from tests.bad_inputs import markdown_table
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert markdown_table() in operations, "rerun `python tests/bad_inputs.py`, paste it into docs/operations.md"


def test_an_image_at_the_models_size_passes_through_and_others_are_resized_alike(tmp_path, tiny_model_path):
    """to_inputs skips the resize of an image already at the model's size: the same pixels as
    resizing it; a folder of mixed sizes streams to exactly the page's inputs, batch by batch."""
    from PIL import Image
    from aidetect import batch
    from aidetect.predict import Predictor
    from aidetect.preprocess import model_views, to_inputs
    rng = np.random.default_rng(3)
    at_size = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(model_views(at_size, 32).numpy(), to_inputs(images.load_rgb(_png(at_size)), 32))
    paths = []
    for index, shape in enumerate([(32, 32), (60, 100), (400, 500), (32, 32), (31, 33)]):
        path = tmp_path / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)).save(path)
        paths.append(str(path))
    paths.append(str(tmp_path / "missing.png"))
    predictor = Predictor.load(tiny_model_path)
    streamed = [(inputs.numpy(), errors.numpy()) for inputs, errors in batch.make_dataset(paths, predictor, 4)]
    inputs = np.concatenate([i for i, _ in streamed])
    errors = np.concatenate([e for _, e in streamed])
    assert [len(i) for i, _ in streamed] == [4, 2] and errors[-1].startswith(b"cannot open file")
    for path, views in zip(paths[:-1], inputs):
        np.testing.assert_array_equal(views, predictor.views(images.load_rgb(path)))


def _png(pixels: np.ndarray) -> bytes:
    import io
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()
