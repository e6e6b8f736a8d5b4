#!/bin/sh
# azd postdeploy hook: phase 2 of `azd up` (why two phases: see infra/subscription.bicep).
#
# 1. Wait until the deployed app has indexed the Event Grid triggered function (and, for the
#    WebHook fallback, until its eventgrid_extension system key exists).
# 2. Find the registry's Event Grid system topic, whatever its name: Azure allows one per
#    registry. An existing one that this environment did not create is reused as it is (only an
#    event subscription is added to it; its tags and identity are never changed).
# 3. Deploy infra/subscription.bicep into the registry's resource group, in the registry's
#    subscription: the app identity's roles, the topic (when created here), the subscription.
#
# Uses the Azure CLI (`az login`). Safe to re-run: azd hooks run postdeploy
set -eu

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# shellcheck source=infra/hooks/common.sh
. "$script_dir/common.sh"
template="$script_dir/../subscription.bicep"

# Bounded waits (seconds between attempts, attempts); tests shorten them.
wait_seconds=${RETAG_HOOK_WAIT_SECONDS:-10}
function_attempts=${RETAG_HOOK_FUNCTION_ATTEMPTS:-30}
key_attempts=${RETAG_HOOK_KEY_ATTEMPTS:-18}

required() {
  value=$(env_value "$1")
  if [ -z "$value" ]; then
    echo "postdeploy: $1 is not set in the azd environment; run 'azd provision' first." >&2
    exit 1
  fi
  printf '%s' "$value"
}

env_name=$(required AZURE_ENV_NAME)
subscription=$(required AZURE_SUBSCRIPTION_ID)
app_group=$(required AZURE_RESOURCE_GROUP)
app_name=$(required AZURE_FUNCTION_APP_NAME)
function_name=$(required AZURE_FUNCTION_NAME)
registry_group=$(required AZURE_REGISTRY_RESOURCE_GROUP)
registry_name=$(required AZURE_REGISTRY_NAME)
wiring=$(required AZURE_WIRING_PARAMETERS)
registry_subscription=$(env_value AZURE_REGISTRY_SUBSCRIPTION_ID)
registry_subscription=${registry_subscription:-$subscription}
topic_name=$(env_value AZURE_EVENTGRID_SYSTEM_TOPIC)
topic_name=${topic_name:-$registry_name-events}
endpoint_type=$(env_value AZURE_EVENTGRID_ENDPOINT_TYPE)
endpoint_type=${endpoint_type:-AzureFunction}
token_secret_uri=$(env_value FLUX_RECEIVER_TOKEN_SECRET_URI)
token_vault_id=$(env_value AZURE_FLUX_TOKEN_VAULT_ID)

for sub in "$subscription" "$registry_subscription"; do
  if ! az account show --subscription "$sub" --output none 2>/dev/null; then
    echo "postdeploy: the Azure CLI cannot use subscription $sub; run 'az login'." >&2
    exit 1
  fi
done

if [ -n "$token_secret_uri" ]; then
  vault_name=$(printf '%s' "$token_secret_uri" | sed -n 's#^https://\([^./]*\)\..*#\1#p')
  if [ -z "$token_vault_id" ] || [ "$(lower "${token_vault_id##*/}")" != "$(lower "$vault_name")" ]; then
    echo "postdeploy: FLUX_RECEIVER_TOKEN_SECRET_URI is a secret of vault '$vault_name': set AZURE_FLUX_TOKEN_VAULT_ID to that vault's resource id (az keyvault show -n $vault_name --query id -o tsv)." >&2
    exit 1
  fi
fi

# The function resource appears once the host has started and indexed the deployed code.
echo "postdeploy: waiting for $app_name to list the function $function_name ..."
attempt=0
until az functionapp function show --subscription "$subscription" --resource-group "$app_group" \
  --name "$app_name" --function-name "$function_name" --query id --output tsv >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge "$function_attempts" ]; then
    echo "postdeploy: $function_name did not appear in $app_name after $function_attempts attempts." >&2
    echo "postdeploy: check the app's logs in Application Insights, then run 'azd hooks run postdeploy'." >&2
    exit 1
  fi
  sleep "$wait_seconds"
done

# WebHook fallback: phase 2 reads the eventgrid_extension system key inside ARM (listKeys), and a
# freshly started host may not have created it yet. Wait for it here (the hook asks only whether
# it exists, and never holds the key) instead of letting the deployment fail.
if [ "$endpoint_type" = "WebHook" ]; then
  echo "postdeploy: WebHook fallback: waiting for the eventgrid_extension system key of $app_name ..."
  attempt=0
  until [ "$(az functionapp keys list --subscription "$subscription" --resource-group "$app_group" \
    --name "$app_name" --query 'systemKeys.eventgrid_extension != null' --output tsv 2>/dev/null || true)" = "true" ]; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge "$key_attempts" ]; then
      echo "postdeploy: the eventgrid_extension system key did not appear in $app_name after $key_attempts attempts." >&2
      echo "postdeploy: the host creates it when it starts the Event Grid extension; run 'azd hooks run postdeploy' again later." >&2
      exit 1
    fi
    sleep "$wait_seconds"
  done
