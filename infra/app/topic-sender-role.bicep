// EventGrid Data Sender for the app's identity on one existing custom topic (RETAG_EVENTS_TOPIC,
// audit events), scoped to that topic only. Deployed by phase 2 into the topic's resource group.

@description('Name of the azd environment (in the assignment\'s description).')
param environmentName string

@description('Name of the custom topic (in this resource group).')
param topicName string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSender)
  scope: topic
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    description: 'acr-retag (${environmentName}): publish AcrRetag.TagAdded audit events'
  }
}
