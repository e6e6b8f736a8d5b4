#!/bin/sh
# azd predown hook: undo phase 2 (infra/subscription.bicep) before `azd down` deletes the app's
# resource group. When the registry lives in another resource group, azd down does not touch
# that group (by design: it must never delete a registry it did not create), so this removes
# what phase 2 put there: the event subscription, the system topic if phase 2 created it, and the
# app identity's role assignments on the registry. The registry and its images are never touched.
set -eu

env_value() {
  value=$(printenv "$1" 2>/dev/null || true)
  if [ -z "$value" ]; then
    value=$(azd env get-value "$1" 2>/dev/null || true)
  fi
  printf '%s' "$value"
}

env_name=$(env_value AZURE_ENV_NAME)
subscription=$(env_value AZURE_SUBSCRIPTION_ID)
app_group=$(env_value AZURE_RESOURCE_GROUP)
registry_group=$(env_value AZURE_REGISTRY_RESOURCE_GROUP)
registry_name=$(env_value AZURE_REGISTRY_NAME)
topic=$(env_value AZURE_EVENTGRID_SYSTEM_TOPIC)
create_topic=$(env_value AZURE_EVENTGRID_CREATE_SYSTEM_TOPIC)
event_subscription=$(env_value AZURE_EVENTGRID_SUBSCRIPTION)
principal=$(env_value AZURE_APP_IDENTITY_PRINCIPAL_ID)

if [ -z "$subscription" ] || [ -z "$registry_group" ] || [ -z "$registry_name" ]; then
  echo "predown: nothing was provisioned for this environment; nothing to undo."
  exit 0
fi
if [ "$registry_group" = "$app_group" ]; then
  echo "predown: the registry is in the app's resource group; azd down removes the wiring with it."
  exit 0
fi
if ! az account show --subscription "$subscription" --output none 2>/dev/null; then
  echo "predown: the Azure CLI cannot use subscription $subscription; run 'az login'." >&2
  exit 1
fi

group_id="/subscriptions/$subscription/resourceGroups/$registry_group"
topic_id="$group_id/providers/Microsoft.EventGrid/systemTopics/$topic"
registry_id="$group_id/providers/Microsoft.ContainerRegistry/registries/$registry_name"

delete_if_present() {
  if az resource show --ids "$1" --output none 2>/dev/null; then
    echo "predown: deleting $1"
    az resource delete --ids "$1" --output none
  fi
}

delete_if_present "$topic_id/eventSubscriptions/$event_subscription"

# Delete the topic only if phase 2 created it for this environment.
if [ "$create_topic" = "true" ]; then
  owner=$(az resource show --ids "$topic_id" --query 'tags."acr-retag-env"' --output tsv 2>/dev/null || true)
  if [ "$owner" = "$env_name" ]; then
    delete_if_present "$topic_id"
  fi
fi

if [ -n "$principal" ]; then
  assignments=$(az role assignment list --subscription "$subscription" --scope "$registry_id" \
    --query "[?principalId=='$principal'].id" --output tsv 2>/dev/null || true)
  for assignment in $assignments; do
    echo "predown: deleting role assignment $assignment"
    az role assignment delete --subscription "$subscription" --ids "$assignment" --output none
  done
fi

for deployment in "acr-retag-wiring-$env_name" "retag-registry-roles-$env_name" "retag-events-$env_name"; do
  if az deployment group show --subscription "$subscription" --resource-group "$registry_group" \
    --name "$deployment" --output none 2>/dev/null; then
    az deployment group delete --subscription "$subscription" --resource-group "$registry_group" \
      --name "$deployment" --output none
  fi
done
echo "predown: registry $registry_name is unchanged apart from the removed wiring."
