"""Classification results, and CSV/JSON files of them (classify.py, the web app, Beam).

Light on purpose: writing results never imports TensorFlow.
"""
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, TextIO

import numpy as np

from .files import write_atomically
from .labels import Verdict
from .provenance import Evidence


@dataclass(frozen=True)
class Result:
    name: str
    prob_ai: Optional[float] = None
    verdict: Optional[Verdict] = None
    error: Optional[str] = None
    image: Optional[np.ndarray] = None        # the decoded RGB image, for display/explanations
    explanation: str = ""                     # the saved heatmap overlay's file, if one was written
    scope_score: Optional[float] = None       # scope.py: how unlike the training images (None: no scope)
    out_of_scope: bool = False
    model: str = ""                           # the run folder of the model that answered
    route: str = ""                           # why that model, and what it looked at (Predictor.route)
    evidence: Optional[Evidence] = None       # what the file itself says (provenance.py); None: unread
    caveat: str = ""                          # what the answer is worth for this kind of image (measured.py)
    cap: Optional[float] = None               # its probability is shown no surer than this (measured.py)

    @property
    def label(self) -> str:
        return self.verdict.label if self.verdict else ""


# the first four since the seed; then who answered, which rule decided and why, what the file says,
# and what the answer is worth for this kind of image
COLUMNS = ("path", "label", "prob_ai", "error", "model", "route", "rule", "reason", "provenance", "provenance_detail",
           "caveat")
SCOPE_COLUMN = "scope_score"            # after COLUMNS, where the model has a scope (scope.py)
EXPLANATION_COLUMN = "explanation"      # classify.py --explain: the overlay's file


def describe_evidence(evidence: Optional[Evidence]) -> str:
    """The evidence's detail line, with any metadata that could not be read noted after it."""
    if evidence is None:
        return ""
    return "; ".join((evidence.detail,) + tuple(f"note: {note}" for note in evidence.notes))


def to_row(result: Result) -> Dict[str, str]:
    return {
        "path": result.name,
        "label": result.label,
        "prob_ai": "" if result.prob_ai is None else f"{result.prob_ai:.6f}",
        "error": result.error or "",
        "model": result.model,
        "route": result.route,
        "rule": result.verdict.rule if result.verdict else "",
        "reason": result.verdict.reason if result.verdict else "",
        "provenance": result.evidence.kind if result.evidence else "",
        "provenance_detail": describe_evidence(result.evidence),
        "caveat": result.caveat,
        SCOPE_COLUMN: "" if result.scope_score is None else f"{result.scope_score:.2f}",
        EXPLANATION_COLUMN: result.explanation,
    }


def csv_writer(stream: TextIO, scored: bool = False, explained: bool = False) -> csv.DictWriter:
    """A CSV writer whose header is already on stream; rows go in as to_row() dicts. The
    COLUMNS always come first; `scored` adds the scope score's column, `explained` the overlay's."""
    columns = COLUMNS + ((SCOPE_COLUMN,) if scored else ()) + ((EXPLANATION_COLUMN,) if explained else ())
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    return writer


def to_csv(results: Iterable[Result]) -> str:
    results = list(results)
    buffer = io.StringIO()
    csv_writer(buffer, scored=any(r.scope_score is not None for r in results),
               explained=any(r.explanation for r in results)).writerows(to_row(r) for r in results)
    return buffer.getvalue()


def to_record(result: Result) -> Dict:
    """The JSON record of one result: what classify.py --output x.json writes per image, and what
    every other front end (page download, Beam, the HTTP API) returns for it."""
    record: Dict = to_row(result)
    record["prob_ai"] = None if result.prob_ai is None else round(result.prob_ai, 6)
    record[SCOPE_COLUMN] = None if result.scope_score is None else round(result.scope_score, 2)
    for column in (SCOPE_COLUMN, EXPLANATION_COLUMN):
        if record[column] in ("", None):
            del record[column]
    return record


def to_json(results: Iterable[Result]) -> str:
    return json.dumps([to_record(result) for result in results], indent=1)


def is_json(path) -> bool:
    """Output files named .json get JSON; any other name gets CSV."""
    return Path(path).suffix.lower() == ".json"


def write(results: List[Result], path) -> Path:
    """.json -> JSON list of objects; anything else -> CSV."""
    path = Path(path)
    text = to_json(results) if is_json(path) else to_csv(results)
    write_atomically(path, text)
    return path
