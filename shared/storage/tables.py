"""What every table of ours shares: escaped keys, entities, and ETag-checked writes.

`Store` (event links, subscriptions, meetings) and `OpsStore` (what operators see) build on `Tables`,
so a key is escaped in one place and a lost race is always the same `Conflict`.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from ..config import StorageAccount


class Conflict(Exception):
    """Someone else wrote the entity first; read again and decide again."""


def table_key(value) -> str:
    """A Table key for any id: escapes what keys forbid (/ \\ # ? controls) and '%' itself."""
    return quote(str(value), safe="!$&'()*+,;=:@ ~-._")


def from_key(key: str) -> str:
    return unquote(key)


def make_entity(pk: str, rk: str, **values) -> dict:
    """An entity to write: its keys escaped with table_key, its values as given."""
    return {"PartitionKey": table_key(pk), "RowKey": table_key(rk), **values}


def entity_values(entity) -> dict:
    """An entity's own values: without its keys, its timestamp and its etag."""
    return {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey", "Timestamp", "etag")}


class Tables:
    """One storage account's tables, each created on first use; reads and ETag-checked writes by key."""

    def __init__(self, storage: "str | StorageAccount"):
        options = {"retry_total": 3, "retry_backoff_factor": 0.2, "connection_timeout": 3}
        if isinstance(storage, StorageAccount):
            self._service = TableServiceClient(storage.url("table"), credential=storage.credential(), **options)
        else:
            self._service = TableServiceClient.from_connection_string(storage, **options)
        self._tables = {}

    def _table(self, name: str):
        if name not in self._tables:
            client = self._service.get_table_client(name)
            try:
                client.create_table()
            except ResourceExistsError:
                pass
            self._tables[name] = client
        return self._tables[name]

    def _get(self, table: str, pk: str, rk: str):
        try:
            return self._table(table).get_entity(table_key(pk), table_key(rk))
        except ResourceNotFoundError:
            return None

    def _replace(self, table: str, entity: dict, etag: str | None) -> str:
        try:
            meta = self._table(table).update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as e:
            raise Conflict(f"{table} {entity['PartitionKey']}/{entity['RowKey']} changed meanwhile") from e
        return meta["etag"]

    def _create(self, table: str, entity: dict) -> str:
        try:
            return self._table(table).create_entity(entity)["etag"]
        except ResourceExistsError as e:
            raise Conflict(f"{table} {entity['PartitionKey']}/{entity['RowKey']} exists") from e

    def _delete(self, table: str, pk: str, rk: str) -> None:
        """Delete by key; gone already is fine (the delete is what was wanted)."""
        try:
            self._table(table).delete_entity(table_key(pk), table_key(rk))
        except ResourceNotFoundError:
            pass
