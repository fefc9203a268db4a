"""A site's certificate credential (SITES `certificate_setting`) as MSAL takes it.

The app setting holds one of:
- what a Key Vault reference to a Key Vault *certificate* yields: the certificate's addressable secret, its
  private key and certificate as base64 PKCS#12 (PFX) without a password (content type
  application/x-pkcs12, the default) or as PEM (application/x-pem-file) ("About Azure Key Vault
  certificates", https://learn.microsoft.com/azure/key-vault/certificates/about-certificates, "Composition of
  a certificate" and "Exportable or non-exportable key"); infra/setup_app.py stores it in that form;
- MSAL's own certificate JSON ({"private_key": PEM, "public_certificate": PEM} or {"private_key", "thumbprint"}).

PKCS#12 and PEM become {"private_key", "public_certificate"} (PEM): with a public certificate and no thumbprint
MSAL Python (1.35+) signs its client assertion with PS256 and an `x5t#S256` (SHA-256) thumbprint, the form
the identity platform documents ("Microsoft identity platform application authentication certificate
credentials", https://learn.microsoft.com/entra/identity-platform/certificate-credentials). `cryptography`
(a dependency of msal) reads the key; the key stays in memory, never on disk.
"""

from __future__ import annotations

import base64
import binascii
import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


class CertificateError(ValueError):
    """The setting holds no usable certificate; the message says what is wrong with it."""


def certificate_credential(raw: str) -> dict:
    """MSAL's client_credential dict for the setting's value (JSON, PEM or base64 PKCS#12)."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            credential = json.loads(text)
        except json.JSONDecodeError:
            raise CertificateError("it starts like JSON but is not JSON") from None
        if not isinstance(credential, dict) or not credential.get("private_key") and not \
                credential.get("private_key_pfx_path"):
            raise CertificateError("its JSON has no private_key (MSAL's certificate form)")
        return credential
    if text.startswith("-----BEGIN"):
        return _from_pem(text.encode())
    return _from_pkcs12(text)


def _from_pkcs12(text: str) -> dict:
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("it is neither JSON, PEM nor base64 (a Key Vault certificate's PKCS#12)") from None
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(der, None)
    except ValueError:
        raise CertificateError("its base64 is no PKCS#12 (PFX) without a password") from None
    if key is None or cert is None:
        raise CertificateError("its PKCS#12 lacks the private key or the certificate")
    return _credential(key, cert)


def _from_pem(data: bytes) -> dict:
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError):
        raise CertificateError("its PEM has no private key that opens without a password") from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertificateError("its PEM has no certificate") from None
    return _credential(key, cert)


def _credential(key, cert: x509.Certificate) -> dict:
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CertificateError("its private key does not belong to its certificate")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"private_key": pem.decode(), "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode()}
