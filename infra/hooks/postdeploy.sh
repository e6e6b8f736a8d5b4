#!/bin/sh
# azd postdeploy hook: phase 2 of `azd up` (why two phases: see infra/subscription.bicep).
#
# 1. Wait until the deployed app has indexed the Event Grid triggered function.
# 2. Deploy infra/subscription.bicep into the registry's resource group: the app identity's
#    registry roles, the Event Grid system topic and the event subscription.
#
# Uses the Azure CLI (`az login`) with azd's subscription. Safe to re-run:
#   azd hooks run postdeploy
set -eu

# azd passes its environment values to hooks; ask azd for any that are missing.
env_value() {
  value=$(printenv "$1" 2>/dev/null || true)
  if [ -z "$value" ]; then
    value=$(azd env get-value "$1" 2>/dev/null || true)
  fi
  if [ -z "$value" ]; then
    echo "postdeploy: $1 is not set in the azd environment; run 'azd provision' first." >&2
    return 1
  fi
  printf '%s' "$value"
}

env_name=$(env_value AZURE_ENV_NAME) || exit 1
subscription=$(env_value AZURE_SUBSCRIPTION_ID) || exit 1
app_group=$(env_value AZURE_RESOURCE_GROUP) || exit 1
app_name=$(env_value AZURE_FUNCTION_APP_NAME) || exit 1
function_name=$(env_value AZURE_FUNCTION_NAME) || exit 1
registry_group=$(env_value AZURE_REGISTRY_RESOURCE_GROUP) || exit 1
registry_name=$(env_value AZURE_REGISTRY_NAME) || exit 1
wiring=$(env_value AZURE_WIRING_PARAMETERS) || exit 1

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
template="$script_dir/../subscription.bicep"

if ! az account show --subscription "$subscription" --output none 2>/dev/null; then
  echo "postdeploy: the Azure CLI cannot use subscription $subscription; run 'az login'." >&2
  exit 1
fi

# The function resource appears once the host has started and indexed the deployed code.
echo "postdeploy: waiting for $app_name to list the function $function_name ..."
attempt=0
until az functionapp function show --subscription "$subscription" --resource-group "$app_group" \
  --name "$app_name" --function-name "$function_name" --query id --output tsv >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "postdeploy: $function_name did not appear in $app_name within 5 minutes." >&2
    echo "postdeploy: check the app's logs in Application Insights, then run 'azd hooks run postdeploy'." >&2
    exit 1
  fi
  sleep 10
done

parameters=$(mktemp)
trap 'rm -f "$parameters"' EXIT
# shellcheck disable=SC2016 # "$schema" is a literal JSON key, not a shell expansion
printf '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": %s}\n' "$wiring" >"$parameters"

echo "postdeploy: wiring registry $registry_name (resource group $registry_group) to $app_name/$function_name ..."
az deployment group create \
  --subscription "$subscription" \
  --resource-group "$registry_group" \
  --name "acr-retag-wiring-$env_name" \
  --template-file "$template" \
  --parameters "@$parameters" \
  --output none

echo "postdeploy: done. Pushes of the source tags to $registry_name now reach $function_name."
echo "postdeploy: dead-lettered events land in the container shown by 'azd env get-value AZURE_DEADLETTER_CONTAINER'."
