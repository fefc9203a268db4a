// rapid-meetings: the whole Azure deployment, into one existing resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.json
//
// What it makes (see infra/README.md for the why):
//   - Log Analytics workspace + workspace-based Application Insights (Entra auth only)
//   - user-assigned managed identity: the only identity the app uses, for storage, Key Vault
//     references and App Insights ingestion
//   - Storage account (identity only: shared keys off), the deployment-package container, the
//     work queue and its poison queue; queue/table/blob diagnostics to Log Analytics
//   - Key Vault (RBAC, soft delete, purge protection, firewall default Deny) for the Graph/site
//     client secrets and the Graph notification URL (it carries a function key); optionally the
//     secrets themselves (secretValues, a secure parameter, written through Azure Resource
//     Manager) so that the app starts with resolved Key Vault references
//   - a virtual network: the app's outbound subnet (delegated to Flex Consumption), private
//     endpoints for blob/queue/table/vault with their private DNS zones, a NAT gateway so that
//     calls to Graph, Entra and the RAPID sites leave from one static IP
//   - Flex Consumption plan (FC1) and the Python 3.13 function app
//   - two log search alerts over the app's traces (a job poisoned, a backlog older than
//     backlogAlertMinutes) and, given alertEmailAddress, an action group that mails it
//
// The app settings written here are the contract with the app code: AzureWebJobsStorage__*,
// WORK_QUEUE, SITES, NOTIFICATION_URL, GRAPH_URL, AUTHORITY_HOST and one Key Vault reference
// per site secret. They replace all app settings on every deployment: change them here.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------- parameters

@description('Azure region. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Short lowercase name used to build resource names.')
@minLength(3)
@maxLength(11)
param baseName string = 'rapidmtg'

@description('Tags put on every resource.')
param tags object = {
  application: 'rapid-meetings'
}

@description('Name of the work queue the HTTP functions fill and the sync worker drains (app setting WORK_QUEUE). The host moves failed messages to <name>-poison.')
param workQueueName string = 'sync-jobs'

@description('App setting SITES: a JSON string, the list of site configurations (tenant, site, rapid_url, rapid_scope, aad_tenant, client_id, client_secret_setting or certificate_setting, time_zone, overrides). Each site names the app setting that holds its secret in client_secret_setting; that setting must be listed in siteSecrets. No secrets in here.')
param sites string = '[]'

@description('One app setting per secret, each a Key Vault reference: [{ "settingName": "SITE_CONTOSO_CLIENT_SECRET", "secretName": "site-contoso-client-secret" }]. A site certificate (SITES certificate_setting) is an entry with "certificate": true: a Key Vault certificate of that name, or its PKCS#12 (base64) given in secretValues, which is then written with content type application/x-pkcs12 (infra/setup_app.py makes both). The secrets themselves are put into the vault by an operator (docs/operations.md), or given to this deployment in the secure parameter secretValues; never in the clear here.')
param siteSecrets array = []

@description('Where the app identity gets Key Vault Secrets User: vault (default) reads every secret of the vault, so that a secret written after the deployment (the notification URL) resolves; secret gives one role assignment per referenced secret and nothing else, the narrowest scope, but then every secret (siteSecrets, webhook secrets, notification URL) must exist when deploying: write them with secretValues, or set them first.')
@allowed([
  'vault'
  'secret'
])
param secretsUserScope string = 'vault'

@description('Name of the Key Vault secret holding the full Graph notification URL, https://<host>/graph/notifications?code=<function key>. Set it after the first code deployment (docs/operations.md); app setting NOTIFICATION_URL references it.')
param notificationUrlSecretName string = 'graph-notification-url'

@description('Name of the Key Vault secret holding WEBHOOK_SECRETS: one or more random strings of at least 32 characters, comma-separated, newest first. Each site route checks ?site_token=, an HMAC of the site under these secrets (docs/operations.md, "Site tokens"). Give its value in secretValues on the first deployment, or the app refuses to start and says so.')
param webhookSecretsSecretName string = 'webhook-secrets'

@description('App setting GRAPH_URL.')
param graphUrl string = 'https://graph.microsoft.com/v1.0'

@description('App setting AUTHORITY_HOST.')
param authorityHost string = 'https://login.microsoftonline.com'

