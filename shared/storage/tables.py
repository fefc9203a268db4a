"""What every table of ours shares: escaped keys, entities, ETag-checked writes, and how long a call may take.

`Store` (event links, subscriptions, meetings) and `OpsStore` (what operators see) build on `Tables`,
so a key is escaped in one place, a lost race is always the same `Conflict`, and Storage that fails or
hangs is always the same `StorageUnavailable` (a TransientError: a job is rescheduled, a caller gets 503).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import (HttpResponseError, IncompleteReadError, ResourceExistsError, ResourceModifiedError,
                                   ResourceNotFoundError, ServiceRequestError, ServiceResponseError)
from azure.core.paging import ItemPaged
from azure.data.tables import TableServiceClient, UpdateMode

from ..config import StorageAccount
from ..model.errors import StorageUnavailable

# Point reads and writes (azure-core's client options): the HTTP functions wait on them, and Graph wants a
# notification answered within 3 s (RAPID's webhook callers wait too). A try gets 1 s to connect and 1.5 s
# for the answer; a refused connection or a 5xx is tried once more, a request sent and left unanswered is not
# (retry_read 0: the caller retries the whole request), so Storage that hangs costs one call at most ~2 s.
ANSWERING = {"connection_timeout": 1.0, "read_timeout": 1.5, "retry_total": 1, "retry_read": 0,
             "retry_backoff_factor": 0.2}
# Queries and batches: only jobs and timers make them, and nobody waits on those; the Table service may take
# up to 5 s over one page of a query before it answers with a continuation.
PATIENT = {"read_timeout": 12.0, "retry_total": 2, "retry_read": 1}
PATIENT_CALLS = {"query_entities", "list_entities", "submit_transaction"}
TRANSIENT_STATUS = {408, 429}  # and every 5xx: the Table service's timeouts and "server busy" (503)


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


@contextmanager
def storage_errors(what: str):
    """Storage that did not answer, answered 5xx or broke off becomes StorageUnavailable; anything else
    (a 404, a 409, a 412: answers about the data) passes as it is."""
    try:
        yield
    except (ServiceRequestError, ServiceResponseError, IncompleteReadError) as e:
        raise StorageUnavailable(f"{what}: {type(e).__name__}") from e
    except HttpResponseError as e:
        if e.status_code is None or e.status_code >= 500 or e.status_code in TRANSIENT_STATUS:
            raise StorageUnavailable(f"{what}: {e.status_code} {type(e).__name__}") from e
        raise


class GuardedTable:
    """A TableClient whose every call, and every page a query reads, ends in time or in StorageUnavailable.
    Queries and batches get PATIENT timeouts; everything else the client's ANSWERING ones."""

    def __init__(self, client, name: str):
        self._client, self._name = client, name

    def __getattr__(self, attr):
        method = getattr(self._client, attr)
        if not callable(method):
            return method
        extra = PATIENT if attr in PATIENT_CALLS else {}

        @functools.wraps(method)
        def call(*args, **kwargs):
            with storage_errors(f"table {self._name} {attr}"):
                result = method(*args, **{**extra, **kwargs})
            return self._rows(result, attr) if isinstance(result, ItemPaged) else result

        return call

    def _rows(self, rows: ItemPaged, attr: str):
        pages = iter(rows)
        while True:
            with storage_errors(f"table {self._name} {attr}"):
                try:
                    row = next(pages)
                except StopIteration:
                    return
            yield row


class Tables:
    """One storage account's tables, each created on first use; reads and ETag-checked writes by key."""

    def __init__(self, storage: "str | StorageAccount"):
        options = ANSWERING
        if isinstance(storage, StorageAccount):
            self._service = TableServiceClient(storage.url("table"), credential=storage.credential(), **options)
        else:
            self._service = TableServiceClient.from_connection_string(storage, **options)
        self._tables = {}

    def _table(self, name: str) -> GuardedTable:
        if name not in self._tables:
            client = GuardedTable(self._service.get_table_client(name), name)
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
