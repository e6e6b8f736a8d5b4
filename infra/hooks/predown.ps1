# azd predown hook (Windows / PowerShell): same steps as predown.sh.
# Undo phase 2 (infra/subscription.bicep) in the registry's resource group: the event
# subscription, the system topic if phase 2 created it, and the app identity's role assignments
# on the registry. The registry and its images are never touched.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Get-EnvValue([string] $Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value)) {
        $value = (azd env get-value $Name 2>$null)
    }
    if ($null -eq $value) { return '' }
    return "$value"
}

$envName = Get-EnvValue 'AZURE_ENV_NAME'
$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
$appGroup = Get-EnvValue 'AZURE_RESOURCE_GROUP'
$registryGroup = Get-EnvValue 'AZURE_REGISTRY_RESOURCE_GROUP'
$registryName = Get-EnvValue 'AZURE_REGISTRY_NAME'
$topic = Get-EnvValue 'AZURE_EVENTGRID_SYSTEM_TOPIC'
$createTopic = Get-EnvValue 'AZURE_EVENTGRID_CREATE_SYSTEM_TOPIC'
$eventSubscription = Get-EnvValue 'AZURE_EVENTGRID_SUBSCRIPTION'
$principal = Get-EnvValue 'AZURE_APP_IDENTITY_PRINCIPAL_ID'

if (-not $subscription -or -not $registryGroup -or -not $registryName) {
    Write-Host 'predown: nothing was provisioned for this environment; nothing to undo.'
    exit 0
}
if ($registryGroup -eq $appGroup) {
    Write-Host "predown: the registry is in the app's resource group; azd down removes the wiring with it."
    exit 0
}
az account show --subscription $subscription --output none 2>$null
if ($LASTEXITCODE -ne 0) {
    throw "predown: the Azure CLI cannot use subscription $subscription; run 'az login'."
}

$groupId = "/subscriptions/$subscription/resourceGroups/$registryGroup"
$topicId = "$groupId/providers/Microsoft.EventGrid/systemTopics/$topic"
$registryId = "$groupId/providers/Microsoft.ContainerRegistry/registries/$registryName"

function Remove-IfPresent([string] $Id) {
    az resource show --ids $Id --output none 2>$null
    if ($LASTEXITCODE -eq 0) {
        Write-Host "predown: deleting $Id"
        az resource delete --ids $Id --output none
        if ($LASTEXITCODE -ne 0) { throw "predown: could not delete $Id" }
    }
}

Remove-IfPresent "$topicId/eventSubscriptions/$eventSubscription"

if ($createTopic -eq 'true') {
    $tagsJson = (az resource show --ids $topicId --query tags --output json 2>$null)
    if ($LASTEXITCODE -eq 0 -and $tagsJson) {
        $owner = ($tagsJson | Out-String | ConvertFrom-Json).'acr-retag-env'
    }
    else {
        $owner = $null
    }
    if ("$owner" -eq $envName) {
        Remove-IfPresent $topicId
    }
}

if ($principal) {
    $assignments = @(az role assignment list --subscription $subscription --scope $registryId `
            --query "[?principalId=='$principal'].id" --output tsv 2>$null)
    foreach ($assignment in $assignments) {
        if (-not $assignment) { continue }
        Write-Host "predown: deleting role assignment $assignment"
        az role assignment delete --subscription $subscription --ids $assignment --output none
        if ($LASTEXITCODE -ne 0) { throw "predown: could not delete $assignment" }
    }
}

foreach ($deployment in @("acr-retag-wiring-$envName", "retag-registry-roles-$envName", "retag-events-$envName")) {
    az deployment group show --subscription $subscription --resource-group $registryGroup `
        --name $deployment --output none 2>$null
    if ($LASTEXITCODE -eq 0) {
        az deployment group delete --subscription $subscription --resource-group $registryGroup `
            --name $deployment --output none
    }
}
Write-Host "predown: registry $registryName is unchanged apart from the removed wiring."
