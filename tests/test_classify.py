"""classify.py end to end (in-process) and the streaming pipeline behind it."""
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import classify
from aidetect import batch, results
from aidetect.predict import Predictor
from aidetect.preprocess import to_inputs


@pytest.fixture
def image_dir(tmp_path, sample_dir, monkeypatch):
    """./images/{REAL,FAKE}/<4 each> plus ./images/broken.png, with tmp_path as the working folder."""
    for class_name in ("REAL", "FAKE"):
        (tmp_path / "images" / class_name).mkdir(parents=True)
        for image in sorted((sample_dir / class_name).iterdir())[:4]:
            shutil.copy(image, tmp_path / "images" / class_name)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "images" / "notes.txt").write_text("not an image extension: skipped")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "images"


def run(capsys, *argv):
    status = classify.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_on_stdout_keeps_paths_as_given_and_goes_on_after_bad_files(image_dir, tiny_model_path, capsys):
    status, out, err = run(capsys, "./images/", "./images/REAL", "--model", tiny_model_path)
    assert status == 0
    assert out.splitlines()[0] == "path,label,prob_ai,error,model,route,rule,reason,provenance,provenance_detail,caveat"
    rows = csv_rows(out)
    assert {row["model"] for row in rows if not row["error"]} == {Path(tiny_model_path).parent.name}
    assert all("shrunk to 32x32 px" in row["route"] for row in rows if not row["error"])
    paths = [row["path"] for row in rows]
    assert paths == sorted(paths) and len(paths) == 13          # REAL's four images listed twice
    assert "./images/REAL/" + sorted((image_dir / "REAL").iterdir())[0].name in paths
    by_path = {row["path"]: row for row in rows}
    assert by_path["./images/broken.png"]["error"].startswith("not an image file")
    good = [row for row in rows if not row["error"]]
    assert len(good) == 12
    for row in good:
        assert row["label"] in ("AI-generated", "Real", "Uncertain") and len(row["prob_ai"].split(".")[1]) == 6
    # no progress bar (stderr is not a terminal here): only the summary
    assert err.count("\n") == 1 and err.startswith("14 files: 12 classified, 1 unreadable (see the error column), "
                                                    "1 skipped by type (not pictures); ")


def test_streaming_gives_the_web_apps_probabilities(image_dir, tiny_model_path):
    predictor = Predictor.load(tiny_model_path)
    files, _ = batch.list_inputs([str(image_dir)])
    expected = predictor.classify(files)
    streamed = list(batch.classify_files(predictor, files, batch_size=3, progress=False))
    assert [r.name for r in streamed] == files
    for mine, theirs in zip(streamed, expected):
        assert mine.error == theirs.error and mine.label == theirs.label
        if not mine.error:
            assert mine.prob_ai == pytest.approx(theirs.prob_ai, abs=1e-6)


def _jpeg(pixels: np.ndarray, mode: str = "RGB", fmt: str = "JPEG", **options) -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def _refused_by_tensorflow(jpeg: bytes) -> bytes:
    """A complete-looking JPEG whose scan names a component its frame lacks: the header passes,
    the decoder fails (Pillow: 'broken data stream'; TensorFlow: InvalidArgumentError)."""
    scan = jpeg.index(b"\xff\xda")
    return jpeg[:scan + 5] + b"\x09" + jpeg[scan + 6:]


