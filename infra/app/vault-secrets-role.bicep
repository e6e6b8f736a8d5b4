// Key Vault Secrets User for the app's identity on the one vault that holds FLUX_RECEIVER_TOKEN
// (resolved through the app setting's Key Vault reference with keyVaultReferenceIdentity).
// Deployed by phase 2 into the vault's resource group. The vault must use Azure RBAC
// (enableRbacAuthorization); access policies are not managed here.

@description('Name of the azd environment (in the assignment\'s description).')
param environmentName string

@description('Name of the Key Vault (in this resource group).')
param vaultName string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    description: 'acr-retag (${environmentName}): read FLUX_RECEIVER_TOKEN through its Key Vault reference'
  }
}
