"""The one place that knows class indices, display names, the positive class and thresholds.

Keras would sort class folders alphabetically (FAKE=0, REAL=1); we pin the order instead so the
index of "AI-generated" never depends on folder names.
"""
from dataclasses import dataclass
from typing import Optional

CLASS_NAMES = ("REAL", "FAKE")          # index 0 = REAL, index 1 = FAKE; folder names in data/
REAL_INDEX = CLASS_NAMES.index("REAL")
FAKE_INDEX = CLASS_NAMES.index("FAKE")
POSITIVE_CLASS = "FAKE"                 # precision/recall/F1/AUC are computed for AI-generated
POSITIVE_INDEX = FAKE_INDEX

DISPLAY_NAMES = {"REAL": "Real", "FAKE": "AI-generated"}
AI_LABEL = DISPLAY_NAMES["FAKE"]
REAL_LABEL = DISPLAY_NAMES["REAL"]
UNCERTAIN_LABEL = "Uncertain"
OUT_OF_SCOPE_LABEL = "Outside what this model knows"     # scope.py: unlike anything it was trained on

DEFAULT_THRESHOLD = 0.5
DEFAULT_UNCERTAIN_BAND = 0.1            # half-width around the threshold (page, classify.py and Beam
                                        # alike): a probability this close is "Uncertain"; 0 = always decide


def predicted_index(prob_ai: float) -> int:
    """The class the model itself chose (its argmax), whatever threshold the user has set:
    explanations are of the model's answer."""
    return FAKE_INDEX if prob_ai >= 0.5 else REAL_INDEX


# which rule decided a verdict (the `rule` column): the file's own declaration wins over the pixels
RULE_DECLARED = "file declares AI"          # C2PA or IPTC/XMP digital source type
RULE_GENERATOR = "generator settings"       # a Stable Diffusion front end's settings in the file
RULE_PIXELS = "pixels"
RULE_SCOPE = "outside the model's scope"


@dataclass(frozen=True)
class Verdict:
    label: str           # "AI-generated", "Real", "Uncertain" or OUT_OF_SCOPE_LABEL
    prob_ai: float       # the pixels' probability of the AI-generated class in [0, 1], always shown
    rule: str = RULE_PIXELS     # which rule decided
    reason: str = ""     # why, in words: what the file says and what the pixels say


def format_probability(prob: float, cap: Optional[float] = None) -> str:
    """'91.6%'; never '100.0%' or '0.0%': no model is that sure, and the display must not say so.
    With a cap (measured.py: the model's accuracy on this kind of image, where it is poor) no surer
    than that: '> 58%', '< 42%'."""
    if cap is not None and max(prob, 1 - prob) > cap:
        return f"> {cap:.0%}" if prob > cap else f"< {1 - cap:.0%}"
    if prob > 0.999:
        return "> 99.9%"
    if prob < 0.001:
        return "< 0.1%"
    return f"{prob:.1%}"


def describe_decision(threshold: float, uncertain_band: float) -> str:
    """How a probability becomes a verdict, in words: 'AI-generated at 50% or more, Real below;
    Uncertain from 40% to 60%.'"""
    rule = f"AI-generated at {threshold:.0%} or more, Real below"
    if uncertain_band > 0:
        low, high = max(0.0, threshold - uncertain_band), min(1.0, threshold + uncertain_band)
        rule += f"; Uncertain from {low:.0%} to {high:.0%}"
    return rule + "."


def check_decision(threshold: float, uncertain_band: float) -> None:
    """ValueError with a one-line reason unless 0 <= threshold <= 1 and uncertain_band >= 0."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if uncertain_band < 0:
        raise ValueError(f"uncertain band must be >= 0, got {uncertain_band}")


def _pixel_verdict(p: float, threshold: float, uncertain_band: float, out_of_scope: bool,
                   cap: Optional[float]) -> Verdict:
    said = f"the pixels say {format_probability(p, cap)} AI-generated"
    if out_of_scope:
        return Verdict(OUT_OF_SCOPE_LABEL, p, RULE_SCOPE,
                       f"{said}, but the image is unlike anything the model learned from: no verdict")
    if uncertain_band > 0 and abs(p - threshold) <= uncertain_band:
        return Verdict(UNCERTAIN_LABEL, p, RULE_PIXELS,
                       f"{said}, within {uncertain_band:.0%} of the {threshold:.0%} threshold: too close to call")
    side = "at or above" if p >= threshold else "below"
    return Verdict(AI_LABEL if p >= threshold else REAL_LABEL, p, RULE_PIXELS, f"{said}, {side} the {threshold:.0%} threshold")


def verdict(prob_ai: float, threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
            out_of_scope: bool = False, evidence=None, cap: Optional[float] = None) -> Verdict:
    """Turn what the file says (evidence: provenance.Evidence, None = not read) and the pixels'
    probability of "AI-generated" into a label and its reason. The one place these rules live:

    - the file declares generative AI (signed C2PA, or an IPTC/XMP source type) -> AI-generated,
      whatever the pixels say; so do a generator's settings written into the file (unsigned);
    - otherwise the pixels decide: an input unlike the model's training images (out_of_scope) gets
      OUT_OF_SCOPE_LABEL; inside [threshold - band, threshold + band] (band > 0) "Uncertain";
    - content changed after signing, a camera or capture claim, or no evidence at all never turn
      the pixels' verdict around: they are said beside it (camera EXIF is easy to forge).
    The probability in the reason is shown no surer than cap (measured.Worth.cap).
    """
    check_decision(threshold, uncertain_band)
    p = float(prob_ai)
    pixels = _pixel_verdict(p, threshold, uncertain_band, out_of_scope, cap)
    if evidence is None:
        return pixels
    if evidence.kind in ("c2pa-ai", "iptc-ai"):
        return Verdict(AI_LABEL, p, RULE_DECLARED, f"the file declares it: {evidence.detail} ({pixels.reason})")
    if evidence.kind == "generator-metadata":
        return Verdict(AI_LABEL, p, RULE_GENERATOR, f"{evidence.detail} ({pixels.reason})")
    if evidence.kind == "altered":
        context = f"{evidence.detail}, so the declaration no longer vouches for these pixels"
    else:
        context = evidence.detail + ("" if evidence.kind == "none" else "; context only, it does not decide")
    return Verdict(pixels.label, p, pixels.rule, f"{pixels.reason}; {context}")
