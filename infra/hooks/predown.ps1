# azd predown hook (Windows / PowerShell): same steps as predown.sh.
# Undo phase 2 (infra/subscription.bicep), and in a resource group that existed before this
# environment delete this environment's own resources. Nothing is deleted without proof that
# this environment created it, checked just before (see predown.sh for the list). The registry,
# its images, its resource group and anything untagged are never touched.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'common.ps1')

$envName = Get-EnvValue 'AZURE_ENV_NAME'
$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
$appGroup = Get-EnvValue 'AZURE_RESOURCE_GROUP'
$groupCreated = Get-EnvValue 'AZURE_RESOURCE_GROUP_CREATED'
$registrySubscription = Get-EnvValue 'AZURE_REGISTRY_SUBSCRIPTION_ID'
if (-not $registrySubscription) { $registrySubscription = $subscription }
$registryGroup = Get-EnvValue 'AZURE_REGISTRY_RESOURCE_GROUP'
$registryName = Get-EnvValue 'AZURE_REGISTRY_NAME'
$eventSubscription = Get-EnvValue 'AZURE_EVENTGRID_SUBSCRIPTION'
$principal = Get-EnvValue 'AZURE_APP_IDENTITY_PRINCIPAL_ID'
$identityId = Get-EnvValue 'AZURE_APP_IDENTITY_ID'
$eventsTopicId = Get-EnvValue 'AZURE_EVENTS_TOPIC_ID'
$eventsTopicCreated = Get-EnvValue 'AZURE_EVENTS_TOPIC_CREATED'
$tokenVaultId = Get-EnvValue 'AZURE_FLUX_TOKEN_VAULT_ID'

if (-not $envName -or -not $subscription -or -not $registryGroup -or -not $registryName) {
    Write-Host 'predown: nothing was provisioned for this environment; nothing to undo.'
    exit 0
}
foreach ($sub in @($subscription, $registrySubscription)) {
    az account show --subscription $sub --output none 2>$null
    if ($LASTEXITCODE -ne 0) { throw "predown: the Azure CLI cannot use subscription $sub; run 'az login'." }
}

function Remove-Resource([string] $Id) {
    Write-Host "predown: deleting $Id"
    az resource delete --ids $Id --output none
    if ($LASTEXITCODE -ne 0) { throw "predown: could not delete $Id" }
}

$registryId = "/subscriptions/$registrySubscription/resourceGroups/$registryGroup/providers/Microsoft.ContainerRegistry/registries/$registryName"

# 1. The event subscription and, if this environment created it, the system topic.
$topic = Find-SystemTopic $registrySubscription $registryId
if ($topic -and $eventSubscription) {
    $subscriptionId = "$($topic.Id)/eventSubscriptions/$eventSubscription"
    $ours = az eventgrid system-topic event-subscription show --subscription $registrySubscription `
        --resource-group $topic.Group --system-topic-name $topic.Name --name $eventSubscription `
        --query "contains(to_array(labels), 'acr-retag-env=$envName')" --output tsv 2>$null
    if ($LASTEXITCODE -eq 0) {
        if ("$ours" -eq 'true') {
            Remove-Resource $subscriptionId
        }
        else {
            Write-Warning "predown: WARNING: keeping event subscription $eventSubscription on $($topic.Name): it has no label acr-retag-env=$envName"
        }
    }
    if ($topic.Owner -eq $envName) {
        $others = az eventgrid system-topic event-subscription list --subscription $registrySubscription `
            --resource-group $topic.Group --system-topic-name $topic.Name --query 'length(@)' --output tsv
        if ($LASTEXITCODE -ne 0) { throw "predown: could not list the event subscriptions of $($topic.Name)" }
        if ("$others" -eq '0') {
            Remove-Resource $topic.Id
        }
        else {
            Write-Warning "predown: WARNING: keeping system topic $($topic.Name) (created by this environment): $others other event subscription(s) still use it"
        }
    }
    else {
        Write-Host "predown: keeping system topic $($topic.Name): this environment did not create it (acr-retag-env tag: $($topic.Owner))."
    }
}

# 2. Role assignments of the app identity outside its resource group, once the identity is
#    proven to be this environment's.
$owner = ''
if ($identityId) { $owner = Get-Tag (Get-ResourceTags $identityId) 'azd-env-name' }
if ($principal -and $owner -eq $envName) {
    $scopes = @($registryId)
    if ($eventsTopicId -and $eventsTopicCreated -ne 'true') { $scopes += $eventsTopicId }
    if ($tokenVaultId) { $scopes += $tokenVaultId }
    foreach ($scope in $scopes) {
        $scopeSubscription = $scope.Split('/')[2]
        $assignments = @(az role assignment list --subscription $scopeSubscription --scope $scope `
                --query "[?principalId=='$principal'].id" --output tsv)
        if ($LASTEXITCODE -ne 0) { throw "predown: could not list the role assignments on $scope" }
        foreach ($assignment in $assignments) {
            if (-not $assignment) { continue }
            Write-Host "predown: deleting role assignment $assignment"
            az role assignment delete --subscription $scopeSubscription --ids $assignment --output none
            if ($LASTEXITCODE -ne 0) { throw "predown: could not delete $assignment" }
        }
    }
}
elseif ($principal) {
    Write-Warning "predown: WARNING: keeping the role assignments of principal ${principal}: identity $identityId does not carry azd-env-name=$envName"
}

# 3. Phase 2's deployment history in the registry's resource group.
foreach ($prefix in @('acr-retag-wiring-', 'retag-registry-roles-', 'retag-events-', 'retag-extra-roles-')) {
    $deployment = Get-DeploymentName $prefix $envName
    $deployedFor = az deployment group show --subscription $registrySubscription `
        --resource-group $registryGroup --name $deployment `
        --query 'properties.parameters.environmentName.value' --output tsv 2>$null
    if ($LASTEXITCODE -eq 0 -and "$deployedFor" -eq $envName) {
        Write-Host "predown: deleting deployment $deployment"
        az deployment group delete --subscription $registrySubscription --resource-group $registryGroup `
            --name $deployment --output none
        if ($LASTEXITCODE -ne 0) { throw "predown: could not delete deployment $deployment" }
    }
}

# 4. A resource group that existed before this environment is not deleted by azd down; delete
#    this environment's own resources in it, app first, identity last.
if ($groupCreated -eq 'false' -and $appGroup) {
    $json = az resource list --subscription $subscription --resource-group $appGroup `
        --query '[].{id: id, type: type, tags: tags}' --output json
    if ($LASTEXITCODE -ne 0) { throw "predown: could not list the resources of $appGroup" }
    $tagged = @($json | Out-String | ConvertFrom-Json | Where-Object { (Get-Tag $_.tags 'azd-env-name') -eq $envName })
    $rank = @{ 'microsoft.web/sites' = 1; 'microsoft.web/serverfarms' = 2; 'microsoft.managedidentity/userassignedidentities' = 4 }
    $ordered = $tagged | Sort-Object { if ($rank.ContainsKey($_.type.ToLower())) { $rank[$_.type.ToLower()] } else { 3 } }
    foreach ($resource in $ordered) {
        if ((Get-Tag (Get-ResourceTags $resource.id) 'azd-env-name') -eq $envName) {
            Remove-Resource $resource.id
        }
    }
    Write-Host "predown: resource group $appGroup existed before this environment and is kept; only resources tagged azd-env-name=$envName were deleted."
}
Write-Host "predown: registry $registryName is unchanged apart from the removed wiring."