fi

registry_id="/subscriptions/$registry_subscription/resourceGroups/$registry_group/providers/Microsoft.ContainerRegistry/registries/$registry_name"
topic=$(find_system_topic "$registry_subscription" "$registry_id") || {
  echo "postdeploy: could not list the Event Grid system topics of subscription $registry_subscription." >&2
  exit 1
}
create_topic=true
topic_group=$registry_group
dead_letter_identity=SystemAssigned
dead_letter_identity_id=
dead_letter_principal=
if [ -n "$topic" ]; then
  topic_id=$(field 1 "$topic")
  topic_name=$(field 2 "$topic")
  topic_group=$(field 3 "$topic")
  topic_owner=$(field 4 "$topic")
  topic_identity=$(field 5 "$topic")
  if [ "$topic_owner" = "$env_name" ]; then
    echo "postdeploy: system topic $topic_name was created by this environment; keeping it up to date."
  else
    create_topic=false
    echo "postdeploy: reusing the registry's existing system topic $topic_name (resource group $topic_group); its tags and identity are left as they are."
    case "$topic_identity" in
      *SystemAssigned*) dead_letter_identity=SystemAssigned ;;
      *UserAssigned*)
        dead_letter_identity=UserAssigned
        dead_letter_identity_id=$(az eventgrid system-topic show --ids "$topic_id" \
          --query 'keys(identity.userAssignedIdentities)[0]' --output tsv)
        dead_letter_principal=$(az eventgrid system-topic show --ids "$topic_id" \
          --query 'values(identity.userAssignedIdentities)[0].principalId' --output tsv)
        ;;
      *)
        dead_letter_identity=None
        echo "postdeploy: WARNING: system topic $topic_name has no managed identity, so undeliverable events cannot be dead-lettered to the app's storage; they are dropped after 24 h (the DroppedEventCount alert still fires). Give the topic an identity and re-run this hook to dead-letter them." >&2
        ;;
    esac
  fi
fi

parameters=$(mktemp)
trap 'rm -f "$parameters"' EXIT
# shellcheck disable=SC2016 # "$schema" is a literal JSON key, not a shell expansion
printf '{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": %s}\n' "$wiring" >"$parameters"

name=$(deployment_name acr-retag-wiring- "$env_name")
echo "postdeploy: wiring registry $registry_name (subscription $registry_subscription, resource group $registry_group) to $app_name/$function_name as deployment $name ..."
az deployment group create \
  --subscription "$registry_subscription" \
  --resource-group "$registry_group" \
  --name "$name" \
  --template-file "$template" \
  --parameters "@$parameters" \
  --parameters environmentHash="$(short_hash "$env_name")" \
  systemTopicName="$topic_name" systemTopicResourceGroup="$topic_group" \
  createSystemTopic="$create_topic" deadLetterIdentity="$dead_letter_identity" \
  deadLetterIdentityId="$dead_letter_identity_id" deadLetterPrincipalId="$dead_letter_principal" \
  --output none

# A Key Vault reference that failed to resolve before its role existed is retried on restart.
if [ -n "$token_secret_uri" ]; then
  echo "postdeploy: restarting $app_name so it resolves the FLUX_RECEIVER_TOKEN Key Vault reference ..."
  az functionapp restart --subscription "$subscription" --resource-group "$app_group" \
    --name "$app_name" --output none
fi

echo "postdeploy: done. Pushes of the source tags to $registry_name now reach $function_name."
echo "postdeploy: dead-lettered events land in the container shown by 'azd env get-value AZURE_DEADLETTER_CONTAINER'."
