# azd postdeploy hook (Windows / PowerShell): same steps as postdeploy.sh.
# Phase 2 of `azd up` (why two phases: see infra/subscription.bicep).
#   1. Wait until the deployed app has indexed the Event Grid triggered function (and, for the
#      WebHook fallback, until its eventgrid_extension system key exists).
#   2. Find the registry's Event Grid system topic, whatever its name; reuse one this
#      environment did not create as it is (tags and identity never changed).
#   3. Deploy infra/subscription.bicep into the registry's resource group and subscription.
# Re-run alone with: azd hooks run postdeploy
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'common.ps1')

$template = Join-Path $PSScriptRoot '..' 'subscription.bicep'
$waitSeconds = if ($env:RETAG_HOOK_WAIT_SECONDS) { [int] $env:RETAG_HOOK_WAIT_SECONDS } else { 10 }
$functionAttempts = if ($env:RETAG_HOOK_FUNCTION_ATTEMPTS) { [int] $env:RETAG_HOOK_FUNCTION_ATTEMPTS } else { 30 }
$keyAttempts = if ($env:RETAG_HOOK_KEY_ATTEMPTS) { [int] $env:RETAG_HOOK_KEY_ATTEMPTS } else { 18 }

function Get-Required([string] $Name) {
    $value = Get-EnvValue $Name
    if (-not $value) { throw "postdeploy: $Name is not set in the azd environment; run 'azd provision' first." }
    return $value
}

$envName = Get-Required 'AZURE_ENV_NAME'
$subscription = Get-Required 'AZURE_SUBSCRIPTION_ID'
$appGroup = Get-Required 'AZURE_RESOURCE_GROUP'
$appName = Get-Required 'AZURE_FUNCTION_APP_NAME'
$functionName = Get-Required 'AZURE_FUNCTION_NAME'
$registryGroup = Get-Required 'AZURE_REGISTRY_RESOURCE_GROUP'
$registryName = Get-Required 'AZURE_REGISTRY_NAME'
$wiring = Get-Required 'AZURE_WIRING_PARAMETERS'
$registrySubscription = Get-EnvValue 'AZURE_REGISTRY_SUBSCRIPTION_ID'
if (-not $registrySubscription) { $registrySubscription = $subscription }
$topicName = Get-EnvValue 'AZURE_EVENTGRID_SYSTEM_TOPIC'
if (-not $topicName) { $topicName = "$registryName-events" }
$endpointType = Get-EnvValue 'AZURE_EVENTGRID_ENDPOINT_TYPE'
if (-not $endpointType) { $endpointType = 'AzureFunction' }
$tokenSecretUri = Get-EnvValue 'FLUX_RECEIVER_TOKEN_SECRET_URI'
$tokenVaultId = Get-EnvValue 'AZURE_FLUX_TOKEN_VAULT_ID'

foreach ($sub in @($subscription, $registrySubscription)) {
    az account show --subscription $sub --output none 2>$null
    if ($LASTEXITCODE -ne 0) { throw "postdeploy: the Azure CLI cannot use subscription $sub; run 'az login'." }
}

if ($tokenSecretUri) {
    $vaultName = ([uri] $tokenSecretUri).Host.Split('.')[0]
    if (-not $tokenVaultId -or ($tokenVaultId.Split('/')[-1] -ine $vaultName)) {
        throw "postdeploy: FLUX_RECEIVER_TOKEN_SECRET_URI is a secret of vault '$vaultName': set AZURE_FLUX_TOKEN_VAULT_ID to that vault's resource id (az keyvault show -n $vaultName --query id -o tsv)."
    }
}

Write-Host "postdeploy: waiting for $appName to list the function $functionName ..."
$attempt = 0
while ($true) {
    az functionapp function show --subscription $subscription --resource-group $appGroup `
        --name $appName --function-name $functionName --query id --output tsv 2>$null | Out-Null
    if ($LASTEXITCODE -eq 0) { break }
    $attempt++
    if ($attempt -ge $functionAttempts) {
        throw "postdeploy: $functionName did not appear in $appName after $functionAttempts attempts; check the app's logs in Application Insights, then run 'azd hooks run postdeploy'."
    }
    Start-Sleep -Seconds $waitSeconds
}

# WebHook fallback: wait for the eventgrid_extension system key (only asks whether it exists;
# the key itself is read by ARM inside the deployment and never held here).
if ($endpointType -eq 'WebHook') {
    Write-Host "postdeploy: WebHook fallback: waiting for the eventgrid_extension system key of $appName ..."
    $attempt = 0
    while ($true) {
        $exists = az functionapp keys list --subscription $subscription --resource-group $appGroup `
            --name $appName --query 'systemKeys.eventgrid_extension != null' --output tsv 2>$null
        if ($LASTEXITCODE -eq 0 -and "$exists" -eq 'true') { break }
        $attempt++
        if ($attempt -ge $keyAttempts) {
            throw "postdeploy: the eventgrid_extension system key did not appear in $appName after $keyAttempts attempts; the host creates it when it starts the Event Grid extension; run 'azd hooks run postdeploy' again later."
        }
        Start-Sleep -Seconds $waitSeconds
    }
}

