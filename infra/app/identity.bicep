// The one identity the Function App runs as. Every permission the app holds is a role
// assignment to this principal: see app/roles.bicep (host storage, telemetry) and
// app/registry-roles.bicep (the registry, granted in the second phase).

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