@description('RAPID tenant of the site whose webhook callback URLs are put in the outputs.')
param siteTenant string = 'contoso'

@description('RAPID site name of the site whose webhook callback URLs are put in the outputs.')
param siteName string = 'meetings'

@description('Public IPv4 addresses or CIDR ranges of operators (and CI) that may reach Key Vault and the storage data plane from outside the virtual network, e.g. to set secrets or replay poison messages. Public addresses only (no 10/8, 172.16/12, 192.168/16). A /32 or /31 is turned into one rule per address (the storage firewall refuses those prefixes). Empty: only the app (through its private endpoints) can.')
param operatorIpRanges array = []

@description('Public endpoints of the storage account and Key Vault. Disabled: only the app reaches them, through its private endpoints. Enabled: also reachable from operatorIpRanges, behind a firewall that denies everything else.')
@allowed([
  'Disabled'
  'Enabled'
])
param publicDataPlaneAccess string = 'Disabled'

@description('Object id of a user, group or CI service principal that manages the secrets (role Key Vault Secrets Officer). Empty: grant it yourself. Writing secrets from outside Azure Resource Manager also needs network access to the vault (publicDataPlaneAccess Enabled + operatorIpRanges); see secretValues for a first deployment without either.')
param secretsOfficerPrincipalId string = ''

