"""C2PA Content Credentials for generated images, through the optional ``c2pa-python`` package.

A C2PA manifest is the industry's standard provenance container: a signed claim, embedded in the
file (a ``caBX`` chunk in PNG), that any C2PA reader (``c2patool``, Adobe's Content Credentials
checker, ``c2pa.Reader``) can show. synthaug's manifest says what the file is and where it came
from:

- a ``c2pa.actions`` assertion with the action ``c2pa.created`` and the IPTC digital source type
  ``trainedAlgorithmicMedia`` (made by a trained generative model), naming synthaug and the
  generator class as the software agent;
- an ``org.synthaug.provenance`` assertion holding synthaug's own provenance record (model hash,
  training-data fingerprint, parameters, seed, time, this file's pixel hash);
- C2PA's hard binding: a hash of the file's bytes, so any change to the pixels (or to the
  manifest) makes the manifest invalid.

The manifest is signed with an X.509 certificate chain and its private key (PEM). Whether a
reader *trusts* the signer depends on its trust list: a certificate from a CA on the C2PA trust
list shows as trusted; :func:`self_signed_credentials` makes a throw-away CA and signer for tests
and demos, which readers report as valid but untrusted. This complements the watermark (which
survives edits that strip metadata) and synthaug's own record (which needs no certificate).

Install with ``pip install "synthaug[c2pa]"``.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ASSERTION_LABEL = "org.synthaug.provenance"
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
"""Signature algorithms C2PA allows (``C2paSigner.alg``, the CLI's ``--c2pa-alg``)."""
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff",
         ".tiff": "image/tiff", ".webp": "image/webp"}


def mime_type_for(path: str | Path) -> str | None:
    """The media type C2PA reads a file of this name as, or None for a format it does not read."""
    return _MIME.get(Path(path).suffix.lower())


def require_c2pa():
    """The ``c2pa`` module, or an ``ImportError`` that says how to install it."""
    try:
        import c2pa
    except ImportError:
        raise ImportError("C2PA Content Credentials need the c2pa-python package: "
                          'pip install "synthaug[c2pa]"') from None
    return c2pa


