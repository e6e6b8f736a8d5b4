#!/bin/sh
# azd predown hook: undo phase 2 (infra/subscription.bicep) before `azd down` deletes the app's
# resource group, and, when that group existed before this environment, delete this
# environment's own resources in it (azd leaves a group it did not create alone).
#
# Nothing is deleted without proof that this environment created it, checked just before:
#   event subscription   its label acr-retag-env=<env>
#   system topic         its tag acr-retag-env=<env>, and no other event subscription left on it
#   role assignments     held by the app identity, whose tag azd-env-name=<env> is checked first
#   deployment history   its environmentName parameter is <env>
#   app resources        (existing resource group only) their tag azd-env-name=<env>
# The registry, its images, its resource group and anything untagged are never touched.
set -eu

script_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# shellcheck source=infra/hooks/common.sh
. "$script_dir/common.sh"

env_name=$(env_value AZURE_ENV_NAME)
subscription=$(env_value AZURE_SUBSCRIPTION_ID)
app_group=$(env_value AZURE_RESOURCE_GROUP)
group_created=$(env_value AZURE_RESOURCE_GROUP_CREATED)
registry_subscription=$(env_value AZURE_REGISTRY_SUBSCRIPTION_ID)
registry_subscription=${registry_subscription:-$subscription}
registry_group=$(env_value AZURE_REGISTRY_RESOURCE_GROUP)
registry_name=$(env_value AZURE_REGISTRY_NAME)
event_subscription=$(env_value AZURE_EVENTGRID_SUBSCRIPTION)
principal=$(env_value AZURE_APP_IDENTITY_PRINCIPAL_ID)
identity_id=$(env_value AZURE_APP_IDENTITY_ID)
events_topic_id=$(env_value AZURE_EVENTS_TOPIC_ID)
events_topic_created=$(env_value AZURE_EVENTS_TOPIC_CREATED)
token_vault_id=$(env_value AZURE_FLUX_TOKEN_VAULT_ID)

if [ -z "$env_name" ] || [ -z "$subscription" ] || [ -z "$registry_group" ] || [ -z "$registry_name" ]; then
  echo "predown: nothing was provisioned for this environment; nothing to undo."
  exit 0
fi
for sub in "$subscription" "$registry_subscription"; do
  if ! az account show --subscription "$sub" --output none 2>/dev/null; then
    echo "predown: the Azure CLI cannot use subscription $sub; run 'az login'." >&2
    exit 1
  fi
done

warn() {
  echo "predown: WARNING: $*" >&2
}

delete_resource() {
  echo "predown: deleting $1"
  az resource delete --ids "$1" --output none
}

registry_id="/subscriptions/$registry_subscription/resourceGroups/$registry_group/providers/Microsoft.ContainerRegistry/registries/$registry_name"

# 1. The event subscription and, if this environment created it, the system topic.
topic=$(find_system_topic "$registry_subscription" "$registry_id") || {
  echo "predown: could not list the Event Grid system topics of subscription $registry_subscription." >&2
  exit 1
}
if [ -n "$topic" ] && [ -n "$event_subscription" ]; then
  topic_id=$(field 1 "$topic")
  topic_name=$(field 2 "$topic")
  topic_group=$(field 3 "$topic")
  topic_owner=$(field 4 "$topic")
  subscription_id="$topic_id/eventSubscriptions/$event_subscription"
  if ours=$(az eventgrid system-topic event-subscription show --subscription "$registry_subscription" \
    --resource-group "$topic_group" --system-topic-name "$topic_name" --name "$event_subscription" \
    --query "contains(to_array(labels), 'acr-retag-env=$env_name')" --output tsv 2>/dev/null); then
    if [ "$ours" = "true" ]; then
      delete_resource "$subscription_id"
    else
      warn "keeping event subscription $event_subscription on $topic_name: it has no label acr-retag-env=$env_name"
    fi
  fi
  if [ "$topic_owner" = "$env_name" ]; then
    others=$(az eventgrid system-topic event-subscription list --subscription "$registry_subscription" \
      --resource-group "$topic_group" --system-topic-name "$topic_name" --query 'length(@)' --output tsv)
    if [ "$others" = "0" ]; then
      delete_resource "$topic_id"
    else
      warn "keeping system topic $topic_name (created by this environment): $others other event subscription(s) still use it"
    fi
  else
    echo "predown: keeping system topic $topic_name: this environment did not create it (acr-retag-env tag: $topic_owner)."
  fi
