# Shared by the azd hooks (postdeploy.sh, predown.sh); sourced, never run. POSIX sh.
# infra/hooks/common.ps1 is the PowerShell twin: same names, same algorithm, same messages.

# env_value NAME: the azd environment value (hooks get them as environment variables; ask azd
# for any that is missing). Prints nothing for an unset value.
env_value() {
  value=$(printenv "$1" 2>/dev/null || true)
  if [ -z "$value" ] && command -v azd >/dev/null 2>&1; then
    value=$(azd env get-value "$1" 2>/dev/null || true)
  fi
  printf '%s' "$value"
}

# short_hash TEXT: the first 8 hex digits of SHA-256(TEXT), stable across runs and shells.
short_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    printf '%s' "$1" | sha256sum | cut -c1-8
  else
    printf '%s' "$1" | shasum -a 256 | cut -c1-8
  fi
}

# deployment_name PREFIX ENV: PREFIX+ENV when it fits ARM's 64-character limit on deployment
# names, else its first 55 characters, "-" and short_hash(ENV) (exactly 64). subscription.bicep
# names its nested deployments with the same rule (from the environmentHash parameter).
deployment_name() {
  full="$1$2"
  if [ "${#full}" -le 64 ]; then
    printf '%s' "$full"
  else
    printf '%s-%s' "$(printf '%s' "$full" | cut -c1-55)" "$(short_hash "$2")"
  fi
}

# lower TEXT: ASCII lower case (ARM resource ids compare case-insensitively).
lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

# find_system_topic SUBSCRIPTION REGISTRY_ID: the registry's Event Grid system topic, whatever
# its name and resource group (Azure allows one per source), as one tab-separated line
# "id name resourceGroup ownerTag identityType" ("-" for no owner tag, "None" for no identity:
# never an empty field, which `read` would merge); nothing when it has none.
find_system_topic() {
  wanted=$(lower "$2")
  topics=$(az eventgrid system-topic list --subscription "$1" \
    --query "[].[id, name, resourceGroup, source, tags.\"acr-retag-env\" || '-', identity.type || 'None']" \
    --output tsv) || return 1
  tab=$(printf '\t')
  while IFS="$tab" read -r id name group source owner identity; do
    if [ -n "$id" ] && [ "$(lower "$source")" = "$wanted" ]; then
      printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$name" "$group" "$owner" "$identity"
      return 0
    fi
  done <<TOPICS
$topics
TOPICS
  return 0
}

# field N LINE: the Nth tab-separated field of LINE.
field() {
  printf '%s\n' "$2" | cut -f "$1"
}
