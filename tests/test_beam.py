"""The Beam pipeline on the DirectRunner writes the rows classify.py would."""
import csv
import shutil

import pytest

beam = pytest.importorskip("apache_beam", reason="apache-beam is not installed: "
                           "pip install -r requirements-beam.txt")

from aidetect import batch, results  # noqa: E402
from aidetect.beam_pipeline import HEADER, classify_pattern, csv_row  # noqa: E402
from aidetect.predict import Predictor  # noqa: E402
from aidetect.results import Result  # noqa: E402
from tests import evidence_files  # noqa: E402

pytestmark = [pytest.mark.slow]


def test_direct_runner_writes_the_rows_classify_writes(tmp_path, sample_dir, tiny_model_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for class_name in ("REAL", "FAKE"):
        for image in sorted((sample_dir / class_name).iterdir())[:3]:
            shutil.copy(image, inputs)
    (inputs / "broken.jpg").write_bytes(b"not a jpeg")
    (inputs / "notes.txt").write_text("not an image extension: skipped")
    (inputs / "settings.png").write_bytes(evidence_files.png_with_text(evidence_files.GENERATOR_PNGS["comfyui.png"]))

    with beam.Pipeline(runner="DirectRunner") as pipeline:
        classify_pattern(pipeline, str(inputs / "*"), str(tmp_path / "out" / "results"),
                         tiny_model_path, batch_size=4)

    rows = []
    for part in sorted((tmp_path / "out").glob("results-*.csv")):
        with part.open(newline="") as file:
            reader = csv.DictReader(file)
            assert tuple(reader.fieldnames) == results.COLUMNS + ("scope_score",)
            rows += list(reader)
    rows.sort(key=lambda row: row["path"])
    assert next(row for row in rows if row["path"].endswith("settings.png"))["provenance"] == "generator-metadata"

    files, _ = batch.list_inputs([str(inputs)])
    expected = list(batch.classify_files(Predictor.load(tiny_model_path), files, progress=False))
    assert [row["path"] for row in rows] == files
    for row, result in zip(rows, expected):
        assert (row["label"], row["error"]) == (result.label, result.error or "")
        assert (row["rule"], row["provenance"]) == ((result.verdict.rule, result.evidence.kind) if result.verdict
                                                    else ("", ""))
        if not result.error:
            assert float(row["prob_ai"]) == pytest.approx(result.prob_ai, abs=2e-6)


def test_csv_row_is_the_record_to_csv_writes():
    result = Result('odd "name",\nwith newline.jpg', prob_ai=0.25, scope_score=12.5)
    assert results.to_csv([result]) == HEADER + "\n" + csv_row(result) + "\n"
    unscored = Result('odd "name",\nwith newline.jpg', error="cannot open file")
    assert csv_row(unscored) == results.to_csv([unscored]).split("\n", 1)[1].rstrip("\n") + ","
