// Creates a registry, only when the deployment is asked to (`createRegistry`). The usual case
// is an existing registry, which main.bicep only reads. Admin user and anonymous pull are off:
// every pull and push needs an Entra identity.

@description('Globally unique registry name (5-50 letters and digits).')
@minLength(5)
@maxLength(50)
param name string

@description('Azure region.')
param location string

@description('Tags for the registry.')
param tags object = {}

@description('Registry SKU.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param sku string = 'Standard'

@description('rbac: registry-wide roles (AcrPush, AcrDelete). abac: repository permissions with optional conditions.')
@allowed([
  'rbac'
  'abac'
])
param roleMode string = 'rbac'

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' = {
  // checkov:skip=CKV_AZURE_139: the Flex app and the clients pushing images reach the registry over its public endpoint; admin user and anonymous pull are off
  // checkov:skip=CKV_AZURE_166: quarantine is a Premium preview feature and would hide pushed images until scanned; out of scope for this optional registry
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
    roleAssignmentMode: (roleMode == 'abac') ? 'AbacRepositoryPermissions' : 'LegacyRegistryPermissions'
  }
}

output id string = registry.id
output name string = registry.name
output loginServer string = registry.properties.loginServer