@description('Principal type of secretsOfficerPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string = 'Group'

// Without this, a first deployment with the default network settings (vault reachable only
// through its private endpoint, no Secrets Officer) leaves every Key Vault reference unresolved:
// App Service then hands the app the literal '@Microsoft.KeyVault(...)' text.
// https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#troubleshoot-key-vault-references
// Secrets given here are created as Microsoft.KeyVault/vaults/secrets resources, a control-plane
// write through Azure Resource Manager (permission Microsoft.KeyVault/vaults/secrets/write, in
// Contributor/Owner), which the vault firewall does not govern:
// https://learn.microsoft.com/azure/key-vault/secrets/quick-create-bicep
// https://learn.microsoft.com/azure/role-based-access-control/permissions/security#microsoftkeyvault
// https://learn.microsoft.com/azure/key-vault/general/access-behind-firewall
// @secure() keeps the values out of the deployment history and logs:
// https://learn.microsoft.com/azure/azure-resource-manager/bicep/parameters#secure-parameters
@description('Optional: secret values keyed by Key Vault secret name, for the names in siteSecrets and notificationUrlSecretName: { "site-contoso-meetings-client-secret": "<client secret>", "graph-notification-url": "https://<host>/graph/notifications?code=<key>" }. Each one found here is written into the vault by this deployment, before the app starts, so its reference resolves on the first start; names not found here are left untouched, other keys are ignored. Pass it from a file outside version control or a pipeline secret (infra/README.md).')
@secure()
param secretValues object = {}

@description('Expiry stamped on the secrets written from secretValues, as an ISO 8601 duration from the time of deployment (P180D, P1Y, P2Y). Never earlier than the client secret expiry in Entra ID: once it passes, Key Vault may refuse to return the secret and the reference stops resolving. Rotate before (docs/operations.md).')
param secretValuesExpireAfter string = 'P2Y'

@description('Time of the deployment; leave the default.')
param deploymentTime string = utcNow()

@description('Instance memory of the Flex Consumption app, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// 40 is the lowest maximum Flex Consumption accepts in most regions ("Scale: The lowest maximum
// scale is currently 40", https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations),
// Microsoft's own Flex Consumption Bicep sample enforces @minValue(40)
// (https://github.com/Azure-Samples/azure-functions-flex-consumption-samples/blob/main/IaC/bicep/main.bicep),
// and the migration guide warns that below 40 HTTP apps see "frequent request failures and
// prolonged throttling windows"
// (https://learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex).
// The region's own bounds: az functionapp list-flexconsumption-runtimes (infra/README.md).
@description('Most instances the app may scale out to: 40 to 1000 (40 is the lowest Flex Consumption accepts in most regions). Outlook allows 4 concurrent requests per mailbox and app, so more instances only mean more 429s: keep it at 40.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Always-ready instances for the HTTP functions. Graph wants an answer within 3 seconds; one warm instance keeps a cold start out of that path. 0 saves its cost.')
@minValue(0)
param httpAlwaysReadyInstances int = 1

@description('Concurrent HTTP requests per instance.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Spread the plan over availability zones (the region must support zone-redundant Flex Consumption). Off by default: the platform then keeps at least two always-ready instances per scale group (HTTP group, sync worker, renewer: six or more billed instances).')
param zoneRedundant bool = false

@description('Storage redundancy. GZRS keeps a zone-redundant primary and a geo copy. With zoneRedundant only Standard_GZRS or Standard_RAGZRS: the deployment refuses GRS/RA-GRS there.')
@allowed([
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param storageSku string = 'Standard_GZRS'

@description('Address space of the virtual network.')
param vnetAddressPrefix string = '10.60.0.0/16'

@description('Subnet for the app outbound traffic (delegated to Microsoft.App/environments; /27 or larger).')
param appSubnetPrefix string = '10.60.0.0/24'

@description('Subnet for the private endpoints.')
param privateEndpointSubnetPrefix string = '10.60.1.0/24'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('E-mail address the alerts go to (an action group with one e-mail receiver). Empty: the alerts are still created and fire in the portal (Monitor > Alerts), but notify nobody.')
param alertEmailAddress string = ''

@description('The backlog alert fires when the oldest job waiting in the work queue has waited this many minutes (the catch-up timer logs the backlog every 5 minutes).')
@minValue(10)
param backlogAlertMinutes int = 60

// Purge protection keeps a deleted vault, and its name, for softDeleteRetentionInDays (90 days);
// a vault name held by a soft-deleted vault cannot be reused, so redeploying into a re-created
// resource group of the same name would fail until then:
// https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview#purge-protection
@description('Changes the Key Vault name (and only it). Empty: the name derives from subscription, resource group and baseName, as before. After deleting the resource group, either recover the deleted vault (az keyvault recover) and redeploy unchanged, or set a new value here (e.g. "2") to get a fresh vault name; see infra/README.md.')
@maxLength(20)
param keyVaultNameGeneration string = ''

// ---------------------------------------------------------------- names

var token = toLower(uniqueString(subscription().id, resourceGroup().id, baseName))
var functionAppName = 'func-${baseName}-${token}'
var planName = 'plan-${baseName}-${token}'
var identityName = 'id-${baseName}-${token}'
// storage account names: 3-24 lowercase letters and digits only
var storageAccountName = take('st${toLower(replace(replace(baseName, '-', ''), '_', ''))}${token}', 24)
var keyVaultToken = empty(keyVaultNameGeneration) ? token : toLower(uniqueString(token, keyVaultNameGeneration))
var keyVaultName = take('kv-${baseName}-${keyVaultToken}', 24)
var logAnalyticsName = 'log-${baseName}-${token}'
var appInsightsName = 'appi-${baseName}-${token}'
var vnetName = 'vnet-${baseName}-${token}'
var natGatewayName = 'ng-${baseName}-${token}'
var natIpName = 'pip-ng-${baseName}-${token}'
var deploymentContainerName = 'app-package-${token}'
var actionGroupName = 'ag-${baseName}-${token}'

var storageSuffix = environment().suffixes.storage
var keyVaultDnsSuffix = environment().suffixes.keyvaultDns
var keyVaultUri = 'https://${keyVaultName}${keyVaultDnsSuffix}/'

// built-in role definition ids
var roleStorageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var roleStorageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var roleStorageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleKeyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var roleKeyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var roleMonitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// The storage firewall refuses /31 and /32 ranges: "Small address ranges that use /31 or /32
// prefix sizes aren't supported. Configure these ranges using individual IP address rules."
// https://learn.microsoft.com/azure/storage/common/storage-network-security-limitations#restrictions-for-ip-network-rules
// So a /32 becomes its address and a /31 its two addresses; the vault gets the same list (the
// same addresses, written the way both firewalls accept).
var operatorAddressGroups = [for ip in operatorIpRanges: endsWith(ip, '/32') ? [
  split(ip, '/')[0]
] : endsWith(ip, '/31') ? [
  '${split(split(ip, '/')[0], '.')[0]}.${split(split(ip, '/')[0], '.')[1]}.${split(split(ip, '/')[0], '.')[2]}.${int(split(split(ip, '/')[0], '.')[3]) - int(split(split(ip, '/')[0], '.')[3]) % 2}'
  '${split(split(ip, '/')[0], '.')[0]}.${split(split(ip, '/')[0], '.')[1]}.${split(split(ip, '/')[0], '.')[2]}.${int(split(split(ip, '/')[0], '.')[3]) - int(split(split(ip, '/')[0], '.')[3]) % 2 + 1}'
] : [
  ip
]]
var operatorAddresses = flatten(operatorAddressGroups)
var operatorIpRulesStorage = [for ip in operatorAddresses: {
  value: ip
  action: 'Allow'
}]
var operatorIpRulesVault = [for ip in operatorAddresses: {
  value: ip
}]

// A zone-redundant Flex Consumption plan needs a zone-redundant (ZRS-family) host storage account:
// "You must configure your function app's default host storage account to use zone-redundant
// storage (ZRS)", https://learn.microsoft.com/azure/reliability/reliability-functions?pivots=flex-consumption#requirements
// Only the combinations listed here exist; any other (GRS or RA-GRS with zoneRedundant) stops
// the deployment at validation with "The language expression property '<sku> on a zone-redundant
// plan' doesn't exist, available properties are ...".
var storageSkuChoices = {
  'Standard_GZRS on a regional plan': 'Standard_GZRS'
  'Standard_RAGZRS on a regional plan': 'Standard_RAGZRS'
  'Standard_GRS on a regional plan': 'Standard_GRS'
  'Standard_RAGRS on a regional plan': 'Standard_RAGRS'
  'Standard_GZRS on a zone-redundant plan': 'Standard_GZRS'
  'Standard_RAGZRS on a zone-redundant plan': 'Standard_RAGZRS'
}
var effectiveStorageSku = storageSkuChoices['${storageSku} on a ${zoneRedundant ? 'zone-redundant' : 'regional'} plan']

// ---------------------------------------------------------------- monitoring

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Entra ID ingestion only: the app authenticates with its managed identity
    // (APPLICATIONINSIGHTS_AUTHENTICATION_STRING) and needs Monitoring Metrics Publisher.
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------- identity

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

// ---------------------------------------------------------------- network

resource natIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: natIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  zones: zoneRedundant ? [
    '1'
    '2'
    '3'
  ] : []
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = {
  name: natGatewayName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natIp.id
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    // No dnsServers: Azure-provided DNS, which resolves the private DNS zones linked below.
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          natGateway: {
            id: natGateway.id
          }
          defaultOutboundAccess: false
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

var appSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'app')
var privateEndpointSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'private-endpoints')

// one private endpoint (and private DNS zone) per storage service the app uses, and the vault
var privateLinks = [
  {
    name: 'blob'
    groupId: 'blob'
    zone: 'privatelink.blob.${storageSuffix}'
    target: 'storage'
  }
  {
    name: 'queue'
    groupId: 'queue'
    zone: 'privatelink.queue.${storageSuffix}'
    target: 'storage'
  }
  {
    name: 'table'
    groupId: 'table'
    zone: 'privatelink.table.${storageSuffix}'
    target: 'storage'
  }
  {
    name: 'vault'
    groupId: 'vault'
    zone: 'privatelink${replace(keyVaultDnsSuffix, 'vault.', 'vaultcore.')}'
    target: 'vault'
  }
]

resource privateDnsZones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for link in privateLinks: {
  name: link.zone
  location: 'global'
  tags: tags
}]

resource privateDnsZoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (link, i) in privateLinks: {
  parent: privateDnsZones[i]
  name: '${vnet.name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for (link, i) in privateLinks: {
  name: 'pe-${link.name}-${baseName}-${token}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: link.name
        properties: {
          privateLinkServiceId: link.target == 'vault' ? keyVault.id : storage.id
          groupIds: [
            link.groupId
          ]
        }
      }
    ]
  }
}]

