"""What the file says: Content Credentials signed here with a test CA, generator settings, IPTC/XMP,
camera EXIF, HEIC, hostile metadata and two real OpenAI files, read by the real c2pa library and
Pillow, and the verdict each one gets from labels.verdict."""
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from aidetect import images, labels, provenance
from tests import evidence_files as files


@pytest.fixture(scope="module")
def ca():
    pytest.importorskip("c2pa", reason="c2pa-python is not installed (pip install -r requirements.txt)")
    return files.make_signing_ca()


def evidence(data: bytes, trust_anchors: str = "") -> provenance.Evidence:
    return provenance.read_evidence(images.load_image(data).metadata, trust_anchors)


def test_signed_ai_image_is_valid_without_a_trust_list_and_trusted_with_its_root(ca):
    data = files.signed(ca)
    untrusted = evidence(data)
    assert (untrusted.kind, untrusted.signature) == ("c2pa-ai", "valid")
    assert untrusted.signer == "aidetect tests / aidetect Test Signer" and untrusted.generator == "TestGen 1"
    assert "not checked against a trust list" in untrusted.detail
    trusted = evidence(data, ca.root_pem.decode())
    assert (trusted.kind, trusted.signature) == ("c2pa-ai", "trusted")
    assert "signer on your trust list" in trusted.detail
    answer = labels.verdict(0.02, evidence=trusted)           # pixels say Real: the declaration wins
    assert (answer.label, answer.rule) == (labels.AI_LABEL, labels.RULE_DECLARED)
    assert "the file declares it" in answer.reason and "2.0% AI-generated" in answer.reason


def test_someone_elses_trust_list_does_not_trust_the_signer(ca):
    other = files.make_signing_ca()
    said = evidence(files.signed(ca), other.root_pem.decode())
    assert said.signature == "valid" and "signer not on your trust list" in said.detail


def test_image_changed_after_signing_is_reported_altered_and_the_pixels_decide(ca):
    said = evidence(files.altered(files.signed(ca)))
    assert (said.kind, said.signature) == ("altered", "altered")
    assert "changed after signing" in said.detail
    answer = labels.verdict(0.1, evidence=said)
    assert (answer.label, answer.rule) == (labels.REAL_LABEL, labels.RULE_PIXELS)
    assert "no longer vouches for these pixels" in answer.reason


def test_a_signed_camera_capture_is_context_not_a_real_verdict(ca):
    said = evidence(files.signed(ca, "digitalCapture", agent="Test Camera"))
    assert said.kind == "c2pa-capture" and "a camera capture" in said.detail
    assert labels.verdict(0.9, evidence=said).label == labels.AI_LABEL     # the pixels still decide


def test_signed_png_is_read_too(ca):
    said = evidence(files.signed(ca, data=files.picture("PNG"), mime="image/png"))
    assert said.kind == "c2pa-ai"


@pytest.mark.parametrize("name", sorted(files.GENERATOR_PNGS))
def test_generator_settings_in_png_text_chunks_mean_ai(name):
    said = evidence(files.png_with_text(files.GENERATOR_PNGS[name]))
    assert said.kind == "generator-metadata" and "(unsigned)" in said.detail
    answer = labels.verdict(0.05, evidence=said)
    assert (answer.label, answer.rule) == (labels.AI_LABEL, labels.RULE_GENERATOR)


def test_a1111_settings_name_the_model():
    assert "model dreamshaper_8" in evidence(files.png_with_text(files.GENERATOR_PNGS["a1111.png"])).detail


def test_a1111_settings_in_jpeg_exif_user_comment():
    from PIL.ExifTags import IFD, Base
    exif = Image.Exif()
    exif.get_ifd(IFD.Exif)[Base.UserComment] = b"UNICODE\x00" + files.A1111_PARAMETERS.encode("utf-16-be")
    assert evidence(files.picture("JPEG", exif=exif)).kind == "generator-metadata"


def test_xmp_digital_source_type_declares_ai_in_jpeg():
    said = evidence(files.picture("JPEG", xmp=files.xmp_packet("trainedAlgorithmicMedia")))
    assert (said.kind, said.source_type) == ("iptc-ai", "trainedAlgorithmicMedia")
    assert labels.verdict(0.01, evidence=said).rule == labels.RULE_DECLARED


def test_xmp_computational_capture_is_a_capture_claim():
    said = evidence(files.picture("JPEG", xmp=files.xmp_packet("computationalCapture")))
    assert said.kind == "iptc-capture" and "night mode" in said.detail


def test_camera_exif_is_shown_but_keeps_the_pixel_verdict():
    said = evidence(files.camera_jpeg())
    assert said.kind == "camera-exif"
    assert said.camera == "Canon EOS R6, 1/250 s, f/4, ISO 400, lens RF24-105mm F4 L IS USM, GPS"
    for prob in (0.05, 0.95):
        with_claim, without = labels.verdict(prob, evidence=said), labels.verdict(prob)
        assert with_claim.label == without.label and "context only" in with_claim.reason


def test_heic_is_decoded_with_its_exif():
    loaded = images.load_image(files.heic_photo())
    assert loaded.rgb.shape == (64, 96, 3) and loaded.metadata.format == "HEIF"
    assert provenance.read_evidence(loaded.metadata).camera.startswith("Canon EOS R6")


def test_plain_files_have_no_provenance():
    said = evidence(files.picture("JPEG"))
    assert said.kind == "none" and "absence proves nothing" in said.detail
    assert "absence proves nothing" in labels.verdict(0.7, evidence=said).reason


