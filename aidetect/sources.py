"""Labelled image sets beyond CIFAKE (e.g. ../shared/data/wild): where each image came from, and
splits that hold out whole sources, so that a score says how a model does on sources it never saw.

A labelled set is a folder holding REAL/ and FAKE/ (sub-folders or REAL.tar/FAKE.tar) and, optionally,
manifest.jsonl: one JSON object per image with "file" ("REAL/real_0000.jpg"), "source_repo" and,
for generated images, "generator". Without a manifest every image's source is "unknown".
"""
import json
import random
import re
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from . import images
from .errors import InputError
from .files import write_atomically
from .labels import CLASS_NAMES

MANIFEST_FILE = "manifest.jsonl"
UNKNOWN = "unknown"
HELD_OUT_FRACTIONS = {"validation": 0.10, "test": 0.20}     # of each class, in whole sources
OVERSHOOT = 1.3                                             # a held-out split may exceed its share by this factor

# generator labels -> families (first match wins); the wild set's README groups them the same way
_FAMILIES = (
    (r"stable diffusion (v1|1\.)|sd 1\.5", "Stable Diffusion 1.x"),
    (r"stable diffusion 2", "Stable Diffusion 2.x"),
    (r"stable diffusion 3", "Stable Diffusion 3/3.5"),
    (r"sdxl", "SDXL"),
    (r"flux", "FLUX.1"),
    (r"stylegan", "StyleGAN2"),
    (r"dall", "DALL-E 2"),
    (r"midjourney", "Midjourney"),
    (r"stable cascade", "Stable Cascade"),
    (r"auraflow|hidream|chroma|qwen|lumina|cosmos|hunyuan", "other diffusion transformers"),
)


class SourceError(InputError):
    """A labelled set that cannot be used; the message says what was expected."""


def generator_family(generator: str) -> str:
    """'Stable Diffusion v1.x' -> 'Stable Diffusion 1.x'; labels matching no family stay as they are."""
    for pattern, family in _FAMILIES:
        if re.search(pattern, generator, re.IGNORECASE):
            return family
    return generator or UNKNOWN


def _family(row: Dict, class_name: str) -> str:
    return generator_family(row.get("generator", "")) if class_name == "FAKE" else "camera photo"


@dataclass(frozen=True)
class Item:
    file: str                   # "REAL/real_0000.jpg": class folder / file name
    class_name: str             # "REAL" or "FAKE"
    source: str                 # the repository (or collection) the image came from
    family: str                 # generator family for FAKE, "camera photo" for REAL
    read: Callable[[], bytes]


def is_labelled_set(folder) -> bool:
    folder = Path(folder)
    return all((folder / f"{c}.tar").is_file() or (folder / c).is_dir() for c in CLASS_NAMES)


def _read_manifest(folder: Path) -> Dict[str, Dict]:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {row["file"]: row for row in rows}
    except (ValueError, KeyError, TypeError) as error:
        raise SourceError(f"{path}: not a manifest of JSON lines with a 'file' key ({error})") from None


def _member_files(folder: Path, class_name: str) -> Iterator[Tuple[str, Callable[[], bytes]]]:
    tar = folder / f"{class_name}.tar"
    if tar.is_file():
        with tarfile.open(tar) as archive:
            for member in archive:
                if member.isfile() and images.is_image_path(Path(member.name)):
                    data = archive.extractfile(member).read()
                    yield f"{class_name}/{Path(member.name).name}", lambda d=data: d
    else:
        for path in images.list_image_files(folder / class_name):
            yield f"{class_name}/{path.relative_to(folder / class_name).as_posix()}", path.read_bytes


def read_labelled_set(folder) -> List[Item]:
    """Every image of a labelled set, with its source and family from the manifest (if any)."""
    folder = Path(folder)
    if not is_labelled_set(folder):
        raise SourceError(f"{folder}: expected REAL/ and FAKE/ folders or REAL.tar and FAKE.tar "
                          f"(and optionally {MANIFEST_FILE})")
    manifest = _read_manifest(folder)
    items = []
    try:
        for class_name in CLASS_NAMES:
            for file, read in _member_files(folder, class_name):
                row = manifest.get(file, {})
                items.append(Item(file, class_name, row.get("source_repo", UNKNOWN), _family(row, class_name), read))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise SourceError(f"{folder}: cannot read ({error})") from None
    if not items:
        raise SourceError(f"{folder}: no images in REAL/ or FAKE/")
    return items


