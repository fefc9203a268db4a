"""A site's credential for the identity platform: a client secret, or a certificate (MSAL's JSON, or a Key Vault
certificate as its reference gives it: docs/operations.md, "Setting up the app registration"), each read from
the app setting its SITES entry names."""

from __future__ import annotations

from .model.certificates import CertificateError, certificate_credential
from .model.errors import ConfigError


def site_credential(entry: dict, env, where: str) -> tuple[str | None, dict | None]:
    """(client secret, certificate): exactly one, read from the app setting the entry names."""
    if name := entry.get("client_secret_setting"):
        return _setting(env, name, "client secret", where), None
    if name := entry.get("certificate_setting"):
        raw = _setting(env, name, "certificate", where)
        try:  # MSAL's JSON, or a Key Vault certificate as its reference gives it (PKCS#12 base64 or PEM)
            return None, certificate_credential(raw)
        except CertificateError as e:
            raise ConfigError(f"{where}: app setting {name} (certificate) holds no usable certificate: {e}") from None
    raise ConfigError(f"{where} needs client_secret_setting or certificate_setting")


def _setting(env, name: str, what: str, where: str) -> str:
    """A secret setting's value; unset, or an unresolved Key Vault reference, named as such."""
    value = env.get(name) or ""
    if not value:
        raise ConfigError(f"{where}: app setting {name} ({what}) is not set")
    if value.lstrip().startswith("@Microsoft.KeyVault("):
        raise ConfigError(f"{where}: app setting {name} ({what}) is an unresolved Key Vault reference: the app "
                          f"cannot read that secret (its identity's access, the vault's network, the secret's name)")
    return value
