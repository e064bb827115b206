"""Labelled sets beyond CIFAKE: manifest, splits by source, the breakdown, the content-only control,
the "crops" view. Tiny generated images; the real wild set only where marked needs_wild."""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect.evaluate import breakdown
from aidetect.sources import (SourceError, describe_split, generator_family, is_labelled_set, manifest_groups,
                              folds_by_source, prepare_by_source, read_labelled_set, split_by_fold,
                              split_by_source)

WILD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "wild"
# (source, class, images, generator): REAL sources are greenish, FAKE ones reddish
SOURCES = [("cams/a", "REAL", 12, ""), ("cams/b", "REAL", 4, ""), ("cams/c", "REAL", 3, ""),
           ("cams/d", "REAL", 2, ""), ("gen/sd", "FAKE", 12, "Stable Diffusion v1.x"),
           ("gen/flux", "FAKE", 4, "FLUX.1-dev"), ("gen/gan", "FAKE", 3, "StyleGAN2 (FFHQ faces)"),
           ("gen/dalle", "FAKE", 2, "DALL-E 2 (preview)")]


def _picture(class_name: str, index: int, size: int = 64) -> bytes:
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    pixels[..., 0 if class_name == "FAKE" else 1] += 150
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def make_labelled_set(root: Path, as_tars: bool = False) -> Path:
    rows, files = [], {"REAL": [], "FAKE": []}
    for source, class_name, count, generator in SOURCES:
        for _ in range(count):
            name = f"{class_name.lower()}_{len(files[class_name]):04d}.png"
            files[class_name].append((name, _picture(class_name, len(rows))))
            row = {"file": f"{class_name}/{name}", "label": class_name, "source_repo": source}
            rows.append(dict(row, generator=generator) if generator else row)
    root.mkdir(parents=True, exist_ok=True)
    for class_name, members in files.items():
        if as_tars:
            with tarfile.open(root / f"{class_name}.tar", "w") as archive:
                for name, data in members:
                    info = tarfile.TarInfo(f"{class_name}/{name}")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
        else:
            (root / class_name).mkdir()
            for name, data in members:
                (root / class_name / name).write_bytes(data)
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return root


def test_generator_labels_fall_into_families():
    assert generator_family("Stable Diffusion v1.x") == generator_family("SD 1.5 + LCM") == "Stable Diffusion 1.x"
    assert generator_family("Stable Diffusion 3.5 + ControlNet") == "Stable Diffusion 3/3.5"
    assert generator_family("FLUX.1 Canny") == "FLUX.1"
    assert generator_family("Kolors") == "Kolors"          # no family: the label itself
    assert generator_family("") == "unknown"


@pytest.mark.parametrize("as_tars", [False, True])
def test_a_labelled_set_reads_the_same_from_folders_and_tars(tmp_path, as_tars):
    items = read_labelled_set(make_labelled_set(tmp_path / "set", as_tars))
    assert len(items) == sum(count for _, _, count, _ in SOURCES)
    by_file = {item.file: item for item in items}
    assert by_file["FAKE/fake_0000.png"].source == "gen/sd"
    assert by_file["FAKE/fake_0000.png"].family == "Stable Diffusion 1.x"
    assert by_file["REAL/real_0000.png"].family == "camera photo"
    assert by_file["REAL/real_0000.png"].read() == _picture("REAL", 0)


def test_without_a_manifest_sources_are_unknown_and_bad_folders_are_refused(tmp_path):
    root = make_labelled_set(tmp_path / "set")
    (root / "manifest.jsonl").unlink()
    assert {item.source for item in read_labelled_set(root)} == {"unknown"}
    (tmp_path / "empty").mkdir()
    assert not is_labelled_set(tmp_path / "empty")
    with pytest.raises(SourceError, match="expected REAL/ and FAKE/"):
        read_labelled_set(tmp_path / "empty")