fi

# 2. Role assignments of the app identity outside its resource group, once the identity is
#    proven to be this environment's.
owner=
if [ -n "$identity_id" ]; then
  owner=$(az resource show --ids "$identity_id" --query 'tags."azd-env-name"' --output tsv 2>/dev/null || true)
fi
if [ -n "$principal" ] && [ "$owner" = "$env_name" ]; then
  scopes="$registry_id"
  if [ -n "$events_topic_id" ] && [ "$events_topic_created" != "true" ]; then
    scopes="$scopes $events_topic_id"
  fi
  if [ -n "$token_vault_id" ]; then
    scopes="$scopes $token_vault_id"
  fi
  for scope in $scopes; do
    scope_subscription=$(printf '%s' "$scope" | cut -d/ -f3)
    assignments=$(az role assignment list --subscription "$scope_subscription" --scope "$scope" \
      --query "[?principalId=='$principal'].id" --output tsv)
    for assignment in $assignments; do
      echo "predown: deleting role assignment $assignment"
      az role assignment delete --subscription "$scope_subscription" --ids "$assignment" --output none
    done
  done
elif [ -n "$principal" ]; then
  warn "keeping the role assignments of principal $principal: identity ${identity_id:-?} does not carry azd-env-name=$env_name"
fi

# 3. Phase 2's deployment history in the registry's resource group.
for prefix in acr-retag-wiring- retag-registry-roles- retag-events- retag-extra-roles-; do
  deployment=$(deployment_name "$prefix" "$env_name")
  deployed_for=$(az deployment group show --subscription "$registry_subscription" \
    --resource-group "$registry_group" --name "$deployment" \
    --query 'properties.parameters.environmentName.value' --output tsv 2>/dev/null || true)
  if [ "$deployed_for" = "$env_name" ]; then
    echo "predown: deleting deployment $deployment"
    az deployment group delete --subscription "$registry_subscription" --resource-group "$registry_group" \
      --name "$deployment" --output none
  fi
done

# 4. A resource group that existed before this environment is not deleted by azd down (it is
#    referenced, not declared); delete this environment's own resources in it, app first,
#    identity last.
if [ "$group_created" = "false" ] && [ -n "$app_group" ]; then
  tagged=$(az resource list --subscription "$subscription" --resource-group "$app_group" \
    --query "[?tags.\"azd-env-name\"=='$env_name'].[id, type]" --output tsv)
  for rank in 1 2 3 4; do
    printf '%s\n' "$tagged" | while IFS="$(printf '\t')" read -r id type; do
      [ -n "$id" ] || continue
      case "$(lower "$type")" in
        microsoft.web/sites) this=1 ;;
        microsoft.web/serverfarms) this=2 ;;
        microsoft.managedidentity/userassignedidentities) this=4 ;;
        *) this=3 ;;
      esac
      [ "$this" = "$rank" ] || continue
      still=$(az resource show --ids "$id" --query 'tags."azd-env-name"' --output tsv 2>/dev/null || true)
      if [ "$still" = "$env_name" ]; then
        delete_resource "$id"
      fi
    done
  done
  echo "predown: resource group $app_group existed before this environment and is kept; only resources tagged azd-env-name=$env_name were deleted."
fi
echo "predown: registry $registry_name is unchanged apart from the removed wiring."
