// acr-retag, phase 2: the registry side. Run by the azd postdeploy hook (infra/hooks/) as
// `az deployment group create --resource-group <registry's group>`, with the parameters phase 1
// wrote to the AZURE_WIRING_PARAMETERS output. Why a second phase:
//   1. The event subscription points at the function `on_image_pushed`, a resource
//      (Microsoft.Web/sites/functions) that exists only after `azd deploy` has uploaded the code
//      and the host has indexed it. Event Grid validates the endpoint when the subscription is
//      created, so it cannot be part of `azd provision`, which runs before the code is deployed.
//   2. Everything here lives in (or on) the registry's resource group. `azd down` deletes every
//      resource group its deployment touched; keeping the registry's group out of the azd
//      deployment means `azd down` can never delete a registry it did not create. The predown
//      hook removes what this phase added (subscription, topic if created, role assignments).
targetScope = 'resourceGroup'

@description('Name of the azd environment (tags what this phase creates).')
param environmentName string

@description('Name of the registry (in this resource group).')
param registryName string

@description('rbac or abac; see main.bicep.')
@allowed([
  'rbac'
  'abac'
])
param registryRoleMode string = 'rbac'

@description('abac only: condition the repository roles to this repository name prefix.')
param repositoryPrefix string = ''

@description('PRUNE_MODE of the app; "delete" grants the delete role.')
@allowed([
  'off'
  'dry-run'
  'delete'
])
param pruneMode string = 'dry-run'

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Resource group of the Function App (phase 1).')
param appResourceGroup string

@description('Name of the Function App.')
param functionAppName string

@description('Name of the Event Grid triggered function.')
param functionName string = 'on_image_pushed'

@description('Source tags: the exact tags that get a generated tag.')
@minLength(1)
param sourceTags array = [
  'latest'
]

@description('Name of the registry\'s Event Grid system topic.')
param systemTopicName string

@description('Create the topic (false: adopt an existing one with a system-assigned identity).')
param createSystemTopic bool = true

@description('Name of the event subscription.')
param eventSubscriptionName string = 'retag-on-image-pushed'

@description('AzureFunction (default) or WebHook.')
@allowed([
  'AzureFunction'
  'WebHook'
])
param endpointType string = 'AzureFunction'

@description('Storage account (in appResourceGroup) with the dead-letter container.')
param deadLetterStorageAccountName string

@description('Dead-letter blob container.')
param deadLetterContainerName string = 'eventgrid-deadletter'

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

module registryRoles 'app/registry-roles.bicep' = {
  name: take('retag-registry-roles-${environmentName}', 64)
  params: {
    registryName: registry.name
    principalId: appPrincipalId
    roleMode: registryRoleMode
    pruneMode: pruneMode
    repositoryPrefix: repositoryPrefix
  }
}

module events 'core/eventgrid.bicep' = {
  name: take('retag-events-${environmentName}', 64)
  params: {
    location: registry.location
    registryId: registry.id
    systemTopicName: systemTopicName
    createSystemTopic: createSystemTopic
    eventSubscriptionName: eventSubscriptionName
    sourceTags: sourceTags
    appResourceGroup: appResourceGroup
    functionAppName: functionAppName
    functionName: functionName
    endpointType: endpointType
    deadLetterStorageAccountName: deadLetterStorageAccountName
    deadLetterContainerName: deadLetterContainerName
    tags: {
      'acr-retag-env': environmentName
    }
  }
  // Grant the registry roles first: the first event may arrive as soon as the subscription exists.
  dependsOn: [
    registryRoles
  ]
}

output systemTopicName string = events.outputs.systemTopicName
output eventSubscriptionName string = events.outputs.eventSubscriptionName