def test_splits_hold_out_whole_sources_seeded_and_the_biggest_source_trains(tmp_path):
    items = read_labelled_set(make_labelled_set(tmp_path / "set"))
    fractions = {"validation": 0.2, "test": 0.25}
    assignment = split_by_source(items, seed=3, fractions=fractions)
    assert assignment == split_by_source(items, seed=3, fractions=fractions)
    assert set(assignment) == {source for source, *_ in SOURCES}
    assert assignment["cams/a"] == assignment["gen/sd"] == "train"     # too big to hold out
    held_out = {split for split in assignment.values()} - {"train"}
    assert held_out, "some sources must be held out"
    report = describe_split(items, assignment)
    counted = sum(sum(split["images"].values()) for split in report["splits"].values())
    assert counted == len(items)
    for split in ("validation", "test"):                # whole sources: none shared with train
        assert not set(report["splits"][split]["sources"]) & set(report["splits"]["train"]["sources"])


def test_folds_deal_out_whole_sources_so_each_is_tested_once_and_big_ones_apart(tmp_path):
    items = read_labelled_set(make_labelled_set(tmp_path / "set"))
    folds = folds_by_source(items, 2)
    assert folds == folds_by_source(items, 2) and set(folds) == {source for source, *_ in SOURCES}
    assert folds["gen/sd"] != folds["gen/flux"] and folds["cams/a"] != folds["cams/b"]   # the two biggest apart
    tested = []
    for fold in (0, 1):
        assignment = split_by_fold(items, 2, fold, seed=3, validation=0.4)
        tested += [source for source, split in assignment.items() if split == "test"]
        assert {s for s, split in assignment.items() if split == "test"} == {s for s, f in folds.items() if f == fold}
        assert "validation" in assignment.values() and "train" in assignment.values()
    assert sorted(tested) == sorted(folds)               # every source is tested in exactly one fold
    with pytest.raises(SourceError, match="folds are numbered 0 to 1"):
        split_by_fold(items, 2, 2)
    with pytest.raises(SourceError, match="at least 2 folds"):
        split_by_fold(items, 1, 0)


def test_prepare_writes_one_fold_and_says_which(tmp_path):
    source = make_labelled_set(tmp_path / "set")
    report = prepare_by_source(source, tmp_path / "fold1", seed=3, fractions={"validation": 0.4}, folds=(1, 2))
    assert (report["fold"], report["folds"]) == (1, 2)
    fold_sources = {s for s, f in folds_by_source(read_labelled_set(source), 2).items() if f == 1}
    assert set(report["splits"]["test"]["sources"]) == fold_sources
    assert not set(report["splits"]["train"]["sources"]) & fold_sources
    every = prepare_by_source(source, tmp_path / "all", seed=3, fractions={"validation": 0.4}, folds=(None, 2))
    assert every["fold"] == "all" and every["counts"]["test"] == every["counts"]["validation"]
    assert sorted(p.name for p in (tmp_path / "all" / "test").rglob("*.png")) == \
        sorted(p.name for p in (tmp_path / "all" / "validation").rglob("*.png"))
    assert every["splits"]["test"] == every["splits"]["validation"]
    assert sum(every["counts"]["train"].values()) + sum(every["counts"]["validation"].values()) == \
        len(read_labelled_set(source))


def test_prepare_refuses_two_images_of_one_name_in_a_class(tmp_path):
    source = make_labelled_set(tmp_path / "set")
    (source / "REAL" / "more").mkdir()
    (source / "REAL" / "more" / "real_0000.png").write_bytes(_picture("REAL", 99))
    with pytest.raises(SourceError, match="two images named real_0000.png in REAL/"):
        prepare_by_source(source, tmp_path / "prepared")


def test_prepare_refuses_a_split_without_both_classes_and_writes_nothing(tmp_path):
    source = make_labelled_set(tmp_path / "set")
    with pytest.raises(SourceError, match="validation would hold no"):
        prepare_by_source(source, tmp_path / "prepared", fractions={"validation": 0.01, "test": 0.25})
    assert not (tmp_path / "prepared").exists()


def test_prepare_by_source_writes_the_layout_and_a_report_and_reruns_cleanly(tmp_path):
    source = make_labelled_set(tmp_path / "set")
    data_dir = tmp_path / "prepared"
    report = prepare_by_source(source, data_dir, seed=3, fractions={"validation": 0.2, "test": 0.25})
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*.png"))
    assert len(files) == len(read_labelled_set(source))
    assert (data_dir / "manifest.jsonl").read_bytes() == (source / "manifest.jsonl").read_bytes()
    saved = json.loads((data_dir / "prepare_report.json").read_text())
    assert saved["splits"] == report["splits"] and saved["seed"] == 3
    (data_dir / "test" / "REAL" / "stray.png").write_bytes(b"x")
    assert prepare_by_source(source, data_dir, seed=3, fractions={"validation": 0.2, "test": 0.25})["files_written"] == 0
    assert not (data_dir / "test" / "REAL" / "stray.png").exists()
    test_paths = [str(p) for p in sorted((data_dir / "test").rglob("*.png"))]
    groups = manifest_groups(data_dir, test_paths)
    assert set(groups["source"]) == set(report["splits"]["test"]["sources"])