def test_plain_jpegs_decoded_by_tensorflow_give_the_loaders_exact_answers(tmp_path, tiny_model_path):
    """JPEGs that hold nothing but pixels (images.plain_jpeg_size) are decoded by TensorFlow's ops
    (issue 26), every other file by the shared loader: the same pixels, probabilities and records
    as the page's path (Predictor.classify), in order; a JPEG TensorFlow refuses is read by the
    loader, which says why, and the run goes on."""
    from tests.bad_inputs import exif_rotated_jpeg, truncated_jpeg
    from aidetect import images
    from aidetect.preprocess import plain_jpegs_to_inputs
    rng = np.random.default_rng(5)
    noise = lambda height, width: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # noqa: E731
    plain = {"q75.jpg": _jpeg(noise(32, 32), quality=75), "444.jpg": _jpeg(noise(31, 33), subsampling=0),
             "progressive.jpg": _jpeg(noise(60, 100), progressive=True),
             "422.jpg": _jpeg(noise(400, 500), quality=95, subsampling=1), "grey.jpg": _jpeg(noise(40, 40), "L")}
    loader = {"rotated.jpg": exif_rotated_jpeg(), "xmp.jpg": _jpeg(noise(32, 32), xmp=b"<x:xmpmeta/>"),
              "cmyk.jpg": _jpeg(noise(32, 32), "CMYK"), "truncated.jpg": truncated_jpeg(),
              "photo.png": _jpeg(noise(32, 32), fmt="PNG"), "empty.jpg": b""}
    refused = {"refused.jpg": _refused_by_tensorflow(_jpeg(noise(64, 64)))}
    for name, data in {**plain, **loader, **refused}.items():
        (tmp_path / name).write_bytes(data)
        assert (images.plain_jpeg_size(data) is not None) == (name not in loader), name
    for data in plain.values():
        rgb = images.load_rgb(data)
        assert images.plain_jpeg_size(data) == (rgb.shape[1], rgb.shape[0])
        for size, view, crops in ((32, "resize", 1), (40, "resize", 1), (64, "resize", 1), (32, "native", 5), (24, "crops", 4)):
            (inputs,) = plain_jpegs_to_inputs([data], [images.plain_jpeg_size(data)], size, view, crops)
            np.testing.assert_array_equal(inputs, to_inputs(rgb, size, view, crops))

    predictor = Predictor.load(tiny_model_path)
    files = sorted(str(tmp_path / name) for name in {**plain, **loader, **refused})
    streamed = list(batch.classify_files(predictor, files, batch_size=3, progress=False))
    assert streamed == predictor.classify(files)
    assert [Path(r.name).name for r in streamed if r.error] == ["empty.jpg", "refused.jpg", "truncated.jpg"]


def test_json_output_threshold_and_uncertain_band(image_dir, tiny_model_path, capsys, monkeypatch):
    monkeypatch.setenv("AIDETECT_MODEL", str(tiny_model_path))          # the default model
    assert run(capsys, "images", "--output", "out.json", "--uncertain-band", "0.5")[0] == 0
    rows = json.loads((image_dir.parent / "out.json").read_text())
    assert all(list(row) == list(results.COLUMNS) for row in rows)
    assert {row["label"] for row in rows if not row["error"]} == {"Uncertain"}

    assert run(capsys, "images", "--output", "out.csv", "--threshold", "0")[0] == 0
    rows = csv_rows((image_dir.parent / "out.csv").read_text())
    assert {row["label"] for row in rows if not row["error"]} == {"AI-generated"}

    with pytest.raises(SystemExit):
        classify.main(["images", "--threshold", "1.5"])


def test_shards_split_the_sorted_list_without_overlap(image_dir, tiny_model_path, capsys):
    everything = csv_rows(run(capsys, "images", "--model", tiny_model_path)[1])
    shards = [csv_rows(run(capsys, "images", "--model", tiny_model_path, "--shard", f"{i}/3")[1])
              for i in range(3)]
    assert [row for shard in shards for row in shard] == everything
    assert all(len(shard) in (3, 4) for shard in shards)


def test_explain_writes_one_overlay_per_classified_image(image_dir, tiny_model_path, capsys):
    status, out, _ = run(capsys, "images/REAL", "images/broken.png", "--model", tiny_model_path,
                         "--explain", "overlays")
    assert status == 0
    overlays = sorted((image_dir.parent / "overlays").iterdir())
    assert len(overlays) == 4 and all(p.suffix == ".png" for p in overlays)
    rows = csv_rows(out)
    assert list(rows[0]) == ["path", "label", "prob_ai", "error", "model", "route", "rule", "reason", "provenance",
                             "provenance_detail", "caveat", "explanation"]
    named = {(image_dir.parent / row["explanation"]).resolve() for row in rows if row["explanation"]}
    assert named == {p.resolve() for p in overlays}
    assert [row["explanation"] for row in rows if row["error"]] == [""]       # broken.png: no overlay


@pytest.mark.parametrize("inputs, message", [
    (["images/broken.png"], "error: none of the 1 files could be classified"),
    (["images/REAL/nothing-here"], "error: no image files found"),
])
def test_nothing_classified_is_a_non_zero_exit_with_one_line(image_dir, tiny_model_path, capsys,
                                                              inputs, message):
    (image_dir / "REAL" / "nothing-here").mkdir()
    status, _, err = run(capsys, *inputs, "--model", tiny_model_path)
    assert status != 0 and err.strip().splitlines()[-1].startswith(message)