$registryId = "/subscriptions/$registrySubscription/resourceGroups/$registryGroup/providers/Microsoft.ContainerRegistry/registries/$registryName"
$topic = Find-SystemTopic $registrySubscription $registryId
$createTopic = 'true'
$topicGroup = $registryGroup
$deadLetterIdentity = 'SystemAssigned'
$deadLetterIdentityId = ''
$deadLetterPrincipal = ''
if ($topic) {
    $topicName = $topic.Name
    $topicGroup = $topic.Group
    if ($topic.Owner -eq $envName) {
        Write-Host "postdeploy: system topic $topicName was created by this environment; keeping it up to date."
    }
    else {
        $createTopic = 'false'
        Write-Host "postdeploy: reusing the registry's existing system topic $topicName (resource group $topicGroup); its tags and identity are left as they are."
        if ($topic.Identity -like '*SystemAssigned*') {
            $deadLetterIdentity = 'SystemAssigned'
        }
        elseif ($topic.Identity -like '*UserAssigned*') {
            $deadLetterIdentity = 'UserAssigned'
            $deadLetterIdentityId = az eventgrid system-topic show --ids $topic.Id `
                --query 'keys(identity.userAssignedIdentities)[0]' --output tsv
            $deadLetterPrincipal = az eventgrid system-topic show --ids $topic.Id `
                --query 'values(identity.userAssignedIdentities)[0].principalId' --output tsv
        }
        else {
            $deadLetterIdentity = 'None'
            Write-Warning "postdeploy: WARNING: system topic $topicName has no managed identity, so undeliverable events cannot be dead-lettered to the app's storage; they are dropped after 24 h (the DroppedEventCount alert still fires). Give the topic an identity and re-run this hook to dead-letter them."
        }
    }
}

# A file, not an inline argument: PowerShell mangles quotes in JSON passed to native commands.
$parameters = New-TemporaryFile
try {
    $document = '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": ' + $wiring + '}'
    Set-Content -Path $parameters -Value $document -Encoding utf8
    $name = Get-DeploymentName 'acr-retag-wiring-' $envName
    Write-Host "postdeploy: wiring registry $registryName (subscription $registrySubscription, resource group $registryGroup) to $appName/$functionName as deployment $name ..."
    az deployment group create `
        --subscription $registrySubscription `
        --resource-group $registryGroup `
        --name $name `
        --template-file $template `
        --parameters "@$parameters" `
        --parameters "environmentHash=$(Get-ShortHash $envName)" `
        "systemTopicName=$topicName" "systemTopicResourceGroup=$topicGroup" `
        "createSystemTopic=$createTopic" "deadLetterIdentity=$deadLetterIdentity" `
        "deadLetterIdentityId=$deadLetterIdentityId" "deadLetterPrincipalId=$deadLetterPrincipal" `
        --output none
    if ($LASTEXITCODE -ne 0) { throw 'postdeploy: the phase 2 deployment failed (see the error above).' }
}
finally {
    Remove-Item -Path $parameters -ErrorAction SilentlyContinue
}

if ($tokenSecretUri) {
    Write-Host "postdeploy: restarting $appName so it resolves the FLUX_RECEIVER_TOKEN Key Vault reference ..."
    az functionapp restart --subscription $subscription --resource-group $appGroup --name $appName --output none
    if ($LASTEXITCODE -ne 0) { throw "postdeploy: could not restart $appName" }
}

Write-Host "postdeploy: done. Pushes of the source tags to $registryName now reach $functionName."
Write-Host "postdeploy: dead-lettered events land in the container shown by 'azd env get-value AZURE_DEADLETTER_CONTAINER'."