def available() -> bool:
    """Whether ``c2pa-python`` is installed."""
    try:
        require_c2pa()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class C2paSigner:
    """An X.509 certificate chain and its private key, both PEM, to sign C2PA manifests with.

    Parameters
    ----------
    cert_chain : bytes
        The signing certificate first, then its issuers (PEM). C2PA requires the signing
        certificate to allow digital signatures and not to be a CA.
    private_key : bytes
        The signing certificate's private key (PEM, PKCS#8).
    alg : {"es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"}, default="es256"
        Signature algorithm; it must match the key type.
    tsa_url : str or None, default=None
        An RFC 3161 time-stamping authority to countersign with (needs the network; None: no
        time stamp).
    """

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    alg: str = "es256"
    tsa_url: str | None = None

    def __post_init__(self):
        if self.alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {ALGORITHMS}; got {self.alg!r}")
        for name in ("cert_chain", "private_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or b"-----BEGIN" not in value:
                raise ValueError(f"{name} must be PEM bytes (-----BEGIN ...); got {type(value).__name__}")

    @classmethod
    def from_files(cls, cert_chain_path, private_key_path, alg: str = "es256", tsa_url: str | None = None):
        """Read the PEM certificate chain and private key from files."""
        return cls(Path(cert_chain_path).read_bytes(), Path(private_key_path).read_bytes(), alg, tsa_url)

    def check(self) -> "C2paSigner":
        """Sign a 1×1 test image, so that a key that does not match its certificate or ``alg``
        fails here, with C2PA's reason, rather than halfway through writing files."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("L", (1, 1)).save(buffer, format="PNG")
        try:
            sign_png(buffer.getvalue(), self)
        except require_c2pa().C2paError as exc:
            raise ValueError(f"cannot sign C2PA manifests with this certificate and key ({self.alg}): {exc}") from None
        return self

    def _signer(self):
        c2pa = require_c2pa()
        info = c2pa.C2paSignerInfo(getattr(c2pa.C2paSigningAlg, self.alg.upper()), self.cert_chain,
                                   self.private_key, None if self.tsa_url is None else self.tsa_url.encode())
        return c2pa.Signer.from_info(info)


def manifest_definition(record: dict | None, title: str) -> dict:
    """The manifest synthaug signs for one generated file (before C2PA adds its hashes)."""
    import synthaug

    generator = ((record or {}).get("generator") or {}).get("class")
    agent = {"name": "synthaug", "version": synthaug.__version__}
    action = {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
              "softwareAgent": agent if generator is None else {**agent, "name": f"synthaug {generator}"}}
    assertions = [{"label": "c2pa.actions", "data": {"actions": [action]}}]
    if record is not None:
        # The record as one JSON string: c2pa-python stores lists of numbers in an assertion as byte
        # strings, CBOR or JSON kind alike (hidden_units [512, 512] read back as "AAA="), which
        # changes the record and breaks its signature.
        assertions.append({"label": ASSERTION_LABEL, "data": {"record_json": json.dumps(record, sort_keys=True)}})
    return {"claim_generator_info": [agent], "title": title, "format": "image/png", "assertions": assertions}


def sign_png(png: bytes, signer: C2paSigner, *, record: dict | None = None, title: str = "synthetic.png") -> bytes:
    """Embed a signed C2PA manifest in PNG bytes: the same image with a ``caBX`` chunk added.

    Parameters
    ----------
    png : bytes
        An encoded PNG (its other chunks, e.g. synthaug's signed record, are kept).
    signer : C2paSigner
    record : dict, default=None
        synthaug's provenance record for this file, copied into the manifest's
        ``org.synthaug.provenance`` assertion.
    title : str, default="synthetic.png"
        The manifest's title (the file name).

    Returns
    -------
    bytes
        The signed PNG.
    """
    c2pa = require_c2pa()
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("sign_png needs PNG bytes")
    # No claim thumbnail: it would add a JPEG copy of the image to every file (kilobytes to megabytes).
    context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    out = io.BytesIO()
    with c2pa.Builder(manifest_definition(record, title), context) as builder:
        builder.sign(signer._signer(), "image/png", io.BytesIO(png), out)
    return out.getvalue()


@dataclass(frozen=True)
class ContentCredentials:
    """The C2PA manifest found in a file.

    Attributes
    ----------
    state : str
        The C2PA validation state: ``"Valid"`` (signature and hashes check), ``"Trusted"`` (and
        the signer chains to a trusted CA) or ``"Invalid"`` (the file or manifest was changed,
        or the signature does not check).
    digital_source_type : str or None
        The IPTC digital source type of the creating action (synthaug:
        :data:`TRAINED_ALGORITHMIC_MEDIA`).
    synthaug_record : dict or None
        synthaug's provenance record, if the manifest carries one.
    failures : tuple of str
        C2PA failure codes other than an untrusted signer (e.g. ``"assertion.dataHash.mismatch"``
        when the pixels changed).
    signer_trusted : bool
        Whether the signing certificate chains to a CA the reader trusts.
    """

    state: str
    digital_source_type: str | None
    synthaug_record: dict | None
    failures: tuple = ()
    signer_trusted: bool = False

    @property
    def valid(self) -> bool:
        return self.state in ("Valid", "Trusted")

    @property
    def generated_by_ai(self) -> bool:
        return self.digital_source_type == TRAINED_ALGORITHMIC_MEDIA


def read(source, mime_type: str | None = None) -> ContentCredentials | None:
    """The C2PA manifest of a file (path) or of encoded bytes, or ``None`` if it carries none.

    Parameters
    ----------
    source : str, Path or bytes
    mime_type : str, default=None
        Needed for bytes (e.g. ``"image/png"``); taken from the suffix for paths.
    """
    c2pa = require_c2pa()
    if isinstance(source, (str, Path)):
        path = Path(source)
        mime_type = mime_type or mime_type_for(path)
        if mime_type is None:
            return None
        data = path.read_bytes()
    else:
        data = bytes(source)
        if mime_type is None:
            raise ValueError("mime_type is needed to read C2PA from bytes (e.g. 'image/png')")
    try:
        with c2pa.Reader(mime_type, io.BytesIO(data)) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError.ManifestNotFound:
        return None
    codes = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    source_type, record = None, None
    for assertion in manifest.get("assertions", []):
        label, data_ = assertion.get("label", ""), assertion.get("data", {})
        if label.startswith("c2pa.actions"):
            for action in data_.get("actions", []):
                if action.get("action") == "c2pa.created":
                    source_type = action.get("digitalSourceType")
        elif label == ASSERTION_LABEL:
            from synthaug.provenance.record import parse_record_text

            record = parse_record_text(data_["record_json"]) if "record_json" in data_ else data_
    return ContentCredentials(state=str(state), digital_source_type=source_type, synthaug_record=record,
                              failures=tuple(c for c in codes if c != "signingCredential.untrusted"),
                              signer_trusted="signingCredential.untrusted" not in codes)


def self_signed_credentials(common_name: str = "synthaug test signer", days: int = 30) -> C2paSigner:
    """A throw-away CA and an ES256 signing certificate it issued, for tests and demos.

    C2PA readers report manifests signed with it as valid but *untrusted*: for output that others
    should trust, sign with a certificate from a CA on the C2PA trust list.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "synthaug (self-signed, untrusted)")])

    def usage(sign: bool):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(f"{common_name} CA")).issuer_name(name(f"{common_name} CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return C2paSigner(chain, private, "es256")
