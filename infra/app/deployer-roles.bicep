// Optional (off by default): data-plane access for whoever runs `azd provision`, so they can
// read and delete dead-lettered events with `az storage blob ... --auth-mode login` (shared
// keys are disabled). Storage Blob Data Contributor on the dead-letter container only.
// The principal is azd's AZURE_PRINCIPAL_ID (the signed-in user or service principal), passed in
// by main.bicep: Bicep's deployer().objectId names the same principal, but checkov's Bicep
// parser cannot read that function, and checkov must parse every file.

@description('Storage account holding the dead-letter container (in this resource group).')
param storageAccountName string

@description('Dead-letter blob container.')
param containerName string

@description('Object id of the deployer (azd\'s AZURE_PRINCIPAL_ID).')
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

resource deadLetterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, storageBlobDataContributor)
  scope: container
  properties: {
    principalId: principalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    description: 'acr-retag: the deployer reads and deletes dead-lettered events'
  }
}