@pytest.mark.parametrize("model_bytes", [None, b"not a keras file"])
def test_missing_or_broken_model_is_a_one_line_error(image_dir, tmp_path, capsys, model_bytes):
    model = tmp_path / "model.keras"
    if model_bytes:
        model.write_bytes(model_bytes)
    status, out, err = run(capsys, "images", "--model", model)
    assert status != 0 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_csv_rows_reach_the_file_while_the_run_goes_on(image_dir, tiny_model_path, capsys, monkeypatch):
    seen_during_run = []
    real_explain = classify._write_explanation

    def spy(predictor, path, prob_ai, target):      # called before each image's row is written
        seen_during_run.append(len(csv_rows((image_dir.parent / "out.csv").read_text())))
        real_explain(predictor, path, prob_ai, target)
    monkeypatch.setattr(classify, "_write_explanation", spy)
    status, _, _ = run(capsys, "./images/REAL", "--model", tiny_model_path, "--output", "out.csv",
                       "--explain", "overlays", "--batch-size", "2")
    assert status == 0 and seen_during_run == [0, 1, 2, 3]          # the rows before it are on disk


def test_unwritable_explain_folder_is_a_one_line_error(image_dir, tiny_model_path, capsys):
    (image_dir.parent / "taken").write_text("a file where the folder should go")
    status, out, err = run(capsys, "./images/", "--model", tiny_model_path, "--explain", "taken/overlays")
    assert status == 1 and out == "" and err.startswith("error: ") and len(err.splitlines()) == 1


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")   # the test's truncated TIFF, on purpose
def test_gif_and_tiff_files_are_scanned_and_classified(image_dir, tiny_model_path, capsys):
    from PIL import Image
    from tests.bad_inputs import animated_gif
    (image_dir / "moving.gif").write_bytes(animated_gif())
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image_dir / "scan.tif")
    Image.new("RGB", (40, 30), (10, 200, 10)).save(image_dir / "scan2.TIFF")
    (image_dir / "broken.tiff").write_bytes(b"II*\x00 truncated")
    status, out, _ = run(capsys, image_dir, "--model", tiny_model_path)
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv_rows(out)}
    for name in ("moving.gif", "scan.tif", "scan2.TIFF"):
        assert rows[name]["label"] and rows[name]["prob_ai"] and not rows[name]["error"], name
    assert rows["broken.tiff"]["error"] and not rows["broken.tiff"]["label"]


def test_writing_results_does_not_import_tensorflow():
    import subprocess
    import sys
    code = ("import sys; from aidetect import results; from aidetect.labels import verdict; "
            "r = results.Result('a.png', 0.9, verdict(0.9)); print(results.to_csv([r]).splitlines()[1]); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    row, imported = out.splitlines()
    assert row.startswith("a.png,AI-generated,0.900000,,,,pixels,") and imported == "False"


def test_missing_paths_are_reported_one_line_each_before_the_model_loads(image_dir, capsys, monkeypatch):
    def no_model(*_args, **_kwargs):
        raise AssertionError("the model must not load when a path is missing")
    monkeypatch.setattr(Predictor, "load", no_model)
    status, out, err = run(capsys, "does/not/exist", image_dir, "gone.jpg")
    assert status == 1 and out == ""
    assert err.splitlines() == ["error: does/not/exist: no such file or folder",
                                "error: gone.jpg: no such file or folder"]


@pytest.mark.slow
def test_a_run_into_files_prints_no_tensorflow_chatter_and_no_progress_bar(image_dir, tmp_path):
    """stderr is not a terminal here: only real problems may appear on it (none for this folder of
    good images), not TensorFlow's oneDNN/CPU/DT_HALF lines or progress-bar control codes."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(classify.__file__).resolve().parent
    (image_dir / "broken.png").unlink()
    done = subprocess.run([sys.executable, str(root / "classify.py"), str(image_dir), "--output",
                           str(tmp_path / "out.csv")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith("9 files: 8 classified") and done.stderr.rstrip().endswith("out.csv")
    assert len(csv_rows((tmp_path / "out.csv").read_text())) == 8
    verbose = subprocess.run([sys.executable, str(root / "classify.py"), str(image_dir), "--output",
                              str(tmp_path / "out.csv"), "--verbose"], capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0 and "oneDNN" in verbose.stderr          # --verbose brings them back


def test_a_weak_model_gets_a_warning_line(image_dir, tiny_model_path, capsys):
    import json
    (tiny_model_path.parent / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    try:
        status, out, err = run(capsys, "images/REAL", "--model", tiny_model_path)
    finally:
        (tiny_model_path.parent / "metrics.json").unlink()
    assert status == 0 and len(csv_rows(out)) == 4
    assert err.startswith("warning: This model measured only 50.0% accuracy") and err.count("\n") == 2
