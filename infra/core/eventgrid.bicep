// The event path: registry -> Event Grid system topic -> event subscription -> the
// on_image_pushed function, with undeliverable events dead-lettered to a blob container.
//
// Filter: only ImagePushed, and only for the exact source tags (StringIn on data.target.tag).
// Never a prefix filter: the generated tags (latest_2026...) start with the source tag, and the
// app's own re-tag PUT emits ImagePushed for them, which would loop.
//
// Deployed into the topic's resource group, in the registry's subscription; the Function App and
// its storage may be in another subscription (appSubscriptionId). An existing topic (not created
// here) is only referenced: its tags and identity are never changed.

@description('Region of the registry (a system topic lives in its source\'s region).')
param location string

@description('Resource id of the registry (the topic\'s source).')
param registryId string

@description('Name of the system topic.')
param systemTopicName string

@description('Create the topic; false: use the existing topic of that name (found by the postdeploy hook).')
param createSystemTopic bool = true

@description('Identity Event Grid dead-letters with: SystemAssigned (the topic\'s), UserAssigned (deadLetterIdentityId, an existing topic\'s), or None (an existing topic without identity: no dead-lettering).')
@allowed([
  'SystemAssigned'
  'UserAssigned'
  'None'
])
param deadLetterIdentity string = 'SystemAssigned'

@description('UserAssigned only: resource id of the topic\'s user-assigned identity.')
param deadLetterIdentityId string = ''

@description('UserAssigned only: principal id of that identity.')
param deadLetterPrincipalId string = ''

@description('Name of the azd environment; labels the event subscription (predown\'s ownership proof).')
param environmentName string

@description('Name of the event subscription.')
param eventSubscriptionName string

@description('Tags that get a generated tag (exact match, case-insensitive in Event Grid; the app re-checks exactly).')
@minLength(1)
@maxLength(25)
param sourceTags array

@description('Subscription of the Function App (default: this deployment\'s).')
param appSubscriptionId string = subscription().subscriptionId

@description('Resource group of the Function App.')
param appResourceGroup string

@description('Name of the Function App.')
param functionAppName string

@description('Name of the Event Grid triggered function.')
param functionName string

@description('AzureFunction (Event Grid resolves the function and its key) or WebHook (URL with the eventgrid_extension system key, built inside ARM).')
@allowed([
  'AzureFunction'
  'WebHook'
])
param endpointType string = 'AzureFunction'

@description('Storage account (in appResourceGroup) holding the dead-letter container.')
param deadLetterStorageAccountName string

@description('Dead-letter blob container.')
param deadLetterContainerName string

@description('Tags for the topic.')
param tags object = {}

resource createdTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (createSystemTopic) {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: registryId
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

resource adoptedTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = if (!createSystemTopic) {
  name: systemTopicName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

var systemPrincipalId = createSystemTopic ? createdTopic.identity.principalId : adoptedTopic.identity.principalId
var topicPrincipalId = (deadLetterIdentity == 'UserAssigned') ? deadLetterPrincipalId : systemPrincipalId
var deadLettering = deadLetterIdentity != 'None'

// The topic's identity may write to the dead-letter container (and nothing else).
module deadLetterRole 'deadletter-role.bicep' = if (deadLettering) {
  name: take('retag-deadletter-role-${uniqueString(registryId, eventSubscriptionName)}', 64)
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
  params: {
    storageAccountName: deadLetterStorageAccountName
    containerName: deadLetterContainerName
    principalId: topicPrincipalId
  }
}

resource deadLetterStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: deadLetterStorageAccountName
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
  scope: resourceGroup(appSubscriptionId, appResourceGroup)
}

// AzureFunction: no key leaves Azure; Event Grid fetches it with its own service principal.
var azureFunctionDestination = {
  endpointType: 'AzureFunction'
  properties: {
    resourceId: '${functionApp.id}/functions/${functionName}'
    maxEventsPerBatch: 1
    preferredBatchSizeInKilobytes: 64
  }
}

// WebHook fallback: the system key is read by ARM at deployment time and goes straight into the
// subscription (Event Grid never returns it); it is never a parameter or an output. A freshly
// started host may not have created the key yet: the postdeploy hook waits (bounded) until it
// exists before deploying this.
var webHookDestination = {
  endpointType: 'WebHook'
  properties: {
    endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/eventgrid?functionName=${functionName}&code=${listKeys(resourceId(appSubscriptionId, appResourceGroup, 'Microsoft.Web/sites/host', functionAppName, 'default'), '2024-04-01').systemKeys.eventgrid_extension}'
    maxEventsPerBatch: 1
    preferredBatchSizeInKilobytes: 64
  }
}

var userAssignedDeadLetter = {
  type: 'UserAssigned'
  userAssignedIdentity: deadLetterIdentityId
}
var systemAssignedDeadLetter = {
  type: 'SystemAssigned'
}
var deadLetterWithIdentity = {
  identity: (deadLetterIdentity == 'UserAssigned') ? userAssignedDeadLetter : systemAssignedDeadLetter
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetterStorage.id
      blobContainerName: deadLetterContainerName
    }
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: eventSubscriptionName
  properties: {
    destination: (endpointType == 'AzureFunction') ? azureFunctionDestination : webHookDestination
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.target.tag'
          values: sourceTags
        }
      ]
    }
    // Event Grid's maximum: 30 attempts within 24 hours, then dead-letter.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    // Ownership proof for the predown hook (event subscriptions carry no tags).
    labels: [
      'acr-retag-env=${environmentName}'
    ]
    deadLetterWithResourceIdentity: deadLettering ? deadLetterWithIdentity : null
  }
  dependsOn: [
    createdTopic
    deadLetterRole
  ]
}

output systemTopicId string = topic.id
output systemTopicName string = topic.name
output eventSubscriptionName string = eventSubscription.name
