// The Function App on a Flex Consumption plan (FC1, Linux, Python 3.11). It runs as one
// user-assigned identity and holds no secrets: host storage, the deployment package and
// telemetry are all reached with that identity.

@description('Name of the Function App (also the default host name prefix).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app.')
param tags object = {}

@description('Resource id of the app\'s user-assigned identity.')
param identityId string

@description('Client id of the app\'s user-assigned identity.')
param identityClientId string

@description('Name of the storage account used for AzureWebJobsStorage and the package (same resource group).')
param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Name of the Application Insights component (same resource group).')
param applicationInsightsName string

@description('The application settings read by retag/config.py (ACR_*, RETAG_*, PRUNE_*, RECONCILE_*).')
param retagSettings object

@description('Flex Consumption maximumInstanceCount: the most instances each function may scale out to (per function, not per app). 40 is the lowest Flex allows outside preview regions; 100 is the samples\' default. It does not bound the registry request rate usefully: see docs/deploy.md.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is region-dependent; missed events are redelivered for 24 h and reconcile_tags catches up
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the function over its public HTTPS endpoint (authenticated with the eventgrid_extension system key)
  // checkov:skip=CKV_AZURE_17: Event Grid presents no client certificate; deliveries are authenticated by the system key
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; Event Grid retries for 24 h, so no always-ready instance is needed
  // checkov:skip=CKV_AZURE_213: a Functions app serves no health endpoint; the platform monitors the host
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'retag' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in app settings (FLUX_RECEIVER_TOKEN) resolve with the app's identity.
    keyVaultReferenceIdentity: identityId
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Host and platform settings, then the application's own settings. Nothing here is a secret:
// storage is reached by identity, and the Application Insights connection string only names
// the resource (ingestion requires an Entra token because local auth is disabled).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: this is the appsettings config; App Service authentication would reject Event Grid deliveries (they carry the system key)
  // checkov:skip=CKV_AZURE_63: not a web config: Flex (Linux) has no HTTP log files; requests and logs go to Application Insights
  // checkov:skip=CKV_AZURE_65: not a web config: detailed error pages do not apply to a Functions app
  // checkov:skip=CKV_AZURE_66: not a web config: failed request tracing is an IIS (Windows) feature
  // checkov:skip=CKV_AZURE_80: not a web config: the app runs Python, no .NET Framework
  // checkov:skip=CKV_AZURE_88: not a web config: Flex Consumption deploys from blob storage, not Azure Files
  // checkov:skip=CKV_AZURE_222: same as the site: Event Grid needs the public HTTPS endpoint
  parent: app
  name: 'appsettings'
  properties: union(retagSettings, {
    // Service URIs rather than an account name: they carry the cloud's endpoint suffix, so the
    // same template works in sovereign clouds (as Microsoft's Flex Consumption samples do).
    AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
    AZURE_CLIENT_ID: identityClientId
  })
}

// No FTP and no basic-auth (publishing profile) deployments: azd deploys with Entra.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName
