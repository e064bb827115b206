"""The web page: upload images, see whether each is AI-generated or real, and where the model looked.

    streamlit run web_app.py                      (model: $AIDETECT_MODEL or models/default/model.keras)
    streamlit run web_app.py -- --model PATH      (a .keras file or a run folder)

The page only lays things out; loading, preprocessing, prediction, explanations and labels live in
the aidetect package. Uploads stay in memory (Streamlit keeps them in RAM; nothing is written here).
"""
import argparse
import dataclasses
import gc
import re
import sys
from typing import Dict, List, Optional, Tuple

import keras
import numpy as np
import streamlit as st
from PIL import Image

from aidetect import explain, images, results
from aidetect.labels import AI_LABEL, DEFAULT_THRESHOLD, REAL_LABEL, UNCERTAIN_LABEL, predicted_index, verdict
from aidetect.model import ModelError
from aidetect.predict import DEFAULT_MODEL_PATH, MODEL_ENV_VAR, Predictor, Result, resolve_model_path

PAGE_UNCERTAIN_BAND = 0.1       # the page asks for a human look near the threshold by default
MAX_UNCERTAIN_BAND = 0.25
DISPLAY_WIDTH = 256             # pixels; 32x32 images would be unreadable at their own size
THUMBNAIL_SIZE = 2 * DISPLAY_WIDTH      # sharp on high-density screens
VERDICT_TEXT = {AI_LABEL: "AI-generated", REAL_LABEL: "Real",
                UNCERTAIN_LABEL: "Uncertain — review manually"}
VERDICT_COLOUR = {AI_LABEL: "red", REAL_LABEL: "green", UNCERTAIN_LABEL: "orange"}
HOW_TO_GET_A_MODEL = f"""
To get a model, either
- train one: `python model_training.py train` (it is saved under `models/<run>/`), then copy that
  folder's `model.keras` to `{DEFAULT_MODEL_PATH}`, or
- start the page with another model: `streamlit run web_app.py -- --model PATH`, or set the
  environment variable `{MODEL_ENV_VAR}=PATH` (a `.keras` file or a run folder).
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


@st.cache_resource(show_spinner="Loading the model…")
def load_predictor(model_path: str) -> Predictor:
    """Once per server process and model path; failures are not cached, so a fixed file is seen."""
    predictor = Predictor.load(model_path)
    # After every run Streamlit calls keras.backend.clear_session(), which empties TensorFlow's
    # kernel cache: ResNet101 then rebuilds its kernels for each upload (~2.5 s instead of
    # ~0.15 s). This page builds no models, so there is no Keras state to clear.
    keras.backend.clear_session = lambda *args, **kwargs: None
    # Streamlit also runs a full garbage collection after every run, over TensorFlow's ~400k
    # objects (~0.3 s a click); freezing these long-lived objects takes them out of it.
    gc.collect()
    gc.freeze()
    return predictor


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A display-sized copy: the session keeps this, not the full decoded photo."""
    image = Image.fromarray(rgb)
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return np.asarray(image)


def analyse(predictor: Predictor, name: str, data: bytes) -> Analysis:
    """Classify one upload and explain the model's own answer (independent of the threshold)."""
    try:
        result = predictor.classify_one(data, name, keep_images=True)
        if result.error:
            return Analysis(result)
        heatmap = explain.explain(predictor.model, predictor.preprocess(result.image),
                                  class_index=predicted_index(result.prob_ai))
        small = thumbnail(result.image)
        return Analysis(dataclasses.replace(result, image=small), explain.overlay(small, heatmap))
    except Exception as error:  # an unexpected failure costs this file its verdict, never the page
        return Analysis(Result(name, error=f"could not analyse this image ({type(error).__name__})"))


