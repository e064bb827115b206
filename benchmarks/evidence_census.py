"""How many images of a set carry any file evidence (provenance.read_evidence), by class and kind.

    python benchmarks/evidence_census.py ../shared/data/wild ../shared/data/wild-crops ../shared/data/provenance

Each argument is a folder of images or of class tars (REAL.tar, FAKE.tar); prints one table per set.
"""
import argparse
import collections
import sys
import tarfile
from pathlib import Path

from aidetect import images, provenance


def members(folder: Path):
    """(class, file name, bytes) for every image in folder: its tars' members, else its image files."""
    tars = sorted(folder.glob("*.tar"))
    for tar_path in tars:
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if member.isfile() and images.is_image_path(Path(member.name)):
                    yield tar_path.stem, member.name, tar.extractfile(member).read()
    if not tars:
        for path in images.list_image_files(folder):
            yield path.parent.name, str(path), path.read_bytes()


def census(folder: Path) -> collections.Counter:
    counts = collections.Counter()
    for class_name, _name, data in members(folder):
        loaded, error = images.try_load_image(data)
        kind = "unreadable" if error else provenance.read_evidence(loaded.metadata).kind
        counts[class_name, kind] += 1
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for folder in args.folders:
        counts = census(folder)
        classes = sorted({class_name for class_name, _ in counts})
        print(f"\n{folder}: {sum(counts.values())} images")
        print(f"{'class':10s} {'images':>7s} {'with evidence':>14s}  kinds")
        for class_name in classes:
            kinds = {kind: n for (c, kind), n in counts.items() if c == class_name}
            total, found = sum(kinds.values()), sum(n for k, n in kinds.items() if k not in ("none", "unreadable"))
            print(f"{class_name:10s} {total:7d} {found:14d}  {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