resource privateEndpointDnsGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (link, i) in privateLinks: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: link.name
        properties: {
          privateDnsZoneId: privateDnsZones[i].id
        }
      }
    ]
  }
}]

// ---------------------------------------------------------------- storage

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed at deploy time (take('st' + baseName without '-'/'_' + uniqueString, 24)), lowercase letters and digits, 3-24 characters; checkov cannot evaluate the expression
  // checkov:skip=CKV_AZURE_206: the SKU is a lookup (storageSkuChoices) that only yields Standard_GZRS, Standard_RAGZRS, Standard_GRS or Standard_RAGRS, all replicated; checkov cannot evaluate the lookup
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: effectiveStorageSku
  }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    // Identity only. The host (AzureWebJobsStorage__*), the deployment container and the app's own
    // queue/table clients all use the managed identity; nothing needs an account key.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    // Reachable from the app through its private endpoints; from outside (publicDataPlaneAccess
    // 'Enabled') only from operatorIpRanges.
    publicNetworkAccess: publicDataPlaneAccess
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: operatorIpRulesStorage
      virtualNetworkRules: []
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption pulls the app package from this container (functionAppConfig.deployment).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The work queue and its poison queue exist before the first message: the poison replay
// command and the alerts can rely on them.
resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: workQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${workQueueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Storage data-plane logs (who read, wrote, deleted what) to Log Analytics.
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: queueService
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: tableService
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: blobService
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

// ---------------------------------------------------------------- key vault

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Access by Azure RBAC only: the app's identity gets Key Vault Secrets User, operators
    // Key Vault Secrets Officer. No access policies.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Purge protection cannot be turned off again: a deleted secret or vault stays recoverable
    // for 90 days and the vault name stays taken for that long.
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    // Network: public endpoint off by default (publicDataPlaneAccess); when on, the firewall
    // admits only operatorIpRanges. The app resolves its Key Vault references through the private
    // endpoint in its virtual network (App Service is not a trusted service for the bypass).
    publicNetworkAccess: publicDataPlaneAccess
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: operatorIpRulesVault
      virtualNetworkRules: []
    }
  }
}

