"""Image files that say where they came from, built with the real tools: Content Credentials signed
by c2pa.Builder with a test CA made by `cryptography` (root + leaf, ES256), text chunks and XMP
written by Pillow, EXIF and HEIC by Pillow and pillow-heif. Shared by the provenance, page, CLI,
Beam and browser tests."""
import datetime
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parent.parent
PROVENANCE = ROOT.parent / "shared" / "data" / "provenance"
OPENAI_FILES = ("openai-chatgpt-c2pa.png", "openai-gpt-image-1-c2pa.png")
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class SigningCA:
    root_pem: bytes
    chain_pem: bytes        # leaf, then root
    key_pem: bytes


def make_signing_ca() -> SigningCA:
    """A root CA and an ES256 signing leaf (emailProtection, as C2PA asks), valid for 30 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aidetect tests")])

    def usage(signing: bool):
        return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                             crl_sign=not signing, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, issuer, key, is_ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
                   .add_extension(usage(signing=not is_ca), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not is_ca:
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                      critical=False))
        return builder.sign(root_key, hashes.SHA256())

    root = certificate(name("aidetect Test Root CA"), name("aidetect Test Root CA"), root_key, True)
    leaf = certificate(name("aidetect Test Signer"), root.subject, leaf_key, False)
    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    key = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return SigningCA(pem(root), pem(leaf) + pem(root), key)


def picture(format_name: str = "JPEG", size=(96, 64), seed: int = 0, **options) -> bytes:
    """A noisy picture (with detail, so it is within a model's scope) in format_name."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format_name, **options)
    return buffer.getvalue()


def signed(ca: SigningCA, source_type: str = "trainedAlgorithmicMedia", agent: str = "TestGen 1",
           data: bytes = b"", mime: str = "image/jpeg") -> bytes:
    """An image with a C2PA manifest whose c2pa.created action declares source_type, signed by ca."""
    import c2pa

    manifest = {"claim_generator_info": [{"name": "aidetect-tests", "version": "1"}], "title": "fixture",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "softwareAgent": {"name": agent},
                     "digitalSourceType": IPTC + source_type}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", ca.chain_pem, ca.key_pem, None))
    builder = c2pa.Builder(manifest, context=c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    out = io.BytesIO()
    builder.sign(signer, mime, io.BytesIO(data or picture()), out)
    return out.getvalue()


def altered(data: bytes) -> bytes:
    """The signed file with pixel bytes changed after signing (the JPEG's entropy-coded tail)."""
    changed = bytearray(data)
    end = changed.rindex(b"\xff\xd9")           # end of image marker: change the bytes just before it
    for i in range(end - 12, end - 4):
        changed[i] ^= 0x55
    return bytes(changed)


def png_with_text(chunks: dict) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return picture("PNG", pnginfo=info)


A1111_PARAMETERS = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, "
                    "CFG scale: 7, Seed: 1234, Size: 512x512, Model: dreamshaper_8")
GENERATOR_PNGS = {
    "a1111.png": {"parameters": A1111_PARAMETERS},
    "comfyui.png": {"prompt": '{"3": {"class_type": "KSampler"}}', "workflow": '{"nodes": []}'},
    "invokeai.png": {"invokeai_metadata": '{"model": {"name": "sdxl"}, "steps": 30}'},
    "novelai.png": {"Software": "NovelAI", "Comment": '{"steps": 28, "sampler": "k_euler"}'},
}


def xmp_packet(source_type: str) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"/></rdf:RDF></x:xmpmeta>').encode()


def camera_exif(gps: bool = True) -> Image.Exif:
    from PIL.ExifTags import IFD, Base, GPS

    exif = Image.Exif()
    exif[Base.Make], exif[Base.Model] = "Canon", "Canon EOS R6"
    exif.get_ifd(IFD.Exif).update({Base.ExposureTime: 1 / 250, Base.FNumber: 4.0, Base.ISOSpeedRatings: 400,
                                   Base.LensModel: "RF24-105mm F4 L IS USM"})
    if gps:
        exif.get_ifd(IFD.GPSInfo).update({GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: (59.0, 54.0, 0.0)})
    return exif


def camera_jpeg() -> bytes:
    return picture("JPEG", exif=camera_exif())


def heic_photo(size=(96, 64)) -> bytes:
    """An iPhone-style HEIC (written by pillow-heif) with camera EXIF."""
    return picture("HEIF", size, exif=camera_exif(gps=False))
