// Metric alerts on the registry's system topic for this environment's event subscription only
// (dimension EventSubscriptionName; the topic may be shared): events dead-lettered after 30
// attempts / 24 h, and events dropped (an existing topic without identity cannot dead-letter).
// Deployed by phase 2 into the app's resource group, tagged like the app's resources.
// Metric names and dimensions: Event Grid monitoring data reference (push delivery),
// https://learn.microsoft.com/azure/event-grid/monitor-push-reference

@description('Name of the azd environment (azd-env-name tag).')
param environmentName string

@description('Resource id of the system topic.')
param systemTopicId string

@description('Name of this environment\'s event subscription on it.')
param eventSubscriptionName string

@description('Action group to notify.')
param actionGroupId string

var metrics = {
  deadLettered: 'DeadLetteredCount'
  dropped: 'DroppedEventCount'
}

resource alerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [for metric in items(metrics): {
  name: 'acr-retag-${metric.key}-${uniqueString(systemTopicId, eventSubscriptionName)}'
  location: 'global'
  tags: {
    'azd-env-name': environmentName
  }
  properties: {
    description: 'acr-retag (${environmentName}): ImagePushed events ${metric.key} by Event Grid for ${eventSubscriptionName}; replay them (docs/deploy.md, Dead-lettered events)'
    severity: 1
    enabled: true
    scopes: [
      systemTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: metric.value
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: metric.value
          dimensions: [
            {
              name: 'EventSubscriptionName'
              operator: 'Include'
              values: [
                eventSubscriptionName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}]