def test_breakdown_ranks_a_one_class_group_against_the_other_class():
    groups = ["cams", "cams", "sd", "sd", "gan", "mixed", "mixed"]
    true = [0, 0, 1, 1, 1, 0, 1]
    prob = [0.1, 0.3, 0.9, 0.8, 0.2, 0.4, 0.6]
    table = breakdown(groups, true, prob)
    assert list(table) == ["cams", "mixed", "sd", "gan"]             # largest first, then by name
    assert table["sd"] == {"real": 0, "fake": 2, "accuracy": 1.0, "auc": 1.0}
    # gan's 0.2 against all real images 0.1, 0.3, 0.4: above one of three
    assert table["gan"]["accuracy"] == 0.0 and table["gan"]["auc"] == pytest.approx(1 / 3)
    assert table["mixed"]["auc"] == 1.0 and table["cams"]["accuracy"] == 1.0


def test_the_content_control_sees_colour_and_only_colour(tmp_path):
    from aidetect.control import content_features, fit_and_score
    rgb = np.zeros((40, 30, 3), np.uint8)
    assert content_features(rgb).shape == (3 + 3 + 2 + 16 + 8 * 8 * 3,)
    data_dir = tmp_path / "prepared"
    prepare_by_source(make_labelled_set(tmp_path / "set"), data_dir, seed=3,
                      fractions={"validation": 0.2, "test": 0.25})
    metrics = fit_and_score(data_dir)
    assert metrics["auc"] == 1.0            # our sets differ by colour: the control must find it
    assert set(metrics["by_source"]) <= {source for source, *_ in SOURCES}


@pytest.mark.slow
def test_a_crops_model_trains_on_sources_and_reports_per_source(tmp_path, capsys):
    import model_training
    from aidetect.settings import Settings
    from aidetect.train import train
    data_dir = tmp_path / "prepared"
    assert model_training.main(["prepare", "--source", str(make_labelled_set(tmp_path / "set")),
                                "--data-dir", str(data_dir), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "test sources:" in printed and "generator families in both train and test:" in printed
    settings = Settings(data_dir=str(data_dir), models_dir=str(tmp_path / "models"), run_name="crops",
                        backbone="tiny", dense_units=8, image_size=32, view="crops", crops=4, epochs=1,
                        batch_size=8, verbose=0, keep="last", residual_input=True, augment="robust")
    run_dir = train(settings, log=lambda *_: None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["view"] == "crops" and metrics["views_per_image"] == 4
    test_sources = json.loads((data_dir / "prepare_report.json").read_text())["splits"]["test"]["sources"]
    assert set(metrics["by_source"]) == set(test_sources)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["data"]["splits"]["test"]["sources"] == test_sources      # the split, written down
    assert model_training.main(["evaluate", "--model", str(run_dir), "--data-dir", str(data_dir),
                                "--split", "all"]) == 0
    printed = capsys.readouterr().out
    assert "generator family" in printed and "StyleGAN2" in printed and f"Test images: {len(read_labelled_set(tmp_path / 'set'))}" in printed


@pytest.mark.slow
@pytest.mark.needs_wild
def test_the_wild_set_splits_by_source_with_a_record(tmp_path):
    if not (WILD / "REAL.tar").is_file():
        pytest.skip(f"the wild set is not at {WILD}")
    report = prepare_by_source(WILD, tmp_path / "wild")
    assert sum(sum(c.values()) for c in report["counts"].values()) == 2162
    assert report["splits"]["test"]["images"]["REAL"] > 100 and report["splits"]["test"]["images"]["FAKE"] > 100
    for split in ("validation", "test"):
        assert not set(report["splits"][split]["sources"]) & set(report["splits"]["train"]["sources"])
