"""The token endpoint's check of a certificate credential: the client assertion (private_key_jwt).

As "Microsoft identity platform application authentication certificate credentials" publishes it
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials, "Assertion format"): header
`alg` PS256 with `x5t#S256`, the base64url SHA-256 thumbprint of the certificate's DER (the page's current
revision), or RS256 with `x5t`, the SHA-1 thumbprint (its earlier revision, still what MSAL sends for a
SHA-1 thumbprint); claims `aud` the tenant's token endpoint, `iss` and `sub` the client id, `exp`, `nbf`,
`jti`; the signature checked against the certificate registered for the app ("Use PSS padding" for PS256).

Refusals, with the codes and words Entra answers (the Azure SDK's "Troubleshoot service principal
authentication" tables, learn.microsoft.com/azure/developer/java/sdk/troubleshooting-authentication-service-principal,
and the full texts in AzureAD/microsoft-authentication-library-for-js#3741 and Azure/azure-sdk-for-net#29007):
700027 a certificate not registered for the app ("The key was not found") or a signature that does not verify,
700021 `iss`/`sub` other than the client id, 700023 another audience, 700024 an assertion out of its time range
(no clock skew allowed: none is published), 50027 a token that is no JWT
(AzureAD/microsoft-authentication-library-for-dotnet#124: "AADSTS50027: Invalid JWT token").
"""

from __future__ import annotations

import base64

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .model import App

KEYS_HINT = ("Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for "
             "app Id '{client_id}'.")


def _thumbprint(header: dict) -> tuple[bytes, hashes.HashAlgorithm]:
    """The thumbprint the header names (x5t#S256 before x5t) and its hash; base64url, padded or not (MSAL pads)."""
    name, algorithm = ("x5t#S256", hashes.SHA256()) if header.get("x5t#S256") else ("x5t", hashes.SHA1())
    value = str(header.get(name) or "").rstrip("=")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), algorithm
    except ValueError:
        return b"", algorithm


def assertion_refusal(app: App, assertion: str, token_endpoint: str) -> tuple[int, str] | None:
    """None when the assertion authenticates the app, else (AADSTS code, description)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return 50027, "Invalid JWT token. The token is malformed."
    used, algorithm = _thumbprint(header)
    hex_used = used.hex().upper()
    cert = x509.load_pem_x509_certificate(app.certificate_pem.encode()) if app.certificate_pem else None
    if not used or cert is None or cert.fingerprint(algorithm) != used:
        return 700027, ("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint "
                        f"of key used by client: '{hex_used}', {KEYS_HINT.format(client_id=app.client_id)}]")
    try:
        claims = jwt.decode(assertion, cert.public_key(), algorithms=["PS256", "RS256"], audience=token_endpoint,
                            options={"require": ["aud", "exp", "iss", "sub"]})
    except jwt.InvalidAudienceError:
        return 700023, "Client assertion audience claim does not match Realm issuer."
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        return 700024, "Client assertion is not within its valid time range."
    except jwt.InvalidSignatureError:
        return 700027, ("Client assertion contains an invalid signature. [Reason - The provided signature value did "
                        f"not match the expected signature value., Thumbprint of key used by client: '{hex_used}']")
    except jwt.PyJWTError as e:
        return 50027, f"Invalid JWT token. {e}"
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
    return None
