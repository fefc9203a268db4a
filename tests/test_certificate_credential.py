"""A site's certificate credential: the app setting as a Key Vault reference gives it (a Key Vault
certificate's secret: base64 PKCS#12, or PEM), MSAL's real certificate flow (a client assertion signed with
the key) against the Graph simulator's HTTPS token endpoint, which checks the assertion as the identity
platform publishes it; a certificate the app registration does not hold is refused with AADSTS700027."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from types import SimpleNamespace

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from devtools.sim import GraphSimulator
from shared.clients.graph import GRAPH_SCOPE
from shared.clients.remote import Tokens
from shared.model.errors import RemoteError
from shared.site_settings import ConfigError, site_from

TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = str(uuid.UUID(int=7))
SETTING = "SITE_ACME_CERTIFICATE"


def _certificate(name: str = "rapid-meetings") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed certificate as Key Vault's default policy makes one (RSA 2048, CN=<name>)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert


def _pfx_base64(key, cert, password: bytes | None = None) -> str:
    """What `@Microsoft.KeyVault(SecretUri=…/secrets/<certificate>)` yields for content type application/x-pkcs12."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return base64.b64encode(pkcs12.serialize_key_and_certificates(None, key, cert, None, encryption)).decode()


def _pem(key, cert) -> str:
    """What the reference yields for content type application/x-pem-file: the key, then the certificate."""
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)).decode()


def _site(value: str):
    entry = {"tenant": "acme", "site": "meetings", "rapid_url": "https://rapid.example/api/acme/meetings",
             "aad_tenant": TENANT, "client_id": CLIENT, "certificate_setting": SETTING}
    return site_from(entry, {SETTING: value})


@pytest.fixture(scope="module")
def graph():
    sim = GraphSimulator().start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def registered(graph):
    """The app registration with one certificate credential (its public part only, as Entra keeps it)."""
    key, cert = _certificate()
    graph.register_app(TENANT, CLIENT, certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode())
    return key, cert


def _tokens(graph) -> Tokens:
    """The app's own token code (MSAL), pointed at the simulator's identity platform."""
    return Tokens(SimpleNamespace(authority_host=graph.base_url), graph.http_session())


@pytest.mark.parametrize("form", ["pkcs12", "pem"])
def test_a_key_vault_certificate_setting_gets_a_graph_token_through_msal(graph, registered, form):
    key, cert = registered
    site = _site(_pfx_base64(key, cert) if form == "pkcs12" else _pem(key, cert))
    before = graph.token_requests(TENANT)
    token = _tokens(graph).token(site, GRAPH_SCOPE)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["appid"], claims["tid"]) == (CLIENT, TENANT)
    assert graph.token_requests(TENANT) == before + 1
    # no SHA-1 thumbprint given: MSAL signs PS256 with the x5t#S256 header the current page asks for
    assert "thumbprint" not in site.credential and site.credential["public_certificate"].startswith("-----BEGIN")


def test_a_certificate_the_app_registration_does_not_hold_is_refused_with_700027(graph, registered):
    site = _site(_pfx_base64(*_certificate("another")))
    with pytest.raises(RemoteError) as refused:
        _tokens(graph).token(site, GRAPH_SCOPE)
    assert "invalid_client" in str(refused.value) and "AADSTS700027" in str(refused.value)
    assert "The key was not found" in str(refused.value)


def _assertion(key, cert, graph, **claims) -> str:
    now = int(time.time())
    body = {"aud": f"{graph.base_url}/{TENANT}/oauth2/v2.0/token", "iss": CLIENT, "sub": CLIENT,
            "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600, **claims}
    thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
    return jwt.encode(body, key, algorithm="PS256", headers={"x5t#S256": thumbprint})


def _post_assertion(graph, assertion: str) -> requests.Response:
    return graph.http_session().post(f"{graph.base_url}/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT, "scope": GRAPH_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_each_published_assertion_rule_is_enforced(graph, registered):
    key, cert = registered
    other_key, _ = _certificate("forger")
    now = int(time.time())
    cases = {
        "signed by another key under the registered thumbprint": (_assertion(other_key, cert, graph), 700027),
        "for another audience": (_assertion(key, cert, graph, aud="https://login.example/x/oauth2/v2.0/token"), 700023),
        "issued for another client": (_assertion(key, cert, graph, iss="someone-else", sub="someone-else"), 700021),
        "expired": (_assertion(key, cert, graph, nbf=now - 1200, exp=now - 600), 700024),
    }
    for case, (assertion, code) in cases.items():
        answer = _post_assertion(graph, assertion)
        assert (answer.status_code, answer.json()["error_codes"]) == (401, [code]), case
    assert _post_assertion(graph, _assertion(key, cert, graph)).status_code == 200


@pytest.mark.parametrize("value, said", [
    ("not base64 at all!", "neither JSON, PEM nor base64"),
    (base64.b64encode(b"no pkcs12 here").decode(), "no PKCS#12 (PFX) without a password"),
    ("PASSWORD", "no PKCS#12 (PFX) without a password"),
    ("PEM-CERT-ONLY", "no private key"),
    ("MISMATCH", "does not belong to its certificate"),
    ('{"thumbprint": "abc"}', "no private_key"),
    ("{not json", "not JSON"),
])
def test_a_bad_certificate_setting_is_refused_naming_the_setting(value, said):
    key, cert = _certificate()
    value = {"PASSWORD": _pfx_base64(key, cert, b"secret"),
             "PEM-CERT-ONLY": cert.public_bytes(serialization.Encoding.PEM).decode(),
             "MISMATCH": _pem(_certificate()[0], cert)}.get(value, value)
    with pytest.raises(ConfigError) as refused:
        _site(value)
    assert f"SITES[acme/meetings]: app setting {SETTING} (certificate)" in str(refused.value)
    assert said in str(refused.value)
