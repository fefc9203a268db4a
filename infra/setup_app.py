"""Create (or bring up to date) the Entra app registration of one Microsoft 365 tenant, with the Azure CLI.

    python -m infra.setup_app --tenant <tenant id> --name rapid-meetings-contoso \\
        --secret-name site-contoso-meetings-certificate --secrets-file /secure/rapid-secrets.json
    python -m infra.setup_app … --dry-run       # print the az commands and the manifest; touch nothing

1. The app registration (single tenant) with exactly the Microsoft Graph application permissions the enabled
   switches need (shared/model/app_permissions.py, the list the site check checks: Calendars.ReadWrite alone
   by default; `--with object-ids` adds User.Read.All). An existing registration of that name gets its
   requiredResourceAccess replaced, so nothing more stays asked for; then its service principal.
2. A credential, kept in Key Vault, never shown:
   - default: a certificate made here in memory (RSA 2048, self-signed, 1 year, as Key Vault's default policy
     makes one); its public part goes onto the app registration, its PKCS#12 (PFX, base64, no password: the
     form a Key Vault certificate's secret has, content type application/x-pkcs12) into `secretValues` of a
     parameters file outside the repository, which the Bicep deployment writes into the vault through Azure
     Resource Manager (works with the vault's public endpoint off; infra/README.md, option A);
   - `--key-vault NAME`: the certificate is made inside that vault instead (`az ad app credential reset
     --create-cert --keyvault`; needs data-plane access to the vault and Key Vault Certificates Officer);
   - `--credential secret`: a client secret (1 year) into the same parameters file.
3. Prints the admin-consent URL (https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent,
   "Construct the URL for granting tenant-wide admin consent") and the SITES / siteSecrets values to deploy.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.model.app_permissions import permissions, required_resource_access

REPO = Path(__file__).resolve().parent.parent
CREDENTIAL_YEARS = 1


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.setup_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", required=True, help="the Microsoft 365 tenant's id (a GUID)")
    parser.add_argument("--name", required=True, help="the app registration's display name")
    parser.add_argument("--with", dest="switches", action="append", default=[], metavar="SWITCH",
                        help="a switch that needs more than Calendars.ReadWrite (object-ids: User.Read.All)")
    parser.add_argument("--credential", choices=("certificate", "secret"), default="certificate")
    parser.add_argument("--secret-name", required=True, help="the Key Vault secret (or certificate) name")
    parser.add_argument("--secrets-file", type=Path, help="parameters file (outside the repo) for secretValues")
    parser.add_argument("--key-vault", help="make the certificate inside this vault instead of a secrets file")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and the manifest only")
    args = parser.parse_args(argv)
    try:
        args.permissions = permissions(args.switches)
    except ValueError as e:
        parser.error(str(e))
    if not args.key_vault and not args.secrets_file:
        parser.error("give --secrets-file (the credential goes to Key Vault with the deployment) or --key-vault")
    if args.secrets_file and args.secrets_file.resolve().is_relative_to(REPO):
        parser.error(f"--secrets-file {args.secrets_file} is inside the repository: keep secrets out of git")
    if args.key_vault and args.credential == "secret":
        parser.error("--key-vault makes a certificate; a client secret goes through --secrets-file")
    return args


def manifest(args) -> list[dict]:
    return required_resource_access(args.permissions)


def consent_url(tenant: str, app_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant}/adminconsent?client_id={app_id}"


def plan(args, app_id: str = "<appId>", manifest_path: str = "<manifest.json>", cert_path: str = "<public.pem>"):
    """The az commands, in order (the first only when the registration is new)."""
    commands = [
        ["az", "ad", "app", "create", "--display-name", args.name, "--sign-in-audience", "AzureADMyOrg",
         "--required-resource-accesses", f"@{manifest_path}", "--query", "appId", "-o", "tsv"],
        ["az", "ad", "app", "update", "--id", app_id, "--required-resource-accesses", f"@{manifest_path}"],
        ["az", "ad", "sp", "create", "--id", app_id],
    ]
    reset = ["az", "ad", "app", "credential", "reset", "--id", app_id, "--append"]
    if args.key_vault:
        commands.append(reset + ["--create-cert", "--keyvault", args.key_vault, "--cert", args.secret_name])
    elif args.credential == "certificate":
        commands.append(reset + ["--cert", f"@{cert_path}"])
    else:
        commands.append(reset + ["--display-name", "rapid-meetings", "--years", str(CREDENTIAL_YEARS),
                                 "--query", "password", "-o", "tsv"])
    return commands


def certificate(name: str) -> tuple[str, str]:
    """(public certificate PEM, PKCS#12 base64 without a password) of a new self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365 * CREDENTIAL_YEARS)).sign(key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), base64.b64encode(pfx).decode()


def az(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command[:4])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def keep_secret(path: Path, name: str, value: str) -> None:
    """secretValues[name] = value in the parameters file (created 0600; other values kept)."""
    data = json.loads(path.read_text()) if path.exists() else {}
    params = data.setdefault("parameters", {})
    params.setdefault("secretValues", {"value": {}})["value"][name] = value
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file too: it now holds a private key
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def run(args) -> str:
    """Carry the plan out; the app id."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest_path = Path(tmp, "manifest.json")
        manifest_path.write_text(json.dumps(manifest(args)))
        app_id = az(["az", "ad", "app", "list", "--display-name", args.name, "--query", "[0].appId", "-o", "tsv"])
        steps = plan(args, app_id or "<new>", str(manifest_path), str(Path(tmp, "public.pem")))
        if app_id:
            az(steps[1])
        else:
            app_id = az(steps[0])
            steps = plan(args, app_id, str(manifest_path), str(Path(tmp, "public.pem")))
        if not az(["az", "ad", "sp", "list", "--filter", f"appId eq '{app_id}'", "--query", "[0].id", "-o", "tsv"]):
            az(steps[2])
        secret = None
        if args.credential == "certificate" and not args.key_vault:
            public, secret = certificate(args.name)
            Path(tmp, "public.pem").write_text(public)
        output = az(steps[3])
        secret = output if args.credential == "secret" else secret
        if secret:
            keep_secret(args.secrets_file, args.secret_name, secret)
    return app_id


def report(args, app_id: str) -> str:
    setting = "".join(c if c.isalnum() else "_" for c in args.secret_name).upper()  # site-x-cert: SITE_X_CERT
    kind = "client_secret_setting" if args.credential == "secret" else "certificate_setting"
    entry = {"settingName": setting, "secretName": args.secret_name, **({"certificate": True}
                                                                          if args.credential == "certificate" else {})}
    return "\n".join([
        f"app registration {args.name}: client_id {app_id}, Graph application permissions {', '.join(args.permissions)}",
        f"admin consent (a Privileged Role Administrator or Global Administrator opens it once): "
        f"{consent_url(args.tenant, app_id)}",
        f'SITES entry: "aad_tenant": "{args.tenant}", "client_id": "{app_id}", "{kind}": "{setting}"',
        f"siteSecrets entry: {json.dumps(entry)}",
        (f"deploy with: -p @{args.secrets_file}" if args.secrets_file and not args.key_vault
         else f"the certificate is in vault {args.key_vault} as {args.secret_name}"),
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.dry_run:
        print(json.dumps({"requiredResourceAccess": manifest(args)}, indent=2))
        for command in plan(args):
            print(" ".join(command))
        print(report(args, "<appId>"))
        return 0
    print(report(args, run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
