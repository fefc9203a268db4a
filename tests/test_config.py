"""Settings: many sites, secrets by reference, identity-based storage, clear errors."""

import json

import pytest

from shared.config import ConfigError, StorageAccount, settings_from

WEBHOOKS = {"WEBHOOK_SECRETS": "a-webhook-secret-of-at-least-32-characters"}

SITE = {"tenant": "acme", "site": "sales", "rapid_url": "https://rapid.test/api/acme/sales/", "rapid_scope": "api://r/.default",
        "aad_tenant": "8F3C1B2A-0D4E-4C5F-9A6B-7C8D9E0F1A2B", "client_id": "c1", "client_secret_setting": "ACME_SECRET", "time_zone": "Europe/Paris",
        "columns": {"title": "subject"}}


def test_sites_are_read_with_their_secret_from_the_named_setting():
    settings = settings_from({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SITES": json.dumps([SITE]), **WEBHOOKS,
                              "ACME_SECRET": "s3cret"})
    site = settings.site("ACME", "Sales")
    assert site.client_secret == "s3cret" and site.rapid_url == "https://rapid.test/api/acme/sales"
    assert site.col("title") == "subject" and site.col("location") == "location" and site.zone.key == "Europe/Paris"
    assert settings.site("acme", "other") is None
    assert site.aad_tenant == "8f3c1b2a-0d4e-4c5f-9a6b-7c8d9e0f1a2b"  # as Graph's notifications write it


def test_identity_based_storage_is_used_when_there_is_no_connection_string():
    settings = settings_from({"AzureWebJobsStorage__accountName": "stmeetings", "AzureWebJobsStorage__clientId": "mi-1"})
    assert settings.storage == StorageAccount("stmeetings", "mi-1")
    assert settings.storage.url("queue") == "https://stmeetings.queue.core.windows.net"


@pytest.mark.parametrize("change,names", [
    ({"client_secret_setting": "MISSING"}, "MISSING"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"rapid_url": ""}, "rapid_url"),
    ({"columns": {"nope": "x"}}, "nope"),
    ({"on_outlook_delete": "shred"}, "on_outlook_delete"),
    ({"multi_lookup": "guess"}, "multi_lookup"),
    ({"rapid_url": "http://rapid.test/api/acme/sales"}, "rapid_url must be an https:// URL"),
    ({"site": "sales/other"}, "site may hold only"),
    ({"tenant": "acme/sales"}, "tenant may hold only"),
    ({"aad_tenant": "contoso.onmicrosoft.com"}, "aad_tenant must be the directory .tenant. ID, a GUID"),
    ({"show_as": "away"}, "show_as must be one of free, tentative, busy, oof, workingElsewhere, unknown"),
    ({"sensitivity": "secret"}, "sensitivity must be one of normal, personal, private, confidential"),
    ({"reminder_minutes": "15"}, "reminder_minutes must be a whole number"),
    ({"reminder_minutes": -1}, "reminder_minutes must be a whole number"),
    ({"category": "RAPID, Sales"}, "category must be one Outlook category name"),
    ({"private_column": "all_day"}, "private_column must be the name of a column of its own"),
    ({"answers_column": "status"}, "answers_column must be the name of a column of its own"),
    ({"answers_column": "x", "private_column": "x"}, "must be different columns"),
])
def test_a_wrong_site_setting_is_refused_by_name(change, names):
    with pytest.raises(ConfigError, match=names):
        settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([{**SITE, **change}]), "ACME_SECRET": "s", **WEBHOOKS})


def test_missing_storage_is_refused():
    with pytest.raises(ConfigError, match="AzureWebJobsStorage"):
        settings_from({})


def test_rapid_scope_defaults_to_rapids_published_app_and_links_are_read_from_the_item():
    entry = {k: v for k, v in SITE.items() if k != "rapid_scope"}
    site = settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([entry]), "ACME_SECRET": "s", **WEBHOOKS}).site("acme", "sales")
    assert site.rapid_scope == "cd5db0ec-1419-4ae6-9434-21cfb83fc42d/.default" and site.multi_lookup == "links"


def test_the_look_of_events_and_the_answers_column_are_read_per_site():
    entry = {**SITE, "category": "RAPID", "show_as": "busy", "reminder_minutes": 0, "sensitivity": "normal",
             "private_column": "private_event", "answers_column": "answers"}
    site = settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([entry]), "ACME_SECRET": "s", **WEBHOOKS}).site("acme", "sales")
    assert (site.category, site.show_as, site.reminder_minutes, site.sensitivity) == ("RAPID", "busy", 0, "normal")
    assert (site.private_column, site.answers_column) == ("private_event", "answers")


@pytest.mark.parametrize("zone", ["Antarctica/Troll", "Factory"])
def test_a_site_zone_with_no_windows_name_is_refused_at_startup_naming_it(zone):
    with pytest.raises(ConfigError, match=f"SITES.acme/sales.: time zone '{zone}' has no Windows name"):
        settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([{**SITE, "time_zone": zone}]), "ACME_SECRET": "s", **WEBHOOKS})


def _env(**extra) -> dict:
    return {"AzureWebJobsStorage": "x", "SITES": json.dumps([SITE]), "ACME_SECRET": "s", **WEBHOOKS, **extra}


@pytest.mark.parametrize("extra,names", [
    ({"GRAPH_URL": "http://graph.microsoft.com/v1.0"}, "GRAPH_URL must be an https:// URL"),
    ({"AUTHORITY_HOST": "https://login.attacker.example"}, "AUTHORITY_HOST must be one of"),
    ({"ACME_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/acme)"},
     "ACME_SECRET .client secret. is an unresolved Key Vault reference"),
    ({"WEBHOOK_SECRETS": ""}, "WEBHOOK_SECRETS is not set"),
    ({"WEBHOOK_SECRETS": "short"}, "at least 32 characters"),
    ({"SITES": json.dumps([SITE, {**SITE, "tenant": "ACME"}])}, "lists ACME/sales twice"),
])
def test_untrustworthy_settings_are_refused_at_startup_by_name(extra, names):
    with pytest.raises(ConfigError, match=names):
        settings_from(_env(**extra))


def test_the_local_simulators_authority_is_accepted_over_https_only():
    assert settings_from(_env(AUTHORITY_HOST="https://127.0.0.1:8443")).authority_host == "https://127.0.0.1:8443"
    with pytest.raises(ConfigError, match="AUTHORITY_HOST"):
        settings_from(_env(AUTHORITY_HOST="http://127.0.0.1:8443"))


def test_secrets_are_in_no_repr():
    settings = settings_from(_env(ACME_SECRET="s3cret-value", AzureWebJobsStorage="AccountKey=k3y"))
    assert "s3cret-value" not in repr(settings) and "k3y" not in repr(settings)
    assert WEBHOOKS["WEBHOOK_SECRETS"] not in repr(settings)
