"""Settings: many sites, secrets by reference, identity-based storage, clear errors."""

import json

import pytest

from shared.config import ConfigError, StorageAccount, settings_from

SITE = {"tenant": "acme", "site": "sales", "rapid_url": "https://rapid.test/api/acme/sales/", "rapid_scope": "api://r/.default",
        "aad_tenant": "8F3C1B2A-0D4E-4C5F-9A6B-7C8D9E0F1A2B", "client_id": "c1", "client_secret_setting": "ACME_SECRET", "time_zone": "Europe/Paris",
        "columns": {"title": "subject"}}


def test_sites_are_read_with_their_secret_from_the_named_setting():
    settings = settings_from({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SITES": json.dumps([SITE]),
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
    ({"aad_tenant": "contoso.onmicrosoft.com"}, "aad_tenant must be the directory .tenant. ID, a GUID"),
])
def test_a_wrong_site_setting_is_refused_by_name(change, names):
    with pytest.raises(ConfigError, match=names):
        settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([{**SITE, **change}]), "ACME_SECRET": "s"})


def test_missing_storage_is_refused():
    with pytest.raises(ConfigError, match="AzureWebJobsStorage"):
        settings_from({})


def test_rapid_scope_defaults_to_rapids_published_app_and_links_are_read_from_the_item():
    entry = {k: v for k, v in SITE.items() if k != "rapid_scope"}
    site = settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([entry]), "ACME_SECRET": "s"}).site("acme", "sales")
    assert site.rapid_scope == "cd5db0ec-1419-4ae6-9434-21cfb83fc42d/.default" and site.multi_lookup == "links"


@pytest.mark.parametrize("zone", ["Antarctica/Troll", "Factory"])
def test_a_site_zone_with_no_windows_name_is_refused_at_startup_naming_it(zone):
    with pytest.raises(ConfigError, match=f"SITES.acme/sales.: time zone '{zone}' has no Windows name"):
        settings_from({"AzureWebJobsStorage": "x", "SITES": json.dumps([{**SITE, "time_zone": zone}]), "ACME_SECRET": "s"})
