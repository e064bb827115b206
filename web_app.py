"""The web page: upload images, see whether each is AI-generated or real, and where the model looked.

    streamlit run web_app.py                      (model: $AIDETECT_MODEL or models/compact)
    streamlit run web_app.py -- --model PATH      (a .keras file or a run folder)

The page only lays things out; loading, preprocessing, prediction, explanations and labels live in
the aidetect package. Uploads stay in memory (Streamlit keeps them in RAM; nothing is written here).
"""
import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import streamlit as st
from PIL import Image

from aidetect.quiet import start_tensorflow

start_tensorflow()      # before the package imports it: TensorFlow's native start-up lines stay off the log

from aidetect import explain, images, measured, provenance, results  # noqa: E402 (after the quiet start)
from aidetect.labels import (AI_LABEL, DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, OUT_OF_SCOPE_LABEL, REAL_LABEL,
                             UNCERTAIN_LABEL, describe_decision, format_probability, verdict)
from aidetect.model import ModelError
from aidetect.predict import (MODEL_ENV_VAR, Predictor, read_run_info, reliability_warning, resolve_model_path,
                              run_name, settle_long_lived_process, shipped_model_paths)
from aidetect.results import Result

MAX_UNCERTAIN_BAND = 0.25
WILD_MIN_IMAGES = 10            # generator families with fewer images are not quoted on the page
DISPLAY_WIDTH = 256             # pixels; 32x32 images would be unreadable at their own size
THUMBNAIL_SIZE = 2 * DISPLAY_WIDTH      # sharp on high-density screens
VERDICT_TEXT = {AI_LABEL: "AI-generated", REAL_LABEL: "Real",
                UNCERTAIN_LABEL: "Uncertain — review manually", OUT_OF_SCOPE_LABEL: OUT_OF_SCOPE_LABEL}
VERDICT_COLOUR = {AI_LABEL: "red", REAL_LABEL: "green", UNCERTAIN_LABEL: "orange", OUT_OF_SCOPE_LABEL: "gray"}
SCOPE_NOTE = ("This image is unlike the photos and images the model learned from (a drawing, a graphic, "
              "noise or an empty picture?): its probability is shown, but it is no verdict.")
HOW_TO_GET_A_MODEL = f"""
To get a model, either
- pick one of the shipped models in the sidebar (if this copy of the project has them), or
- train one: `python model_training.py train --run-name mine` (saved as `models/mine/`), then start
  the page with it: `streamlit run web_app.py -- --model models/mine`, or set the environment
  variable `{MODEL_ENV_VAR}=PATH` (a `.keras` file or a run folder).
"""
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """One upload's model output, kept for the session so moving the threshold re-labels only."""
    result: Result                          # prob_ai and a thumbnail of the image, or an error
    overlay: Optional[np.ndarray] = None    # explanation heatmap over the thumbnail


def plain(text: str) -> str:
    """User-supplied text (file names, error messages) shown literally inside Markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def model_path_from_command_line() -> str:
    """--model after `--` on the streamlit command line; else $AIDETECT_MODEL; else the default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return str(resolve_model_path(known.model))


def describe_model(path: str, short: bool = False, served: bool = False) -> str:
    """measured.describe_model from the run folder's own records."""
    return measured.describe_model(run_name(path), read_run_info(path), short, served)


def choose_model() -> str:
    """The sidebar's model picker: the page's start model first (the one served), then the shipped ones."""
    start = model_path_from_command_line()
    choices = [start] + [str(p) for p in shipped_model_paths() if p.resolve() != Path(start).resolve()]
    with st.sidebar:
        return st.selectbox("Model", choices, format_func=lambda path: describe_model(path, True, path == start),
                            key="model", help="What each model is for and how it measured; docs/results.md "
                                              "compares them.")