def split_by_source(items: List[Item], seed: int = 42,
                    fractions: Optional[Dict[str, float]] = None) -> Dict[str, str]:
    """source -> "train", "validation" or "test". Whole sources are held out: visited in a seeded
    order, each goes to the held-out split furthest below its share of every class it has images
    of, if it fits (share x OVERSHOOT), else to train. A source that alone holds more than a
    held-out split's allowance always trains."""
    fractions = fractions or HELD_OUT_FRACTIONS
    per_source = defaultdict(Counter)
    for item in items:
        per_source[item.source][item.class_name] += 1
    class_totals = Counter(item.class_name for item in items)
    filled = {split: Counter() for split in fractions}
    order = sorted(per_source)
    random.Random(seed).shuffle(order)
    assignment = {}
    for source in order:
        counts = per_source[source]
        fitting = [split for split, share in fractions.items()
                   if all(filled[split][c] + n <= share * OVERSHOOT * class_totals[c] for c, n in counts.items())]
        if not fitting:
            assignment[source] = "train"
            continue
        deficit = lambda split: min(filled[split][c] / (fractions[split] * class_totals[c])  # noqa: E731
                                    for c in counts)
        chosen = min(fitting, key=deficit)
        if deficit(chosen) >= 1:            # every split that could take it is already full
            assignment[source] = "train"
            continue
        assignment[source] = chosen
        filled[chosen].update(counts)
    return assignment


def folds_by_source(items: List[Item], folds: int) -> Dict[str, int]:
    """source -> fold (0 .. folds-1), for cross-validation over whole sources. Deterministic: each
    class's sources are dealt out largest first, each to the fold with the fewest sources of that
    class (then the fewest images), so the few big generated sources land in different folds and
    every fold keeps small sources of both classes to hold out for validation."""
    per_source = defaultdict(Counter)
    for item in items:
        per_source[item.source][item.class_name] += 1
    sources, counted = [Counter() for _ in range(folds)], [Counter() for _ in range(folds)]
    assignment = {}
    for source in sorted(per_source, key=lambda s: (-sum(per_source[s].values()), s)):
        counts = per_source[source]
        main_class = counts.most_common(1)[0][0]
        fold = min(range(folds), key=lambda f: (sources[f][main_class], counted[f][main_class], f))
        assignment[source] = fold
        sources[fold][main_class] += 1
        counted[fold].update(counts)
    return assignment


def split_by_fold(items: List[Item], folds: int, fold: Optional[int], seed: int = 42,
                  validation: float = HELD_OUT_FRACTIONS["validation"]) -> Dict[str, str]:
    """source -> split for one fold of a cross-validation: the fold's sources are the test split,
    the others train, with a validation share of them held out whole (split_by_source). Fold None:
    every source trains but the validation share (the model to ship once the folds have measured
    the recipe); none is "test"."""
    if folds < 2:
        raise SourceError(f"a cross-validation needs at least 2 folds, got {folds}")
    if fold is not None and not 0 <= fold < folds:
        raise SourceError(f"fold {fold} does not exist: folds are numbered 0 to {folds - 1}")
    in_fold = folds_by_source(items, folds)
    rest = [item for item in items if in_fold[item.source] != fold]
    assignment = split_by_source(rest, seed, {"validation": validation})
    assignment.update({source: "test" for source, f in in_fold.items() if f == fold})
    return assignment


def describe_split(items: List[Item], assignment: Dict[str, str]) -> Dict:
    """What each split holds (images per class, sources, families), and the families that appear
    in test as well as in train (those are not held out)."""
    splits = {}
    for split in ("train", "validation", "test"):
        chosen = [item for item in items if assignment[item.source] == split]
        splits[split] = {
            "images": dict(Counter(item.class_name for item in chosen)),
            "sources": {s: n for s, n in sorted(Counter(item.source for item in chosen).items())},
            "families": dict(Counter(item.family for item in chosen if item.class_name == "FAKE").most_common()),
        }
    shared = sorted(set(splits["train"]["families"]) & set(splits["test"]["families"]))
    return {"splits": splits, "families_in_train_and_test": shared}


