"""aidetect/files.py: the one atomic-write helper, for files and folders."""
import pytest

from aidetect.files import atomic_path, write_atomically


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "metrics.json"
    write_atomically(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    write_atomically(target, b"new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_folder_replaces_the_previous_folder_and_a_stale_temporary_is_cleared(tmp_path):
    target = tmp_path / "serving" / "1"
    for version in ("first", "second"):
        (target.parent / "1.tmp" / "stale").mkdir(parents=True, exist_ok=True)   # a killed attempt
        with atomic_path(target) as temporary:
            temporary.mkdir(parents=True)
            (temporary / "saved_model.pb").write_text(version)
        assert not (temporary / "stale").exists()
        assert [p.name for p in target.iterdir()] == ["saved_model.pb"]
        assert (target / "saved_model.pb").read_text() == version
