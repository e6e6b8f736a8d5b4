// acr-retag, phase 1 (`azd provision`): everything the Function App needs to run, in one
// resource group owned by this azd environment. Nothing here touches the registry's resource
// group; the registry roles and the Event Grid wiring are phase 2 (subscription.bicep), run by
// the postdeploy hook once the function exists. docs/deploy.md explains both phases.
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

@description('Resource group to create for the app. Default: rg-<environmentName>.')
param resourceGroupName string = ''

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

@minLength(5)
@maxLength(50)
@description('Name of the container registry to watch (an existing one, unless createRegistry).')
param registryName string

@description('Resource group of an existing registry. Default: the app\'s resource group.')
param registryResourceGroup string = ''

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

@description('Name of the registry\'s Event Grid system topic. Default: <registryName>-events. A registry has at most one system topic: if it already has one, give its name and set createSystemTopic=false.')
param systemTopicName string = ''

@description('Create the system topic (with a system-assigned identity for dead-lettering). false: use the existing topic named systemTopicName, which must already have a system-assigned identity.')
param createSystemTopic bool = true

@description('AzureFunction: Event Grid resolves the function by resource id and fetches its key itself. WebHook: the deployment reads the eventgrid_extension system key inside ARM and builds the webhook URL (fallback).')
@allowed([
  'AzureFunction'
  'WebHook'
])
param eventGridEndpointType string = 'AzureFunction'

// ---------------------------------------------------------------------------------------------
// Function App
// ---------------------------------------------------------------------------------------------

@description('Upper bound on Function App instances (bounds the request rate on the registry).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

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
var effectiveRegistryResourceGroup = (createRegistry || empty(registryResourceGroup)) ? appResourceGroupName : registryResourceGroup
var functionAppName = 'func-retag-${resourceToken}'
var functionName = 'on_image_pushed'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var effectiveSystemTopicName = empty(systemTopicName) ? '${registryName}-events' : systemTopicName
var eventSubscriptionName = 'retag-on-image-pushed'
// Repository names are [a-z0-9._/-]; "." is the only regex metacharacter among them.
var prefixRepositories = empty(repositoryPrefix) ? '' : '${replace(repositoryPrefix, '.', '\\.')}.*'
var effectiveRetagRepositories = empty(retagRepositories) ? prefixRepositories : retagRepositories

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appResourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-retag-${resourceToken}'
    location: location
    tags: tags
  }
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
}

// The usual case: an existing registry, only read here (for its login server). Reading it
// deploys nothing into its resource group, so azd down never touches that group.
resource existingRegistry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = if (!createRegistry) {
  name: registryName
  scope: resourceGroup(effectiveRegistryResourceGroup)
}

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
var retagSettings = union(requiredSettings, retagRepositoriesSetting, retagExcludeSetting, pruneRepositoriesSetting)

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
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_NAME string = functionName
output AZURE_REGISTRY_NAME string = registryName
output AZURE_REGISTRY_RESOURCE_GROUP string = effectiveRegistryResourceGroup
output AZURE_REGISTRY_LOGIN_SERVER string = registryLoginServer
output AZURE_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_EVENTGRID_SYSTEM_TOPIC string = effectiveSystemTopicName
output AZURE_EVENTGRID_CREATE_SYSTEM_TOPIC bool = createSystemTopic
output AZURE_EVENTGRID_SUBSCRIPTION string = eventSubscriptionName
output AZURE_DEADLETTER_STORAGE_ACCOUNT string = storage.outputs.name
output AZURE_DEADLETTER_CONTAINER string = deadLetterContainerName

// Everything phase 2 (subscription.bicep) needs, in deployment-parameters form; the postdeploy
// hook passes it verbatim to `az deployment group create --parameters @file`.
output AZURE_WIRING_PARAMETERS object = {
  environmentName: { value: environmentName }
  registryName: { value: registryName }
  registryRoleMode: { value: registryRoleMode }
  repositoryPrefix: { value: repositoryPrefix }
  pruneMode: { value: pruneMode }
  appPrincipalId: { value: identity.outputs.principalId }
  appResourceGroup: { value: rg.name }
  functionAppName: { value: functionApp.outputs.name }
  functionName: { value: functionName }
  sourceTags: { value: split(replace(sourceTags, ' ', ''), ',') }
  systemTopicName: { value: effectiveSystemTopicName }
  createSystemTopic: { value: createSystemTopic }
  eventSubscriptionName: { value: eventSubscriptionName }
  endpointType: { value: eventGridEndpointType }
  deadLetterStorageAccountName: { value: storage.outputs.name }
  deadLetterContainerName: { value: deadLetterContainerName }
}