def prepare_by_source(source, data_dir, seed: int = 42, fractions: Optional[Dict[str, float]] = None,
                      folds: Optional[Tuple[int, int]] = None) -> Dict:
    """data_dir/{train,validation,test}/{REAL,FAKE}/ from a labelled set, whole sources held out
    (split_by_source; or, with folds = (fold, number of folds), that fold's sources as test:
    split_by_fold; fold None: test is a copy of validation, as train needs one), with its manifest
    beside them; safe to re-run (files that do not belong are removed). Returns the report written
    to data_dir/prepare_report.json."""
    from .data import REPORT_FILE, SPLITS, class_dir, check_separate

    check_separate(source, data_dir)
    items = read_labelled_set(source)
    if folds:
        assignment = split_by_fold(items, folds[1], folds[0], seed, (fractions or HELD_OUT_FRACTIONS)["validation"])
    else:
        assignment = split_by_source(items, seed, fractions)
    wanted = defaultdict(dict)
    names = defaultdict(set)
    for item in items:
        name = Path(item.file).name             # the prepared layout is flat: class folder / name
        if name in names[item.class_name]:
            raise SourceError(f"{source}: two images named {name} in {item.class_name}/ (sub-folders are "
                              "flattened when prepared); rename one")
        names[item.class_name].add(name)
        wanted[(assignment[item.source], item.class_name)][name] = item
    if folds and folds[0] is None:
        for class_name in CLASS_NAMES:
            wanted[("test", class_name)] = wanted[("validation", class_name)]
    empty = [f"{split} would hold no {c} images" for split in SPLITS for c in CLASS_NAMES if not wanted[(split, c)]]
    if empty:
        raise SourceError(f"{source}: {'; '.join(empty)} (too few sources, or none small enough to hold "
                          "out whole); try another --seed, fewer --folds, or a set with more sources")
    written = 0
    for split in SPLITS:
        for class_name in CLASS_NAMES:
            folder = class_dir(data_dir, split, class_name)
            folder.mkdir(parents=True, exist_ok=True)
            files = wanted[(split, class_name)]
            for stale in folder.iterdir():
                if stale.name not in files:
                    stale.unlink()
            for name, item in files.items():
                content = item.read()
                target = folder / name
                if not (target.is_file() and target.read_bytes() == content):
                    write_atomically(target, content)
                    written += 1
    manifest = Path(source) / MANIFEST_FILE
    if manifest.is_file():
        write_atomically(Path(data_dir) / MANIFEST_FILE, manifest.read_bytes())
    else:                                       # an earlier source's manifest would name the wrong sources
        (Path(data_dir) / MANIFEST_FILE).unlink(missing_ok=True)
    report = {"source": str(source), "source_kind": "labelled set, split by source", "data_dir": str(data_dir),
              "seed": seed, "held_out_fractions": fractions or HELD_OUT_FRACTIONS,
              **({"fold": "all" if folds[0] is None else folds[0], "folds": folds[1]} if folds else {}),
              "files_written": written,
              "counts": {s: {c: len(wanted[(s, c)]) for c in CLASS_NAMES} for s in SPLITS},
              **describe_split(items, assignment)}
    if folds and folds[0] is None:
        report["splits"]["test"] = report["splits"]["validation"]
        report["families_in_train_and_test"] = sorted(set(report["splits"]["train"]["families"])
                                                      & set(report["splits"]["test"]["families"]))
    write_atomically(Path(data_dir) / REPORT_FILE, json.dumps(report, indent=2))
    return report


def manifest_groups(data_dir, paths: List[str]) -> Dict[str, List[str]]:
    """Per path of a prepared split: its "source", "family" and "style" (a generated image's
    manifest style, "camera photo" for REAL) from data_dir's manifest (empty when there is none)."""
    manifest = _read_manifest(Path(data_dir))
    if not manifest:
        return {}
    keys = [f"{Path(p).parent.name}/{Path(p).name}" for p in paths]       # class folder / file name
    rows = [manifest.get(key, {}) for key in keys]
    return {
        "source": [row.get("source_repo", UNKNOWN) for row in rows],
        "family": [_family(row, key.split("/")[0]) for row, key in zip(rows, keys)],
        "style": [_style(row, key.split("/")[0]) for row, key in zip(rows, keys)],
    }


def _style(row: Dict, class_name: str) -> str:
    return row.get("style", UNKNOWN) if class_name == "FAKE" else "camera photo"


def select_training(data_dir, paths: List[str], labels, styles: str = "all", source_fraction: float = 1.0,
                    seed: int = 42, max_per_source: int = 0):
    """The training images a run uses: generated images of the chosen styles ("photo": manifest
    style "photo" only; camera photos always) from a seeded share of each class's training
    sources (whole sources, at least one per class: learning curves), at most max_per_source of
    each source (seeded; 0 = all). Without a manifest only "all", 1.0 and 0 are possible."""
    import numpy as np

    if styles == "all" and source_fraction >= 1 and not max_per_source:
        return paths, labels
    groups = manifest_groups(data_dir, paths)
    if not groups:
        raise SourceError(f"{data_dir}: --train-styles, --train-source-fraction and --max-per-source need the "
                          f"{MANIFEST_FILE} of a labelled set prepared by source")
    keep = np.ones(len(paths), dtype=bool)
    if styles != "all":
        keep &= np.array([style in (styles, "camera photo") for style in groups["style"]])
    if source_fraction < 1:             # per class, so that both keep at least one source
        chosen = set()
        for index in sorted(set(np.asarray(labels).tolist())):
            sources = sorted({s for s, y in zip(groups["source"], labels) if y == index})
            random.Random(seed).shuffle(sources)
            chosen |= {(index, s) for s in sources[:max(1, round(len(sources) * source_fraction))]}
        keep &= np.array([(y, source) in chosen for y, source in zip(np.asarray(labels).tolist(), groups["source"])])
    if max_per_source:                  # after the style filter: the cap counts images that would train
        for source in sorted(set(groups["source"])):
            members = [i for i, s in enumerate(groups["source"]) if s == source and keep[i]]
            random.Random(f"{seed}/{source}").shuffle(members)
            keep[members[max_per_source:]] = False
    labels = np.asarray(labels)[keep]
    if len(set(labels.tolist())) < 2:
        raise SourceError(f"{data_dir}: the chosen styles and sources leave one class only; use more sources")
    return [p for p, k in zip(paths, keep) if k], labels
