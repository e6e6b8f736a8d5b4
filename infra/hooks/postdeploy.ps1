# azd postdeploy hook (Windows / PowerShell): same steps as postdeploy.sh.
# Phase 2 of `azd up` (why two phases: see infra/subscription.bicep).
#   1. Wait until the deployed app has indexed the Event Grid triggered function.
#   2. Deploy infra/subscription.bicep into the registry's resource group.
# Re-run alone with: azd hooks run postdeploy
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Get-EnvValue([string] $Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value)) {
        $value = (azd env get-value $Name 2>$null)
    }
    if ([string]::IsNullOrEmpty($value)) {
        throw "postdeploy: $Name is not set in the azd environment; run 'azd provision' first."
    }
    return "$value"
}

$envName = Get-EnvValue 'AZURE_ENV_NAME'
$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
$appGroup = Get-EnvValue 'AZURE_RESOURCE_GROUP'
$appName = Get-EnvValue 'AZURE_FUNCTION_APP_NAME'
$functionName = Get-EnvValue 'AZURE_FUNCTION_NAME'
$registryGroup = Get-EnvValue 'AZURE_REGISTRY_RESOURCE_GROUP'
$registryName = Get-EnvValue 'AZURE_REGISTRY_NAME'
$wiring = Get-EnvValue 'AZURE_WIRING_PARAMETERS'
$template = Join-Path $PSScriptRoot '..' 'subscription.bicep'

az account show --subscription $subscription --output none 2>$null
if ($LASTEXITCODE -ne 0) {
    throw "postdeploy: the Azure CLI cannot use subscription $subscription; run 'az login'."
}

Write-Host "postdeploy: waiting for $appName to list the function $functionName ..."
$attempt = 0
while ($true) {
    az functionapp function show --subscription $subscription --resource-group $appGroup `
        --name $appName --function-name $functionName --query id --output tsv 2>$null | Out-Null
    if ($LASTEXITCODE -eq 0) { break }
    $attempt++
    if ($attempt -ge 30) {
        throw "postdeploy: $functionName did not appear in $appName within 5 minutes; check the app's logs, then run 'azd hooks run postdeploy'."
    }
    Start-Sleep -Seconds 10
}

# A file, not an inline argument: PowerShell mangles quotes in JSON passed to native commands.
$parameters = New-TemporaryFile
try {
    $document = '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": ' + $wiring + '}'
    Set-Content -Path $parameters -Value $document -Encoding utf8
    Write-Host "postdeploy: wiring registry $registryName (resource group $registryGroup) to $appName/$functionName ..."
    az deployment group create `
        --subscription $subscription `
        --resource-group $registryGroup `
        --name "acr-retag-wiring-$envName" `
        --template-file $template `
        --parameters "@$parameters" `
        --output none
    if ($LASTEXITCODE -ne 0) { throw 'postdeploy: the phase 2 deployment failed (see the error above).' }
}
finally {
    Remove-Item -Path $parameters -ErrorAction SilentlyContinue
}

Write-Host "postdeploy: done. Pushes of the source tags to $registryName now reach $functionName."
Write-Host "postdeploy: dead-lettered events land in the container shown by 'azd env get-value AZURE_DEADLETTER_CONTAINER'."
