// acr-retag, phase 1 (`azd provision`): everything the Function App needs to run, in one
// resource group: created for this azd environment (and deleted by `azd down`), or an existing
// group that is only referenced (azd down then leaves it; the predown hook deletes only this
// environment's tagged resources in it). Nothing here deploys into the registry's resource group
// or subscription (they are only read); the registry roles, the Event Grid wiring and the roles on
// other existing resources are phase 2 (subscription.bicep), run by the postdeploy hook once the
// function exists. docs/deploy.md explains both phases and what azd down deletes.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds resource names and the resource group name.')
param environmentName string

@minLength(1)
@description('Region of the Function App and its resources (one that offers Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group of the app. Default: rg-<environmentName>, created.')
param resourceGroupName string = ''

@description('true: resourceGroupName names a group that already exists; it is referenced, never declared, so azd down does not delete it.')
param resourceGroupExists bool = false

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

@minLength(5)
@maxLength(50)
@description('Name of the container registry to watch (an existing one, unless createRegistry).')
param registryName string

@description('Resource group of an existing registry. Default: the app\'s resource group.')
param registryResourceGroup string = ''

@description('Subscription of an existing registry (platform teams often keep registries in a shared one). Default: this deployment\'s. Phase 2 deploys the registry roles and the system topic there.')
param registrySubscriptionId string = ''

@description('Create a new registry (admin user disabled) in the app\'s resource group instead of using an existing one. azd down deletes it.')
param createRegistry bool = false

