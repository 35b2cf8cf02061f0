#!/usr/bin/env bash
# Create on Azure what the services need, as the walkthrough does, but with least
# privilege: a 10-partition event hub in a Kafka-enabled namespace, and either
#   keys      a Send-only rule for the producer and a Listen-only rule for the
#             consumer (their connection strings are printed), or
#   entra     role assignments for two identities, Azure Event Hubs Data Sender
#             (producer) and Data Receiver (consumer): no key at all.
# Needs the Azure CLI, signed in (az login). Not run by the project's tests:
# no Azure can be reached from where they run. Commands and flags are from
# Microsoft's `az eventhubs` and `az role assignment` reference.
#
#   RESOURCE_GROUP=rg LOCATION=westeurope NAMESPACE=contoso-kafka ./setup.sh keys
#   RESOURCE_GROUP=rg LOCATION=westeurope NAMESPACE=contoso-kafka \
#     PRODUCER_PRINCIPAL_ID=<object id> CONSUMER_PRINCIPAL_ID=<object id> ./setup.sh entra
set -euo pipefail

mode="${1:-}"
if [[ "$mode" != keys && "$mode" != entra ]]; then
  echo "usage: RESOURCE_GROUP=... LOCATION=... NAMESPACE=... $0 keys|entra" >&2
  exit 2
fi
: "${RESOURCE_GROUP:?set RESOURCE_GROUP}"
: "${LOCATION:?set LOCATION, e.g. westeurope}"
: "${NAMESPACE:?set NAMESPACE, the Event Hubs namespace name (6-50 characters)}"
EVENT_HUB="${EVENT_HUB:-testhub}"
# Standard is the smallest tier with the Kafka endpoint (Basic has none).
SKU="${SKU:-Standard}"

az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
az eventhubs namespace create \
  --resource-group "$RESOURCE_GROUP" --name "$NAMESPACE" \
  --location "$LOCATION" --sku "$SKU" --output none
az eventhubs eventhub create \
  --resource-group "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" \
  --name "$EVENT_HUB" --partition-count 10 --output none

if [[ "$mode" == keys ]]; then
  # One rule per service, each with only the right it needs; never the
  # namespace's RootManageSharedAccessKey, which can also create event hubs.
  for rule in producer:Send consumer:Listen; do
    az eventhubs eventhub authorization-rule create \
      --resource-group "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" \
      --eventhub-name "$EVENT_HUB" --name "${rule%%:*}" --rights "${rule##*:}" --output none
  done
  for service in producer consumer; do
    echo "EVENTHUBS_CONNECTION_STRING for the $service:"
    az eventhubs eventhub authorization-rule keys list \
      --resource-group "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" \
      --eventhub-name "$EVENT_HUB" --name "$service" \
      --query primaryConnectionString --output tsv
  done
  exit 0
fi

: "${PRODUCER_PRINCIPAL_ID:?set PRODUCER_PRINCIPAL_ID, object id of the producer identity}"
: "${CONSUMER_PRINCIPAL_ID:?set CONSUMER_PRINCIPAL_ID, object id of the consumer identity}"
# The event hub's scope, not the namespace's: each identity reaches this hub only.
scope="$(az eventhubs eventhub show \
  --resource-group "$RESOURCE_GROUP" --namespace-name "$NAMESPACE" \
  --name "$EVENT_HUB" --query id --output tsv)"
az role assignment create --assignee "$PRODUCER_PRINCIPAL_ID" \
  --role "Azure Event Hubs Data Sender" --scope "$scope" --output none
az role assignment create --assignee "$CONSUMER_PRINCIPAL_ID" \
  --role "Azure Event Hubs Data Receiver" --scope "$scope" --output none
echo "EVENTHUBS_NAMESPACE=$NAMESPACE EVENTHUBS_TOPIC=$EVENT_HUB (role assignments take up to 5 minutes)"
