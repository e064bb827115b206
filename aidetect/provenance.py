"""What an image file says about where it came from, beside its pixels: the one evidence reader.

Reads, offline (no network, ever), the metadata images.load_image kept:
- Content Credentials (C2PA, through the official c2pa-python library): who signed, what the
  manifest declares (IPTC digital source type, the software agent), and whether the signature holds
  — keeping *content changed after signing* apart from *credential problems* (no trust list given,
  an expired certificate, an older manifest layout): real OpenAI files read as "Invalid" only for
  the second kind;
- the IPTC digital source type in XMP (Meta, Google and others write it without signing);
- the settings Stable Diffusion front ends write into the file (A1111/Forge, ComfyUI, InvokeAI,
  NovelAI, Fooocus) and an EXIF Software that names a generator;
- camera EXIF (make, model, exposure, lens, GPS present) — a claim shown as context, easy to forge.

The result is a small frozen Evidence; labels.verdict decides what it means for the verdict. A file
whose metadata cannot be read costs its evidence and gets a note, never the run.
"""
import io
import json
import re
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from PIL.ExifTags import Base

from .images import FileMetadata

TRUST_ANCHORS_ENV_VAR = "AIDETECT_TRUST_ANCHORS"     # a PEM file of trusted C2PA root certificates
MAX_INGREDIENT_DEPTH = 8                             # how far a declaration is followed into ingredients

# IPTC NewsCodes digital source types (cv.iptc.org/newscodes/digitalsourcetype/)
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                   "compositeSynthetic")
CAPTURE_SOURCE_TYPES = ("digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print",
                        "compositeCapture")
SOURCE_TYPE_WORDS = {"trainedAlgorithmicMedia": "made by generative AI",
                     "compositeWithTrainedAlgorithmicMedia": "partly made by generative AI",
                     "algorithmicMedia": "made by an algorithm", "compositeSynthetic": "a composite with synthetic parts",
                     "digitalCapture": "a camera capture",
                     "computationalCapture": "a camera capture with computational processing (HDR, night mode)",
                     "negativeFilm": "a scan of a film negative", "positiveFilm": "a scan of a slide",
                     "print": "a scan of a print", "compositeCapture": "a composite of camera captures"}
# validation codes meaning the image or its manifest changed after signing (not a credential problem)
ALTERED_CODES = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch", "assertion.bmffHash.mismatch",
                 "assertion.hashedURI.mismatch", "claimSignature.mismatch", "assertion.collectionHash.mismatch")
GENERATOR_SOFTWARE = ("stable diffusion", "automatic1111", "comfyui", "invokeai", "novelai", "fooocus", "midjourney",
                      "dall-e", "dall·e", "firefly", "imagen", "gemini", "flux", "leonardo", "ideogram", "nightcafe",
                      "dreamstudio", "playground", "krea", "gpt-4o", "chatgpt")
C2PA_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
             "TIFF": "image/tiff", "HEIF": "image/heif", "AVIF": "image/avif", "GIF": "image/gif"}
_SOURCE_TYPE_IN_XMP = re.compile(rb"DigitalSourceType(?:=[\"']|>)\s*([^\"'<\s]+)")

# the provenance column's values, strongest evidence first
KINDS = ("altered", "c2pa-ai", "iptc-ai", "generator-metadata", "c2pa-capture", "iptc-capture", "c2pa",
         "camera-exif", "none")
NO_EVIDENCE_DETAIL = "no provenance found (most platforms strip it; absence proves nothing)"


@dataclass(frozen=True)
class Evidence:
    kind: str = "none"              # one of KINDS
    detail: str = NO_EVIDENCE_DETAIL    # one line a person can read
    signer: str = ""                # C2PA: the certificate's organisation / common name
    signature: str = ""             # C2PA: "trusted", "valid", "credential problem", "altered"
    generator: str = ""             # the software agent or front end that made the image
    source_type: str = ""           # the IPTC digital source type declared (short form)
    camera: str = ""                # the EXIF camera claim, e.g. "Apple iPhone 13, 1/120 s, f/1.6, ISO 50, GPS"
    notes: Tuple[str, ...] = ()     # metadata that could not be read

    @property
    def declares_ai(self) -> bool:
        return self.kind in ("c2pa-ai", "iptc-ai", "generator-metadata")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Evidence":
        fields = json.loads(text)
        return cls(**{**fields, "notes": tuple(fields.get("notes", ()))})


def short_source_type(value: str) -> str:
    """'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia' -> 'trainedAlgorithmicMedia'."""
    return value.rstrip("/").rsplit("/", 1)[-1]


def describe_source_type(term: str) -> str:
    """'trainedAlgorithmicMedia' -> 'made by generative AI (trainedAlgorithmicMedia)'."""
    return f"{SOURCE_TYPE_WORDS[term]} ({term})" if term in SOURCE_TYPE_WORDS else term


def checked_trust_anchors(text: str, source: str = "that file") -> str:
    """text, if it holds a PEM certificate; ValueError with the reason otherwise."""
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return text


