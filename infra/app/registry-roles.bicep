// Data-plane roles the app's identity holds on the registry. Least privilege:
//   re-tag (GET manifest + PUT it under a new tag) needs push; push includes pull.
//   prune (delete tags) needs delete, granted only when PRUNE_MODE is "delete".
//   reconcile lists repositories (catalog); in ABAC mode that is a role of its own.
// Registries in ABAC mode (roleAssignmentMode AbacRepositoryPermissions) ignore AcrPush and
// AcrDelete; there the Container Registry Repository roles are used, optionally conditioned
// to repositories whose name starts with a prefix.

@description('Name of the registry (in this resource group).')
param registryName string

@description('Name of the azd environment (in each assignment\'s description; predown checks it on this deployment).')
param environmentName string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('rbac or abac; see main.bicep.')
@allowed([
  'rbac'
  'abac'
])
param roleMode string

@description('PRUNE_MODE of the app; "delete" grants the delete role.')
@allowed([
  'off'
  'dry-run'
  'delete'
])
param pruneMode string

@description('abac only: limit the repository roles to repositories starting with this prefix. Empty: whole registry.')
param repositoryPrefix string = ''

var roles = {
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  acrDelete: 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'
  repositoryWriter: '2a1e307c-b015-4ebd-883e-5b7698a07328'
  repositoryContributor: '2efddaa5-3f1f-4df3-97df-af3f13818f4c'
  catalogLister: 'bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7'
}

var abac = roleMode == 'abac'
var canDelete = pruneMode == 'delete'
var conditioned = abac && (!empty(repositoryPrefix))

// ABAC conditions: the listed repository actions are allowed only on matching repositories;
// every other action of the role is unaffected.
var prefixMatch = '@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase \'${repositoryPrefix}\''
var writerCondition = '((!(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/content/read\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/content/write\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/metadata/read\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/metadata/write\'})) OR (${prefixMatch}))'
var contributorCondition = '((!(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/content/read\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/content/write\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/content/delete\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/metadata/read\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/metadata/write\'}) AND !(ActionMatches{\'Microsoft.ContainerRegistry/registries/repositories/metadata/delete\'})) OR (${prefixMatch}))'

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

// rbac mode -------------------------------------------------------------------------------

resource acrPush 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!abac) {
  name: guid(registry.id, principalId, roles.acrPush)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPush)
    description: 'acr-retag (${environmentName}): re-tag (read a manifest, write it under a generated tag)'
  }
}

resource acrDelete 'Microsoft.Authorization/roleAssignments@2022-04-01' = if ((!abac) && canDelete) {
  name: guid(registry.id, principalId, roles.acrDelete)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrDelete)
    description: 'acr-retag (${environmentName}): prune old generated tags (PRUNE_MODE=delete)'
  }
}

// abac mode -------------------------------------------------------------------------------

resource repositoryWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (abac) {
  name: guid(registry.id, principalId, roles.repositoryWriter)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.repositoryWriter)
    description: 'acr-retag (${environmentName}): re-tag (read a manifest, write it under a generated tag)'
    conditionVersion: conditioned ? '2.0' : null
    condition: conditioned ? writerCondition : null
  }
}

resource repositoryContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (abac && canDelete) {
  name: guid(registry.id, principalId, roles.repositoryContributor)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.repositoryContributor)
    description: 'acr-retag (${environmentName}): prune old generated tags (PRUNE_MODE=delete)'
    conditionVersion: conditioned ? '2.0' : null
    condition: conditioned ? contributorCondition : null
  }
}

// Listing the catalog cannot be limited to a repository; it reveals repository names only.
resource catalogLister 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (abac) {
  name: guid(registry.id, principalId, roles.catalogLister)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.catalogLister)
    description: 'acr-retag (${environmentName}): reconcile and prune list repositories'
  }
}