@st.cache_resource(show_spinner="Loading the model…")
def load_predictor(model_path: str) -> Predictor:
    """Once per server process and model path; failures are not cached, so a fixed file is seen."""
    predictor = Predictor.load(model_path)
    settle_long_lived_process()        # Streamlit's clean-ups after every run would cost seconds
    # stdout, with Streamlit's URL: stderr is pointed at /dev/null while another session loads quietly
    print(f"Model loaded: {describe_model(model_path, short=True)} ({model_path})", flush=True)
    return predictor


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A display-sized copy: the session keeps this, not the full decoded photo."""
    image = Image.fromarray(rgb)
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return np.asarray(image)


def analyse(predictor: Predictor, name: str, data: bytes, trust_anchors: str = "") -> Analysis:
    """Classify one upload and explain the model's own answer (independent of the threshold)."""
    try:
        result = predictor.classify_one(data, name, keep_images=True, trust_anchors=trust_anchors)
        if result.error:
            return Analysis(result)
        explained, heatmap = explain.explain_answer(predictor, result.image, result.prob_ai)
        small = thumbnail(result.image)
        base = small if explained is result.image else explained     # a native model's centre crop
        return Analysis(dataclasses.replace(result, image=small), explain.overlay(base, heatmap))
    except Exception as error:  # an unexpected failure costs this file its verdict, never the page
        return Analysis(Result(name, error=f"could not analyse this image ({type(error).__name__})"))


def analyse_uploads(predictor: Predictor, uploads, trust_anchors: str = "") -> List[Analysis]:
    """Analyse each upload once per session, model and trust list (progress bar when several are
    new); forget removed uploads and other models' or trust lists' answers."""
    done: Dict[Tuple[str, int, str], Analysis] = st.session_state.setdefault("analyses", {})
    key = lambda upload: (str(predictor.model_path), hash(trust_anchors), upload.file_id)  # noqa: E731
    for stale in set(done) - {key(upload) for upload in uploads}:
        del done[stale]
    new = [upload for upload in uploads if key(upload) not in done]
    progress = st.progress(0.0, text="Classifying…") if len(new) > 1 else None
    for count, upload in enumerate(new, start=1):
        done[key(upload)] = analyse(predictor, upload.name, upload.getvalue(), trust_anchors)
        if progress:
            progress.progress(count / len(new), text=f"Classified {count} of {len(new)} images")
    if progress:
        progress.empty()
    return [done[key(upload)] for upload in uploads]


def relabel(result: Result, threshold: float, band: float) -> Result:
    if result.prob_ai is None:
        return result
    return dataclasses.replace(result, verdict=verdict(result.prob_ai, threshold, band, result.out_of_scope,
                                                       result.evidence, result.cap))


def show_model_note(predictor: Predictor) -> None:
    """What the answering model is bad at first, then what it was trained on and how it measured,
    from its run folder's records."""
    info = predictor.run_info()
    warning = reliability_warning(info)
    if warning:
        st.error(warning)
    if predictor.view == "native":
        show_native_model_note(predictor, info)
        return
    st.warning(f"**What this model is bad at.** {predictor.worth('full-size').caveat} "
               f"{other_generators(info.get('wild', {}))} Treat a verdict as a hint, not as proof.")
    accuracy = info.get("metrics", {}).get("accuracy")
    measured = (f"On CIFAKE's test images it was right on {round(accuracy * 100)} of 100."
                if isinstance(accuracy, (int, float)) else
                "Its test accuracy was not recorded (no metrics.json beside the model).")
    robustness = info.get("robustness", {})
    processing = (f" After ordinary photo processing (JPEG, blur, sharpening, resizing, brightness, contrast, "
                  f"grey) it was right on {round(robustness['worst_accuracy'] * 100)} of 100 at worst "
                  f"({robustness['worst_change']})." if isinstance(robustness.get("worst_accuracy"), (int, float))
                  else " How it copes with ordinary photo processing was not measured.")
    st.info(f"**What this model knows** (answering: {plain(describe_model(str(predictor.model_path)))}). "
            f"It was trained on CIFAKE: small {predictor.image_size}×{predictor.image_size} CIFAR-10 "
            f"photos (real) versus Stable Diffusion 1.4 images (AI-generated); larger images are shrunk "
            f"to that size first. {measured}{processing}")