// The secrets given in secretValues; see its declaration for why this works with the vault's
// public endpoint off.
resource secretItems 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secretName in vaultSecretNames: if (contains(secretValues, secretName)) {
  parent: keyVault
  name: secretName
  properties: {
    value: secretValues[secretName]
    contentType: contains(certificateSecretNames, secretName) ? 'application/x-pkcs12' : (secretName == notificationUrlSecretName ? 'Graph notification URL' : (secretName == webhookSecretsSecretName ? 'webhook secrets' : 'client secret'))
    attributes: {
      enabled: true
      exp: dateTimeToEpoch(dateTimeAdd(deploymentTime, secretValuesExpireAfter))
    }
  }
}]

resource keyVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: keyVault
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// ---------------------------------------------------------------- role assignments

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, appIdentity.id, roleStorageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageBlobDataOwner)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, appIdentity.id, roleStorageQueueDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageQueueDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, appIdentity.id, roleStorageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleStorageTableDataContributor)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (secretsUserScope == 'vault') {
  scope: keyVault
  name: guid(keyVault.id, appIdentity.id, roleKeyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsUser)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// secretsUserScope 'secret': Key Vault Secrets User on each referenced secret alone (RBAC scopes down to one
// secret: https://learn.microsoft.com/azure/key-vault/general/rbac-guide, "Secret scope role assignment").
resource referencedSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for secretName in vaultSecretNames: {
  parent: keyVault
  name: secretName
}]

resource secretUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (secretName, i) in vaultSecretNames: if (secretsUserScope == 'secret') {
  scope: referencedSecrets[i]
  name: guid(keyVault.id, secretName, appIdentity.id, roleKeyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsUser)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
  dependsOn: [
    secretItems
  ]
}]

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  scope: keyVault
  name: guid(keyVault.id, secretsOfficerPrincipalId, roleKeyVaultSecretsOfficer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleKeyVaultSecretsOfficer)
    principalId: secretsOfficerPrincipalId
    principalType: secretsOfficerPrincipalType
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, appIdentity.id, roleMonitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleMonitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- app settings