def read_trust_anchors(path: Optional[str]) -> str:
    """The PEM text of a trust list file ('' for none); OSError/ValueError with the reason otherwise."""
    if not path:
        return ""
    with open(path, encoding="ascii", errors="replace") as file:
        return checked_trust_anchors(file.read(), path)


# --- C2PA -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """The facts of a C2PA manifest store that matter here."""
    signer: str
    claim_generator: str
    agent: str                      # the software agent of the declaring action
    source_type: str                # short IPTC term of the declaring action ('' when none declared)
    state: str                      # "trusted", "valid", "credential problem", "altered"
    problems: Tuple[str, ...]       # validation failure codes, for the detail line


def _agent_name(agent) -> str:
    return str(agent.get("name", "")) if isinstance(agent, dict) else str(agent or "")


def _declaration(manifests: Dict, label: str, seen: set) -> Tuple[str, str]:
    """(source type, software agent) of the first action that declares a digital source type in the
    manifest `label` or, when it declares none (OpenAI's active manifest only points to an
    ingredient), in its ingredients' manifests."""
    if label in seen or len(seen) >= MAX_INGREDIENT_DEPTH or label not in manifests:
        return "", ""
    seen.add(label)
    manifest = manifests[label]
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("digitalSourceType"):
                    return short_source_type(str(action["digitalSourceType"])), _agent_name(action.get("softwareAgent"))
    for ingredient in manifest.get("ingredients", []):
        found = _declaration(manifests, str(ingredient.get("active_manifest", "")), seen)
        if found[0]:
            return found
    return "", ""


def _signature_state(state: str, codes: Iterable[str]) -> str:
    codes = set(codes)
    if codes & set(ALTERED_CODES):
        return "altered"
    if state == "Trusted":
        return "trusted"
    if state == "Valid":
        return "valid"
    return "credential problem"


def read_c2pa(data: bytes, mime: str, trust_anchors: str = "") -> Optional[Credentials]:
    """The file's Content Credentials, None when it has none; c2pa.C2paError for a broken store."""
    import c2pa      # here, not at the top: reading a CSV or building the page never loads it

    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}   # offline, always
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors}
    reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=c2pa.Context.from_dict(settings))
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
        state = reader.get_validation_state() or ""
    manifests = store.get("manifests", {})
    active = manifests.get(store.get("active_manifest", ""), {})
    info = active.get("signature_info", {})
    generator = active.get("claim_generator_info") or [{}]
    codes = tuple(dict.fromkeys(str(status.get("code", "")) for status in store.get("validation_status", [])))
    source_type, agent = _declaration(manifests, store.get("active_manifest", ""), set())
    signer = " / ".join(dict.fromkeys(part for part in (info.get("issuer"), info.get("common_name")) if part))
    return Credentials(signer or "an unnamed signer", str(generator[0].get("name", "") or active.get("claim_generator", "")),
                       agent, source_type, _signature_state(state, codes), codes)


def describe_signature(credentials: Credentials, trust_list: bool) -> str:
    problems = {"signingCredential.expired": "the certificate has expired since",
                "signingCredential.revoked": "the certificate was revoked",
                "signingCredential.invalid": "the certificate is not valid for signing",
                "assertion.action.malformed": "an older manifest layout"}
    found = [text for code, text in problems.items() if code in credentials.problems]
    if credentials.state == "trusted":
        return "signature valid, signer on your trust list"
    if credentials.state == "valid":
        return ("signature valid, signer not on your trust list" if trust_list else
                "signature valid; signer not checked against a trust list")
    return ("image unchanged since signing; credential problems: " + (", ".join(found) or ", ".join(credentials.problems))
            + ("" if trust_list else "; signer not checked against a trust list"))


# --- unsigned metadata ---------------------------------------------------------------------------------

def xmp_source_type(xmp: bytes) -> str:
    match = _SOURCE_TYPE_IN_XMP.search(xmp)
    return short_source_type(match.group(1).decode("utf-8", "replace")) if match else ""


def _sd_model(parameters: str) -> str:
    match = re.search(r"\bModel: ([^,\n]+)", parameters)
    return f", model {match.group(1).strip()}" if match else ""


def _user_comment(exif: Dict) -> str:
    value = exif.get(Base.UserComment, b"")
    if isinstance(value, bytes):     # an 8-byte charset header, then the text (A1111 writes UNICODE)
        head, body = value[:8], value[8:]
        value = body.decode("utf-16-be" if head.startswith(b"UNICODE") else "utf-8", "replace")
    return str(value).replace("\x00", "")


def generator_settings(text: Dict[str, str], exif: Dict) -> str:
    """The front end whose settings the file holds, in words ('' when none)."""
    software = str(exif.get(Base.Software, "") or text.get("Software", ""))
    comment = _user_comment(exif)
    parameters = text.get("parameters", "") or (comment if "Steps:" in comment else "")
    if "fooocus_scheme" in text or "Fooocus" in parameters[:200]:
        return "Fooocus settings"
    if parameters and "Steps:" in parameters:
        return f"Stable Diffusion settings (A1111 / Forge format{_sd_model(parameters)})"
    if "prompt" in text and "workflow" in text:
        return "ComfyUI workflow"
    if "invokeai_metadata" in text or "sd-metadata" in text:
        return "InvokeAI settings"
    if software.strip().lower().startswith("novelai") and "Comment" in text:
        return "NovelAI settings"
    if any(name in software.lower() for name in GENERATOR_SOFTWARE):
        return f"made with {software.strip()[:80]} (EXIF Software)"
    return ""