@description('SKU of a registry created by this deployment.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param registrySku string = 'Standard'

@description('rbac: AcrPush (+ AcrDelete when PRUNE_MODE=delete). abac: for registries with roleAssignmentMode AbacRepositoryPermissions, where AcrPush/AcrDelete are ignored: Container Registry Repository Writer (+ Contributor) and Catalog Lister.')
@allowed([
  'rbac'
  'abac'
])
param registryRoleMode string = 'rbac'

@description('Optional repository name prefix (for example "team-a/"). abac: the role assignments carry a condition limiting them to repositories starting with it. Both modes: the default RETAG_REPOSITORIES becomes "<prefix>.*".')
param repositoryPrefix string = ''

// ---------------------------------------------------------------------------------------------
// Event Grid (created in phase 2, named here so both phases agree)
// ---------------------------------------------------------------------------------------------

@description('Name of the registry\'s Event Grid system topic when phase 2 creates it. Default: <registryName>-events. A registry has at most one system topic: the postdeploy hook finds an existing one whatever its name and reuses it (never changing its tags or identity).')
param systemTopicName string = ''

@description('AzureFunction: Event Grid resolves the function by resource id and fetches its key itself. WebHook (fallback only): the deployment reads the eventgrid_extension system key inside ARM and builds the webhook URL; the hook first waits, bounded, until the key exists.')
@allowed([
  'AzureFunction'
  'WebHook'
])
param eventGridEndpointType string = 'AzureFunction'

// ---------------------------------------------------------------------------------------------
// Function App
// ---------------------------------------------------------------------------------------------

@description('Flex Consumption maximumInstanceCount: the most instances each function may scale out to (per function, not per app). Flex rejects less than 40 (outside preview regions); 100 as the samples. The registry request rate is bounded by concurrency per instance and the registry\'s throttling (docs/deploy.md).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('E-mail address the alerts notify (action group). Empty: no receiver; alerts still show in the portal.')
param alertEmail string = ''

@description('Push-to-tag latency alert threshold: 95th percentile over 30 minutes, in seconds.')
@minValue(1)
param alertLatencySeconds int = 300

@description('Give the deployer (deployerPrincipalId) Storage Blob Data Contributor on the dead-letter container, to read and delete dead-lettered events.')
param grantDeployerDataAccess bool = false

@description('Object id of whoever runs azd provision: azd sets AZURE_PRINCIPAL_ID to the signed-in principal. Used only with grantDeployerDataAccess.')
param deployerPrincipalId string = ''

// ---------------------------------------------------------------------------------------------
// Optional integrations (issue 14), all off by default
// ---------------------------------------------------------------------------------------------

@description('FLUX_RECEIVER_URL: a Flux notification-controller generic-hmac Receiver URL to nudge after each new generated tag. Empty: no nudge.')
param fluxReceiverUrl string = ''

@description('Key Vault secret URI holding FLUX_RECEIVER_TOKEN (https://<vault>.vault.azure.net/secrets/<name>[/<version>]); the app setting becomes a Key Vault reference. Required with fluxReceiverUrl.')
param fluxReceiverTokenSecretUri string = ''

@description('Resource id of the Key Vault of fluxReceiverTokenSecretUri (any resource group or subscription; Azure RBAC vault): phase 2 grants the app identity Key Vault Secrets User on it.')
param fluxTokenKeyVaultId string = ''

@description('Create a custom Event Grid topic (local auth disabled) in the app\'s resource group for audit events (RETAG_EVENTS_TOPIC).')
param createEventsTopic bool = false

@description('Or use an existing custom Event Grid topic (resource id) for audit events: phase 2 grants the app identity EventGrid Data Sender on it. Ignored when createEventsTopic.')
param eventsTopicId string = ''

// ---------------------------------------------------------------------------------------------
// Application settings: one parameter per setting read by retag/config.py, with the code's
// default. main.parameters.json maps each from the azd environment variable of the same name
// (`azd env set PRUNE_MODE delete`); an unset variable keeps the default below.
// ---------------------------------------------------------------------------------------------

@description('ACR_CREDENTIAL: default (managed identity via DefaultAzureCredential) or anonymous.')
@allowed([
  'default'
  'anonymous'
])
param acrCredential string = 'default'

@description('ACR_AUDIENCE: Entra audience of the registry data plane.')
param acrAudience string = 'https://containerregistry.azure.net'

@description('RETAG_SOURCE_TAGS: comma-separated tags whose pushes get a generated tag. Also the Event Grid StringIn filter.')
@minLength(1)
param sourceTags string = 'latest'

@description('RETAG_TAG_TEMPLATE: template of the generated tag.')
param tagTemplate string = '{tag}_{timestamp:ms}_{digest:.12}'

@description('RETAG_REPOSITORIES: regex (full match) of repositories to re-tag. Empty: all (or <repositoryPrefix>.* when a prefix is set).')
param retagRepositories string = ''

@description('RETAG_EXCLUDE_REPOSITORIES: regex (full match) of repositories never to touch. Empty: none.')
param retagExcludeRepositories string = ''

@description('PRUNE_SCHEDULE: NCRONTAB schedule of prune_tags.')
param pruneSchedule string = '0 0 3 * * *'

@description('PRUNE_MODE: off, dry-run (log what would go) or delete. delete also grants the delete role on the registry.')
@allowed([
  'off'
  'dry-run'
  'delete'
])
param pruneMode string = 'dry-run'

@description('PRUNE_KEEP: newest generated tags to keep per source tag.')
param pruneKeep string = '10'

@description('PRUNE_MIN_AGE: never prune tags younger than this (30m, 12h, 7d).')
param pruneMinAge string = '7d'

@description('PRUNE_SCOPE: generated (only tags this app generates) or all.')
@allowed([
  'generated'
  'all'
])
param pruneScope string = 'generated'

@description('PRUNE_UNTAGGED: also delete manifests left with no tag.')
@allowed([
  'true'
  'false'
])
param pruneUntagged string = 'false'

@description('PRUNE_REPOSITORIES: regex (full match) of repositories to prune. Empty: the re-tag filters.')
param pruneRepositories string = ''

@description('PRUNE_CONCURRENCY: parallel registry requests while pruning.')
param pruneConcurrency string = '8'

@description('PRUNE_MAX_DURATION: stop a prune run after this long (the rest waits for the next run).')
param pruneMaxDuration string = '8m'

@description('RECONCILE_SCHEDULE: NCRONTAB schedule of reconcile_tags.')
param reconcileSchedule string = '0 */15 * * * *'

@description('RECONCILE_MODE: off, dry-run or apply (add generated tags that missed events).')
@allowed([
  'off'
  'dry-run'
  'apply'
])
param reconcileMode string = 'apply'

@description('RECONCILE_GRACE: leave pushes younger than this to Event Grid.')
param reconcileGrace string = '15m'

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appResourceGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var createResourceGroup = (!resourceGroupExists) || empty(resourceGroupName)
var effectiveRegistrySubscription = (createRegistry || empty(registrySubscriptionId)) ? subscription().subscriptionId : registrySubscriptionId
var effectiveRegistryResourceGroup = (createRegistry || empty(registryResourceGroup)) ? appResourceGroupName : registryResourceGroup
var functionAppName = 'func-retag-${resourceToken}'
var functionName = 'on_image_pushed'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var effectiveSystemTopicName = empty(systemTopicName) ? '${registryName}-events' : systemTopicName
// One subscription per environment: several environments may share the registry's one topic.
var eventSubscriptionName = 'retag-on-image-pushed-${resourceToken}'
var useExistingEventsTopic = (!createEventsTopic) && (!empty(eventsTopicId))
// An unused id is replaced by a placeholder in this subscription (a skipped reference's scope is
// still compiled).
var eventsTopicParts = split(useExistingEventsTopic ? eventsTopicId : '${subscription().id}/resourceGroups/${appResourceGroupName}/providers/Microsoft.EventGrid/topics/unused', '/')
// Repository names are [a-z0-9._/-]; "." is the only regex metacharacter among them.
var prefixRepositories = empty(repositoryPrefix) ? '' : '${replace(repositoryPrefix, '.', '\\.')}.*'
var effectiveRetagRepositories = empty(retagRepositories) ? prefixRepositories : retagRepositories

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

// Declared (so azd down deletes it) only when this environment creates it; an existing group
// is referenced: azd down classifies a group the template does not create as external and
// leaves it (Azure/azure-dev cli/azd/pkg/azapi/resource_group_classifier.go).
resource newGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createResourceGroup) {
  name: appResourceGroupName
  location: location
  tags: tags
}

// Every module deploys into this group; those that read no other module's output depend on
// newGroup explicitly, so the group exists first when it is created here.
resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' existing = {
  name: appResourceGroupName
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-retag-${resourceToken}'
    location: location
    tags: tags
  }
  dependsOn: [
    newGroup
  ]
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
  }
  dependsOn: [
    newGroup
  ]
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
  dependsOn: [
    newGroup
  ]
}

