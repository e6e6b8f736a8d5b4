// Optional (issue 14, off by default): a custom Event Grid topic for the app's audit events
// (CloudEvents `AcrRetag.TagAdded`, RETAG_EVENTS_TOPIC), in the app's resource group. Only
// Entra-authenticated publishers: local (key and SAS) auth is disabled, and the app's identity
// holds EventGrid Data Sender on this topic only.

@description('Name of the topic.')
param name string

@description('Azure region.')
param location string

@description('Tags for the topic.')
param tags object = {}

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: the Flex app is not VNet-integrated and publishes over the public endpoint; local auth is off, so every publisher needs an Entra token with EventGrid Data Sender
  name: name
  location: location
  tags: tags
  // For the subscriptions consumers add: delivery and dead-lettering with the topic's identity
  // instead of keys.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSender)
  scope: topic
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    description: 'acr-retag: publish AcrRetag.TagAdded audit events'
  }
}

output id string = topic.id
output endpoint string = topic.properties.endpoint