def _rational(value) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def camera_claim(exif: Dict, has_gps: bool) -> str:
    """'Apple iPhone 13, 1/120 s, f/1.6, ISO 50, lens iPhone 13 back camera, GPS' ('' without a camera)."""
    make, model = (str(exif.get(tag, "")).strip("\x00 ") for tag in (Base.Make, Base.Model))
    if not (make or model):
        return ""
    parts = [model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()]
    exposure, fnumber = _rational(exif.get(Base.ExposureTime)), _rational(exif.get(Base.FNumber))
    if exposure:
        parts.append(f"1/{round(1 / exposure)} s" if exposure < 1 else f"{exposure:g} s")
    if fnumber:
        parts.append(f"f/{fnumber:g}")
    if isinstance(exif.get(Base.ISOSpeedRatings), int):
        parts.append(f"ISO {exif[Base.ISOSpeedRatings]}")
    if exif.get(Base.LensModel):
        parts.append(f"lens {str(exif[Base.LensModel]).strip()[:60]}")
    if has_gps:
        parts.append("GPS")
    return ", ".join(parts)


# --- the one reader -------------------------------------------------------------------------------------

def read_evidence(metadata: FileMetadata, trust_anchors: str = "") -> Evidence:
    """Everything the file declares, strongest first (KINDS); never raises for what the file holds."""
    notes: List[str] = list(metadata.notes)
    credentials = None
    mime = C2PA_MIME.get(metadata.format)
    if mime and b"c2pa" in metadata.data:      # the JUMBF label of every embedded manifest store: a cheap pre-check
        try:
            credentials = read_c2pa(metadata.data, mime, trust_anchors)
        except Exception as error:  # a malformed or hostile manifest store costs its evidence only
            notes.append(f"Content Credentials could not be read ({str(error).splitlines()[0][:120] or type(error).__name__})")
    try:
        source_type = xmp_source_type(metadata.xmp)
        settings = generator_settings(metadata.text, metadata.exif)
        camera = camera_claim(metadata.exif, metadata.has_gps)
    except Exception as error:  # odd tag types in hostile files
        notes.append(f"metadata could not be read ({type(error).__name__})")
        source_type = settings = camera = ""
    return decide_kind(credentials, source_type, settings, camera, tuple(notes), bool(trust_anchors))


def decide_kind(credentials: Optional[Credentials], source_type: str, settings: str, camera: str,
                notes: Tuple[str, ...] = (), trust_list: bool = False) -> Evidence:
    """The strongest piece of evidence names the kind; the detail line says it in words."""
    common = dict(camera=camera, notes=notes)
    if credentials is not None:
        signed = dict(signer=credentials.signer, signature=credentials.state,
                      generator=credentials.agent or credentials.claim_generator,
                      source_type=credentials.source_type, **common)
        declared = credentials.source_type
        what = (f"Content Credentials signed by {credentials.signer}"
                + (f" declare it {SOURCE_TYPE_WORDS.get(declared, declared)}" if declared else "")
                + (f" with {credentials.agent}" if credentials.agent else "")
                + (f" ({declared})" if declared in SOURCE_TYPE_WORDS else ""))
        if credentials.state == "altered":
            return Evidence("altered", f"{what}, but the image was changed after signing", **signed)
        if declared in AI_SOURCE_TYPES:
            return Evidence("c2pa-ai", f"{what}: {describe_signature(credentials, trust_list)}", **signed)
        if declared in CAPTURE_SOURCE_TYPES:
            return Evidence("c2pa-capture", f"{what}: {describe_signature(credentials, trust_list)}", **signed)
        c2pa_other = Evidence("c2pa", f"{what} (made with {credentials.claim_generator or 'unnamed software'}): "
                                      f"{describe_signature(credentials, trust_list)}", **signed)
    else:
        c2pa_other = None
    if source_type in AI_SOURCE_TYPES:
        return Evidence("iptc-ai", f"its XMP metadata declares it {describe_source_type(source_type)}, "
                                   "an IPTC digital source type (unsigned)", source_type=source_type, **common)
    if settings:
        return Evidence("generator-metadata", f"generator settings in the file: {settings} (unsigned)",
                        generator=settings, **common)
    if c2pa_other is not None:
        return c2pa_other
    if source_type in CAPTURE_SOURCE_TYPES:
        return Evidence("iptc-capture", f"its XMP metadata declares it {describe_source_type(source_type)} "
                                        "(unsigned, easy to forge)", source_type=source_type, **common)
    if camera:
        return Evidence("camera-exif", f"camera EXIF: {camera} (a claim: easy to forge, and platforms strip it)",
                        **common)
    if source_type:
        return Evidence("none", f"its XMP metadata names the source type {source_type}", source_type=source_type,
                        **common)
    return Evidence(notes=notes)
