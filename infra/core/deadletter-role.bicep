// Lets the Event Grid system topic's identity write dead-lettered events, and nothing else:
// Storage Blob Data Contributor scoped to the dead-letter container only (not the account,
// which also holds the app's deployment package and host state).

@description('Storage account holding the dead-letter container (in this resource group).')
param storageAccountName string

@description('Dead-letter blob container.')
param containerName string

@description('Principal (object) id of the system topic\'s system-assigned identity.')
param principalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, storageBlobDataContributor)
  scope: container
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'acr-retag: Event Grid writes undeliverable ImagePushed events here'
  }
}
