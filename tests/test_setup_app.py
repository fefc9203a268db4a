"""The setup script (infra/setup_app.py), without Azure: its dry run prints the manifest and the az commands;
its permissions are the site check's, from the one list (shared/model/app_permissions.py); a run against a
stand-in `az` leaves a certificate the app's settings accept, in a file outside the repository."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra import setup_app
from shared.model.app_permissions import FEATURES, OPTIONS, permissions
from shared.model.certificates import certificate_credential
from shared.ops.site_check import required_roles
from shared.site_settings import site_from

ROOT = Path(__file__).resolve().parent.parent
TENANT = "11111111-1111-1111-1111-111111111111"
APP_ID = "22222222-2222-2222-2222-222222222222"
# the published application permission ids (Microsoft Graph permissions reference, "All permissions and IDs")
CALENDARS_READWRITE = "ef54d2bf-783f-4e0f-bca1-3210c0444d99"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"


def _dry_run(*extra: str) -> str:
    done = subprocess.run([sys.executable, "-m", "infra.setup_app", "--tenant", TENANT, "--name", "rapid-meetings",
                           "--secret-name", "site-acme-meetings-certificate", "--key-vault", "kv-x", "--dry-run",
                           *extra], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def _manifest(output: str) -> list[dict]:
    return json.loads(output[: output.index("\n}\n") + 2])["requiredResourceAccess"]


def _site(**features):
    entry = {"tenant": "acme", "site": "meetings", "rapid_url": "https://rapid.example/api/acme/meetings",
             "aad_tenant": TENANT, "client_id": APP_ID, "client_secret_setting": "S", **features}
    return site_from(entry, {"S": "secret"})


def test_the_default_dry_run_asks_for_calendars_readwrite_alone_as_the_site_check_requires():
    output = _dry_run()
    assert _manifest(output) == [{"resourceAppId": "00000003-0000-0000-c000-000000000000",
                                  "resourceAccess": [{"id": CALENDARS_READWRITE, "type": "Role"}]}]
    assert required_roles(_site()) == ["Calendars.ReadWrite"]
    assert f"https://login.microsoftonline.com/{TENANT}/adminconsent?client_id=<appId>" in output
    assert "az ad app credential reset --id <appId> --append --create-cert --keyvault kv-x" in output


def test_object_ids_adds_user_read_all_and_nothing_else():
    ids = [a["id"] for a in _manifest(_dry_run("--with", "object-ids"))[0]["resourceAccess"]]
    assert ids == [CALENDARS_READWRITE, USER_READ_ALL]


FEATURE_VALUES = {"mailbox_group": "6f1c0c52-94c4-4a4e-9f3e-1f0a8d1b2c3d", "room_column": "Room"}  # a value each feature's setting takes


def test_every_switch_grants_what_the_site_check_checks():
    """The script and the site check read one list: each switch's manifest is what the check requires."""
    for switch in [*OPTIONS, *FEATURES]:
        args = setup_app.parse(["--tenant", TENANT, "--name", "n", "--secret-name", "s", "--key-vault", "kv",
                                "--with", switch])
        granted = [a["id"] for a in setup_app.manifest(args)[0]["resourceAccess"]]
        assert granted == [setup_app.required_resource_access([p])[0]["resourceAccess"][0]["id"]
                           for p in permissions([switch])]
    for feature in FEATURES:  # a site turning a feature on is checked for that feature's permissions
        value = FEATURE_VALUES.get(feature, True)
        assert required_roles(_site(**{feature: value})) == permissions([feature])


@pytest.mark.parametrize("argv, said", [
    (["--with", "teleport"], "unknown switch teleport"),
    (["--secrets-file", str(ROOT / "infra" / "x.json")], "inside the repository"),
    ([], "give --secrets-file"),
])
def test_bad_arguments_are_refused(argv, said, capsys):
    with pytest.raises(SystemExit):
        setup_app.parse(["--tenant", TENANT, "--name", "n", "--secret-name", "s", *argv])
    assert said in capsys.readouterr().err


def test_a_run_leaves_a_certificate_the_app_accepts_outside_the_repository(tmp_path, monkeypatch):
    """A stand-in `az` records the calls; the certificate lands in secretValues, 0600, as Key Vault keeps one."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "az"
    fake.parent.mkdir()
    fake.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$*" in "ad app create"*) echo {APP_ID};; esac
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    secrets = tmp_path / "secure" / "rapid-secrets.json"
    secrets.parent.mkdir()
    secrets.write_text(json.dumps({"parameters": {"secretValues": {"value": {"webhook-secrets": "kept"}}}}))
    args = setup_app.parse(["--tenant", TENANT, "--name", "rapid-meetings", "--secret-name", "site-cert",
                            "--secrets-file", str(secrets)])
    assert setup_app.run(args) == APP_ID
    lines = calls.read_text().splitlines()
    assert lines[1].startswith("ad app create --display-name rapid-meetings --sign-in-audience AzureADMyOrg")
    assert any(line.startswith(f"ad sp create --id {APP_ID}") for line in lines)
    assert any(line.startswith(f"ad app credential reset --id {APP_ID} --append --cert @") for line in lines)
    values = json.loads(secrets.read_text())["parameters"]["secretValues"]["value"]
    assert values["webhook-secrets"] == "kept"
    assert certificate_credential(values["site-cert"])["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