def analyse_uploads(predictor: Predictor, uploads) -> List[Analysis]:
    """Analyse each upload once per session (progress bar when several are new); forget removed ones."""
    done: Dict[str, Analysis] = st.session_state.setdefault("analyses", {})
    for file_id in set(done) - {upload.file_id for upload in uploads}:
        del done[file_id]
    new = [upload for upload in uploads if upload.file_id not in done]
    progress = st.progress(0.0, text="Classifying…") if len(new) > 1 else None
    for count, upload in enumerate(new, start=1):
        done[upload.file_id] = analyse(predictor, upload.name, upload.getvalue())
        if progress:
            progress.progress(count / len(new), text=f"Classified {count} of {len(new)} images")
    if progress:
        progress.empty()
    return [done[upload.file_id] for upload in uploads]


def relabel(result: Result, threshold: float, band: float) -> Result:
    if result.prob_ai is None:
        return result
    return dataclasses.replace(result, verdict=verdict(result.prob_ai, threshold, band))


def show_model_note(predictor: Predictor) -> None:
    accuracy = predictor.run_info().get("metrics", {}).get("accuracy")
    measured = (f"Its measured accuracy on the CIFAKE test set is **{accuracy:.1%}**."
                if isinstance(accuracy, (int, float)) else
                "Its test accuracy was not recorded (no metrics.json beside the model).")
    st.info(f"**What this model knows.** It was trained on CIFAKE: small {predictor.image_size}×"
            f"{predictor.image_size} CIFAR-10 photos (real) versus Stable Diffusion 1.4 images "
            f"(AI-generated); larger images are shrunk to that size first. {measured}")
    st.warning("Images from other generators (Midjourney, DALL·E, newer Stable Diffusion…) and "
               "ordinary photo processing may fool it: in our tests blurred or resized AI images "
               "were often called real, and sharpened real photos AI-generated. Treat a verdict "
               "as a hint, not as proof.")


def threshold_controls() -> Tuple[float, float]:
    with st.sidebar:
        st.header("Decision")
        threshold = st.slider(
            "Threshold: probability AI-generated", 0.0, 1.0, DEFAULT_THRESHOLD, 0.01, key="threshold",
            help="At or above this probability an image is called AI-generated; below it, real.")
        band = st.slider(
            "Uncertain band (±)", 0.0, MAX_UNCERTAIN_BAND, PAGE_UNCERTAIN_BAND, 0.01, key="uncertain_band",
            help="Images this close to the threshold are labelled Uncertain instead of guessed. "
                 "0 = always decide.")
    return threshold, band


def show_summary(labelled: List[Result]) -> None:
    st.subheader("Summary")
    rows = [{"file": r.name,
             "verdict": VERDICT_TEXT.get(r.label, f"unreadable: {r.error}"),
             "probability AI-generated": r.prob_ai}
            for r in labelled]
    st.dataframe(rows, hide_index=True, column_config={
        "probability AI-generated": st.column_config.NumberColumn(format="%.3f")})
    st.download_button("Download as CSV", results.to_csv(labelled), file_name="aidetect_results.csv",
                       mime="text/csv", on_click="ignore")


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
            st.markdown(f"Confidence: **{result.verdict.confidence:.1%}**  \n"
                        f"Probability AI-generated: {result.prob_ai:.3f}")
            with st.expander("Explanation heatmap"):
                st.image(overlay, width=DISPLAY_WIDTH)
                st.caption(explain.HOW_TO_READ)


def main() -> None:
    st.set_page_config(page_title="AI-generated or real?", page_icon="🔍")
    st.title("AI-generated or real?")
    try:
        predictor = load_predictor(model_path_from_command_line())
    except ModelError as error:
        st.error(f"The detector has no usable model. {plain(str(error))}")
        st.markdown(HOW_TO_GET_A_MODEL)
        return
    show_model_note(predictor)
    threshold, band = threshold_controls()
    uploads = st.file_uploader(
        "Choose images...", type=list(images.IMAGE_EXTENSIONS), accept_multiple_files=True,
        help=f"JPG, PNG, WebP or BMP, up to {images.MAX_FILE_BYTES // 2**20} MB each; several at once.")
    if not uploads:
        return
    analyses = analyse_uploads(predictor, uploads)
    labelled = [relabel(analysis.result, threshold, band) for analysis in analyses]
    if len(labelled) > 1:
        show_summary(labelled)
    for analysis, result in zip(analyses, labelled):
        show_result(result, analysis.overlay)


main()
