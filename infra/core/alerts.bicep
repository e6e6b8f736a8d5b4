// What someone sees without going looking: an action group (optional e-mail), log alert rules on
// Application Insights for failed invocations of each function and for the push-to-tag latency,
// and a workbook (re-tags per repository, latency percentiles, prune deletions and failures per
// run, reconcile drift). The dead-letter alerts need the system topic, so phase 2 adds them
// (core/deadletter-alerts.bicep) with this action group.
//
// The queries are the files in infra/monitoring/, which read the outcome lines the app logs
// (`acr-retag outcome=... `, `acr-retag prune ...`, `acr-retag reconcile ...`); tests/infra checks
// every field they parse against lines the code really writes.

@description('Azure region (of the log alert rules and the workbook).')
param location string

@description('Tags (azd-env-name) for every resource.')
param tags object

@description('Name of the azd environment (in names and descriptions).')
param environmentName string

@description('Name of the Application Insights component (same resource group).')
param applicationInsightsName string

@description('Names of the functions whose failed invocations alert.')
param functionNames array

@description('E-mail address the action group notifies. Empty: no receiver (alerts still show in the portal).')
param alertEmail string = ''

@description('Push-to-tag latency (seconds, 95th percentile over 30 minutes) above which the latency alert fires.')
@minValue(1)
param latencyThresholdSeconds int = 300

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var emailReceivers = empty(alertEmail) ? [] : [
  {
    name: 'acr-retag-email'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-retag-${uniqueString(resourceGroup().id, environmentName)}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'acr-retag'
    enabled: true
    emailReceivers: emailReceivers
  }
}

var failedInvocations = loadTextContent('../monitoring/failed-invocations.kql')

resource failureAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for name in functionNames: {
  name: 'acr-retag-${name}-failed-${uniqueString(resourceGroup().id, environmentName)}'
  location: location
  tags: tags
  properties: {
    displayName: 'acr-retag ${name} failed (${environmentName})'
    description: 'An invocation of ${name} failed: see its acr-retag lines in Application Insights (docs/deploy.md, Alerts).'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(failedInvocations, 'FUNCTION_NAME', name)
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

resource latencyAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'acr-retag-latency-${uniqueString(resourceGroup().id, environmentName)}'
  location: location
  tags: tags
  properties: {
    displayName: 'acr-retag push-to-tag latency (${environmentName})'
    description: 'The 95th percentile of push-to-tag latency over 30 minutes is above ${latencyThresholdSeconds} s.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: loadTextContent('../monitoring/push-to-tag-latency-alert.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'latency_s'
          operator: 'GreaterThan'
          threshold: latencyThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Workbook items: one query each (KqlItem), over the last 7 days, against this component.
var workbookQueries = [
  {
    title: 'Re-tags per repository'
    query: loadTextContent('../monitoring/retags-per-repository.kql')
    visualization: 'table'
  }
  {
    title: 'Push-to-tag latency percentiles (s)'
    query: loadTextContent('../monitoring/push-to-tag-latency.kql')
    visualization: 'linechart'
  }
  {
    title: 'Prune deletions and failures per run'
    query: loadTextContent('../monitoring/prune-runs.kql')
    visualization: 'table'
  }
  {
    title: 'Reconcile drift per run'
    query: loadTextContent('../monitoring/reconcile-drift.kql')
    visualization: 'table'
  }
]

var workbook = {
  version: 'Notebook/1.0'
  items: [for (item, index) in workbookQueries: {
    type: 3
    name: 'query-${index}'
    content: {
      version: 'KqlItem/1.0'
      title: item.title
      query: item.query
      size: 0
      timeContext: {
        durationMs: 604800000
      }
      queryType: 0
      resourceType: 'microsoft.insights/components'
      visualization: item.visualization
    }
  }]
  fallbackResourceIds: [
    applicationInsights.id
  ]
}

resource dashboard 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, environmentName, 'acr-retag-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'acr-retag (${environmentName})'
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(workbook)
  }
}

output actionGroupId string = actionGroup.id
output workbookId string = dashboard.id