@pytest.mark.parametrize("name", files.OPENAI_FILES)
def test_real_openai_files_are_declared_ai_and_not_called_tampered(name):
    path = files.PROVENANCE / name
    if not path.is_file():
        pytest.skip(f"real OpenAI fixture not found at {path}")
    pytest.importorskip("c2pa", reason="c2pa-python is not installed")
    said = evidence(path.read_bytes())
    assert (said.kind, said.signature) == ("c2pa-ai", "credential problem")
    assert said.signer.startswith("OpenAI") and said.generator == "GPT-4o"
    assert "image unchanged since signing" in said.detail and "expired" in said.detail
    answer = labels.verdict(0.001, evidence=said)
    assert (answer.label, answer.rule) == (labels.AI_LABEL, labels.RULE_DECLARED)


# --- hostile metadata: a note, never a crash ---------------------------------------------------------------

def test_huge_xmp_packet_is_skipped_with_a_note():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x>" + "A" * (3 * 2**20) + "</x>")
    said = evidence(files.picture("PNG", pnginfo=info))
    assert said.kind == "none" and any("XMP is too large" in note for note in said.notes)


def _png_with_chunk(kind: bytes, body: bytes) -> bytes:
    png = files.picture("PNG")
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


@pytest.mark.parametrize("body", [
    b"\x00\x00\x00\x40jumb\x00\x00\x00\x20jumdc2pa" + b"\xff" * 40,               # truncated, garbled box
    b"".join(struct.pack(">I", 8 + 8 * (2000 - i)) + b"jumb" for i in range(2000)) + b"c2pa",  # deep nesting
], ids=["garbled", "deeply-nested"])
def test_broken_c2pa_store_gives_a_note_not_a_crash(ca, body):
    data = _png_with_chunk(b"caBX", body)
    loaded = images.load_image(data)
    said = provenance.read_evidence(loaded.metadata)
    assert said.kind == "none"
    assert any("Content Credentials could not be read" in note for note in said.notes), said


def test_garbled_manifest_bytes_inside_a_signed_file(ca):
    data = bytearray(files.signed(ca))
    start = data.index(b"c2pa") + 40
    data[start:start + 200] = bytes(200)                  # zero the manifest's claim bytes
    said = evidence(bytes(data))
    assert said.kind in ("altered", "none") and (said.kind == "altered" or said.notes)


def test_garbled_exif_costs_only_the_exif():
    jpeg = files.picture("JPEG")
    app1 = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 30        # 65535 entries promised
    broken = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    with pytest.warns(UserWarning, match="Corrupt EXIF data"):            # Pillow says so, and goes on
        image, error = images.try_load_image(broken)
    assert error is None and image.rgb.shape == (64, 96, 3)
    assert provenance.read_evidence(image.metadata).kind == "none"


def test_evidence_survives_its_json_trip():
    said = evidence(files.camera_jpeg())
    assert provenance.Evidence.from_json(said.to_json()) == said


# --- the same evidence in classify.py's rows ----------------------------------------------------------------

def test_classify_writes_each_files_evidence_and_verdict(ca, tmp_path, tiny_model_path, capsys):
    import json

    import classify

    folder = tmp_path / "in"
    folder.mkdir()
    made = {"signed.jpg": files.signed(ca), "altered.jpg": files.altered(files.signed(ca)),
            "a1111.png": files.png_with_text(files.GENERATOR_PNGS["a1111.png"]),
            "meta.jpg": files.picture("JPEG", xmp=files.xmp_packet("trainedAlgorithmicMedia")),
            "camera.jpg": files.camera_jpeg(), "iphone.heic": files.heic_photo(),
            "web.avif": files.picture("AVIF"), "plain.webp": files.picture("WEBP")}
    for name, data in made.items():
        (folder / name).write_bytes(data)
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(ca.root_pem)
    output = tmp_path / "out.json"
    assert classify.main([str(folder), "--model", str(tiny_model_path), "--output", str(output),
                          "--trust-anchors", str(anchors)]) == 0
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in json.loads(output.read_text())}
    assert set(rows) == set(made) and not any(row["error"] for row in rows.values())
    expected = {"signed.jpg": ("c2pa-ai", labels.RULE_DECLARED), "altered.jpg": ("altered", labels.RULE_PIXELS),
                "a1111.png": ("generator-metadata", labels.RULE_GENERATOR),
                "meta.jpg": ("iptc-ai", labels.RULE_DECLARED), "camera.jpg": ("camera-exif", labels.RULE_PIXELS),
                "iphone.heic": ("camera-exif", labels.RULE_PIXELS), "web.avif": ("none", labels.RULE_PIXELS),
                "plain.webp": ("none", labels.RULE_PIXELS)}
    for name, (kind, rule) in expected.items():
        row = rows[name]
        assert (row["provenance"], row["rule"]) == (kind, rule), name
        assert row["reason"] and row["provenance_detail"] and row["prob_ai"] is not None
        if rule != labels.RULE_PIXELS:
            assert row["label"] == labels.AI_LABEL, name
    assert "signer on your trust list" in rows["signed.jpg"]["provenance_detail"]


def test_classify_refuses_a_trust_list_without_certificates(tmp_path, capsys):
    import classify

    not_pem = tmp_path / "list.pem"
    not_pem.write_text("hello")
    with pytest.raises(SystemExit) as stopped:
        classify.parse_args([str(tmp_path), "--trust-anchors", str(not_pem)])
    assert stopped.value.code == 2 and "holds no PEM certificate" in capsys.readouterr().err
