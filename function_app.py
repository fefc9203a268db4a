"""Builds the FunctionApp and registers one blueprint per function family; nothing else."""

import azure.functions as func

from functions import admin, audit, catch_up, graph_notifications, renewer, site_webhooks, sync_now, sync_worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(site_webhooks.bp)
app.register_functions(sync_worker.bp)
app.register_functions(graph_notifications.bp)
app.register_functions(renewer.bp)
app.register_functions(admin.bp)
app.register_functions(catch_up.bp)
app.register_functions(sync_now.bp)
app.register_functions(audit.bp)
