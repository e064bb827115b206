"""Classify every image matching a file pattern with Apache Beam; writes classify.py's CSV rows.

    python -m aidetect.beam_pipeline --input 'photos/*.jpg' --output out/results [--model M]
        [--threshold T] [--uncertain-band B] [--batch-size N] [any Beam option, e.g. --runner]

Writes out/results-00000-of-0000N.csv, each with classify.py's header (rows in no particular
order), file evidence (Content Credentials, IPTC/XMP, generator settings) included. Each worker loads the model once (DoFn.setup) and classifies batches with
the same Predictor as the web app. Needs `pip install -r requirements-beam.txt`.
"""
import argparse
import io
import os
from pathlib import Path

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.options.pipeline_options import PipelineOptions

from . import images, results
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, check_decision
from .predict import Predictor, resolve_model_path
from .provenance import TRUST_ANCHORS_ENV_VAR, read_trust_anchors
from .results import Result

HEADER = ",".join(results.COLUMNS + (results.SCOPE_COLUMN,))     # scope_score empty for models without a scope


class ClassifyBatch(beam.DoFn):
    """Batches of (path, file bytes) -> one Result per file; unreadable images get an error."""

    def __init__(self, model_path, threshold: float, uncertain_band: float, trust_anchors: str = ""):
        self.model_path = str(model_path)
        self.threshold, self.uncertain_band = threshold, uncertain_band
        self.trust_anchors = trust_anchors          # PEM text, shipped to the workers with the DoFn

    def setup(self):
        self.predictor = Predictor.load(self.model_path)

    def process(self, batch):
        paths, contents = zip(*batch)
        yield from self.predictor.classify(contents, paths, self.threshold, self.uncertain_band,
                                           trust_anchors=self.trust_anchors)


def csv_row(result: Result) -> str:
    """One CSV record under HEADER, written by results' own CSV writer (a path may hold a quoted newline)."""
    buffer = io.StringIO()
    results.csv_writer(buffer, scored=True).writerow(results.to_row(result))
    return buffer.getvalue().split("\n", 1)[1].rstrip("\n")


def classify_pattern(pipeline, pattern: str, output: str, model_path=None,
                     threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                     batch_size: int = 64, trust_anchors: str = ""):
    return (pipeline
            | "Match" >> fileio.MatchFiles(pattern)
            | "Images only" >> beam.Filter(lambda file: images.is_image_path(Path(file.path)))
            | "Open" >> fileio.ReadMatches()
            | "Read" >> beam.Map(lambda file: (file.metadata.path, file.read()))
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
            | "Classify" >> beam.ParDo(ClassifyBatch(resolve_model_path(model_path), threshold, uncertain_band,
                                                            trust_anchors))
            | "To CSV" >> beam.Map(csv_row)
            | "Write" >> beam.io.WriteToText(output, file_name_suffix=".csv", header=HEADER))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="file pattern, e.g. 'data/test/*/*.jpg'")
    parser.add_argument("--output", required=True, help="prefix of the CSV files to write")
    parser.add_argument("--model", help="a .keras file or a run folder (default: the project's default model)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--uncertain-band", type=float, default=DEFAULT_UNCERTAIN_BAND)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trust-anchors", metavar="PEM", default=os.environ.get(TRUST_ANCHORS_ENV_VAR),
                        help="a PEM file of trusted C2PA root certificates (default: $AIDETECT_TRUST_ANCHORS)")
    args, beam_args = parser.parse_known_args(argv)
    try:
        check_decision(args.threshold, args.uncertain_band)
        trust_anchors = read_trust_anchors(args.trust_anchors)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        classify_pattern(pipeline, args.input, args.output, args.model, args.threshold,
                         args.uncertain_band, args.batch_size, trust_anchors)


if __name__ == "__main__":
    main()