// Identity-based host storage, as documented for Flex Consumption with a user-assigned
// identity: account name + credential 'managedidentity' + the identity's client id.
// No AzureWebJobsStorage connection string, no FUNCTIONS_WORKER_RUNTIME /
// FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE / WEBSITE_CONTENT*: Flex Consumption
// takes runtime and package from functionAppConfig and rejects those settings.
var baseAppSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: appIdentity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD'
  }
  {
    name: 'WORK_QUEUE'
    value: workQueueName
  }
  {
    // the host refuses a larger body (413, by its Content-Length, before reading it): what the app takes, 1 MiB
    // (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#functions_request_body_size_limit)
    name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'
    value: '1048576'
  }
  {
    name: 'SITES'
    value: sites
  }
  {
    // The URL Graph posts change and lifecycle notifications to, with ?code=<function key>.
    // The function key exists only once the code has been deployed and the host has started,
    // so this template cannot read it in the same deployment that creates the app, and an
    // app setting built with listKeys() would hold the key in plain text. Instead the URL is
    // a Key Vault secret an operator sets after the first code deployment
    // (docs/operations.md, "After the first deployment"). Until then the reference does not
    // resolve and the app must not create subscriptions.
    name: 'NOTIFICATION_URL'
    value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${notificationUrlSecretName})'
  }
  {
    // Keys of the per-site tokens the site webhooks carry (shared/intake.py site_token)
    name: 'WEBHOOK_SECRETS'
    value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${webhookSecretsSecretName})'
  }
  {
    name: 'GRAPH_URL'
    value: graphUrl
  }
  {
    name: 'AUTHORITY_HOST'
    value: authorityHost
  }
]

// The secret names the app settings reference: the ones secretValues may fill.
var siteSecretNames = [for secret in siteSecrets: secret.secretName]
// site certificates: a Key Vault certificate's secret, or its PKCS#12 written from secretValues
var certificateSecretNames = [for secret in siteSecrets: (contains(secret, 'certificate') && secret.certificate) ? secret.secretName : '']
var vaultSecretNames = union(siteSecretNames, [
  notificationUrlSecretName
  webhookSecretsSecretName
])

// One Key Vault reference per site secret. No version in the URI: the app follows the latest
// version of the secret (refreshed within 24 hours, or at once on a settings change/restart).
var siteSecretSettings = [for secret in siteSecrets: {
  name: secret.settingName
  value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${secret.secretName})'
}]

// ---------------------------------------------------------------- plan and app

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_225: zone redundancy is a parameter (zoneRedundant), off by default for cost: on Flex Consumption it keeps at least two always-ready instances per scale group; the storage account is zone redundant (GZRS) either way
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// siteConfig carries no ftpsState (nor alwaysOn, linuxFxVersion, use32BitWorkerProcess,
// vnetRouteAllEnabled, ...): Flex Consumption refuses the site properties it deprecates
// ("properties.ftpsState: FTPS not supported"; ARM error 51021 "The following site configuration
// property (Site.SiteConfig.FtpsState) for Flex Consumption sites is invalid"). Checked against the
// whole deprecation table; ftpsState was the only entry this template set, and none of its app
// settings is listed there:
// https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
// FTP(S) deployment does not exist on Flex Consumption (the package comes from the blob container
// in functionAppConfig.deployment), hence the CKV_AZURE_78 skip inside the resource.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the RAPID site webhooks and Microsoft Graph change notifications call this app from the internet; access is gated by function keys (authLevel FUNCTION) and body validation
  // checkov:skip=CKV_AZURE_17: neither RAPID webhooks nor Microsoft Graph notifications can present client certificates; requiring them would reject every legitimate caller
  // checkov:skip=CKV_AZURE_212: siteConfig.numberOfWorkers does not apply to Flex Consumption; instances are set in functionAppConfig.scaleAndConcurrency (always-ready HTTP instances, maximumInstanceCount)
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP(S) deployment and refuses siteConfig.ftpsState (error 51021, deprecation table in functions-app-settings); the package comes from the blob container in functionAppConfig.deployment
  // checkov:skip=CKV_AZURE_213: the app exposes no health route (its HTTP routes are the webhook and notification receivers) and Flex Consumption manages instance health itself; failures surface in Application Insights
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // The site webhooks and Graph call in from the internet: the endpoint must stay public.
    // Every route is authLevel FUNCTION (a key in the URL) and the app validates each body.
    publicNetworkAccess: 'Enabled'
    // Outbound traffic (storage, Key Vault, Graph, Entra, RAPID) goes through the virtual
    // network: private endpoints for our own resources, the NAT gateway for the rest.
    virtualNetworkSubnetId: appSubnetId
    // Key Vault references are resolved with the user-assigned identity.
    keyVaultReferenceIdentity: appIdentity.id
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentity.id
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.13'
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: httpAlwaysReadyInstances > 0 ? [
          {
            name: 'http'
            instanceCount: httpAlwaysReadyInstances
          }
        ] : []
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
    }
    // No ftpsState: Flex Consumption refuses it (error 51021), see above the resource.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(baseAppSettings, siteSecretSettings)
    }
  }
  dependsOn: [
    // the app starts with its identity: it must already hold its roles, and reach the
    // private endpoints through resolvable names
    blobOwner
    queueContributor
    tableContributor
    secretsUser
    secretUser
    metricsPublisher
    deploymentContainer
    privateEndpointDnsGroups
    privateDnsZoneLinks
    // the secrets given to this deployment exist before the app first resolves its references
    secretItems
  ]
}