def show_native_model_note(predictor: Predictor, info: dict) -> None:
    """A model of full-size images: what it reads, what it learned from, what it measured on
    sources it never saw (its wild_crops.json, benchmarks/wild_crops.py)."""
    small = (f"Images smaller than {predictor.image_size} px go to **{plain(predictor.small.name)}**, the model for "
             f"small {predictor.small.image_size} px images." if predictor.small else "")
    styles = "photo-style" if info.get("settings", {}).get("train_styles") == "photo" else "all"
    st.warning(f"**What this model is bad at.** {predictor.worth('full-size').caveat} A verdict is a weak hint, "
               "never proof.")
    st.info(f"**What this model knows** (answering: {plain(describe_model(str(predictor.model_path)))}). It reads "
            f"{predictor.crops} crops of {predictor.image_size} px at each image's own resolution (nothing resized), "
            f"looking for the pixel traces of cameras and generators. It learned from the wild-crops set: camera "
            f"photos versus {styles} images of GPT-4o, Nano Banana Pro, Stable Diffusion 1.5 and SDXL. {small}")


def other_generators(wild: dict) -> str:
    """What the model's wild.json measured per generator family, in plain numbers."""
    families = {name: row["accuracy"] for name, row in wild.get("by_family", {}).items()
                if isinstance(row, dict) and row.get("fake", 0) >= WILD_MIN_IMAGES and row.get("accuracy") is not None}
    if not families:
        return "Images from other generators (Midjourney, DALL·E, newer Stable Diffusion…) may fool it."
    ranked = ", ".join(f"{name} {round(accuracy * 10)}" for name, accuracy in sorted(families.items(), key=lambda kv: -kv[1]))
    return (f"Of every 10 AI images from other sources (the wild set) it catches, by generator: {ranked}. "
            "Generators other than Stable Diffusion often fool it.")


def threshold_controls() -> Tuple[float, float]:
    with st.sidebar:
        st.header("Decision")
        threshold = st.slider(
            "Threshold: probability AI-generated", 0.0, 1.0, DEFAULT_THRESHOLD, 0.01, key="threshold",
            help="At or above this probability an image is called AI-generated; below it, real.")
        band = st.slider(
            "Uncertain band (±)", 0.0, MAX_UNCERTAIN_BAND, DEFAULT_UNCERTAIN_BAND, 0.01, key="uncertain_band",
            help="Images this close to the threshold are labelled Uncertain instead of guessed. "
                 "0 = always decide.")
        st.caption(f"From the pixels: {describe_decision(threshold, band)} A file that declares AI "
                   "generation (Content Credentials, IPTC/XMP, generator settings) is AI-generated whatever "
                   "the pixels say.")
    return threshold, band


def trust_list_control() -> str:
    """The sidebar's optional trust list for Content Credentials: a PEM file (e.g. the official C2PA
    trust list); without one, signers are named but not checked against a list."""
    with st.sidebar:
        upload = st.file_uploader("Trust list for Content Credentials (optional)", type=["pem", "crt"],
                                  key="trust_list", help="A PEM file of root certificates you trust, e.g. the "
                                  "official C2PA trust list. Without one, signers are named but not checked.")
    if upload is None:
        return ""
    try:
        return provenance.checked_trust_anchors(upload.getvalue().decode("ascii", "replace"))
    except ValueError as error:
        st.sidebar.error(f"{str(error).capitalize()}; it is not used.")
        return ""


