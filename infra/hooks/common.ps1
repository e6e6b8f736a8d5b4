# Shared by the azd hooks (postdeploy.ps1, predown.ps1); dot-sourced, never run.
# The PowerShell twin of infra/hooks/common.sh: same names, same algorithm, same messages.

# The azd environment value (hooks get them as environment variables; ask azd for any that is
# missing). '' for an unset value.
function Get-EnvValue([string] $Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value) -and (Get-Command azd -ErrorAction SilentlyContinue)) {
        $value = (azd env get-value $Name 2>$null)
        if ($LASTEXITCODE -ne 0) { $value = '' }
    }
    if ($null -eq $value) { return '' }
    return "$value"
}

# The first 8 hex digits of SHA-256(Text) (UTF-8), stable across runs and shells.
function Get-ShortHash([string] $Text) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try {
        $bytes = $sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($Text))
    }
    finally {
        $sha.Dispose()
    }
    return (-join ($bytes | ForEach-Object { $_.ToString('x2') })).Substring(0, 8)
}

# Prefix+EnvName when it fits ARM's 64-character limit on deployment names, else its first 55
# characters, '-' and Get-ShortHash(EnvName) (exactly 64). subscription.bicep names its nested
# deployments with the same rule (from the environmentHash parameter).
function Get-DeploymentName([string] $Prefix, [string] $EnvName) {
    $full = "$Prefix$EnvName"
    if ($full.Length -le 64) { return $full }
    return $full.Substring(0, 55) + '-' + (Get-ShortHash $EnvName)
}

# The registry's Event Grid system topic, whatever its name and resource group (Azure allows one
# per source), as an object with Id, Name, Group, Owner ('-' without the acr-retag-env tag) and
# Identity ('None' without an identity); $null when it has none.
function Find-SystemTopic([string] $Subscription, [string] $RegistryId) {
    $json = az eventgrid system-topic list --subscription $Subscription `
        --query '[].{id: id, name: name, group: resourceGroup, source: source, tags: tags, identity: identity.type}' `
        --output json
    if ($LASTEXITCODE -ne 0) { throw "could not list the Event Grid system topics of subscription $Subscription." }
    foreach ($topic in @($json | Out-String | ConvertFrom-Json)) {
        if ($topic -and $topic.source -ieq $RegistryId) {
            return [pscustomobject]@{
                Id = $topic.id; Name = $topic.name; Group = $topic.group
                Owner = (Get-Tag $topic.tags 'acr-retag-env' '-')
                Identity = $(if ($topic.identity) { $topic.identity } else { 'None' })
            }
        }
    }
    return $null
}

# The value of tag Name in a tags object from `az ... --output json` (Default when absent).
function Get-Tag($Tags, [string] $Name, [string] $Default = '') {
    if ($null -ne $Tags -and $Tags.PSObject.Properties[$Name]) { return "$($Tags.$Name)" }
    return $Default
}

# Tags of a resource by id ($null when it cannot be read).
function Get-ResourceTags([string] $Id) {
    $json = az resource show --ids $Id --query tags --output json 2>$null
    if ($LASTEXITCODE -ne 0 -or -not $json) { return $null }
    return ($json | Out-String | ConvertFrom-Json)
}
