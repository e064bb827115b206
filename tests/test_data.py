import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect import data
from aidetect.labels import CLASS_NAMES


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def _make_folder_source(root: Path, per_class: int = 10) -> Path:
    """train/{REAL,FAKE} and test/{REAL,FAKE} with distinct images, names with spaces like CIFAKE."""
    seed = 0
    for split in ("train", "test"):
        for class_name in CLASS_NAMES:
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for i in range(per_class):
                seed += 1
                (folder / f"{i} ({seed}).jpg").write_bytes(_jpeg(seed))
    return root


def _counts(data_dir: Path):
    return {s: {c: len(list((data_dir / s / c).iterdir())) for c in CLASS_NAMES} for s in data.SPLITS}


def test_prepare_from_folder_carves_validation_and_is_idempotent(tmp_path):
    source = _make_folder_source(tmp_path / "src")
    out = tmp_path / "data"
    report = data.prepare(source, out, validation_fraction=0.2, seed=1, progress=False)
    expected = {"train": {"REAL": 8, "FAKE": 8}, "validation": {"REAL": 2, "FAKE": 2},
                "test": {"REAL": 10, "FAKE": 10}}
    assert report["counts"] == expected == _counts(out)
    assert report["duplicates_between_splits"] == {"train~validation": 0, "train~test": 0, "validation~test": 0}
    again = data.prepare(source, out, validation_fraction=0.2, seed=1, progress=False)
    assert again["files_written"] == 0 and _counts(out) == expected


def test_prepare_repairs_an_interrupted_tree(tmp_path):
    source = _make_folder_source(tmp_path / "src")
    out = tmp_path / "data"
    data.prepare(source, out, validation_fraction=0.2, seed=1, progress=False)
    victim = next((out / "train" / "REAL").iterdir())
    victim.write_bytes(victim.read_bytes()[:50])          # half-written file
    (out / "train" / "FAKE" / "junk.jpg.tmp").write_bytes(b"partial")
    report = data.prepare(source, out, validation_fraction=0.2, seed=1, progress=False)
    assert report["files_written"] == 1
    assert not (out / "train" / "FAKE" / "junk.jpg.tmp").exists()
    assert victim.read_bytes() == (source / "train" / "REAL" / victim.name).read_bytes()


def test_identical_images_stay_in_one_split_and_bad_files_are_skipped(tmp_path):
    source = _make_folder_source(tmp_path / "src", per_class=20)
    fake = source / "train" / "FAKE"
    for i in range(5):                                      # duplicates inside train, as in CIFAKE
        shutil.copy(fake / "0 (21).jpg", fake / f"copy {i}.jpg")
    (fake / "broken.jpg").write_bytes(b"not an image")
    report = data.prepare(source, tmp_path / "data", validation_fraction=0.5, seed=3, progress=False)
    assert report["duplicates_between_splits"]["train~validation"] == 0
    assert [s["file"] for s in report["skipped"]] == ["train/FAKE/broken.jpg"]


def test_prepare_from_tars_and_zip_match_folder(tmp_path):
    source = _make_folder_source(tmp_path / "src")
    tars = tmp_path / "tars"
    tars.mkdir()
    for split in ("train", "test"):
        for class_name in CLASS_NAMES:
            with tarfile.open(tars / f"{split}-{class_name}.tar", "w") as archive:
                archive.add(source / split / class_name, arcname=class_name)
    archive_path = tmp_path / "cifake.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for file in source.rglob("*.jpg"):
            archive.write(file, Path("cifake") / file.relative_to(source))
    reports = [data.prepare(s, tmp_path / f"out-{i}", 0.1, 7, progress=False)
               for i, s in enumerate((source, tars, archive_path))]
    assert [r["source_kind"] for r in reports] == ["folder", "tar", "zip"]
    assert reports[0]["counts"] == reports[1]["counts"] == reports[2]["counts"]
    names = [sorted(p.name for p in (tmp_path / f"out-{i}" / "validation" / "FAKE").iterdir()) for i in range(3)]
    assert names[0] == names[1] == names[2]


