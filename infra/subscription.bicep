// acr-retag, phase 2: the registry side. Run by the azd postdeploy hook (infra/hooks/) as
// `az deployment group create --subscription <registry's> --resource-group <registry's group>`,
// with the parameters phase 1 wrote to the AZURE_WIRING_PARAMETERS output plus what the hook
// found (the registry's existing system topic, if any). Why a second phase:
//   1. The event subscription points at the function `on_image_pushed`, a resource
//      (Microsoft.Web/sites/functions) that exists only after `azd deploy` has uploaded the code
//      and the host has indexed it. Event Grid validates the endpoint when the subscription is
//      created, so it cannot be part of `azd provision`, which runs before the code is deployed.
//   2. Everything here lives in (or on) resource groups azd does not own: the registry's, the
//      existing system topic's, an existing custom topic's or Key Vault's, possibly in another
//      subscription. Keeping them out of the azd deployment means `azd down` never deletes them;
//      the predown hook removes only what this phase added, each item checked for this
//      environment's ownership tag or label first.
// Deployment names: ARM allows 64 characters. Each nested deployment is named
// <prefix><environmentName>, or when that is longer, its first 55 characters + '-' +
// environmentHash (the first 8 hex digits of SHA-256(environmentName), computed by the hook):
// the same rule as the hooks' deployment_name, so predown finds them again.
targetScope = 'resourceGroup'

@description('Name of the azd environment (tags what this phase creates).')
param environmentName string

@description('First 8 hex digits of SHA-256(environmentName) (the hooks compute it): the suffix of deployment names that would exceed 64 characters.')
@minLength(8)
@maxLength(8)
param environmentHash string

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

@description('Subscription of the Function App (phase 1). Default: this deployment\'s (the registry\'s).')
param appSubscriptionId string = subscription().subscriptionId

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

@description('Name of the registry\'s Event Grid system topic (the existing one the hook found, or the one to create).')
param systemTopicName string

@description('Resource group of the system topic (an existing topic may live outside the registry\'s group). Default: this one.')
param systemTopicResourceGroup string = ''

@description('Create the topic (false: the registry already has one, found by the hook, which is only referenced).')
param createSystemTopic bool = true

@description('SystemAssigned, UserAssigned or None: the identity Event Grid dead-letters with (see core/eventgrid.bicep).')
@allowed([
  'SystemAssigned'
  'UserAssigned'
  'None'
])
param deadLetterIdentity string = 'SystemAssigned'

@description('UserAssigned only: the existing topic\'s user-assigned identity (resource id).')
param deadLetterIdentityId string = ''

@description('UserAssigned only: that identity\'s principal id.')
param deadLetterPrincipalId string = ''

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

@description('Action group (phase 1) the dead-letter alerts notify.')
param actionGroupId string

@description('Resource id of an existing custom Event Grid topic for audit events (RETAG_EVENTS_TOPIC): the app identity gets EventGrid Data Sender on it. Empty: none, or one phase 1 created.')
param eventsTopicId string = ''

@description('Resource id of the Key Vault holding FLUX_RECEIVER_TOKEN: the app identity gets Key Vault Secrets User on that vault only. Empty: no Key Vault reference.')
param fluxTokenKeyVaultId string = ''

var topicGroup = empty(systemTopicResourceGroup) ? resourceGroup().name : systemTopicResourceGroup
var rolesFull = 'retag-registry-roles-${environmentName}'
var rolesName = (length(rolesFull) <= 64) ? rolesFull : '${take(rolesFull, 55)}-${environmentHash}'
var eventsFull = 'retag-events-${environmentName}'
var eventsName = (length(eventsFull) <= 64) ? eventsFull : '${take(eventsFull, 55)}-${environmentHash}'
var alertsFull = 'retag-deadletter-alerts-${environmentName}'
var alertsName = (length(alertsFull) <= 64) ? alertsFull : '${take(alertsFull, 55)}-${environmentHash}'
var topicRoleFull = 'retag-topic-role-${environmentName}'
var topicRoleName = (length(topicRoleFull) <= 64) ? topicRoleFull : '${take(topicRoleFull, 55)}-${environmentHash}'
var vaultRoleFull = 'retag-vault-role-${environmentName}'
var vaultRoleName = (length(vaultRoleFull) <= 64) ? vaultRoleFull : '${take(vaultRoleFull, 55)}-${environmentHash}'
// Resource ids split into /subscriptions/<2>/resourceGroups/<4>/.../<name>; an unused one is
// replaced by a placeholder in this group (ARM evaluates a skipped module's scope too).
var eventsTopicParts = split(empty(eventsTopicId) ? '${resourceGroup().id}/providers/Microsoft.EventGrid/topics/unused' : eventsTopicId, '/')
var vaultParts = split(empty(fluxTokenKeyVaultId) ? '${resourceGroup().id}/providers/Microsoft.KeyVault/vaults/unused' : fluxTokenKeyVaultId, '/')

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

module registryRoles 'app/registry-roles.bicep' = {
  name: rolesName
  params: {
    registryName: registry.name
    environmentName: environmentName
    principalId: appPrincipalId
    roleMode: registryRoleMode
    pruneMode: pruneMode
    repositoryPrefix: repositoryPrefix
  }
}

module events 'core/eventgrid.bicep' = {
  name: eventsName
  scope: resourceGroup(topicGroup)
  params: {
    environmentName: environmentName
    location: registry.location
    registryId: registry.id
    systemTopicName: systemTopicName
    createSystemTopic: createSystemTopic
    deadLetterIdentity: deadLetterIdentity
    deadLetterIdentityId: deadLetterIdentityId
    deadLetterPrincipalId: deadLetterPrincipalId
    appSubscriptionId: appSubscriptionId
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

// Dead-lettered (and, without dead-lettering, dropped) events of this subscription: metric
// alerts on the topic, kept in the app's resource group with the app's other alerts.
module deadLetterAlerts 'core/deadletter-alerts.bicep' = {
  name: alertsName
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
  params: {
    environmentName: environmentName
    systemTopicId: events.outputs.systemTopicId
    eventSubscriptionName: events.outputs.eventSubscriptionName
    actionGroupId: actionGroupId
  }
}

// Optional (issue 14): EventGrid Data Sender on an existing audit topic, Key Vault Secrets User
// on the vault of FLUX_RECEIVER_TOKEN; each scoped to that one resource.
module topicRole 'app/topic-sender-role.bicep' = if (!empty(eventsTopicId)) {
  name: topicRoleName
  scope: resourceGroup(eventsTopicParts[2], eventsTopicParts[4])
  params: {
    environmentName: environmentName
    topicName: last(eventsTopicParts)
    principalId: appPrincipalId
  }
}

module vaultRole 'app/vault-secrets-role.bicep' = if (!empty(fluxTokenKeyVaultId)) {
  name: vaultRoleName
  scope: resourceGroup(vaultParts[2], vaultParts[4])
  params: {
    environmentName: environmentName
    vaultName: last(vaultParts)
    principalId: appPrincipalId
  }
}

output systemTopicName string = events.outputs.systemTopicName
output eventSubscriptionName string = events.outputs.eventSubscriptionName