// ---------------------------------------------------------------- alerts

// Log search alerts over the app's traces in Application Insights (docs/operations.md, "Alerts"): the
// worker logs "job poisoned: message <id> moves to <queue>-poison …" on the delivery after which the host
// moves a failing message to the poison queue (functions/sync_worker.py), and the catch-up timer logs
// "work queue backlog: <n> waiting, oldest <s> s" every 5 minutes (functions/catch_up.py).
// Resource schemas: https://learn.microsoft.com/azure/templates/microsoft.insights/actiongroups and
// https://learn.microsoft.com/azure/templates/microsoft.insights/scheduledqueryrules
resource alertActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: take('rapid-${baseName}', 12)
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActions = {
  actionGroups: empty(alertEmailAddress) ? [] : [
    resourceId('Microsoft.Insights/actionGroups', actionGroupName)
  ]
}

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-poisoned-jobs'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'rapid-meetings: jobs moved to ${workQueueName}-poison'
    description: 'A job failed for a reason that is not an outage and was moved to the poison queue. See docs/operations.md, "Alerts" and "Replaying poison messages".'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message contains "job poisoned: message "'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: alertActions
  }
  dependsOn: [
    alertActionGroup
  ]
}

resource backlogAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-old-backlog'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'rapid-meetings: jobs waiting in ${workQueueName} for over ${backlogAlertMinutes} minutes'
    description: 'The oldest visible job of the work queue has waited longer than the threshold: the worker is not draining it. See docs/operations.md, "Alerts".'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message contains "work queue backlog: " | parse message with * "work queue backlog: " waiting:long " waiting, oldest " oldest:long " s" * | where oldest >= ${backlogAlertMinutes * 60}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: alertActions
  }
  dependsOn: [
    alertActionGroup
  ]
}

// ---------------------------------------------------------------- outputs

var hostName = functionApp.properties.defaultHostName
var siteBase = 'https://${hostName}/${siteTenant}/${siteName}/0/services/rapid-meetings'

output functionAppName string = functionApp.name
output functionAppHostName string = hostName

// No webhook URLs here: each one carries its site's site_token, an HMAC-SHA256 of the site key under
// WEBHOOK_SECRETS (shared/intake/webhooks.py), which Bicep cannot compute and the secret never enters;
// a URL without it answers 403. The URLs come from one place: the command named below.
@description('The base of siteTenant/siteName\'s routes: NOT a callable URL. The webhook URLs, each with its site_token, come from `python -m devtools.site_check --webhook-urls https://<functionAppHostName>` (docs/operations.md); send the function key as the x-functions-key header or &code=.')
output siteRoutesBase string = siteBase

@description('The Graph notification endpoint, without its key. Store it with ?code=<function key> as the Key Vault secret named by notificationUrlSecretName.')
output graphNotificationUrl string = 'https://${hostName}/graph/notifications'

output notificationUrlSecretName string = notificationUrlSecretName
output keyVaultName string = keyVault.name
output keyVaultUri string = keyVaultUri
output storageAccountName string = storage.name
output workQueueName string = workQueueName
output poisonQueueName string = '${workQueueName}-poison'
output managedIdentityClientId string = appIdentity.properties.clientId
output managedIdentityPrincipalId string = appIdentity.properties.principalId
output applicationInsightsName string = appInsights.name
output logAnalyticsWorkspaceName string = logAnalytics.name
output alertRuleNames array = [
  poisonAlert.name
  backlogAlert.name
]

@description('The one public IP the app calls Graph, Entra and the RAPID sites from (NAT gateway): allow it where a site restricts callers.')
output outboundIpAddress string = natIp.properties.ipAddress