def _only_train_real(root: Path) -> Path:
    (root / "train" / "REAL").mkdir(parents=True)
    (root / "train" / "REAL" / "a.jpg").write_bytes(_jpeg(0))
    return root


def _not_a_zip(root: Path) -> Path:
    (root / "x.zip").write_text("no zip")
    return root / "x.zip"


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: root, "no CIFAKE data found"),
    (_only_train_real, "missing non-empty folder for train/FAKE, test/REAL, test/FAKE"),
    (_not_a_zip, "not a zip file"),
])
def test_bad_sources_get_one_line_errors(tmp_path, make, message):
    source = tmp_path / "src"
    source.mkdir()
    with pytest.raises(data.DataError, match=message) as error:
        data.prepare(make(source), tmp_path / "data", progress=False)
    assert "\n" not in str(error.value) and "expected" in str(error.value)


def test_prepare_refuses_a_data_folder_that_overlaps_the_source(tmp_path):
    source = _make_folder_source(tmp_path / "download")
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    for data_dir in (source, source / "prepared", tmp_path):
        with pytest.raises(data.DataError, match="overlaps the source"):
            data.prepare(source, data_dir, progress=False)
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before


def test_a_truncated_tar_is_a_one_line_error_and_writes_nothing(tmp_path):
    source = tmp_path / "tars"
    source.mkdir()
    for split in ("train", "test"):
        for class_name in CLASS_NAMES:
            with tarfile.open(source / f"{split}-{class_name}.tar", "w") as archive:
                for i in range(3):
                    payload = _jpeg(i)
                    info = tarfile.TarInfo(f"{split}/{class_name}/{i}.jpg")
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
    whole = (source / "test-FAKE.tar").read_bytes()
    (source / "test-FAKE.tar").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(data.DataError, match="cannot read the tar source") as error:
        data.prepare(source, tmp_path / "data", progress=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "data").exists()


def test_list_split_uses_pinned_class_order_and_balanced_limit(tmp_path):
    source = _make_folder_source(tmp_path / "src")
    data.prepare(source, tmp_path / "data", 0.2, 1, progress=False)
    paths, labels = data.list_split(tmp_path / "data", "test")
    assert all("/REAL/" in p for p in paths[:10]) and set(labels[:10]) == {0}
    assert all("/FAKE/" in p for p in paths[10:]) and set(labels[10:]) == {1}
    paths, labels = data.list_split(tmp_path / "data", "test", limit=6)
    assert list(labels) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(data.DataError, match="prepare"):
        data.list_split(tmp_path / "nothing", "train")


def test_dataset_yields_raw_pixels_and_one_hot_labels(tmp_path, sample_dir):
    paths = [str(sample_dir / "REAL" / "real_000.jpg"), str(sample_dir / "FAKE" / "fake_000.jpg")]
    x, y = next(iter(data.make_dataset(paths, [0, 1], image_size=32, batch_size=2)))
    expected = np.asarray(Image.open(paths[0]).convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(x.numpy()[0], expected)       # no scaling outside the model
    np.testing.assert_array_equal(y.numpy(), [[1, 0], [0, 1]])
    x64, _ = next(iter(data.make_dataset(paths, [0, 1], image_size=64, batch_size=2)))
    assert x64.shape == (2, 64, 64, 3)


@pytest.mark.slow
@pytest.mark.needs_cifake
def test_prepare_full_cifake_counts(cifake_dir, tmp_path):
    """The real tars: every image readable, no leak between splits (takes ~30 s)."""
    report = data.prepare(cifake_dir, tmp_path / "data", 0.1, 42, progress=False)
    assert report["skipped"] == []
    assert report["counts"]["test"] == {"REAL": 9000, "FAKE": 8996}
    assert sum(report["counts"]["train"].values()) + sum(report["counts"]["validation"].values()) == 99622
    assert set(report["duplicates_between_splits"].values()) == {0}
    assert report["duplicates_between_classes"] == 0