module hostRoles 'app/roles.bicep' = {
  name: 'host-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Only when asked: a new registry in the app's resource group (so azd down removes it).
module newRegistry 'core/registry.bicep' = if (createRegistry) {
  name: 'registry'
  scope: rg
  params: {
    name: registryName
    location: location
    tags: tags
    sku: registrySku
    roleMode: registryRoleMode
  }
  dependsOn: [
    newGroup
  ]
}

// The usual case: an existing registry, only read here (for its login server). Reading it
// deploys nothing into its resource group, so azd down never touches that group.
resource existingRegistry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = if (!createRegistry) {
  name: registryName
  scope: resourceGroup(effectiveRegistrySubscription, effectiveRegistryResourceGroup)
}

module alerts 'core/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    functionNames: [
      functionName
      'prune_tags'
      'reconcile_tags'
    ]
    alertEmail: alertEmail
    latencyThresholdSeconds: alertLatencySeconds
  }
}

module deployerRoles 'app/deployer-roles.bicep' = if (grantDeployerDataAccess && (!empty(deployerPrincipalId))) {
  name: 'deployer-roles'
  scope: rg
  params: {
    principalId: deployerPrincipalId
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.deadLetterContainerName
  }
}

// Optional audit topic: created here (in the app's group), or an existing one only read for its
// endpoint (its role assignment is phase 2's: it lives outside this deployment).
module eventsTopic 'core/events-topic.bicep' = if (createEventsTopic) {
  name: 'events-topic'
  scope: rg
  params: {
    name: 'evgt-retag-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

resource existingEventsTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = if (useExistingEventsTopic) {
  name: last(eventsTopicParts)
  scope: resourceGroup(eventsTopicParts[2], eventsTopicParts[4])
}

var eventsTopicEndpoint = createEventsTopic ? eventsTopic.outputs.endpoint : (useExistingEventsTopic ? existingEventsTopic.properties.endpoint : '')

var registryLoginServer = createRegistry ? newRegistry.outputs.loginServer : existingRegistry.properties.loginServer

// Every setting read by retag/config.py. Optional ones are set only when they have a value:
// unset means the code's default.
var requiredSettings = {
  ACR_LOGIN_SERVER: registryLoginServer
  ACR_CREDENTIAL: acrCredential
  ACR_AUDIENCE: acrAudience
  RETAG_SOURCE_TAGS: sourceTags
  RETAG_TAG_TEMPLATE: tagTemplate
  PRUNE_SCHEDULE: pruneSchedule
  PRUNE_MODE: pruneMode
  PRUNE_KEEP: pruneKeep
  PRUNE_MIN_AGE: pruneMinAge
  PRUNE_SCOPE: pruneScope
  PRUNE_UNTAGGED: pruneUntagged
  PRUNE_CONCURRENCY: pruneConcurrency
  PRUNE_MAX_DURATION: pruneMaxDuration
  RECONCILE_SCHEDULE: reconcileSchedule
  RECONCILE_MODE: reconcileMode
  RECONCILE_GRACE: reconcileGrace
}
var retagRepositoriesSetting = empty(effectiveRetagRepositories) ? {} : { RETAG_REPOSITORIES: effectiveRetagRepositories }
var retagExcludeSetting = empty(retagExcludeRepositories) ? {} : { RETAG_EXCLUDE_REPOSITORIES: retagExcludeRepositories }
var pruneRepositoriesSetting = empty(pruneRepositories) ? {} : { PRUNE_REPOSITORIES: pruneRepositories }
var fluxReceiverUrlSetting = empty(fluxReceiverUrl) ? {} : { FLUX_RECEIVER_URL: fluxReceiverUrl }
// A Key Vault reference, resolved by the platform with keyVaultReferenceIdentity (the app's
// identity); the token itself never passes through the deployment.
var fluxReceiverTokenSetting = empty(fluxReceiverTokenSecretUri) ? {} : { FLUX_RECEIVER_TOKEN: '@Microsoft.KeyVault(SecretUri=${fluxReceiverTokenSecretUri})' }
var eventsTopicSetting = empty(eventsTopicEndpoint) ? {} : { RETAG_EVENTS_TOPIC: eventsTopicEndpoint }
var retagSettings = union(requiredSettings, retagRepositoriesSetting, retagExcludeSetting, pruneRepositoriesSetting, fluxReceiverUrlSetting, fluxReceiverTokenSetting, eventsTopicSetting)

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    retagSettings: retagSettings
    maximumInstanceCount: maximumInstanceCount
  }
  dependsOn: [
    hostRoles
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in .azure/<env>/.env; the hooks read them). No keys or secrets.
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appResourceGroupName
output AZURE_RESOURCE_GROUP_CREATED bool = createResourceGroup
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_NAME string = functionName
output AZURE_REGISTRY_NAME string = registryName
output AZURE_REGISTRY_SUBSCRIPTION_ID string = effectiveRegistrySubscription
output AZURE_REGISTRY_RESOURCE_GROUP string = effectiveRegistryResourceGroup
output AZURE_REGISTRY_LOGIN_SERVER string = registryLoginServer
output AZURE_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_APP_IDENTITY_ID string = identity.outputs.id
output AZURE_EVENTGRID_SYSTEM_TOPIC string = effectiveSystemTopicName
output AZURE_EVENTGRID_SUBSCRIPTION string = eventSubscriptionName
output AZURE_EVENTGRID_ENDPOINT_TYPE string = eventGridEndpointType
output AZURE_EVENTS_TOPIC_ID string = createEventsTopic ? eventsTopic.outputs.id : eventsTopicId
output AZURE_EVENTS_TOPIC_CREATED bool = createEventsTopic
output AZURE_ALERTS_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
output AZURE_WORKBOOK_ID string = alerts.outputs.workbookId
output AZURE_DEADLETTER_STORAGE_ACCOUNT string = storage.outputs.name
output AZURE_DEADLETTER_CONTAINER string = deadLetterContainerName
output AZURE_FLUX_TOKEN_VAULT_ID string = fluxTokenKeyVaultId

// Everything phase 2 (subscription.bicep) needs, in deployment-parameters form; the postdeploy
// hook passes it verbatim to `az deployment group create --parameters @file`.
output AZURE_WIRING_PARAMETERS object = {
  environmentName: { value: environmentName }
  registryName: { value: registryName }
  registryRoleMode: { value: registryRoleMode }
  repositoryPrefix: { value: repositoryPrefix }
  pruneMode: { value: pruneMode }
  appPrincipalId: { value: identity.outputs.principalId }
  appSubscriptionId: { value: subscription().subscriptionId }
  appResourceGroup: { value: appResourceGroupName }
  functionAppName: { value: functionApp.outputs.name }
  functionName: { value: functionName }
  sourceTags: { value: split(replace(sourceTags, ' ', ''), ',') }
  eventSubscriptionName: { value: eventSubscriptionName }
  endpointType: { value: eventGridEndpointType }
  deadLetterStorageAccountName: { value: storage.outputs.name }
  deadLetterContainerName: { value: deadLetterContainerName }
  actionGroupId: { value: alerts.outputs.actionGroupId }
  eventsTopicId: { value: useExistingEventsTopic ? eventsTopicId : '' }
  fluxTokenKeyVaultId: { value: fluxTokenKeyVaultId }
}