def show_summary(labelled: List[Result]) -> None:
    st.subheader("Summary")
    rows = [{"file": r.name,
             "verdict": VERDICT_TEXT.get(r.label, f"unreadable: {r.error}"),
             "probability AI-generated": "" if r.prob_ai is None else format_probability(r.prob_ai, r.cap),
             "decided by": r.verdict.rule if r.verdict else "",
             "file evidence": r.evidence.kind if r.evidence else ""}
            for r in labelled]
    st.dataframe(rows, hide_index=True)          # the CSV download keeps the exact probabilities
    st.download_button("Download as CSV", results.to_csv(labelled), file_name="aidetect_results.csv",
                       mime="text/csv", on_click="ignore")


EVIDENCE_HEADLINE = {"c2pa-ai": "The file declares it is AI-generated (Content Credentials)",
                     "iptc-ai": "The file declares it is AI-generated (IPTC/XMP metadata)",
                     "generator-metadata": "The file holds an AI generator's settings",
                     "altered": "Content Credentials present, but the image changed after signing",
                     "c2pa-capture": "Content Credentials declare a camera capture",
                     "iptc-capture": "The metadata declares a camera capture",
                     "c2pa": "Content Credentials present", "camera-exif": "The file names a camera",
                     "none": "Nothing in the file says where it came from"}


def show_evidence(result: Result) -> None:
    """What the file says, what the pixels say, and which rule decided: kept apart, as verification
    tools do."""
    evidence = result.evidence or provenance.Evidence()
    st.markdown("**Evidence**")
    st.markdown(f"- What the file says: **{EVIDENCE_HEADLINE.get(evidence.kind, evidence.kind)}** — "
                f"{plain(results.describe_evidence(evidence))}")
    st.markdown(f"- What the pixels say: {format_probability(result.prob_ai, result.cap)} AI-generated "
                f"({plain(result.model)})")
    st.markdown(f"- Decided by: **{result.verdict.rule}**")


def show_result(result: Result, overlay: Optional[np.ndarray]) -> None:
    with st.container(border=True):
        if result.error:
            st.error(f"**{plain(result.name)}** can't be classified: {plain(result.error)}")
            return
        picture, words = st.columns([1, 1])
        picture.image(result.image, caption=plain(result.name), width=DISPLAY_WIDTH)
        with words:
            label = result.verdict.label
            st.markdown(f"#### :{VERDICT_COLOUR[label]}[**{VERDICT_TEXT[label]}**]")
            st.markdown(f"Probability AI-generated: **{format_probability(result.prob_ai, result.cap)}**")
            st.caption(f"Why: {plain(result.verdict.reason)}.")
            if result.caveat:
                st.markdown(f":orange[**What this answer is worth:**] {plain(result.caveat)}")
            if label == OUT_OF_SCOPE_LABEL:
                st.caption(SCOPE_NOTE)
            st.caption(f"Answered by {plain(result.route)}")
            show_evidence(result)
            with st.expander("Explanation heatmap"):
                st.image(overlay, width=DISPLAY_WIDTH)
                st.caption(explain.HOW_TO_READ)


def main() -> None:
    st.set_page_config(page_title="AI-generated or real?", page_icon="🔍")
    st.title("AI-generated or real?")
    try:
        predictor = load_predictor(choose_model())
    except ModelError as error:
        st.error(f"The detector has no usable model. {plain(str(error))}")
        st.markdown(HOW_TO_GET_A_MODEL)
        return
    show_model_note(predictor)
    threshold, band = threshold_controls()
    trust_anchors = trust_list_control()
    uploads = st.file_uploader(
        "Choose images...", type=list(images.IMAGE_EXTENSIONS), accept_multiple_files=True,
        help=f"JPG, PNG, WebP, HEIC, AVIF, BMP, GIF or TIFF, up to {images.MAX_FILE_BYTES // 2**20} MB each; "
             "several at once.")
    if not uploads:
        return
    analyses = analyse_uploads(predictor, uploads, trust_anchors)
    with st.spinner("Updating the verdicts…"):
        labelled = [relabel(analysis.result, threshold, band) for analysis in analyses]
        if len(labelled) > 1:
            show_summary(labelled)
        for analysis, result in zip(analyses, labelled):
            show_result(result, analysis.overlay)


main()
